#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Charts render for 0, 1 and many points; checked by parsing the SVG.

use time::macros::datetime;
use time::Duration;

use tandem_measures::{trajectory_svg, Assessment, ChartOptions, Registry};

fn points(instrument: &str, totals: &[u32]) -> Vec<Assessment> {
    totals
        .iter()
        .enumerate()
        .map(|(i, &total)| Assessment {
            instrument: instrument.into(),
            total,
            at: datetime!(2025-01-06 09:00 UTC) + Duration::days(14 * i64::try_from(i).unwrap()),
        })
        .collect()
}

fn count_class(doc: &roxmltree::Document, class: &str) -> usize {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|x| x == class))
        })
        .count()
}

fn check_common(svg: &str, bands: usize) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("viewBox"), Some("0 0 390 260"));
    assert_eq!(root.attribute("width"), Some("100%"));
    assert_eq!(root.attribute("role"), Some("img"));
    let first = root.first_element_child().unwrap();
    assert_eq!(first.tag_name().name(), "title");
    assert!(root.children().any(|n| n.has_tag_name("desc")));
    assert_eq!(count_class(&doc, "band"), bands);
    doc
}

#[test]
fn renders_zero_points() {
    let r = Registry::builtin().unwrap();
    let svg = trajectory_svg(r.get("PHQ-9").unwrap(), &[], &ChartOptions::default());
    let doc = check_common(&svg, 5);
    assert_eq!(count_class(&doc, "point"), 0);
    assert_eq!(count_class(&doc, "line"), 0);
    assert!(svg.contains("No assessments yet"));
}

#[test]
fn renders_one_point() {
    let r = Registry::builtin().unwrap();
    let svg = trajectory_svg(
        r.get("PHQ-9").unwrap(),
        &points("PHQ-9", &[14]),
        &ChartOptions::default(),
    );
    let doc = check_common(&svg, 5);
    assert_eq!(count_class(&doc, "point"), 1);
    assert_eq!(count_class(&doc, "line"), 0);
    assert_eq!(count_class(&doc, "date"), 1);
    let desc = doc.descendants().find(|n| n.has_tag_name("desc")).unwrap();
    assert!(desc.text().unwrap().contains("2025-01-06"));
    assert!(desc.text().unwrap().contains("14 (moderate)"));
}

#[test]
fn renders_many_points_with_bands_and_reliable_change_markers() {
    let r = Registry::builtin().unwrap();
    let phq9 = r.get("PHQ-9").unwrap();
    let mut series = points("phq9", &[21, 18, 15, 14, 12, 9, 7, 5, 8, 6, 4, 3]);
    // Other instruments in the series are ignored.
    series.extend(points("GAD-7", &[10, 2]));
    let svg = trajectory_svg(phq9, &series, &ChartOptions::default());
    let doc = check_common(&svg, 5);
    assert_eq!(count_class(&doc, "point"), 12);
    assert_eq!(count_class(&doc, "line"), 1);
    // 21 -> <= 15 is a reliable improvement (>= 6): every point from the 3rd on.
    assert_eq!(count_class(&doc, "reliable-improvement"), 10);
    assert_eq!(count_class(&doc, "reliable-deterioration"), 0);
    assert_eq!(count_class(&doc, "date"), 4);
    let labels: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("band"))
        .map(|n| n.attribute("data-band").unwrap().to_owned())
        .collect();
    assert_eq!(
        labels,
        ["minimal", "mild", "moderate", "moderately severe", "severe"]
    );
    // Every point lies inside the viewBox.
    for c in doc.descendants().filter(|n| n.has_tag_name("circle")) {
        let x: f64 = c.attribute("cx").unwrap().parse().unwrap();
        let y: f64 = c.attribute("cy").unwrap().parse().unwrap();
        assert!((0.0..=390.0).contains(&x) && (0.0..=260.0).contains(&y));
    }
}

#[test]
fn deterioration_markers_and_same_day_points() {
    let r = Registry::builtin().unwrap();
    let mut series = points("GAD-7", &[3, 8, 12]);
    for a in &mut series {
        a.at = datetime!(2025-01-06 09:00 UTC);
    }
    let svg = trajectory_svg(r.get("GAD-7").unwrap(), &series, &ChartOptions::default());
    let doc = check_common(&svg, 4);
    assert_eq!(count_class(&doc, "point"), 3);
    assert_eq!(count_class(&doc, "reliable-deterioration"), 2);
}

#[test]
fn who5_and_cssrs_render() {
    let r = Registry::builtin().unwrap();
    let svg = trajectory_svg(
        r.get("WHO-5").unwrap(),
        &points("WHO-5", &[6, 10, 18]),
        &ChartOptions::default(),
    );
    let doc = check_common(&svg, 3);
    assert_eq!(count_class(&doc, "point"), 3);
    assert!(svg.contains("data-score=\"72\""));
    let svg = trajectory_svg(
        r.get("C-SSRS").unwrap(),
        &points("C-SSRS", &[0, 1]),
        &ChartOptions::default(),
    );
    let doc = check_common(&svg, 0);
    assert_eq!(count_class(&doc, "point"), 2);
}

#[test]
fn text_is_escaped() {
    let r = Registry::builtin().unwrap();
    let opts = ChartOptions {
        id_prefix: "a\"<b>&".into(),
        ..ChartOptions::default()
    };
    let svg = trajectory_svg(r.get("PHQ-9").unwrap(), &points("PHQ-9", &[1, 2]), &opts);
    roxmltree::Document::parse(&svg).expect("still well-formed");
}
