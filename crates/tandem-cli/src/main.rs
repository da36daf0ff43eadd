//! `tandem`: the one program a deployer runs. Each subcommand is a thin layer over the
//! store, the vault and the server; errors are printed as one clear sentence (with what
//! to do) and a non-zero exit, never a panic.

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`tandem safety eval ... | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod admin;
mod config;
mod measure;
mod model;
mod safety;
mod serve;
mod talk;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tandem: a between-session companion for people in care with a human clinician.
///
/// Tandem is not a therapist and not an emergency service. Start with `tandem init`,
/// then `tandem serve`. With no configuration at all, `tandem serve` keeps its data in
/// ~/.local/share/tandem (SQLite) and listens on 127.0.0.1:8080.
#[derive(Parser, Debug)]
#[command(name = "tandem", version, about, long_about, propagate_version = true)]
struct Cli {
    /// Directory for the database, master key and config [env: TANDEM_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Config file to read instead of DATA_DIR/tandem.toml
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the data directory, a commented config file and a new master key
    Init,
    /// Run the web server until SIGINT/SIGTERM (then finish in-flight requests)
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long, value_name = "HOST:PORT")]
        bind: Option<String>,
    },
    /// Manage accounts
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage care teams (which clinicians see which patients)
    #[command(subcommand)]
    Team(admin::TeamCommand),
    /// Database maintenance
    #[command(subcommand)]
    Db(admin::DbCommand),
    /// Check the tamper-evident audit log
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Manage the master key
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Export or erase everything held about one patient
    #[command(subcommand)]
    Patient(admin::PatientCommand),
    /// Standard measures (PHQ-9, GAD-7, ...): score, fill in, schedule, chart
    #[command(subcommand)]
    Measure(measure::MeasureCommand),
    /// The safety layer: screen messages, evaluate a labelled set, print the crisis protocol
    #[command(subcommand)]
    Safety(safety::SafetyCommand),
    /// The language model: fetch the default model
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Talk to the companion on this terminal (with the full safety layer)
    Chat(talk::TalkArgs),
    /// Scripted conversation: JSON lines {"user": "..."} in, one JSON line per turn out
    Converse(talk::TalkArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    init_logging(serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. They carry ids and event kinds, never message text, names or
/// scores. `TANDEM_LOG` (or `RUST_LOG`) sets the filter.
fn init_logging(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = std::env::var("TANDEM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut over = config::Overrides {
        data_dir: cli.data_dir,
        config: cli.config,
        bind: None,
    };
    match cli.command {
        Command::Init => admin::init(&over).map(|_| ExitCode::SUCCESS),
        Command::Serve { bind } => {
            over.bind = bind;
            serve::run(&config::load(&over)?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(c) => admin::user(&config::load(&over)?, c).await,
        Command::Team(c) => admin::team(&config::load(&over)?, c).await,
        Command::Db(c) => admin::db(&config::load(&over)?, c).await,
        Command::Audit(c) => admin::audit(&config::load(&over)?, c).await,
        Command::Keys(c) => admin::keys(&config::load(&over)?, c).await,
        Command::Patient(c) => admin::patient(&config::load(&over)?, c).await,
        Command::Measure(c) => match c {
            // Scoring and listing need no data directory.
            measure::MeasureCommand::Score { .. } | measure::MeasureCommand::List => {
                measure::run(None, c).await
            }
            c => measure::run(Some(&config::load(&over)?), c).await,
        },
        Command::Safety(c) => safety::run(c),
        Command::Model(c) => model::run(&config::load(&over)?, c).await,
        Command::Chat(a) => talk::chat(&config::load(&over)?, a).await,
        Command::Converse(a) => talk::converse(&config::load(&over)?, a).await,
    }
}
