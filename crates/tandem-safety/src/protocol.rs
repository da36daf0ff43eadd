//! The crisis protocol: a pure decision from a verdict, with fixed texts from data.
//!
//! `high` and `imminent` always give the fixed crisis response for the patient's locale
//! (never generated text, never an answer to what was asked) and an urgent clinician
//! alert; `moderate` lets the model reply with a safety-aware instruction, appends the
//! locale's resources and sends a non-urgent flag; `low` and `none` generate as usual.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::screen::Verdict;
use crate::taxonomy::{Category, Level};
use crate::LoadError;

/// Who reviewed a text, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reviewed {
    /// `pending` until a clinician signs it off, then `approved`.
    pub status: String,
    /// Reviewer's name and role.
    #[serde(default)]
    pub by: String,
    /// Review date (ISO 8601).
    #[serde(default)]
    pub on: String,
    /// Any remark.
    #[serde(default)]
    pub note: String,
}

/// The texts for one locale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleTexts {
    /// BCP 47 tag (`en-US`), or a language fallback (`es-*`).
    pub tag: String,
    /// Other tags served by these texts.
    #[serde(default)]
    pub also: Vec<String>,
    /// Human-readable name.
    pub name: String,
    /// The emergency number(s), as text.
    pub emergency_number: String,
    /// Where each number comes from.
    pub sources: Vec<String>,
    /// Listed with the crisis lines when the level is high.
    pub emergency_line: String,
    /// Shown first when the level is imminent.
    pub emergency_prompt: String,
    /// Acknowledgement that opens the crisis response.
    pub acknowledgement: String,
    /// Crisis lines, one per bullet.
    pub crisis_lines: Vec<String>,
    /// Extra lines for a category (e.g. child-abuse lines for `abuse`).
    #[serde(default)]
    pub category_lines: BTreeMap<Category, Vec<String>>,
    /// Says the clinician is being told.
    pub clinician_notice: String,
    /// Closing line.
    pub closing: String,
    /// Appended to a generated reply at `moderate`.
    pub moderate_resources: String,
    /// Clinical review record.
    pub reviewed: Reviewed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelDoc {
    name: Level,
    meaning: String,
    cssrs: String,
    action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryDoc {
    name: Category,
    mapping: String,
    sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Moderate {
    system_instruction: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtocolFile {
    version: String,
    sources: Vec<String>,
    reviewed: Reviewed,
    level: Vec<LevelDoc>,
    category: Vec<CategoryDoc>,
    moderate: Moderate,
    locale: Vec<LocaleTexts>,
}

/// The loaded protocol data.
#[derive(Debug, Clone)]
pub struct ProtocolData {
    file: ProtocolFile,
}

/// How urgently the clinician hears about a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alert {
    /// No alert (the evidence is still stored with the turn).
    None,
    /// A flag for the clinician's next review.
    NonUrgent,
    /// Alert the clinician at once and record a risk event.
    Urgent,
}

/// What the conversation engine does with this turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    /// Send this fixed text instead of calling the model.
    CrisisResponse {
        /// The full reply.
        text: String,
        /// Whether it opens with the emergency-services prompt (imminent).
        emergency_first: bool,
    },
    /// Call the model with this extra system instruction, then append `resources`.
    GenerateWithSafety {
        /// Added to the system prompt.
        system_instruction: String,
        /// Appended after the model's reply.
        resources: String,
    },
    /// Call the model as usual.
    Generate,
}

/// The protocol's decision for one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    /// The verdict's level.
    pub level: Level,
    /// What to do.
    pub action: Action,
    /// How to tell the clinician.
    pub alert: Alert,
    /// The locale whose texts were used.
    pub locale: String,
}

impl Protocol {
    /// Whether the clinician must be alerted at once.
    pub fn alert_clinician(&self) -> bool {
        self.alert == Alert::Urgent
    }
}

impl ProtocolData {
    /// Parse and check a protocol file.
    pub fn parse(source: &str) -> Result<Self, LoadError> {
        let file: ProtocolFile =
            toml::from_str(source).map_err(|e| LoadError::Parse("protocol", e.to_string()))?;
        if file.version.trim().is_empty() || file.sources.is_empty() {
            return Err(LoadError::Invalid(
                "protocol: version and sources are required".into(),
            ));
        }
        if !file.locale.iter().any(|l| l.tag == "en") {
            return Err(LoadError::Invalid(
                "protocol: an `en` fallback locale is required".into(),
            ));
        }
        for l in &file.locale {
            if l.crisis_lines.is_empty() || l.sources.is_empty() {
                return Err(LoadError::Invalid(format!(
                    "protocol: locale `{}` needs crisis_lines and sources",
                    l.tag
                )));
            }
        }
        for lv in Level::ALL {
            if !file.level.iter().any(|d| d.name == lv) {
                return Err(LoadError::Invalid(format!(
                    "protocol: level `{lv}` is not documented"
                )));
            }
        }
        Ok(ProtocolData { file })
    }

    /// Data version.
    pub fn version(&self) -> &str {
        &self.file.version
    }

    /// All locales.
    pub fn locales(&self) -> &[LocaleTexts] {
        &self.file.locale
    }

    /// The system instruction used at `moderate`.
    pub fn moderate_instruction(&self) -> &str {
        &self.file.moderate.system_instruction
    }

    /// Texts for a BCP 47 tag: the exact tag (or an `also` tag), then `{language}-*`,
    /// then the language itself, then `en`.
    pub fn locale(&self, tag: &str) -> &LocaleTexts {
        let tag = tag.trim().replace('_', "-");
        let eq = |a: &str| a.eq_ignore_ascii_case(&tag);
        let lang = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        let wildcard = format!("{lang}-*");
        let locales = &self.file.locale;
        locales
            .iter()
            .find(|l| eq(&l.tag) || l.also.iter().any(|a| eq(a)))
            .or_else(|| locales.iter().find(|l| l.tag == wildcard))
            .or_else(|| {
                locales
                    .iter()
                    .find(|l| l.tag == lang || l.also.contains(&wildcard))
            })
            .or_else(|| locales.iter().find(|l| l.tag == "en"))
            .unwrap_or_else(|| &locales[0])
    }

    /// The fixed crisis response text for a locale.
    pub fn crisis_text(&self, locale: &str, imminent: bool, categories: &[Category]) -> String {
        let l = self.locale(locale);
        let mut out = String::new();
        if imminent {
            out.push_str(&l.emergency_prompt);
            out.push_str("\n\n");
        }
        out.push_str(&l.acknowledgement);
        out.push('\n');
        let extra = categories
            .iter()
            .filter_map(|c| l.category_lines.get(c))
            .flatten();
        for line in l.crisis_lines.iter().chain(extra) {
            out.push_str("- ");
            out.push_str(line);
            out.push('\n');
        }
        if !imminent {
            let _ = writeln!(out, "- {}", l.emergency_line);
        }
        out.push('\n');
        out.push_str(&l.clinician_notice);
        out.push(' ');
        out.push_str(&l.closing);
        out
    }

    /// Decide what to do for a verdict.
    pub fn decide(&self, verdict: &Verdict, locale: &str) -> Protocol {
        let l = self.locale(locale);
        let (action, alert) = match verdict.level {
            Level::High | Level::Imminent => {
                let imminent = verdict.level == Level::Imminent;
                (
                    Action::CrisisResponse {
                        text: self.crisis_text(locale, imminent, &verdict.categories),
                        emergency_first: imminent,
                    },
                    Alert::Urgent,
                )
            }
            Level::Moderate => (
                Action::GenerateWithSafety {
                    system_instruction: self.file.moderate.system_instruction.clone(),
                    resources: l.moderate_resources.clone(),
                },
                Alert::NonUrgent,
            ),
            Level::Low | Level::None => (Action::Generate, Alert::None),
        };
        Protocol {
            level: verdict.level,
            action,
            alert,
            locale: l.tag.clone(),
        }
    }

    /// Render the protocol section of the Markdown document.
    pub(crate) fn render_markdown(&self, out: &mut String) {
        let f = &self.file;
        let _ = writeln!(out, "## Levels and actions\n");
        let _ = writeln!(out, "| Level | Meaning | C-SSRS screener | Action |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for d in &f.level {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                d.name,
                cell(&d.meaning),
                cell(&d.cssrs),
                cell(&d.action)
            );
        }
        let _ = writeln!(out, "\n## Categories\n");
        let _ = writeln!(out, "| Category | Mapping to levels | Sources |");
        let _ = writeln!(out, "| --- | --- | --- |");
        for c in &f.category {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                c.name,
                cell(&c.mapping),
                cell(&c.sources.join("; "))
            );
        }
        let _ = writeln!(out, "\n## Safety-aware instruction at `moderate`\n");
        let _ = writeln!(out, "> {}\n", f.moderate.system_instruction.trim());
        let _ = writeln!(out, "## Crisis texts by locale\n");
        let _ = writeln!(
            out,
            "Locale choice: the exact tag, then the language's `-*` entry, then the language, then `en`.\n"
        );
        for l in &f.locale {
            let also = if l.also.is_empty() {
                String::new()
            } else {
                format!(" (also {})", l.also.join(", "))
            };
            let _ = writeln!(out, "### {} — `{}`{}\n", l.name, l.tag, also);
            let _ = writeln!(
                out,
                "Review: {}{}{}\n",
                l.reviewed.status,
                if l.reviewed.by.is_empty() {
                    String::new()
                } else {
                    format!(", by {}", l.reviewed.by)
                },
                if l.reviewed.on.is_empty() {
                    String::new()
                } else {
                    format!(", on {}", l.reviewed.on)
                }
            );
            let _ = writeln!(out, "**Imminent** (high gives the same without the first paragraph, with an emergency-services line added to the list):\n");
            for line in self.crisis_text(&l.tag, true, &[]).lines() {
                let _ = writeln!(out, "> {line}");
            }
            if !l.category_lines.is_empty() {
                let _ = writeln!(out, "\nAdded for a category:\n");
                for (c, lines) in &l.category_lines {
                    for line in lines {
                        let _ = writeln!(out, "- `{c}`: {line}");
                    }
                }
            }
            let _ = writeln!(
                out,
                "\n**Moderate** (appended to the reply): {}\n",
                l.moderate_resources
            );
            let _ = writeln!(out, "Sources:\n");
            for s in &l.sources {
                let _ = writeln!(out, "- {s}");
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "## Protocol data\n\nVersion `{}`; review status: {}{}.\n",
            f.version,
            f.reviewed.status,
            if f.reviewed.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.reviewed.note)
            }
        );
        for s in &f.sources {
            let _ = writeln!(out, "- {s}");
        }
        let _ = writeln!(out);
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
