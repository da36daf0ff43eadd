#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Crisis protocol decisions and texts.

use std::sync::OnceLock;

use tandem_safety::{Action, Alert, Level, SafetyEngine, ScreenInput};

fn engine() -> &'static SafetyEngine {
    static E: OnceLock<SafetyEngine> = OnceLock::new();
    E.get_or_init(|| SafetyEngine::load_default().unwrap())
}

fn decide(text: &str, locale: &str) -> tandem_safety::Protocol {
    let e = engine();
    let v = e.screen(&ScreenInput { text, context: &[] });
    e.protocol(&v, locale)
}

fn crisis_text(p: &tandem_safety::Protocol) -> (&str, bool) {
    match &p.action {
        Action::CrisisResponse {
            text,
            emergency_first,
        } => (text.as_str(), *emergency_first),
        other => panic!("expected a crisis response, got {other:?}"),
    }
}

#[test]
fn high_gives_fixed_crisis_response_and_urgent_alert() {
    let p = decide("I'm going to kill myself", "en-US");
    assert_eq!(p.level, Level::High);
    assert!(p.alert_clinician());
    let (text, first) = crisis_text(&p);
    assert!(!first);
    assert!(text.contains("988") && text.contains("741741") && text.contains("911"));
    assert!(text.contains("clinician is being told"));
}

#[test]
fn imminent_puts_emergency_services_first() {
    let p = decide("I just took all my pills", "en-GB");
    let (text, first) = crisis_text(&p);
    assert!(first);
    assert!(text.starts_with("If you are in danger right now"));
    assert!(text.find("999").unwrap() < text.find("116 123").unwrap());
    assert!(text.contains("85258"));
}

#[test]
fn every_locale_has_its_lines() {
    for (loc, needles) in [
        ("en-US", vec!["988", "741741", "911"]),
        ("en-GB", vec!["116 123", "85258", "999"]),
        ("en-CA", vec!["9-8-8", "911"]),
        ("en-IE", vec!["116 123", "112"]),
        ("en-AU", vec!["13 11 14", "000"]),
        ("es", vec!["024", "112"]),
        ("es-ES", vec!["024"]),
        ("fr", vec!["3114", "15"]),
        ("fr-CA", vec!["9-8-8", "911"]),
        ("es-MX", vec!["findahelpline.com"]),
        ("en-NZ", vec!["findahelpline.com"]),
        ("de-DE", vec!["findahelpline.com"]),
    ] {
        let p = decide("I'm going to end my life tonight", loc);
        let (text, _) = crisis_text(&p);
        for n in needles {
            assert!(text.contains(n), "{loc}: {n} missing in {text}");
        }
    }
    let p_es = decide("voy a suicidarme", "es");
    let (es, _) = crisis_text(&p_es);
    assert!(es.contains("Gracias por contármelo"));
    let p_fr = decide("je vais me suicider", "fr-FR");
    let (fr, _) = crisis_text(&p_fr);
    assert!(fr.contains("Merci de me l'avoir dit"));
}

#[test]
fn abuse_adds_category_lines() {
    let p = decide("my dad hits me every day", "en-GB");
    let (text, _) = crisis_text(&p);
    assert!(text.contains("Childline"));
}

#[test]
fn moderate_generates_with_safety_and_flags() {
    let p = decide("I want to die", "en-US");
    assert_eq!(p.alert, Alert::NonUrgent);
    match p.action {
        Action::GenerateWithSafety {
            system_instruction,
            resources,
        } => {
            assert!(system_instruction.contains("Do not give any information about methods"));
            assert!(resources.contains("988"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn low_and_none_generate() {
    for t in ["I feel hopeless", "what a nice day"] {
        let p = decide(t, "en-US");
        assert_eq!(p.action, Action::Generate);
        assert_eq!(p.alert, Alert::None);
    }
}

#[test]
fn markdown_covers_everything() {
    let md = engine().protocol_markdown();
    for needle in [
        "# Tandem safety protocol",
        "C-SSRS",
        "| `imminent` |",
        "`eating_disorder`",
        "en-US",
        "en-GB",
        "en-CA",
        "en-IE",
        "en-AU",
        "`es`",
        "`fr`",
        "Review: pending",
        "Posner",
        "guard.methods.lethal_amount",
        "Sources:",
    ] {
        assert!(md.contains(needle), "missing {needle}");
    }
}

#[test]
#[ignore = "prints the protocol for review"]
fn print_protocol() {
    println!("{}", engine().protocol_markdown());
}
