//! The psychoeducation library: Markdown files in `content/`, written for Tandem, each with
//! front matter (`id`, `title`, `tags`, `sources`). They are embedded at build time and indexed
//! at start-up with a small BM25 index over passages (one paragraph each, carrying its
//! document's title, tags and section heading as extra terms).
//!
//! BM25 as in Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond"
//! (2009), with the usual k1 = 1.2, b = 0.75. Stemming is a deliberately tiny suffix
//! stripper: the corpus is small and the goal is "sleeping" ~ "sleep", not linguistics.

use crate::{frontmatter, ContentError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_content.rs"));

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// One psychoeducation item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    /// Citations for the content (NHS, NICE, WHO, ...).
    pub sources: Vec<String>,
    /// The Markdown body, for showing the whole item to a patient.
    pub body: String,
}

/// A retrieved passage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub doc_id: String,
    pub title: String,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Clone)]
struct Indexed {
    doc: usize,
    text: String,
    terms: HashMap<String, u32>,
    len: u32,
}

/// The loaded library and its index.
#[derive(Debug, Clone)]
pub struct Library {
    docs: Vec<Document>,
    passages: Vec<Indexed>,
    df: HashMap<String, u32>,
    avg_len: f32,
}

const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "being", "but", "by", "can", "could", "do", "does", "doing", "for",
    "from", "get", "had", "has", "have", "he", "her", "him", "his", "how", "i", "if", "im", "in",
    "into", "is", "it", "its", "just", "me", "more", "most", "my", "myself", "no", "not", "of",
    "on", "or", "our", "out", "she", "so", "some", "such", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "very", "was",
    "we", "were", "what", "when", "which", "while", "who", "why", "will", "with", "would", "you",
    "your", "it's", "i'm", "dont", "don't", "can't", "cant", "really", "feel", "feeling", "feels",
    "think", "want", "wanting", "wants",
];

fn stem(word: &str) -> String {
    let w = word;
    let n = w.chars().count();
    let replaced = if n == 4 && w.ends_with("ied") {
        // died, lied, tied -> die, lie, tie
        w.get(..3).unwrap_or(w).to_string()
    } else if n > 4 && w.ends_with("ying") {
        format!("{}ie", w.get(..w.len() - 4).unwrap_or(w))
    } else if n > 4 && (w.ends_with("ies") || w.ends_with("ied")) {
        format!("{}y", w.get(..w.len() - 3).unwrap_or(w))
    } else if n > 5 && w.ends_with("ing") {
        w.get(..w.len() - 3).unwrap_or(w).to_string()
    } else if n > 4 && (w.ends_with("ed") || w.ends_with("es")) {
        w.get(..w.len() - 2).unwrap_or(w).to_string()
    } else if n > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w.get(..w.len() - 1).unwrap_or(w).to_string()
    } else {
        w.to_string()
    };
    let mut s = replaced;
    if s.chars().count() > 3 && s.ends_with('e') {
        s.pop();
    }
    // Collapse a doubled final consonant ("worri" ~ "worry", "stopp" ~ "stop").
    let bytes = s.as_bytes();
    if bytes.len() > 3 && bytes.last() == bytes.get(bytes.len() - 2) {
        s.pop();
    }
    s
}

/// Lower-cases, splits on anything that is not a letter or digit, drops stop words, stems.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['’', '\''], "")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1 && !STOPWORDS.contains(w))
        .map(stem)
        .collect()
}

/// Splits a Markdown body into (section heading, paragraph) pairs.
fn paragraphs(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut current: Vec<&str> = Vec::new();
    let flush = |current: &mut Vec<&str>, heading: &str, out: &mut Vec<(String, String)>| {
        if !current.is_empty() {
            out.push((heading.to_string(), current.join(" ")));
            current.clear();
        }
    };
    for line in body.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('#') {
            flush(&mut current, &heading, &mut out);
            heading = h.trim_start_matches('#').trim().to_string();
        } else if t.is_empty() {
            flush(&mut current, &heading, &mut out);
        } else {
            current.push(t);
        }
    }
    flush(&mut current, &heading, &mut out);
    out
}

impl Library {
    /// The library shipped with the crate. Call once at start-up and keep it.
    pub fn load_default() -> Result<Self, ContentError> {
        Library::from_sources(BUILTIN)
    }

    /// Builds a library from `(file name, contents)` pairs.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Self, ContentError> {
        let mut docs: Vec<Document> = Vec::new();
        for (name, source) in files {
            let err = |e: String| ContentError::new("psychoeducation", format!("{name}: {e}"));
            let fm = frontmatter::parse(source).map_err(err)?;
            let id = fm.text("id").map_err(err)?.to_string();
            let title = fm.text("title").map_err(err)?.to_string();
            let tags = fm.list("tags");
            let sources = fm.list("sources");
            if sources.is_empty() {
                return Err(err(
                    "every item needs at least one entry in `sources`".into()
                ));
            }
            if docs.iter().any(|d| d.id == id) {
                return Err(err(format!("duplicate id `{id}`")));
            }
            docs.push(Document {
                id,
                title,
                tags,
                sources,
                body: fm.body.trim().to_string(),
            });
        }
        let mut passages = Vec::new();
        let mut df: HashMap<String, u32> = HashMap::new();
        for (i, doc) in docs.iter().enumerate() {
            let mut doc_terms = tokens(&doc.title);
            for tag in &doc.tags {
                doc_terms.extend(tokens(tag));
            }
            for (heading, text) in paragraphs(&doc.body) {
                let mut terms: HashMap<String, u32> = HashMap::new();
                let mut all = doc_terms.clone();
                all.extend(tokens(&heading));
                all.extend(tokens(&text));
                for t in &all {
                    *terms.entry(t.clone()).or_default() += 1;
                }
                for t in terms.keys() {
                    *df.entry(t.clone()).or_default() += 1;
                }
                passages.push(Indexed {
                    doc: i,
                    text,
                    len: u32::try_from(all.len()).unwrap_or(u32::MAX),
                    terms,
                });
            }
        }
        let total: u64 = passages.iter().map(|p| u64::from(p.len)).sum();
        let avg_len = if passages.is_empty() {
            1.0
        } else {
            total as f32 / passages.len() as f32
        };
        Ok(Library {
            docs,
            passages,
            df,
            avg_len,
        })
    }

    /// Every item, in file-name order.
    pub fn list(&self) -> &[Document] {
        &self.docs
    }

    /// One item by id.
    pub fn get(&self, id: &str) -> Option<&Document> {
        self.docs.iter().find(|d| d.id == id)
    }

    /// The `k` best passages for `query`, best first; passages with no matching term are
    /// never returned.
    pub fn search(&self, query: &str, k: usize) -> Vec<Passage> {
        self.search_where(query, k, |_| true)
    }

    /// Like [`Library::search`] but only among the given ids (e.g. those a clinician assigned).
    pub fn search_in(&self, query: &str, k: usize, ids: &[String]) -> Vec<Passage> {
        self.search_where(query, k, |d| ids.contains(&d.id))
    }

    fn search_where(
        &self,
        query: &str,
        k: usize,
        keep: impl Fn(&Document) -> bool,
    ) -> Vec<Passage> {
        let mut q = tokens(query);
        q.sort();
        q.dedup();
        let n = self.passages.len() as f32;
        let mut scored: Vec<(f32, usize)> = Vec::new();
        for (idx, p) in self.passages.iter().enumerate() {
            if !self.docs.get(p.doc).is_some_and(&keep) {
                continue;
            }
            let mut score = 0.0f32;
            for term in &q {
                let Some(&tf) = p.terms.get(term) else {
                    continue;
                };
                let df = self.df.get(term).copied().unwrap_or(0) as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let tf = tf as f32;
                let norm = 1.0 - B + B * (p.len as f32 / self.avg_len);
                score += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
            if score > 0.0 {
                scored.push((score, idx));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .filter_map(|(score, idx)| {
                let p = self.passages.get(idx)?;
                let doc = self.docs.get(p.doc)?;
                Some(Passage {
                    doc_id: doc.id.clone(),
                    title: doc.title.clone(),
                    text: p.text.clone(),
                    score,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemming_joins_common_forms() {
        assert_eq!(stem("sleeping"), stem("sleep"));
        assert_eq!(stem("worried"), stem("worry"));
        assert_eq!(stem("worries"), stem("worry"));
        assert_eq!(stem("racing"), stem("races"));
        assert_eq!(stem("dying"), stem("die"));
        assert_eq!(stem("died"), stem("die"));
    }

    #[test]
    fn rejects_items_without_sources() {
        let bad = [("x.md", "---\nid: x\ntitle: X\n---\nText\n")];
        assert!(Library::from_sources(&bad).is_err());
    }
}
