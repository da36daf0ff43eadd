//! `tandem measure`: score a set of answers, fill a measure in on the terminal, set and
//! check schedules, draw the trajectory chart.

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tandem_care::Care;
use tandem_measures::{
    parse_answers_csv, score_answers_json, trajectory_svg, Assessment, ChartOptions, Instrument,
    Registry,
};
use tandem_store::{Actor, Store};
use time::OffsetDateTime;

use crate::admin::{find_patient, open_store};
use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum MeasureCommand {
    /// List the instruments Tandem knows
    List,
    /// Score a set of answers and print {"instrument","total","band","flags"} as JSON
    Score {
        /// Instrument id, e.g. PHQ-9, GAD-7, PHQ-2, GAD-2, C-SSRS, WHO-5
        instrument: String,
        /// Item values in order, comma-separated, e.g. 1,0,2,1,0,0,1,2,0
        #[arg(long)]
        answers: String,
    },
    /// Fill a measure in for a patient on this terminal (or from piped lines), and store it
    Fill {
        instrument: String,
        /// Patient login name or id
        #[arg(long)]
        patient: String,
    },
    /// Set how often a patient gets a measure
    Schedule {
        /// Patient login name or id
        #[arg(long)]
        patient: String,
        #[arg(long)]
        instrument: String,
        #[arg(long, value_name = "DAYS")]
        every_days: u32,
        /// Days after the due date before it counts as overdue
        #[arg(long, default_value_t = 3)]
        grace_days: u32,
    },
    /// Show which scheduled measures are due or overdue now
    Due {
        #[arg(long)]
        patient: String,
    },
    /// Export a patient's completed measures as a FHIR R4 Bundle (QuestionnaireResponse and
    /// Observation per assessment) for an electronic health record
    Fhir {
        #[arg(long)]
        patient: String,
        /// Output file (default: standard output)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Draw a patient's score trajectory as SVG
    Chart {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        instrument: String,
        /// Output file (default: standard output)
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn registry() -> anyhow::Result<Registry> {
    Registry::builtin().map_err(|e| anyhow!("the built-in instruments failed to load: {e}"))
}

fn instrument<'a>(reg: &'a Registry, id: &str) -> anyhow::Result<&'a Instrument> {
    reg.get(id)
        .ok_or_else(|| anyhow!("unknown instrument {id:?}; known: {}", reg.ids().join(", ")))
}

fn operator() -> Actor {
    Actor::system("cli")
}

pub async fn run(settings: Option<&Settings>, cmd: MeasureCommand) -> anyhow::Result<ExitCode> {
    let reg = registry()?;
    match cmd {
        MeasureCommand::List => {
            for i in reg.instruments() {
                outln!("{:<8} {} ({} items)", i.id, i.name, i.items.len());
            }
        }
        MeasureCommand::Score {
            instrument,
            answers,
        } => match score_answers_json(&reg, &instrument, &answers) {
            Ok(json) => outln!("{json}"),
            Err(e) => bail!("{e}"),
        },
        MeasureCommand::Fill {
            instrument: id,
            patient,
        } => {
            let settings = settings.ok_or_else(|| anyhow!("no settings"))?;
            let inst = instrument(&reg, &id)?.clone();
            let store = Arc::new(open_store(settings).await?);
            let (_, pid) = find_patient(&store, &patient).await?;
            let answers = ask(&inst)?;
            let care = Care::new(store.clone(), Arc::new(reg));
            let sub = care
                .submit_assessment(
                    &operator(),
                    pid,
                    &inst.id,
                    &answers,
                    OffsetDateTime::now_utc(),
                )
                .await?;
            outln!("{}", sub.score.to_json());
            if sub.risk_event.is_some() {
                outln!("These answers opened the safety flow: the care team has been alerted.");
            }
            if sub.offer_cssrs {
                outln!("Next, please complete the C-SSRS screener: tandem measure fill C-SSRS --patient {patient}");
            }
            if let Some(step) = sub.step_up {
                outln!("{}", step.patient_message);
            }
        }
        MeasureCommand::Schedule {
            patient,
            instrument: id,
            every_days,
            grace_days,
        } => {
            let settings = settings.ok_or_else(|| anyhow!("no settings"))?;
            let store = Arc::new(open_store(settings).await?);
            let (user, pid) = find_patient(&store, &patient).await?;
            let care = Care::new(store.clone(), Arc::new(reg));
            care.set_schedule(
                &operator(),
                pid,
                &id,
                every_days,
                grace_days,
                OffsetDateTime::now_utc(),
            )
            .await?;
            outln!("{id} every {every_days} day(s) for {}.", user.username);
        }
        MeasureCommand::Due { patient } => {
            let settings = settings.ok_or_else(|| anyhow!("no settings"))?;
            let store = Arc::new(open_store(settings).await?);
            let (_, pid) = find_patient(&store, &patient).await?;
            let care = Care::new(store.clone(), Arc::new(reg));
            let due = care
                .due_measures(&operator(), pid, OffsetDateTime::now_utc())
                .await?;
            outln!("{}", serde_json::to_string_pretty(&due)?);
        }
        MeasureCommand::Fhir { patient, out } => {
            let settings = settings.ok_or_else(|| anyhow!("no settings"))?;
            let store = open_store(settings).await?;
            let (_, pid) = find_patient(&store, &patient).await?;
            let subject = format!("Patient/{pid}");
            let mut entries = Vec::new();
            for a in store.assessments(&operator(), pid).await? {
                let Some(inst) = reg.get(&a.instrument) else {
                    continue;
                };
                let score = reg.score(&inst.id, &a.answers)?;
                let at = OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(a.completed_at_ms) * 1_000_000,
                )
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let mut qr =
                    tandem_measures::fhir_questionnaire_response(inst, &score, &subject, at)
                        .map_err(|e| anyhow!("{e}"))?;
                let qr_id = format!("qr-{}", a.id);
                qr["id"] = serde_json::json!(qr_id);
                let mut obs = tandem_measures::fhir_observation(
                    inst,
                    &score,
                    &subject,
                    at,
                    Some(&format!("QuestionnaireResponse/{qr_id}")),
                )
                .map_err(|e| anyhow!("{e}"))?;
                obs["id"] = serde_json::json!(format!("obs-{}", a.id));
                entries.push(serde_json::json!({"resource": qr}));
                entries.push(serde_json::json!({"resource": obs}));
            }
            let bundle = serde_json::json!({
                "resourceType": "Bundle",
                "type": "collection",
                "entry": entries,
            });
            let text = serde_json::to_string_pretty(&bundle)?;
            match out {
                None => outln!("{text}"),
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("could not write {}", path.display()))?,
            }
        }
        MeasureCommand::Chart {
            patient,
            instrument: id,
            out,
        } => {
            let settings = settings.ok_or_else(|| anyhow!("no settings"))?;
            let inst = instrument(&reg, &id)?;
            let store = open_store(settings).await?;
            let (_, pid) = find_patient(&store, &patient).await?;
            let series: Vec<Assessment> = store
                .assessments(&operator(), pid)
                .await?
                .into_iter()
                .filter(|a| a.instrument == inst.id)
                .filter_map(|a| {
                    Some(Assessment {
                        instrument: a.instrument,
                        total: u32::try_from(a.total?).ok()?,
                        at: OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(a.completed_at_ms) * 1_000_000,
                        )
                        .ok()?,
                    })
                })
                .collect();
            let svg = trajectory_svg(inst, &series, &ChartOptions::default());
            match out {
                None => outln!("{svg}"),
                Some(path) => std::fs::write(&path, svg)
                    .with_context(|| format!("could not write {}", path.display()))?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks each item in turn. On a terminal a bad answer is asked again; from a pipe it is
/// an error (nothing is stored).
fn ask(inst: &Instrument) -> anyhow::Result<Vec<Option<u8>>> {
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stderr();
    writeln!(out, "{}\n{}\n", inst.name, inst.preamble)?;
    let mut answers = Vec::with_capacity(inst.items.len());
    for item in &inst.items {
        let options = item.options.as_ref().unwrap_or(&inst.options);
        loop {
            writeln!(out, "{}. {}", item.number, item.text)?;
            for o in options {
                writeln!(out, "   {} = {}", o.value, o.label)?;
            }
            write!(out, "> ")?;
            out.flush()?;
            let line = lines
                .next()
                .ok_or_else(|| {
                    anyhow!(
                        "input ended before item {}; nothing was stored",
                        item.number
                    )
                })?
                .context("could not read the answer")?;
            let text = line.trim();
            match text.parse::<u8>() {
                Ok(v) if options.iter().any(|o| o.value == v) => {
                    answers.push(Some(v));
                    break;
                }
                _ if interactive => writeln!(out, "Please answer with one of the numbers shown.")?,
                _ => bail!(
                    "item {}: {text:?} is not one of the allowed answers; nothing was stored",
                    item.number
                ),
            }
        }
    }
    // Reuse the instrument's own validation (skip rules, counts) before storing.
    let csv: Vec<String> = answers
        .iter()
        .map(|a| a.map(|v| v.to_string()).unwrap_or_default())
        .collect();
    parse_answers_csv(inst, &csv.join(","))?;
    Ok(answers)
}
