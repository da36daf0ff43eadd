//! A small, strict reader for the YAML-style front matter our content files use.
//!
//! Only what the files need is supported: `key: value`, `key: [a, b, c]` and a list written as
//! `key:` followed by `  - item` lines. Anything else is an error, so a typo in a content file
//! is caught when the crate loads it rather than silently ignored.

use std::collections::BTreeMap;

/// One front-matter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    List(Vec<String>),
}

/// Parsed front matter plus the body that follows it.
#[derive(Debug, Clone)]
pub(crate) struct Document<'a> {
    pub fields: BTreeMap<String, Value>,
    pub body: &'a str,
}

impl Document<'_> {
    /// A required single-line text field.
    pub fn text(&self, key: &str) -> Result<&str, String> {
        match self.fields.get(key) {
            Some(Value::Text(t)) if !t.is_empty() => Ok(t),
            Some(_) => Err(format!("front-matter field `{key}` must be non-empty text")),
            None => Err(format!("front-matter field `{key}` is missing")),
        }
    }

    /// A list field; a single text value counts as a one-item list, a missing field as empty.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.fields.get(key) {
            Some(Value::List(l)) => l.clone(),
            Some(Value::Text(t)) if !t.is_empty() => vec![t.clone()],
            _ => Vec::new(),
        }
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    let quoted = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if quoted {
        s.get(1..s.len() - 1).unwrap_or(s).to_string()
    } else {
        s.to_string()
    }
}

/// Splits `---\n<front matter>\n---\n<body>`.
pub(crate) fn parse(source: &str) -> Result<Document<'_>, String> {
    let rest = source
        .strip_prefix("---\n")
        .or_else(|| source.strip_prefix("---\r\n"))
        .ok_or("file must start with a `---` front-matter line")?;
    let end = rest
        .find("\n---")
        .ok_or("front matter is not closed by a `---` line")?;
    let head = rest.get(..end).unwrap_or("");
    let after = rest.get(end + 4..).unwrap_or("");
    let body = after
        .strip_prefix("\r\n")
        .or_else(|| after.strip_prefix('\n'))
        .unwrap_or(after);

    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    let mut open_list: Option<String> = None;
    for (n, raw) in head.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(item) = line.trim_start().strip_prefix("- ") {
            let key = open_list
                .as_ref()
                .ok_or(format!("line {}: list item outside a list", n + 1))?;
            if let Some(Value::List(items)) = fields.get_mut(key) {
                items.push(unquote(item));
            }
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or(format!("line {}: expected `key: value`", n + 1))?;
        let key = key.trim().to_string();
        if key.is_empty() || key.contains(' ') {
            return Err(format!("line {}: bad key {key:?}", n + 1));
        }
        let value = value.trim();
        let parsed = if value.is_empty() {
            open_list = Some(key.clone());
            Value::List(Vec::new())
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            open_list = None;
            Value::List(
                inner
                    .split(',')
                    .map(unquote)
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else {
            open_list = None;
            Value::Text(unquote(value))
        };
        if fields.insert(key.clone(), parsed).is_some() {
            return Err(format!("line {}: duplicate key `{key}`", n + 1));
        }
    }
    Ok(Document { fields, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalars_inline_and_block_lists() {
        let doc =
            parse("---\nid: x\ntags: [a, b]\nsources:\n  - \"One: two\"\n  - three\n---\nBody\n")
                .unwrap();
        assert_eq!(doc.text("id").unwrap(), "x");
        assert_eq!(doc.list("tags"), vec!["a", "b"]);
        assert_eq!(doc.list("sources"), vec!["One: two", "three"]);
        assert_eq!(doc.body, "Body\n");
    }

    #[test]
    fn rejects_missing_front_matter_and_duplicates() {
        assert!(parse("no front matter").is_err());
        assert!(parse("---\nid: a\nid: b\n---\n").is_err());
        assert!(parse("---\n- stray\n---\n").is_err());
    }
}
