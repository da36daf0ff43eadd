//! The registry: every instrument known to this process, loaded from embedded data files plus
//! any extra sources the caller passes as strings.

use std::collections::BTreeMap;

use crate::instrument::Instrument;

/// The instrument files compiled into the crate, (file name, contents): every `*.toml` and
/// `*.json` in `instruments/`, sorted by file name (collected by `build.rs`).
pub const BUILTIN_SOURCES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/builtin_instruments.rs"));

/// Loading an instrument file failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The file is not valid TOML/JSON for the instrument format.
    #[error("instrument file {source_name}: {message}")]
    Parse {
        /// File name given with the source.
        source_name: String,
        /// Parser message.
        message: String,
    },
    /// The file parsed but breaks an invariant (bands with gaps, bad item numbers, ...).
    #[error("instrument {instrument}: {message}")]
    Invalid {
        /// Instrument id.
        instrument: String,
        /// What is wrong.
        message: String,
    },
    /// Two instruments share an id or alias.
    #[error("instrument id or alias {0} is defined twice")]
    Duplicate(String),
}

/// Normalises an instrument id for lookup: upper case, without `-`, `_`, `.` or spaces, so
/// `phq9`, `PHQ-9` and `phq_9` are the same.
pub fn normalize_id(id: &str) -> String {
    id.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Parses one instrument file: JSON if it starts with `{`, TOML otherwise. Validates it.
pub fn parse_instrument(source_name: &str, text: &str) -> Result<Instrument, RegistryError> {
    let parsed: Result<Instrument, String> = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        toml::from_str(text).map_err(|e| e.to_string())
    };
    let instrument = parsed.map_err(|message| RegistryError::Parse {
        source_name: source_name.to_owned(),
        message,
    })?;
    instrument.validate()?;
    Ok(instrument)
}

/// All instruments, looked up by normalised id or alias.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    instruments: Vec<Instrument>,
    index: BTreeMap<String, usize>,
}

impl Registry {
    /// The built-in instruments (PHQ-9, GAD-7, PHQ-2, GAD-2, C-SSRS screener, WHO-5).
    pub fn builtin() -> Result<Self, RegistryError> {
        Self::from_sources(BUILTIN_SOURCES)
    }

    /// The built-in instruments plus extra files `(name, contents)`, e.g. read from a
    /// configuration directory by the caller. Adding an instrument needs no Rust change.
    pub fn with_extra(extra: &[(&str, &str)]) -> Result<Self, RegistryError> {
        let mut registry = Self::builtin()?;
        for (name, text) in extra {
            registry.add(parse_instrument(name, text)?)?;
        }
        Ok(registry)
    }

    /// Exactly the given files, no built-ins.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        for (name, text) in sources {
            registry.add(parse_instrument(name, text)?)?;
        }
        Ok(registry)
    }

    /// Adds a validated instrument; its id and aliases must be new.
    pub fn add(&mut self, instrument: Instrument) -> Result<(), RegistryError> {
        instrument.validate()?;
        let position = self.instruments.len();
        let mut keys: Vec<String> = std::iter::once(&instrument.id)
            .chain(instrument.aliases.iter())
            .map(|k| normalize_id(k))
            .collect();
        keys.sort();
        keys.dedup();
        for key in &keys {
            if self.index.contains_key(key) {
                return Err(RegistryError::Duplicate(key.clone()));
            }
        }
        for key in keys {
            self.index.insert(key, position);
        }
        self.instruments.push(instrument);
        Ok(())
    }

    /// The instrument with this id or alias (any case, with or without dashes).
    pub fn get(&self, id: &str) -> Option<&Instrument> {
        self.index
            .get(&normalize_id(id))
            .and_then(|&i| self.instruments.get(i))
    }

    /// Every instrument, in load order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// The canonical ids, in load order.
    pub fn ids(&self) -> Vec<&str> {
        self.instruments.iter().map(|i| i.id.as_str()).collect()
    }
}
