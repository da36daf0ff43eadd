//! Streaming text plumbing shared by the backends: UTF-8 reassembly across token boundaries
//! and stop-string detection that never emits a partial stop string.

/// Turns a stream of byte pieces (token pieces can split a multi-byte character) into whole
/// UTF-8 strings. Invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// A new, empty assembler.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the text that is now complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: any incomplete character left becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// Finds stop strings in streamed text. Text that could be the start of a stop string is held
/// back until it is known not to be one, so a stop string never reaches the patient.
#[derive(Debug)]
pub struct StopScanner {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

/// What [`StopScanner::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Text safe to emit now.
    pub emit: String,
    /// A stop string was found; `emit` holds the text before it and nothing more may be emitted.
    pub stopped: bool,
}

impl StopScanner {
    /// A scanner for these stop strings (empty strings are ignored).
    #[must_use]
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Adds text; returns what can be emitted.
    pub fn push(&mut self, text: &str) -> Scanned {
        if self.stopped {
            return Scanned {
                emit: String::new(),
                stopped: true,
            };
        }
        if self.stops.is_empty() {
            return Scanned {
                emit: text.to_owned(),
                stopped: false,
            };
        }
        self.held.push_str(text);
        // The earliest stop string wins.
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let emit = self.held[..pos].to_owned();
            self.held.clear();
            return Scanned {
                emit,
                stopped: true,
            };
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let emit = self.held[..keep].to_owned();
        self.held.drain(..keep);
        Scanned {
            emit,
            stopped: false,
        }
    }

    /// Ends the stream: returns held-back text (it was not a stop string after all).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            String::new()
        } else {
            std::mem::take(&mut self.held)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_pieces_is_reassembled() {
        let s = "héllo 😊 ok";
        let bytes = s.as_bytes();
        // Feed one byte at a time: every multi-byte character is split.
        let mut a = Utf8Assembler::new();
        let mut out = String::new();
        for b in bytes {
            let piece = a.push(std::slice::from_ref(b));
            // Never a partial character.
            assert!(piece.chars().all(|c| c != char::REPLACEMENT_CHARACTER));
            out.push_str(&piece);
        }
        out.push_str(&a.finish());
        assert_eq!(out, s);
    }

    #[test]
    fn utf8_invalid_bytes_become_replacement() {
        let mut a = Utf8Assembler::new();
        assert_eq!(a.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(a.push(b"\xf0\x9f"), "");
        assert_eq!(a.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_string_split_across_pieces_is_never_emitted() {
        let mut s = StopScanner::new(&["<END>".to_owned()]);
        let mut out = String::new();
        let mut stopped = false;
        for piece in ["Hello", " wor", "ld<E", "N", "D> after"] {
            let r = s.push(piece);
            out.push_str(&r.emit);
            if r.stopped {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert_eq!(out, "Hello world");
    }

    #[test]
    fn held_prefix_is_released_when_not_a_stop() {
        let mut s = StopScanner::new(&["\nUser:".to_owned()]);
        let r = s.push("a\nUs");
        assert_eq!(r.emit, "a");
        let r = s.push("ually");
        assert_eq!(r.emit, "\nUsually");
        assert_eq!(s.finish(), "");
        let mut s = StopScanner::new(&["\nUser:".to_owned()]);
        assert_eq!(s.push("x\nU").emit, "x");
        assert_eq!(s.finish(), "\nU");
    }

    #[test]
    fn no_stops_passes_through() {
        let mut s = StopScanner::new(&[]);
        assert_eq!(
            s.push("abc"),
            Scanned {
                emit: "abc".into(),
                stopped: false
            }
        );
    }
}
