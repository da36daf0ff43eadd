#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tandem_companion::{
    disclosure_banner, identity_answer, identity_question_locale, is_identity_question,
    IdentityDetector, Locale, DISCLOSURE_BANNER,
};

const EN_POSITIVE: &[&str] = &[
    "Are you a human?",
    "are you human",
    "Are you a real person?",
    "r u a bot?",
    "Are you a bot or a real person?",
    "Are you an AI?",
    "are you actually a therapist?",
    "Are you a doctor?",
    "Are you a licensed therapist?",
    "Am I talking to a person?",
    "am i talking to a real human right now",
    "Am I chatting with a bot?",
    "Is this a real person?",
    "is this a bot",
    "Is there a real person on the other end?",
    "Is a human reading this?",
    "Who am I talking to?",
    "What are you?",
    "You're a bot, aren't you?",
    "you’re just an AI right?",
    "human or bot?",
    "Are you real?",
    "what kind of program are you",
];

const ES_POSITIVE: &[&str] = &[
    "¿Eres humano?",
    "¿Eres una persona real?",
    "¿Eres un bot?",
    "¿Eres una IA?",
    "¿Eres terapeuta?",
    "¿Es usted médico?",
    "¿Estoy hablando con una persona?",
    "¿Hablo con un robot?",
    "¿Eres real?",
    "¿Quién eres?",
    "¿Hay alguien ahí leyendo esto? hay una persona al otro lado",
    "¿persona o bot?",
];

const FR_POSITIVE: &[&str] = &[
    "Es-tu humain ?",
    "Êtes-vous une vraie personne ?",
    "Es-tu un robot ?",
    "Est-ce que tu es une IA ?",
    "Êtes-vous thérapeute ?",
    "Êtes-vous médecin ?",
    "Je parle à un humain ?",
    "Est-ce que je parle avec une machine ?",
    "C'est un robot ?",
    "Tu es une vraie personne ?",
    "Qui es-tu ?",
    "Y a-t-il quelqu'un derrière l'écran ?",
];

const NEGATIVES: &[&str] = &[
    "Are you a fan of football?",
    "are you a big fan of jazz",
    "My therapist is a real person and I like her.",
    "I'm seeing a doctor tomorrow.",
    "I am talking to a therapist next week",
    "My boss treats me like a robot.",
    "Are you a morning person?",
    "are you a people person",
    "What are you doing this weekend?",
    "Is this a good time to talk?",
    "I feel like I'm not a real person anymore",
    "She works in human resources.",
    "I read about human rights today",
    "Eres un fan del fútbol?",
    "Eres una persona muy amable.",
    "Mi terapeuta es una persona real.",
    "Mañana hablo con mi terapeuta.",
    "Tu es une personne formidable.",
    "Es-tu fan de musique ?",
    "Mon psy est une vraie personne.",
    "Je parle à mon médecin demain.",
    "I watched Doctor Who last night, are you a Doctor Who fan?",
    "I can't sleep",
];

#[test]
fn shipped_patterns_load() {
    IdentityDetector::load_default().unwrap();
}

#[test]
fn english_identity_questions_are_detected() {
    for q in EN_POSITIVE {
        assert_eq!(identity_question_locale(q), Some(Locale::En), "{q}");
    }
}

#[test]
fn spanish_identity_questions_are_detected() {
    for q in ES_POSITIVE {
        assert_eq!(identity_question_locale(q), Some(Locale::Es), "{q}");
    }
}

#[test]
fn french_identity_questions_are_detected() {
    for q in FR_POSITIVE {
        assert_eq!(identity_question_locale(q), Some(Locale::Fr), "{q}");
    }
}

#[test]
fn hard_negatives_are_not_identity_questions() {
    for q in NEGATIVES {
        assert!(!is_identity_question(q), "{q}");
    }
}

#[test]
fn answers_are_truthful_in_every_locale() {
    let en = identity_answer(Locale::En);
    assert!(en.starts_with("I'm Tandem, an AI companion — not a person and not a therapist."));
    assert!(en.contains("clinician is a real person"));
    assert!(identity_answer(Locale::Es).contains("inteligencia artificial"));
    assert!(identity_answer(Locale::Es).contains("no soy una persona"));
    assert!(identity_answer(Locale::Fr).contains("intelligence artificielle"));
    assert!(identity_answer(Locale::Fr).contains("ni une personne"));
    assert!(DISCLOSURE_BANNER.contains("AI companion"));
    assert_eq!(disclosure_banner(Locale::En), DISCLOSURE_BANNER);
    assert_eq!(Locale::from_tag("es-MX"), Locale::Es);
    assert_eq!(Locale::from_tag("fr_CA"), Locale::Fr);
    assert_eq!(Locale::from_tag("de"), Locale::En);
}
