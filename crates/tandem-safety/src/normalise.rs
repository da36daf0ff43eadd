//! Text normalisation shared by the screener, the lexicon compiler and the output guard.
//!
//! The same function turns data-file phrases and incoming messages into one canonical
//! form, so a lexicon entry written naturally ("I'm going to") matches however the
//! message spells it ("IM GOING TO", "i’m goin to" does not, but "1'm g0ing to" does).
//!
//! Steps, in order: lowercase; fold accents and ligatures (`é`→`e`, `ß`→`ss`, `œ`→`oe`);
//! drop apostrophes (`don't`→`dont`); inside a word that has letters, map leetspeak
//! (`0 1 3 4 5 7 @ $` → `o i e a s t a s`); collapse runs of three or more of the same letter
//! (vowels to one, consonants to two: `diiiie`→`die`, `killlll`→`kill`); turn clause
//! punctuation into the tokens `,` `.` `?`; everything else that is not a letter or digit
//! separates words. The result is words separated by single spaces.
//!
//! Every byte of the result remembers the byte range of the input character it came from,
//! so evidence can point at the user's own text.

/// A normalised text and the map back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalised {
    /// Lowercase words and punctuation tokens separated by single spaces.
    pub text: String,
    starts: Vec<u32>,
    ends: Vec<u32>,
}

impl Normalised {
    /// The byte range in the original text that produced `text[start..end]`.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        let s = self.starts.get(start).copied().unwrap_or(0) as usize;
        let e = if end == 0 {
            s
        } else {
            self.ends.get(end - 1).copied().unwrap_or(0) as usize
        };
        (s, e.max(s))
    }

    #[inline]
    fn push(&mut self, c: char, start: u32, end: u32) {
        self.text.push(c);
        if c.is_ascii() {
            self.starts.push(start);
            self.ends.push(end);
        } else {
            for _ in 0..c.len_utf8() {
                self.starts.push(start);
                self.ends.push(end);
            }
        }
    }

    fn pop(&mut self) {
        if let Some(c) = self.text.pop() {
            for _ in 0..c.len_utf8() {
                self.starts.pop();
                self.ends.pop();
            }
        }
    }

    fn push_space(&mut self, at: u32) {
        if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.push(' ', at, at);
        }
    }
}

#[derive(Clone, Copy)]
enum Class {
    Word,
    Drop,
    Sep,
    Comma,
    Stop,
    Question,
}

fn classify(c: char) -> Class {
    match c {
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{b4}' => Class::Drop,
        '@' | '$' => Class::Word,
        ',' | ';' | ':' => Class::Comma,
        '.' | '!' | '\n' | '\u{a1}' | '\u{2026}' => Class::Stop,
        '?' | '\u{bf}' => Class::Question,
        c if c.is_alphanumeric() => Class::Word,
        _ => Class::Sep,
    }
}

fn fold(c: char, out: &mut [char; 2]) -> usize {
    let one = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        'ł' => 'l',
        'ß' => {
            out[0] = 's';
            out[1] = 's';
            return 2;
        }
        'œ' => {
            out[0] = 'o';
            out[1] = 'e';
            return 2;
        }
        'æ' => {
            out[0] = 'a';
            out[1] = 'e';
            return 2;
        }
        other => other,
    };
    out[0] = one;
    1
}

fn leet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// Normalise a message or a phrase for screening. See the module docs for the steps; here
/// every run of a repeated vowel becomes one (`diie`, `diiie` -> `die`, and so `need` ->
/// `ned` on both the lexicon and the message side).
pub fn normalise(input: &str) -> Normalised {
    normalise_with(input, true)
}

/// Normalise a model reply for the output guard: as [`normalise`], but a doubled vowel
/// stays (only runs of three or more collapse), so guard patterns read as plain English.
pub fn normalise_reply(input: &str) -> Normalised {
    normalise_with(input, false)
}

fn normalise_with(input: &str, fold_double_vowels: bool) -> Normalised {
    let mut st = State {
        out: Normalised {
            text: String::with_capacity(input.len() + 8),
            starts: Vec::with_capacity(input.len() + 8),
            ends: Vec::with_capacity(input.len() + 8),
        },
        token: Vec::with_capacity(32),
        last_punct: false,
        fold_double_vowels,
    };
    let mut buf = ['\0'; 2];
    for (i, ch) in input.char_indices() {
        let start = u32::try_from(i).unwrap_or(u32::MAX);
        let end = u32::try_from(i + ch.len_utf8()).unwrap_or(u32::MAX);
        if ch.is_ascii() {
            st.feed(ch.to_ascii_lowercase(), start, end);
            continue;
        }
        for lc in ch.to_lowercase() {
            let n = fold(lc, &mut buf);
            for &c in buf.iter().take(n) {
                st.feed(c, start, end);
            }
        }
    }
    let State {
        mut out,
        mut token,
        fold_double_vowels,
        ..
    } = st;
    flush_token(&mut token, &mut out, fold_double_vowels);
    while out.text.ends_with(' ') {
        out.pop();
    }
    join_spelled_out(&mut out);
    out
}

struct State {
    out: Normalised,
    token: Vec<(char, u32, u32)>,
    last_punct: bool,
    fold_double_vowels: bool,
}

impl State {
    #[inline]
    fn feed(&mut self, c: char, start: u32, end: u32) {
        let class = classify(c);
        let p = match class {
            Class::Word => {
                self.token.push((c, start, end));
                return;
            }
            Class::Drop => return,
            Class::Sep => {
                if flush_token(&mut self.token, &mut self.out, self.fold_double_vowels) {
                    self.last_punct = false;
                }
                return;
            }
            Class::Comma => ',',
            Class::Question => '?',
            Class::Stop => '.',
        };
        if flush_token(&mut self.token, &mut self.out, self.fold_double_vowels) {
            self.last_punct = false;
        }
        let out = &mut self.out;
        if self.last_punct {
            // Keep the strongest mark of a run like "?!" or "...".
            if (p == '?' && out.text.ends_with(['.', ','])) || (p == '.' && out.text.ends_with(','))
            {
                out.pop();
                out.push(p, start, end);
            }
            return;
        }
        if out.text.is_empty() {
            return;
        }
        out.push_space(start);
        out.push(p, start, end);
        self.last_punct = true;
    }
}

/// Join words spelled out letter by letter ("w a n t" -> "want"): runs of three or more
/// single-letter words. A leading "i" stays a word ("i w a n t" -> "i want").
fn join_spelled_out(out: &mut Normalised) {
    let bytes = out.text.as_bytes();
    let single = |i: usize| -> bool {
        bytes.get(i).is_some_and(u8::is_ascii_alphabetic)
            && (i == 0 || bytes.get(i - 1) == Some(&b' '))
            && (i + 1 == bytes.len() || bytes.get(i + 1) == Some(&b' '))
    };
    let mut drop = vec![false; bytes.len()];
    let mut any = false;
    let mut i = 0;
    while i < bytes.len() {
        if single(i) {
            let mut j = i;
            while j + 2 < bytes.len() && single(j + 2) {
                j += 2;
            }
            let mut start = i;
            let count = (j - i) / 2 + 1;
            if bytes.get(i) == Some(&b'i') && count >= 4 {
                start = i + 2;
            }
            if (j - start) / 2 + 1 >= 3 {
                let mut k = start + 1;
                while k < j {
                    if let Some(d) = drop.get_mut(k) {
                        *d = true;
                    }
                    any = true;
                    k += 2;
                }
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    if !any {
        return;
    }
    let mut text = String::with_capacity(out.text.len());
    let mut starts = Vec::with_capacity(out.starts.len());
    let mut ends = Vec::with_capacity(out.ends.len());
    for (idx, ch) in out.text.char_indices() {
        if drop.get(idx).copied().unwrap_or(false) {
            continue;
        }
        text.push(ch);
        for k in idx..idx + ch.len_utf8() {
            starts.push(out.starts.get(k).copied().unwrap_or(0));
            ends.push(out.ends.get(k).copied().unwrap_or(0));
        }
    }
    out.text = text;
    out.starts = starts;
    out.ends = ends;
}

/// Append the pending word (if any) to `out`. Returns whether anything was written.
fn flush_token(
    token: &mut Vec<(char, u32, u32)>,
    out: &mut Normalised,
    fold_double_vowels: bool,
) -> bool {
    if token.is_empty() {
        return false;
    }
    let has_alpha = token.iter().any(|(c, _, _)| c.is_alphabetic());
    if has_alpha {
        for unit in token.iter_mut() {
            unit.0 = leet(unit.0);
        }
    } else {
        token.retain(|&(c, _, _)| c != '@' && c != '$');
    }
    let mapped: &[(char, u32, u32)] = token;
    if mapped.is_empty() {
        return false;
    }
    if let Some(&(_, s, _)) = mapped.first() {
        out.push_space(s);
    }
    let mut i = 0;
    while i < mapped.len() {
        let (c, s, _) = mapped[i];
        let mut j = i;
        while j + 1 < mapped.len() && mapped[j + 1].0 == c {
            j += 1;
        }
        let run = j - i + 1;
        let keep = if fold_double_vowels && run >= 2 && is_vowel(c) {
            1
        } else if run >= 3 && c.is_alphabetic() {
            if is_vowel(c) {
                1
            } else {
                2
            }
        } else {
            run
        };
        let e = mapped[j].2;
        for _ in 0..keep {
            out.push(c, s, e);
        }
        i = j + 1;
    }
    token.clear();
    true
}

/// Normalise a data-file phrase: the same steps, returning only the text.
pub fn normalise_phrase(phrase: &str) -> String {
    normalise(phrase).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_folds_and_drops_apostrophes() {
        assert_eq!(normalise("I'm SO tired, é ß").text, "im so tired , e ss");
        assert_eq!(
            normalise("Je veux mourir… vraiment!").text,
            "je veux mourir . vraiment ."
        );
        assert_eq!(normalise("¿Quiero morir?").text, "quiero morir ?");
    }

    #[test]
    fn leetspeak_only_inside_words() {
        assert_eq!(normalise("i w4nt to d1e").text, "i want to die");
        assert_eq!(normalise("k1ll mys3lf").text, "kill myself");
        assert_eq!(normalise("taller than 25 m").text, "taller than 25 m");
        assert_eq!(normalise("call 988").text, "call 988");
    }

    #[test]
    fn collapses_long_runs() {
        assert_eq!(normalise("diiiiie").text, "die");
        assert_eq!(normalise("killllll").text, "kill");
        assert_eq!(normalise("soooo good").text, "so god");
        assert_eq!(normalise("diie").text, "die");
        assert_eq!(normalise_reply("soooo good").text, "so good");
    }

    #[test]
    fn joins_spelled_out_words() {
        assert_eq!(normalise("I w a n t to die").text, "i want to die");
        assert_eq!(normalise("k m s").text, "kms");
        assert_eq!(normalise("a b testing").text, "a b testing");
    }

    #[test]
    fn maps_back_to_original() {
        let src = "Well, I WANT to d1e!";
        let n = normalise(src);
        let at = n.text.find("want to die").unwrap();
        let (s, e) = n.original_range(at, at + "want to die".len());
        assert_eq!(&src[s..e], "WANT to d1e");
        let src = "I want to die?!... ok";
        let n = normalise(src);
        assert_eq!(n.text, "i want to die ? ok");
        let at = n.text.find("ok").unwrap();
        let (s, e) = n.original_range(at, at + 2);
        assert_eq!(&src[s..e], "ok");
    }

    #[test]
    fn separators_and_punctuation_runs() {
        assert_eq!(normalise("self-harm?!").text, "self harm ?");
        assert_eq!(normalise("...hi").text, "hi");
        assert_eq!(normalise("").text, "");
    }
}
