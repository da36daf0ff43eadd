#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::Library;

const REQUIRED: &[&str] = &[
    "anxiety",
    "low-mood",
    "sleep",
    "cbt-model",
    "worry",
    "panic",
    "grief",
    "self-compassion",
    "urgent-help",
];

#[test]
fn every_required_item_is_present_with_sources() {
    let lib = Library::load_default().unwrap();
    for id in REQUIRED {
        let doc = lib.get(id).unwrap_or_else(|| panic!("missing {id}"));
        assert!(!doc.title.is_empty());
        assert!(!doc.tags.is_empty(), "{id} has no tags");
        assert!(!doc.sources.is_empty(), "{id} has no sources");
        let words = doc.body.split_whitespace().count();
        assert!((180..=450).contains(&words), "{id}: {words} words");
    }
    assert!(lib.list().len() >= REQUIRED.len());
    assert!(lib.get("no-such-item").is_none());
}

fn top(lib: &Library, query: &str) -> String {
    lib.search(query, 1)
        .first()
        .map(|p| p.doc_id.clone())
        .unwrap_or_default()
}

#[test]
fn retrieval_finds_the_relevant_item() {
    let lib = Library::load_default().unwrap();
    let cases = [
        ("I can't sleep at night", "sleep"),
        ("I lie awake for hours and I'm exhausted", "sleep"),
        ("my heart races and I think I'm dying", "panic"),
        ("I suddenly couldn't breathe and felt dizzy", "panic"),
        ("my mum died", "grief"),
        ("since my dad passed away I miss him so much", "grief"),
        ("I keep worrying about what if things go wrong", "worry"),
        ("I hate myself, I'm such a failure", "self-compassion"),
        ("I feel down and empty and have no motivation", "low-mood"),
        ("how do thoughts affect feelings", "cbt-model"),
        ("I feel anxious and on edge all the time", "anxiety"),
        ("I want to kill myself", "urgent-help"),
    ];
    for (q, want) in cases {
        assert_eq!(top(&lib, q), want, "{q}: {:?}", lib.search(q, 3));
    }
}

#[test]
fn search_is_ranked_bounded_and_empty_for_nonsense() {
    let lib = Library::load_default().unwrap();
    let hits = lib.search("sleep worry anxiety", 4);
    assert_eq!(hits.len(), 4);
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
    assert!(lib.search("xyzzy plugh", 5).is_empty());
    assert!(lib.search("", 5).is_empty());
}

#[test]
fn search_in_restricts_to_assigned_items() {
    let lib = Library::load_default().unwrap();
    let hits = lib.search_in("I can't sleep", 3, &["worry".to_string()]);
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|p| p.doc_id == "worry"));
}
