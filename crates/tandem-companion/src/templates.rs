//! Versioned prompt templates.
//!
//! Each template is a Markdown file in `templates/` whose front matter carries an `id` such as
//! `companion-system/v1`. A changed prompt is a new file with a new id (`system.v2.md`,
//! `companion-system/v2`), never an edit in place, so the id recorded in each AI message's
//! provenance always names the exact text that produced it.
//!
//! Placeholders are written `{{name}}` and must be declared in the front matter's
//! `placeholders` list; loading checks that the two agree.

use crate::{frontmatter, ContentError};
use std::sync::OnceLock;

/// Id of the ordinary system prompt.
pub const SYSTEM_TEMPLATE_ID: &str = "companion-system/v1";
/// Id of the stricter system prompt used for moderate-risk turns.
pub const SAFETY_TEMPLATE_ID: &str = "companion-system-safety/v1";
/// Id of the clinician-facing summary prompt.
pub const SUMMARY_TEMPLATE_ID: &str = "companion-summary/v1";

const SYSTEM_SRC: &str = include_str!("../templates/system.v1.md");
const SAFETY_SRC: &str = include_str!("../templates/system-safety.v1.md");
const SUMMARY_SRC: &str = include_str!("../templates/summary.v1.md");

/// One versioned prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    id: String,
    placeholders: Vec<String>,
    body: String,
}

impl Template {
    /// Parses and validates a template file.
    pub fn parse(source: &str) -> Result<Self, ContentError> {
        let doc = frontmatter::parse(source).map_err(|e| ContentError::new("template", e))?;
        let id = doc
            .text("id")
            .map_err(|e| ContentError::new("template", e))?
            .to_string();
        let placeholders = doc.list("placeholders");
        let body = doc.body.trim().to_string();
        let used = placeholder_names(&body);
        for name in &used {
            if !placeholders.iter().any(|p| p == name) {
                return Err(ContentError::new(
                    "template",
                    format!("{id}: placeholder {{{{{name}}}}} is not declared"),
                ));
            }
        }
        for name in &placeholders {
            if !used.iter().any(|u| u == name) {
                return Err(ContentError::new(
                    "template",
                    format!("{id}: declared placeholder `{name}` is not used"),
                ));
            }
        }
        Ok(Template {
            id,
            placeholders,
            body,
        })
    }

    /// Infallible reading of an embedded template: used only as the fallback behind
    /// [`Templates::embedded`], whose strict parse is checked by the crate's tests.
    fn lenient(id: &str, source: &str) -> Self {
        Template::parse(source).unwrap_or_else(|_| {
            let body = source
                .splitn(3, "\n---")
                .nth(2)
                .unwrap_or(source)
                .trim()
                .to_string();
            Template {
                id: id.to_string(),
                placeholders: placeholder_names(&body),
                body,
            }
        })
    }

    /// The version id, e.g. `companion-system/v1`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The placeholder names this template declares.
    pub fn placeholders(&self) -> &[String] {
        &self.placeholders
    }

    /// The raw template body (after the front matter).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Fills the placeholders; a placeholder missing from `vars` becomes empty. Runs of blank
    /// lines left by empty sections are collapsed.
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        let mut out = self.body.clone();
        for name in &self.placeholders {
            let value = vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .unwrap_or("");
            out = out.replace(&format!("{{{{{name}}}}}"), value);
        }
        collapse_blank_lines(&out)
    }
}

fn placeholder_names(body: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or("");
        let Some(end) = after.find("}}") else { break };
        let name = after.get(..end).unwrap_or("").trim().to_string();
        if !names.contains(&name) {
            names.push(name);
        }
        rest = after.get(end + 2..).unwrap_or("");
    }
    names
}

fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// The set of templates the companion uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// The ordinary system prompt.
    pub system: Template,
    /// The stricter system prompt for moderate-risk turns (has a `safety_instruction` slot).
    pub system_safety: Template,
    /// The clinician-facing summary prompt.
    pub summary: Template,
}

impl Templates {
    /// Parses and validates the templates shipped with the crate. Call once at start-up to
    /// fail fast; the crate's tests guarantee it succeeds.
    pub fn load_default() -> Result<Self, ContentError> {
        let t = Templates {
            system: Template::parse(SYSTEM_SRC)?,
            system_safety: Template::parse(SAFETY_SRC)?,
            summary: Template::parse(SUMMARY_SRC)?,
        };
        for (tpl, want) in [
            (&t.system, SYSTEM_TEMPLATE_ID),
            (&t.system_safety, SAFETY_TEMPLATE_ID),
            (&t.summary, SUMMARY_TEMPLATE_ID),
        ] {
            if tpl.id() != want {
                return Err(ContentError::new(
                    "template",
                    format!("expected id {want}, found {}", tpl.id()),
                ));
            }
        }
        if !t
            .system_safety
            .placeholders()
            .iter()
            .any(|p| p == "safety_instruction")
        {
            return Err(ContentError::new(
                "template",
                "the safety template needs a {{safety_instruction}} slot",
            ));
        }
        Ok(t)
    }

    /// The shipped templates, parsed once. Never fails: should the strict parse ever fail
    /// (the tests prevent it), the bodies are used as they are under their known ids.
    pub fn embedded() -> &'static Templates {
        static CELL: OnceLock<Templates> = OnceLock::new();
        CELL.get_or_init(|| {
            Templates::load_default().unwrap_or_else(|_| Templates {
                system: Template::lenient(SYSTEM_TEMPLATE_ID, SYSTEM_SRC),
                system_safety: Template::lenient(SAFETY_TEMPLATE_ID, SAFETY_SRC),
                summary: Template::lenient(SUMMARY_TEMPLATE_ID, SUMMARY_SRC),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_load_with_their_ids() {
        let t = Templates::load_default().unwrap();
        assert_eq!(t.system.id(), SYSTEM_TEMPLATE_ID);
        assert_eq!(t.system_safety.id(), SAFETY_TEMPLATE_ID);
        assert_eq!(t.summary.id(), SUMMARY_TEMPLATE_ID);
        assert_eq!(Templates::embedded(), &t);
    }

    #[test]
    fn undeclared_or_unused_placeholders_are_rejected() {
        assert!(Template::parse("---\nid: x/v1\n---\nHello {{name}}").is_err());
        assert!(Template::parse("---\nid: x/v1\nplaceholders: [name]\n---\nHello").is_err());
        let t =
            Template::parse("---\nid: x/v1\nplaceholders: [name]\n---\nHello {{name}}").unwrap();
        assert_eq!(t.render(&[("name", "you")]), "Hello you");
        assert_eq!(t.render(&[]), "Hello");
    }

    #[test]
    fn system_prompt_puts_the_ai_disclosure_and_hard_rules_first() {
        let t = Templates::load_default().unwrap();
        let body = t.system.body();
        let ai = body.find("You are an AI").unwrap();
        let diag = body.find("Never diagnose").unwrap();
        let tone = body.find("warm and brief").unwrap();
        assert!(ai < diag && diag < tone);
    }
}
