//! Chat prompt formats used when a GGUF carries no chat template (or one llama.cpp cannot
//! apply). The embedded backend prefers the model's own template; these are the fallbacks,
//! chosen per model family.
//!
//! Pure code: no I/O, no logging (prompts hold patient text).

use crate::types::{ChatMessage, Role};

/// A chat prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    /// `<|im_start|>role\n…<|im_end|>`: SmolLM2, Qwen 2/2.5/3, many fine-tunes.
    #[serde(rename = "chatml")]
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`: Llama 3.x.
    Llama3,
    /// `<start_of_turn>user\n…<end_of_turn>`: Gemma 1/2/3 (no system role: the system text is
    /// prepended to the first user turn, as Gemma's own template does).
    Gemma,
}

impl PromptFormat {
    /// Picks a format from the model's special tokens (most reliable: SmolLM2 reports the
    /// `llama` architecture but uses ChatML), then from `general.architecture`.
    ///
    /// `has_special_token(text)` tells whether `text` is a single special token of the model.
    pub fn detect(architecture: Option<&str>, has_special_token: impl Fn(&str) -> bool) -> Self {
        if has_special_token("<|im_start|>") {
            return Self::ChatMl;
        }
        if has_special_token("<|start_header_id|>") {
            return Self::Llama3;
        }
        if has_special_token("<start_of_turn>") {
            return Self::Gemma;
        }
        let arch = architecture.unwrap_or_default().to_ascii_lowercase();
        if arch.starts_with("gemma") {
            Self::Gemma
        } else if arch == "llama" {
            // A llama-architecture model without ChatML tokens: most likely Llama 3.
            Self::Llama3
        } else {
            // Qwen, SmolLM and most small instruct fine-tunes.
            Self::ChatMl
        }
    }

    /// The stop markers that end an assistant turn in this format (normally end-of-generation
    /// tokens stop first; these catch models whose GGUF does not mark them as such).
    #[must_use]
    pub fn turn_end_markers(self) -> &'static [&'static str] {
        match self {
            Self::ChatMl => &["<|im_end|>", "<|im_start|>"],
            Self::Llama3 => &["<|eot_id|>", "<|start_header_id|>"],
            Self::Gemma => &["<end_of_turn>", "<start_of_turn>"],
        }
    }

    /// Renders the conversation, ending with an open assistant turn. The beginning-of-sequence
    /// token is not included: the tokenizer adds it where the model wants one.
    #[must_use]
    pub fn render(self, messages: &[ChatMessage]) -> String {
        let mut out = String::new();
        match self {
            Self::ChatMl => {
                for m in messages {
                    out.push_str("<|im_start|>");
                    out.push_str(m.role.as_str());
                    out.push('\n');
                    out.push_str(&m.content);
                    out.push_str("<|im_end|>\n");
                }
                out.push_str("<|im_start|>assistant\n");
            }
            Self::Llama3 => {
                for m in messages {
                    out.push_str("<|start_header_id|>");
                    out.push_str(m.role.as_str());
                    out.push_str("<|end_header_id|>\n\n");
                    out.push_str(m.content.trim());
                    out.push_str("<|eot_id|>");
                }
                out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
            Self::Gemma => {
                let mut system = String::new();
                for m in messages {
                    match m.role {
                        Role::System => {
                            if !system.is_empty() {
                                system.push_str("\n\n");
                            }
                            system.push_str(m.content.trim());
                        }
                        Role::User | Role::Assistant => {
                            let role = if m.role == Role::User {
                                "user"
                            } else {
                                "model"
                            };
                            out.push_str("<start_of_turn>");
                            out.push_str(role);
                            out.push('\n');
                            if m.role == Role::User && !system.is_empty() {
                                out.push_str(&system);
                                out.push_str("\n\n");
                                system.clear();
                            }
                            out.push_str(m.content.trim());
                            out.push_str("<end_of_turn>\n");
                        }
                    }
                }
                if !system.is_empty() {
                    // Only system text and no user turn yet: give it its own user turn.
                    out.push_str("<start_of_turn>user\n");
                    out.push_str(&system);
                    out.push_str("<end_of_turn>\n");
                }
                out.push_str("<start_of_turn>model\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("Be kind."),
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello!"),
            ChatMessage::user("I feel low."),
        ]
    }

    #[test]
    fn chatml_renders_roles_and_open_assistant_turn() {
        assert_eq!(
            PromptFormat::ChatMl.render(&chat()),
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nI feel low.<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn llama3_renders_headers() {
        assert_eq!(
            PromptFormat::Llama3.render(&chat()),
            "<|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nI feel low.<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn gemma_folds_system_into_first_user_turn_and_uses_model_role() {
        assert_eq!(
            PromptFormat::Gemma.render(&chat()),
            "<start_of_turn>user\nBe kind.\n\nHi<end_of_turn>\n\
             <start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nI feel low.<end_of_turn>\n\
             <start_of_turn>model\n"
        );
    }

    #[test]
    fn detection_prefers_special_tokens_over_architecture() {
        // SmolLM2: llama architecture, ChatML tokens.
        let smol = PromptFormat::detect(Some("llama"), |t| t == "<|im_start|>");
        assert_eq!(smol, PromptFormat::ChatMl);
        let llama3 = PromptFormat::detect(Some("llama"), |t| t == "<|start_header_id|>");
        assert_eq!(llama3, PromptFormat::Llama3);
        let gemma = PromptFormat::detect(Some("gemma3"), |t| t == "<start_of_turn>");
        assert_eq!(gemma, PromptFormat::Gemma);
    }

    #[test]
    fn detection_falls_back_to_architecture() {
        assert_eq!(
            PromptFormat::detect(Some("gemma2"), |_| false),
            PromptFormat::Gemma
        );
        assert_eq!(
            PromptFormat::detect(Some("qwen2"), |_| false),
            PromptFormat::ChatMl
        );
        assert_eq!(
            PromptFormat::detect(Some("llama"), |_| false),
            PromptFormat::Llama3
        );
        assert_eq!(PromptFormat::detect(None, |_| false), PromptFormat::ChatMl);
    }
}
