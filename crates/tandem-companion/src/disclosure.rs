//! Truthful AI disclosure.
//!
//! "Are you a human / a real person / a bot / a therapist?" is always answered with fixed
//! text, whatever the model would say: the engine checks [`is_identity_question`] before
//! generation and replies with [`identity_answer`]. Patterns live in `data/identity.toml`
//! (English, Spanish, French) with hard negatives; the answers and the banner are constants
//! here so they exist even if the data file were broken.

use crate::ContentError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const IDENTITY_DATA: &str = include_str!("../data/identity.toml");

/// A language the companion's fixed texts exist in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Es,
    Fr,
}

impl Locale {
    /// From a BCP 47 tag such as `es-MX` or `fr`; anything unknown is English.
    pub fn from_tag(tag: &str) -> Locale {
        let lang = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match lang.as_str() {
            "es" => Locale::Es,
            "fr" => Locale::Fr,
            _ => Locale::En,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Es => "es",
            Locale::Fr => "fr",
        }
    }
}

/// Shown at the start of every conversation (English).
pub const DISCLOSURE_BANNER: &str = "You are talking with Tandem, an AI companion — not a person and not a therapist. It can make mistakes. Your clinician can see summaries of these conversations. Tandem is not an emergency service: if you are in danger, call your local emergency number or a crisis line now.";

const BANNER_ES: &str = "Estás hablando con Tandem, un acompañante de inteligencia artificial (IA): no es una persona ni un terapeuta. Puede equivocarse. Tu profesional clínico puede ver resúmenes de estas conversaciones. Tandem no es un servicio de emergencias: si estás en peligro, llama ahora al número de emergencias de tu país o a una línea de crisis.";

const BANNER_FR: &str = "Vous parlez avec Tandem, un compagnon d'intelligence artificielle (IA) : ce n'est ni une personne ni un thérapeute. Il peut se tromper. Votre clinicien peut voir des résumés de ces conversations. Tandem n'est pas un service d'urgence : si vous êtes en danger, appelez maintenant le numéro d'urgence local ou une ligne d'écoute de crise.";

const ANSWER_EN: &str = "I'm Tandem, an AI companion — not a person and not a therapist. I can listen, help you reflect and guide you through exercises between sessions, but I can make mistakes and I don't replace care from people. Your clinician is a real person on your care team, and they are the one to talk to about your treatment. If you are in danger, please contact emergency services or a crisis line now.";

const ANSWER_ES: &str = "Soy Tandem, un acompañante de inteligencia artificial (IA): no soy una persona ni un terapeuta. Puedo escucharte, ayudarte a reflexionar y guiarte en ejercicios entre sesiones, pero puedo equivocarme y no sustituyo la atención de personas. Tu profesional clínico es una persona real de tu equipo de atención, y es con quien debes hablar sobre tu tratamiento. Si estás en peligro, contacta ahora con los servicios de emergencia o una línea de crisis.";

const ANSWER_FR: &str = "Je suis Tandem, un compagnon d'intelligence artificielle (IA) : je ne suis ni une personne ni un thérapeute. Je peux vous écouter, vous aider à réfléchir et vous guider dans des exercices entre les séances, mais je peux me tromper et je ne remplace pas les soins apportés par des personnes. Votre clinicien est une vraie personne de votre équipe de soins : c'est avec lui que vous pouvez parler de votre traitement. Si vous êtes en danger, contactez maintenant les services d'urgence ou une ligne d'écoute de crise.";

/// The fixed, truthful answer to "are you a human / a bot / a therapist?".
pub fn identity_answer(locale: Locale) -> &'static str {
    match locale {
        Locale::En => ANSWER_EN,
        Locale::Es => ANSWER_ES,
        Locale::Fr => ANSWER_FR,
    }
}

/// The start-of-conversation banner in `locale`.
pub fn disclosure_banner(locale: Locale) -> &'static str {
    match locale {
        Locale::En => DISCLOSURE_BANNER,
        Locale::Es => BANNER_ES,
        Locale::Fr => BANNER_FR,
    }
}

#[derive(Deserialize)]
struct File {
    locale: Vec<LocaleFile>,
}

#[derive(Deserialize)]
struct LocaleFile {
    code: String,
    positive: Vec<String>,
    #[serde(default)]
    negative: Vec<String>,
}

#[derive(Debug, Clone)]
struct LocalePatterns {
    locale: Locale,
    positive: Vec<Regex>,
    negative: Vec<Regex>,
}

/// The compiled identity-question patterns.
#[derive(Debug, Clone)]
pub struct IdentityDetector {
    locales: Vec<LocalePatterns>,
}

fn compile(list: &[String], code: &str) -> Result<Vec<Regex>, ContentError> {
    list.iter()
        .map(|p| Regex::new(p).map_err(|e| ContentError::new("identity", format!("{code}: {e}"))))
        .collect()
}

impl IdentityDetector {
    /// The patterns shipped with the crate.
    pub fn load_default() -> Result<Self, ContentError> {
        IdentityDetector::from_toml(IDENTITY_DATA)
    }

    /// Parses a patterns file in the format of `data/identity.toml`.
    pub fn from_toml(source: &str) -> Result<Self, ContentError> {
        let file: File =
            toml::from_str(source).map_err(|e| ContentError::new("identity", e.to_string()))?;
        let mut locales = Vec::new();
        for l in file.locale {
            let locale = match l.code.as_str() {
                "en" => Locale::En,
                "es" => Locale::Es,
                "fr" => Locale::Fr,
                other => {
                    return Err(ContentError::new(
                        "identity",
                        format!("unknown locale {other:?}"),
                    ))
                }
            };
            locales.push(LocalePatterns {
                locale,
                positive: compile(&l.positive, &l.code)?,
                negative: compile(&l.negative, &l.code)?,
            });
        }
        Ok(IdentityDetector { locales })
    }

    /// The language of the identity question in `text`, if it is one.
    pub fn detect(&self, text: &str) -> Option<Locale> {
        let norm = normalise(text);
        self.locales.iter().find_map(|l| {
            let hit = l.positive.iter().any(|r| r.is_match(&norm))
                && !l.negative.iter().any(|r| r.is_match(&norm));
            hit.then_some(l.locale)
        })
    }
}

/// Lower case, accents off, apostrophes/hyphens/inverted marks to spaces, spaces collapsed.
pub(crate) fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            '\'' | '’' | '‘' | '`' | '-' | '‐' | '–' | '—' | '¿' | '¡' | '"' | '“' | '”' => {
                ' '
            }
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if mapped == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(mapped);
    }
    out.trim_end().to_string()
}

fn default_detector() -> Option<&'static IdentityDetector> {
    static CELL: OnceLock<Option<IdentityDetector>> = OnceLock::new();
    CELL.get_or_init(|| IdentityDetector::load_default().ok())
        .as_ref()
}

/// Conservative stand-in used only if the shipped patterns failed to load (the tests prevent
/// that): a question that mentions being human, a person, a bot or an AI.
fn fallback_detect(text: &str) -> bool {
    let norm = normalise(text);
    norm.contains('?')
        && [" human", " person", " bot", " robot", " ai", " therapist"]
            .iter()
            .any(|w| format!(" {norm}").contains(w))
}

/// Whether `text` asks what the companion is (a human, a person, a bot, an AI, a therapist,
/// a doctor), in English, Spanish or French.
pub fn is_identity_question(text: &str) -> bool {
    match default_detector() {
        Some(d) => d.detect(text).is_some(),
        None => fallback_detect(text),
    }
}

/// The locale of an identity question, so it can be answered in the same language.
pub fn identity_question_locale(text: &str) -> Option<Locale> {
    match default_detector() {
        Some(d) => d.detect(text),
        None => fallback_detect(text).then_some(Locale::En),
    }
}
