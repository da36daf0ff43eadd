#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Adding an instrument is data only; broken files are rejected at load.

use tandem_measures::{Registry, RegistryError};

const K10_LIKE: &str = r#"
id = "TEST-3"
name = "A three-item test scale"
recall_period = "Over the last week"
preamble = "How often?"
licence = "Test data"
sources = ["Made up for a test."]
[[options]]
value = 0
label = "Never"
[[options]]
value = 1
label = "Sometimes"
[[options]]
value = 2
label = "Often"
[[items]]
number = 1
text = "A"
[[items]]
number = 2
text = "B"
[[items]]
number = 3
text = "C"
[scoring]
method = "sum"
incomplete = { policy = "prorate", max_missing = 1, note = "Test: prorate one." }
[[bands]]
min = 0
max = 2
label = "low"
[[bands]]
min = 3
max = 6
label = "high"
step_up = true
"#;

#[test]
fn extra_instrument_loads_without_rust_changes() {
    let r = Registry::with_extra(&[("test3.toml", K10_LIKE)]).unwrap();
    assert_eq!(r.instruments().len(), 7);
    let s = r.score("test3", &[Some(2), Some(2), Some(2)]).unwrap();
    assert_eq!((s.total, s.band.as_str()), (6, "high"));
    assert!(s.step_up());
    // Prorating: 2 + 1 answered of 3 -> round(3 * 3 / 2) = round(4.5) = 5.
    let s = r.score("TEST-3", &[Some(2), None, Some(1)]).unwrap();
    assert!(s.prorated);
    assert_eq!(s.total, 5);
    assert!(s.to_json()["prorated"].as_bool().unwrap());
    // Two missing is too many.
    assert!(r.score("TEST-3", &[Some(2), None, None]).is_err());
}

#[test]
fn json_instrument_files_are_accepted() {
    let value: toml::Value = toml::from_str(K10_LIKE).unwrap();
    let mut json = serde_json::to_value(value).unwrap();
    json["id"] = "TEST-J".into();
    let text = serde_json::to_string(&json).unwrap();
    let r = Registry::from_sources(&[("test.json", &text)]).unwrap();
    assert_eq!(
        r.score("test-j", &[Some(0), Some(0), Some(1)])
            .unwrap()
            .band,
        "low"
    );
}

#[test]
fn bands_with_gaps_are_rejected() {
    let broken = K10_LIKE.replace("min = 3\nmax = 6", "min = 4\nmax = 6");
    let err = Registry::from_sources(&[("b.toml", &broken)]).unwrap_err();
    assert!(matches!(err, RegistryError::Invalid { .. }), "{err}");
    let short = K10_LIKE.replace("min = 3\nmax = 6", "min = 3\nmax = 5");
    assert!(Registry::from_sources(&[("b.toml", &short)]).is_err());
}

#[test]
fn broken_files_are_rejected_with_the_file_name() {
    let err = Registry::from_sources(&[("oops.toml", "id = ")]).unwrap_err();
    assert!(err.to_string().contains("oops.toml"), "{err}");
    let unknown_field = format!("{K10_LIKE}\ncolour = \"blue\"\n");
    assert!(Registry::from_sources(&[("x.toml", &unknown_field)]).is_err());
    let misnumbered = K10_LIKE.replace("number = 3", "number = 4");
    assert!(Registry::from_sources(&[("x.toml", &misnumbered)]).is_err());
}

#[test]
fn duplicate_ids_are_rejected() {
    let dup = K10_LIKE.replace("TEST-3", "PHQ9");
    let err = Registry::with_extra(&[("dup.toml", &dup)]).unwrap_err();
    assert_eq!(err, RegistryError::Duplicate("PHQ9".into()));
}
