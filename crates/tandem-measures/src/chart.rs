//! Score trajectory charts as SVG text, rendered on the server.
//!
//! The SVG is written by hand (no fonts, no system libraries): severity bands shaded, the
//! scores as a line with a point per assessment, reliable-change markers against the first
//! score, assessment dates along the bottom, and an accessible `<title>`/`<desc>`. The
//! `viewBox` is 390 units wide by default, a phone's width, and the element scales to its
//! container (`width="100%"`), so text stays readable on a 390 px screen.
//!
//! Structure that tests (and stylesheets) can rely on: `rect.band[data-band]` per band,
//! `circle.point` per assessment, `polyline.line` when there are two or more points,
//! `.marker.reliable-improvement` / `.marker.reliable-deterioration`, `text.date`.

use std::fmt::Write as _;

use crate::change::Assessment;
use crate::instrument::{Direction, Instrument};
use crate::registry::normalize_id;

/// Size and naming of a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartOptions {
    /// viewBox width (default 390, a phone).
    pub width: u32,
    /// viewBox height (default 260).
    pub height: u32,
    /// Prefix for element ids (title/desc), unique per page.
    pub id_prefix: String,
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            width: 390,
            height: 260,
            id_prefix: "tandem-chart".into(),
        }
    }
}

/// Light tints from least to most severe.
const PALETTE: [&str; 5] = ["#e6f4ea", "#f1f8e0", "#fff7db", "#ffead6", "#fde0e0"];

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

fn date(t: time::OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Renders `series` (assessments on any instrument; only `instrument`'s are drawn) as SVG.
/// Never fails: 0 points gives an empty chart with a message, 1 point a single dot.
pub fn trajectory_svg(
    instrument: &Instrument,
    series: &[Assessment],
    options: &ChartOptions,
) -> String {
    let keys: Vec<String> = std::iter::once(&instrument.id)
        .chain(instrument.aliases.iter())
        .map(|k| normalize_id(k))
        .collect();
    let mut points: Vec<&Assessment> = series
        .iter()
        .filter(|a| keys.contains(&normalize_id(&a.instrument)))
        .collect();
    points.sort_by_key(|a| a.at);

    let w = f64::from(options.width.max(200));
    let h = f64::from(options.height.max(160));
    let (left, right, top, bottom) = (34.0, 10.0, 28.0, 46.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let y_max = f64::from(instrument.max_scaled().max(1));
    let y_of = |v: u32| top + plot_h * (1.0 - f64::from(v).min(y_max) / y_max);
    let pad = 14.0;
    let n = points.len();
    let (t0, t1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.at.unix_timestamp(), b.at.unix_timestamp()),
        _ => (0, 0),
    };
    let x_of = |index: usize, at: i64| -> f64 {
        if n <= 1 {
            left + plot_w / 2.0
        } else if t1 > t0 {
            left + pad + (plot_w - 2.0 * pad) * ((at - t0) as f64 / (t1 - t0) as f64)
        } else {
            left + pad + (plot_w - 2.0 * pad) * (index as f64 / (n - 1) as f64)
        }
    };
    let band_label = |scaled: u32| {
        instrument
            .band_for(scaled)
            .map(|b| b.label.clone())
            .unwrap_or_default()
    };

    // Reliable change against the first score.
    let baseline = points.first().map(|a| a.total);
    let change_of = |a: &Assessment| -> Option<&'static str> {
        let rule = instrument.change.as_ref()?;
        let base = baseline?;
        let rc = i64::from(rule.reliable_change);
        let delta = i64::from(a.total) - i64::from(base);
        let worse = match instrument.scoring.direction {
            Direction::HigherIsWorse => delta,
            Direction::HigherIsBetter => -delta,
        };
        if worse <= -rc {
            Some("reliable-improvement")
        } else if worse >= rc {
            Some("reliable-deterioration")
        } else {
            None
        }
    };

    let id_base = format!(
        "{}-{}",
        esc(&options.id_prefix),
        normalize_id(&instrument.id).to_lowercase()
    );
    let title = format!("{} score over time", instrument.id);
    let improvements = points
        .iter()
        .filter(|a| change_of(a) == Some("reliable-improvement"))
        .count();
    let deteriorations = points
        .iter()
        .filter(|a| change_of(a) == Some("reliable-deterioration"))
        .count();
    let desc = match (points.first(), points.last()) {
        (Some(first), Some(_)) if n == 1 => format!(
            "One {} assessment on {}: score {} ({}).",
            instrument.id,
            date(first.at),
            instrument.scaled(first.total),
            band_label(instrument.scaled(first.total))
        ),
        (Some(first), Some(last)) => format!(
            "{n} {} assessments from {} to {}. First score {} ({}), latest score {} ({}). \
             {improvements} reliable improvement(s) and {deteriorations} reliable deterioration(s) against the first score.",
            instrument.id,
            date(first.at),
            date(last.at),
            instrument.scaled(first.total),
            band_label(instrument.scaled(first.total)),
            instrument.scaled(last.total),
            band_label(instrument.scaled(last.total)),
        ),
        _ => format!("No {} assessments yet.", instrument.id),
    };

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{id_base}-title {id_base}-desc" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="11" style="max-width:100%;height:auto">"#
    );
    let _ = write!(
        s,
        r#"<title id="{id_base}-title">{}</title><desc id="{id_base}-desc">{}</desc>"#,
        esc(&title),
        esc(&desc)
    );
    let _ = write!(
        s,
        r##"<text class="chart-title" x="{left}" y="17" font-size="13" font-weight="600" fill="#222">{}</text>"##,
        esc(&title)
    );

    // Bands.
    let nb = instrument.bands.len();
    s.push_str(r#"<g class="bands">"#);
    for (index, band) in instrument.bands.iter().enumerate() {
        let rank = match instrument.scoring.direction {
            Direction::HigherIsWorse => index,
            Direction::HigherIsBetter => nb.saturating_sub(index + 1),
        };
        let colour = if nb <= 1 {
            PALETTE[0]
        } else {
            PALETTE
                .get(rank * (PALETTE.len() - 1) / (nb - 1))
                .copied()
                .unwrap_or(PALETTE[0])
        };
        let is_last = index + 1 == nb;
        let upper = if is_last {
            band.max
        } else {
            band.max.saturating_add(1)
        };
        let y_top = y_of(upper);
        let y_bottom = y_of(band.min);
        let height = (y_bottom - y_top).max(0.0);
        let _ = write!(
            s,
            r#"<rect class="band" data-band="{label}" data-min="{min}" data-max="{max}" x="{left}" y="{y_top:.1}" width="{plot_w:.1}" height="{height:.1}" fill="{colour}"/>"#,
            label = esc(&band.label),
            min = band.min,
            max = band.max,
        );
        if height >= 12.0 {
            let _ = write!(
                s,
                r##"<text class="band-label" x="{x:.1}" y="{y:.1}" text-anchor="end" fill="#444" font-size="10" stroke="#fff" stroke-width="3" paint-order="stroke">{}</text>"##,
                esc(&band.label),
                x = left + plot_w - 4.0,
                y = y_top + 11.0,
            );
        }
    }
    s.push_str("</g>");

    // Y axis: band boundaries.
    s.push_str(r#"<g class="axis">"#);
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{yb:.1}" stroke="#888" stroke-width="1"/><line x1="{left}" y1="{yb:.1}" x2="{xr:.1}" y2="{yb:.1}" stroke="#888" stroke-width="1"/>"##,
        yb = top + plot_h,
        xr = left + plot_w,
    );
    let mut ticks: Vec<u32> = instrument.bands.iter().map(|b| b.min).collect();
    ticks.push(instrument.max_scaled());
    ticks.dedup();
    for tick in ticks {
        let _ = write!(
            s,
            r##"<text class="tick" x="{x:.1}" y="{y:.1}" text-anchor="end" fill="#444">{tick}</text>"##,
            x = left - 4.0,
            y = y_of(tick) + 4.0,
        );
    }
    s.push_str("</g>");

    if n == 0 {
        let _ = write!(
            s,
            r##"<text class="empty" x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#333" font-size="13">No assessments yet</text>"##,
            x = left + plot_w / 2.0,
            y = top + plot_h / 2.0,
        );
    }

    let coords: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                x_of(i, a.at.unix_timestamp()),
                y_of(instrument.scaled(a.total)),
            )
        })
        .collect();

    if n >= 2 {
        let line: Vec<String> = coords
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            s,
            r##"<polyline class="line" points="{}" fill="none" stroke="#1a4f8b" stroke-width="2"/>"##,
            line.join(" ")
        );
    }

    s.push_str(r#"<g class="points">"#);
    for (a, (x, y)) in points.iter().zip(&coords) {
        let scaled = instrument.scaled(a.total);
        let _ = write!(
            s,
            r##"<circle class="point" cx="{x:.1}" cy="{y:.1}" r="4.5" fill="#1a4f8b" stroke="#fff" stroke-width="1.5" data-date="{d}" data-score="{scaled}"><title>{d}: {scaled} ({b})</title></circle>"##,
            d = date(a.at),
            b = esc(&band_label(scaled)),
        );
    }
    s.push_str("</g>");

    // Reliable-change markers: a triangle above the point, pointing the way the score moved.
    s.push_str(r#"<g class="markers">"#);
    for (a, (x, y)) in points.iter().zip(&coords) {
        let Some(kind) = change_of(a) else { continue };
        let went_down = (i64::from(a.total) - i64::from(baseline.unwrap_or(a.total))) < 0;
        let (path, colour, label) = if went_down {
            (
                format!(
                    "M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z",
                    x - 5.0,
                    y - 14.0,
                    x + 5.0,
                    y - 14.0,
                    x,
                    y - 7.0
                ),
                if kind == "reliable-improvement" {
                    "#1b7f3b"
                } else {
                    "#b3261e"
                },
                kind.replace('-', " "),
            )
        } else {
            (
                format!(
                    "M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z",
                    x - 5.0,
                    y - 7.0,
                    x + 5.0,
                    y - 7.0,
                    x,
                    y - 14.0
                ),
                if kind == "reliable-improvement" {
                    "#1b7f3b"
                } else {
                    "#b3261e"
                },
                kind.replace('-', " "),
            )
        };
        let _ = write!(
            s,
            r#"<path class="marker {kind}" d="{path}" fill="{colour}"><title>{label}</title></path>"#
        );
    }
    s.push_str("</g>");

    // Dates: all if few, else first, last and two between.
    s.push_str(r#"<g class="dates">"#);
    let label_indices: Vec<usize> = if n <= 4 {
        (0..n).collect()
    } else {
        let last = n - 1;
        let mut v = vec![0, last / 3, (2 * last) / 3, last];
        v.dedup();
        v
    };
    let y_date = top + plot_h + 16.0;
    for index in label_indices {
        if let (Some(a), Some((x, _))) = (points.get(index), coords.get(index)) {
            let x = x.clamp(left + 30.0, left + plot_w - 30.0);
            let _ = write!(
                s,
                r##"<text class="date" x="{x:.1}" y="{y_date:.1}" text-anchor="middle" fill="#333" font-size="10">{}</text>"##,
                date(a.at)
            );
        }
    }
    s.push_str("</g>");

    if improvements + deteriorations > 0 {
        // Symptom scales improve downwards, wellbeing scales upwards.
        let (better, worse) = match instrument.scoring.direction {
            Direction::HigherIsWorse => ("&#9660;", "&#9650;"),
            Direction::HigherIsBetter => ("&#9650;", "&#9660;"),
        };
        let _ = write!(
            s,
            r##"<text class="legend" x="{left}" y="{y:.1}" fill="#333" font-size="10"><tspan fill="#1b7f3b">{better}</tspan> reliable improvement  <tspan fill="#b3261e">{worse}</tspan> reliable deterioration</text>"##,
            y = h - 8.0,
        );
    }
    s.push_str("</svg>");
    s
}
