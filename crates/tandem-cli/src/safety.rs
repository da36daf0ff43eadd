//! `tandem safety`: screen JSON lines, evaluate a labelled set, print the protocol.

use anyhow::{anyhow, Context};
use clap::Subcommand;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tandem_safety::{evaluate, screen_json_line, SafetyEngine};

#[derive(Subcommand, Debug)]
pub enum SafetyCommand {
    /// Screen JSON lines {"id","text","context":[...]} from stdin; one verdict line per input
    Screen,
    /// Evaluate labelled cases (the screen input plus "expected": {"level","categories"})
    Eval {
        #[arg(long, value_name = "FILE")]
        cases: PathBuf,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the whole crisis protocol as Markdown, for a service to publish
    Protocol,
}

pub fn engine() -> anyhow::Result<SafetyEngine> {
    SafetyEngine::load_default().map_err(|e| anyhow!("the safety data failed to load: {e}"))
}

pub fn run(cmd: SafetyCommand) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    match cmd {
        SafetyCommand::Screen => {
            let stdin = std::io::stdin();
            let mut out = std::io::stdout().lock();
            for line in stdin.lock().lines() {
                let line = line.context("could not read standard input")?;
                if line.trim().is_empty() {
                    continue;
                }
                writeln!(out, "{}", screen_json_line(&engine, &line))?;
                out.flush()?;
            }
        }
        SafetyCommand::Eval { cases, json } => {
            let text = std::fs::read_to_string(&cases)
                .with_context(|| format!("could not read {}", cases.display()))?;
            let report = evaluate(&engine, &text).map_err(|e| anyhow!("{e}"))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!("{report}");
            }
        }
        SafetyCommand::Protocol => {
            use std::io::Write as _;
            write!(std::io::stdout(), "{}", engine.protocol_markdown())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
