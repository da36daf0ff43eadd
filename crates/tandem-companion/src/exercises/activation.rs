//! Behavioural activation planning.
//!
//! Based on the brief behavioural activation treatment for depression (BATD-R: Lejuez,
//! Hopko, Acierno, Daughters & Pagoto, "Ten year revision of the brief behavioral activation
//! treatment for depression", Behavior Modification 35(2), 2011) and Martell, Dimidjian &
//! Herman-Dunn, *Behavioral Activation for Depression: A Clinician's Guide* (Guilford, 2010):
//! list possible activities, rate the pleasure and the sense of achievement (mastery) you
//! expect from each (0–10), choose one, schedule it for a specific day and time, and commit.

use super::{
    quote, ratings, text_answer, ExerciseError, ExerciseInput, Expects, Prompt, ReflectionRequest,
    REFLECTION_RULES,
};
use serde::{Deserialize, Serialize};

/// At most this many activities are planned at once: keeps the exercise short.
pub const MAX_ACTIVITIES: usize = 5;
const MAX_ACTIVITY_CHARS: usize = 200;

/// One candidate activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub name: String,
    /// Expected pleasure, 0–10.
    pub pleasure: Option<u8>,
    /// Expected sense of achievement, 0–10.
    pub mastery: Option<u8>,
}

/// Where an activation plan is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum ActivationStep {
    #[default]
    ListActivities,
    /// Rating the activity at `index`.
    Rate {
        index: usize,
    },
    Choose,
    Schedule,
    Commit,
    Complete,
}

/// A behavioural activation plan in progress or complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationPlan {
    pub step: ActivationStep,
    pub activities: Vec<Activity>,
    /// Index into `activities`.
    pub chosen: Option<usize>,
    /// When, in the patient's words ("Saturday 10am").
    pub when: Option<String>,
    pub committed: Option<bool>,
}

fn yes_no(input: &ExerciseInput) -> Result<bool, ExerciseError> {
    let ExerciseInput::Answer(text) = input else {
        return Err(ExerciseError::NotYesNo);
    };
    let t = text.trim().to_lowercase();
    let t = t.trim_end_matches(['.', '!']);
    const YES: &[&str] = &[
        "yes",
        "y",
        "yeah",
        "yep",
        "sure",
        "ok",
        "okay",
        "i will",
        "i'll do it",
        "i can",
        "si",
        "sí",
        "oui",
        "d'accord",
    ];
    const NO: &[&str] = &[
        "no",
        "n",
        "nope",
        "not yet",
        "maybe",
        "not sure",
        "i can't",
        "non",
        "pas encore",
        "todavía no",
        "todavia no",
    ];
    if YES.contains(&t) {
        Ok(true)
    } else if NO.contains(&t) {
        Ok(false)
    } else {
        Err(ExerciseError::NotYesNo)
    }
}

impl ActivationPlan {
    pub fn is_complete(&self) -> bool {
        self.step == ActivationStep::Complete
    }

    fn chosen_activity(&self) -> Option<&Activity> {
        self.chosen.and_then(|i| self.activities.get(i))
    }

    pub(super) fn apply(&self, input: ExerciseInput) -> Result<Self, ExerciseError> {
        use ActivationStep as S;
        let mut s = self.clone();
        match self.step {
            S::ListActivities => {
                let text = text_answer(input, false)?.unwrap_or_default();
                let items: Vec<String> = text
                    .split(['\n', ',', ';'])
                    .map(|i| i.trim().trim_start_matches(['-', '*', '•']).trim())
                    .filter(|i| !i.is_empty())
                    .map(String::from)
                    .collect();
                if items.is_empty() || items.len() > MAX_ACTIVITIES {
                    return Err(ExerciseError::ActivityCount {
                        max: MAX_ACTIVITIES,
                    });
                }
                if items.iter().any(|i| i.chars().count() > MAX_ACTIVITY_CHARS) {
                    return Err(ExerciseError::TooLong {
                        max: MAX_ACTIVITY_CHARS,
                    });
                }
                s.activities = items
                    .into_iter()
                    .map(|name| Activity {
                        name,
                        pleasure: None,
                        mastery: None,
                    })
                    .collect();
                s.step = S::Rate { index: 0 };
            }
            S::Rate { index } => {
                let r = ratings(&input, 2, 0, 10)?;
                let (Some(&p), Some(&m)) = (r.first(), r.get(1)) else {
                    return Err(ExerciseError::WrongCount {
                        count: 2,
                        min: 0,
                        max: 10,
                    });
                };
                if let Some(a) = s.activities.get_mut(index) {
                    a.pleasure = Some(p);
                    a.mastery = Some(m);
                }
                s.step = if index + 1 < s.activities.len() {
                    S::Rate { index: index + 1 }
                } else if s.activities.len() == 1 {
                    s.chosen = Some(0);
                    S::Schedule
                } else {
                    S::Choose
                };
            }
            S::Choose => {
                let text = match &input {
                    ExerciseInput::Answer(t) => t.trim().to_lowercase(),
                    _ => return Err(ExerciseError::UnknownChoice),
                };
                let by_number = text
                    .trim_start_matches('#')
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .filter(|&i| i < s.activities.len());
                let by_name = || {
                    let matches: Vec<usize> = s
                        .activities
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| a.name.to_lowercase().contains(&text))
                        .map(|(i, _)| i)
                        .collect();
                    (matches.len() == 1)
                        .then(|| matches.first().copied())
                        .flatten()
                };
                s.chosen = Some(
                    by_number
                        .or_else(by_name)
                        .ok_or(ExerciseError::UnknownChoice)?,
                );
                s.step = S::Schedule;
            }
            S::Schedule => {
                let when = text_answer(input, false)?.unwrap_or_default();
                if when.chars().count() > MAX_ACTIVITY_CHARS {
                    return Err(ExerciseError::TooLong {
                        max: MAX_ACTIVITY_CHARS,
                    });
                }
                s.when = Some(when);
                s.step = S::Commit;
            }
            S::Commit => {
                s.committed = Some(yes_no(&input)?);
                s.step = S::Complete;
            }
            S::Complete => return Err(ExerciseError::AlreadyComplete),
        }
        Ok(s)
    }

    pub(super) fn prompt(&self) -> Prompt {
        use ActivationStep as S;
        let chosen = self
            .chosen_activity()
            .map(|a| a.name.as_str())
            .unwrap_or("it");
        match self.step {
            S::ListActivities => Prompt::new(
                "behavioural_activation/list",
                format!("Let's plan something small for the coming days. List up to {MAX_ACTIVITIES} activities you could do, enjoyable or useful, separated by commas. Small is good: a short walk, a call, a shower, a tidy-up."),
                Expects::Text,
            ),
            S::Rate { index } => {
                let name = self
                    .activities
                    .get(index)
                    .map(|a| a.name.as_str())
                    .unwrap_or("this");
                Prompt::new(
                    "behavioural_activation/rate",
                    format!("For \"{name}\": how much enjoyment do you expect, and how much sense of achievement, each from 0 to 10? For example \"6 8\"."),
                    Expects::Ratings { count: 2, min: 0, max: 10 },
                )
            }
            S::Choose => {
                let options: Vec<String> = self
                    .activities
                    .iter()
                    .map(|a| {
                        format!(
                            "{} (enjoyment {}, achievement {})",
                            a.name,
                            a.pleasure.unwrap_or(0),
                            a.mastery.unwrap_or(0)
                        )
                    })
                    .collect();
                let list: Vec<String> = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| format!("{}. {o}", i + 1))
                    .collect();
                Prompt::new(
                    "behavioural_activation/choose",
                    format!("Which one would you like to plan first? A manageable one is a good start.\n{}", list.join("\n")),
                    Expects::Choice { options },
                )
            }
            S::Schedule => Prompt::new(
                "behavioural_activation/schedule",
                format!("When will you do \"{chosen}\"? Pick a day and a time, for example \"Saturday at 10am\"."),
                Expects::Text,
            ),
            S::Commit => Prompt::new(
                "behavioural_activation/commit",
                format!(
                    "So the plan is \"{chosen}\" on {}. Will you give it a try? (yes / not yet)",
                    self.when.as_deref().unwrap_or("the day you chose")
                ),
                Expects::YesNo,
            ),
            S::Complete => Prompt::new(
                "behavioural_activation/complete",
                if self.committed == Some(true) {
                    "Great. Afterwards, notice how you felt: enjoyment and achievement often turn out a bit higher than expected. Your clinician can see this plan."
                } else {
                    "That's okay. The plan is saved, and you can come back to it or pick something smaller. Your clinician can see it too."
                },
                Expects::Nothing,
            ),
        }
    }

    pub(super) fn reflection_request(&self) -> Option<ReflectionRequest> {
        if self.step != ActivationStep::Commit {
            return None;
        }
        let chosen = self.chosen_activity()?;
        Some(ReflectionRequest {
            instruction: format!(
                "The patient is planning an activity to lift their mood. They chose {} for {}. Encourage them warmly about having a concrete plan. {REFLECTION_RULES}",
                quote(&chosen.name),
                quote(self.when.as_deref().unwrap_or("")),
            ),
            fallback: "Having a specific time makes a plan much easier to follow through.".into(),
        })
    }

    pub(super) fn summary(&self) -> String {
        let mut out = format!(
            "Behavioural activation plan ({})\n",
            if self.is_complete() {
                "complete"
            } else {
                "in progress"
            }
        );
        for (i, a) in self.activities.iter().enumerate() {
            let rated = match (a.pleasure, a.mastery) {
                (Some(p), Some(m)) => format!(" (expected pleasure {p}/10, mastery {m}/10)"),
                _ => String::new(),
            };
            let mark = if self.chosen == Some(i) {
                " [chosen]"
            } else {
                ""
            };
            out.push_str(&format!("- {}{rated}{mark}\n", a.name));
        }
        if let Some(when) = &self.when {
            out.push_str(&format!("Scheduled: {when}\n"));
        }
        match self.committed {
            Some(true) => out.push_str("Committed: yes\n"),
            Some(false) => out.push_str("Committed: not yet\n"),
            None => {}
        }
        out.trim_end().to_string()
    }
}
