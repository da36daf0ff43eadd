//! Operator commands: accounts, teams, database, audit, keys, patient export and erasure.
//! Every command acts as `system:cli` in the audit log.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tandem_domain::{PatientId, Role, UserId, Username};
use tandem_store::{Actor, NewUser, SqlStore, Store, User};
use tandem_vault::{hash_password, MasterKey};

use crate::config::{self, Overrides, Settings, CONFIG_FILE};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account (asks for the password, or reads it from stdin)
    Add {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Login name: 3-64 characters of a-z, 0-9, '.', '_' or '-'
        #[arg(long)]
        name: String,
        /// Read the password from the first line of standard input (for scripts)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts
    List,
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Put a patient on a clinician's caseload
    Assign {
        /// Clinician login name or id
        #[arg(long)]
        clinician: String,
        /// Patient login name or id
        #[arg(long)]
        patient: String,
    },
    /// Put a clinician on call (or off with --off): crisis alerts nobody on the care team
    /// acknowledges in time (web.escalate_after_minutes) go to the clinicians on call
    OnCall {
        /// Clinician login name or id
        #[arg(long)]
        clinician: String,
        /// Take them off call
        #[arg(long)]
        off: bool,
    },
    /// List the clinicians on call
    OnCallList,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Apply pending schema migrations (serve also does this on start)
    Migrate,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 1 and name the first broken entry if it was tampered with
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Re-wrap every patient's data key under a new master key (data is not re-encrypted)
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum PatientCommand {
    /// Write everything held about a patient as readable JSON
    Export(ExportArgs),
    /// Destroy a patient's data key, then every row about them (cannot be undone)
    Erase(EraseArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Patient login name or id
    pub patient: String,
    /// Write to this file (created with mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EraseArgs {
    /// Patient login name or id
    pub patient: String,
    /// Skip the interactive confirmation (required when not on a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Why, for the audit log (e.g. "patient request 2026-11-27")
    #[arg(long)]
    pub reason: Option<String>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

fn cli_actor() -> Actor {
    Actor::system("cli")
}

pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("could not restrict permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// `tandem init`.
pub fn init(over: &Overrides) -> anyhow::Result<()> {
    let settings = config::load(over)?;
    ensure_data_dir(&settings.data_dir)?;
    let cfg = settings.data_dir.join(CONFIG_FILE);
    if cfg.exists() {
        outln!(
            "Config file {} already exists; left as it is.",
            cfg.display()
        );
    } else {
        std::fs::write(&cfg, config::template(&settings.data_dir))
            .with_context(|| format!("could not write {}", cfg.display()))?;
        outln!("Wrote commented config file {}", cfg.display());
    }
    MasterKey::generate().write_new(&settings.master_key_file)?;
    outln!(
        "Wrote new master key {} (mode 0600). Back it up separately from the database.",
        settings.master_key_file.display()
    );
    outln!("Next: `tandem user add --role clinician --name NAME`, then `tandem serve`.");
    Ok(())
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<SqlStore> {
    let key = MasterKey::load(&settings.master_key_file)?;
    open_store_with(settings, key).await
}

pub async fn open_store_with(settings: &Settings, key: MasterKey) -> anyhow::Result<SqlStore> {
    if settings.is_default_sqlite() {
        ensure_data_dir(&settings.data_dir)?;
    }
    Ok(SqlStore::open(settings.database_url.expose_secret(), key).await?)
}

/// A user by id or login name.
pub async fn find_user(store: &SqlStore, who: &str) -> anyhow::Result<User> {
    let found = match who.parse::<UserId>() {
        Ok(id) => store.user(id).await?,
        Err(_) => match Username::parse(who) {
            Ok(name) => store.user_credentials(&name).await?.map(|(u, _)| u),
            Err(_) => None,
        },
    };
    found.ok_or_else(|| anyhow!("no user {who:?}; `tandem user list` shows who exists"))
}

pub async fn find_patient(store: &SqlStore, who: &str) -> anyhow::Result<(User, PatientId)> {
    let user = find_user(store, who).await?;
    let id = user
        .patient_id()
        .ok_or_else(|| anyhow!("{who:?} is a {}, not a patient", user.role))?;
    Ok((user, id))
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        bail!("not on a terminal: pass --password-stdin and pipe the password in");
    }
    let pw = rpassword::prompt_password("Password: ").context("could not read the password")?;
    let again = rpassword::prompt_password("Again: ").context("could not read the password")?;
    if pw != again {
        bail!("the passwords did not match");
    }
    Ok(pw)
}

pub async fn user(settings: &Settings, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            role,
            name,
            password_stdin,
        } => {
            let username = Username::parse(&name)?;
            let password = read_password(password_stdin)?;
            let store = open_store(settings).await?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
            let user = store
                .create_user(
                    &cli_actor(),
                    NewUser {
                        username,
                        role,
                        password_hash: hash,
                    },
                )
                .await?;
            outln!("{}", user.id);
            eprintln!("Created {} {}.", user.role, user.username);
        }
        UserCommand::List => {
            let store = open_store(settings).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<36}  {:<9}  USERNAME", "ID", "ROLE")?;
            for u in store.list_users().await? {
                writeln!(out, "{:<36}  {:<9}  {}", u.id, u.role, u.username)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn team(settings: &Settings, cmd: TeamCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TeamCommand::Assign { clinician, patient } => {
            let store = open_store(settings).await?;
            let c = find_user(&store, &clinician).await?;
            let (p, pid) = find_patient(&store, &patient).await?;
            store.assign_care_team(&cli_actor(), c.id, pid).await?;
            outln!("{} is on the care team of {}.", c.username, p.username);
        }
        TeamCommand::OnCall { clinician, off } => {
            let store = open_store(settings).await?;
            let c = find_user(&store, &clinician).await?;
            store.set_on_call(&cli_actor(), c.id, !off).await?;
            if off {
                outln!("{} is off call.", c.username);
            } else {
                outln!("{} is on call.", c.username);
            }
        }
        TeamCommand::OnCallList => {
            let store = open_store(settings).await?;
            let ids = store.on_call().await?;
            if ids.is_empty() {
                outln!("Nobody is on call: overdue crisis alerts wait until someone is.");
            }
            for id in ids {
                if let Some(u) = store.user(id).await? {
                    outln!("{}", u.username);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn db(settings: &Settings, cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Migrate => {
            let key = MasterKey::load(&settings.master_key_file)?;
            if settings.is_default_sqlite() {
                ensure_data_dir(&settings.data_dir)?;
            }
            let store = SqlStore::connect(settings.database_url.expose_secret(), key).await?;
            let n = store.migrate().await?;
            outln!("Applied {n} migration(s); the schema is up to date.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(settings: &Settings, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify => {
            let store = open_store(settings).await?;
            let report = store.verify_audit().await?;
            match report.first_break {
                None => {
                    outln!(
                        "Audit log intact: {} entries verified.",
                        report.entries_checked
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    outln!(
                        "Audit log BROKEN at entry {}: {b}. {} entries before it verified.",
                        b.seq(),
                        report.entries_checked
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

pub async fn keys(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Rotate => {
            let store = open_store(settings).await?;
            let current = &settings.master_key_file;
            let next = sibling(current, "next");
            let new_key = MasterKey::generate();
            // The new key is on disk before any data key depends on it.
            new_key.write_new(&next).with_context(|| {
                format!(
                    "a previous rotation may have stopped half-way; if so, keep {} until you know which key the database uses",
                    next.display()
                )
            })?;
            let old_id = MasterKey::load(current)?.id();
            let n = match store.rotate_master_key(&cli_actor(), new_key.clone()).await {
                Ok(n) => n,
                Err(e) => {
                    // Nothing was re-wrapped: the transaction rolled back.
                    let _ = std::fs::remove_file(&next);
                    return Err(e.into());
                }
            };
            let retired = sibling(current, &format!("retired-{old_id}"));
            std::fs::rename(current, &retired).with_context(|| {
                format!(
                    "data keys now use {}; move it to {} by hand",
                    next.display(),
                    current.display()
                )
            })?;
            std::fs::rename(&next, current).with_context(|| {
                format!(
                    "data keys now use {}; move it to {} by hand",
                    next.display(),
                    current.display()
                )
            })?;
            outln!(
                "Re-wrapped {n} data key(s) under the new master key {} (id {}).",
                current.display(),
                new_key.id()
            );
            outln!(
                "The old key is at {}: destroy it once the new key is backed up (backups made before now need it).",
                retired.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

pub async fn patient(settings: &Settings, cmd: PatientCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PatientCommand::Export(args) => {
            let store = open_store(settings).await?;
            let (_, pid) = find_patient(&store, &args.patient).await?;
            let export = store.export_patient(&cli_actor(), pid).await?;
            let json = serde_json::to_string_pretty(&export)?;
            match args.out {
                None => outln!("{json}"),
                Some(path) => {
                    write_private(&path, json.as_bytes())?;
                    eprintln!("Wrote {}", path.display());
                }
            }
        }
        PatientCommand::Erase(args) => {
            let store = open_store(settings).await?;
            let (user, pid) = find_patient(&store, &args.patient).await?;
            if !args.yes {
                if !std::io::stdin().is_terminal() {
                    bail!("erasure cannot be undone: pass --yes to confirm when not on a terminal");
                }
                eprint!(
                    "This destroys everything held about {} and cannot be undone. Type the login name to confirm: ",
                    user.username
                );
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if line.trim() != user.username.as_str() {
                    bail!("not confirmed; nothing was erased");
                }
            }
            let mut actor = cli_actor();
            actor.reason = args.reason;
            let report = store.erase_patient(&actor, pid).await?;
            outln!(
                "Erased patient {}: data key destroyed, {} row(s) deleted; the audit log records the erasure.",
                report.patient, report.rows_deleted
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("could not write {}", path.display()))
}
