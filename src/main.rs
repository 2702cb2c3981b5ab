//! The `edl` command: subcommands only. Each builds [`Settings`] and hands them on.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Datelike;
use clap::{Parser, Subcommand, ValueEnum};

use edl::accounts::{self, password, AccountEmail, Role};
use edl::config::{RawSettings, Settings};
use edl::mail::transport::Transport;
use edl::mail::Mailer;
use edl::releases::calendar::{parse_year_month, PatchTuesday};
use edl::startup::{self, Application, Options};
use edl::{db, mail, telemetry};

#[derive(Parser)]
#[command(
    name = "edl",
    version,
    about = "Runs a project's security early-disclosure list."
)]
struct Cli {
    /// Configuration file (default: ./edl.toml when it exists). Also EDL_CONFIG.
    #[arg(long, global = true, env = "EDL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web service with its mail workers and scheduler.
    Serve,
    /// Run mail workers only, to scale delivery out across processes.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print upcoming Patch Tuesdays with their early-disclosure dates.
    Calendar {
        /// First month, as YYYY-MM (default: the current month in the list's time zone).
        #[arg(long)]
        from: Option<String>,
        /// How many months to print.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=600))]
        months: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Email templates and delivery.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Print the effective settings, with secrets masked, and where each came from.
    CheckConfig,
    /// Working-group accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Security releases.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Plan a release. Patch Tuesday by default, on the next one with its full lead time.
    Plan {
        /// patch-tuesday, zero-day or third-party.
        #[arg(long, default_value = "patch-tuesday")]
        kind: String,
        #[arg(long)]
        title: String,
        /// A release line, e.g. 1.9.5; repeat for several.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// A later Patch Tuesday, as YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// For a 0-day: when it ships; for a third-party release: the embargo lift (RFC 3339).
        #[arg(long)]
        at: Option<String>,
        /// The upstream whose embargo a third-party release follows, e.g. envoy.
        #[arg(long)]
        upstream: Option<String>,
        /// Hours of member notice for a 0-day.
        #[arg(long, default_value_t = 0)]
        notice_hours: u32,
        /// Members may deploy the fix to infrastructure they host during the embargo.
        #[arg(long)]
        members_may_deploy: bool,
        /// The account planning it (a release manager).
        #[arg(long = "as")]
        by: String,
    },
    /// List releases.
    List,
    /// Show one release: times, advisories, patches, what blocks approval.
    Show { id: i64 },
    /// Approve the current revision of a release, as a second release manager.
    Approve {
        id: i64,
        /// The approving account: a release manager or admin other than the planner.
        #[arg(long = "as")]
        by: String,
        /// Read the approving account's password from standard input (required: an approval
        /// is a person's decision, so the person proves who they are).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input (one line).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// reviewer, approver, release-manager or admin; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts with their roles.
    List,
    /// Disable an account and end its sessions.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Replace an account's roles.
    SetRoles {
        #[arg(long)]
        email: String,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a new password from standard input and end the account's sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and name the first entry that does not match.
    Verify,
}

#[derive(Subcommand)]
enum MailCommand {
    /// List the email templates.
    List,
    /// Render an email template with its sample data.
    Preview {
        name: String,
        #[arg(long, value_enum, default_value_t = Part::All)]
        part: Part,
    },
    /// Queue a test message to an address and deliver it now, to check the mail settings.
    Test {
        #[arg(long)]
        to: String,
    },
    /// Count the messages in the outbox by state, and show the latest failures.
    Status,
}

#[derive(Clone, Copy, ValueEnum)]
enum Part {
    All,
    Subject,
    Text,
    Html,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let (settings, raw) = match Settings::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    for name in &raw.unknown_variables {
        tracing::warn!(variable = %name, "An EDL_ variable names no setting and is ignored; check its spelling.");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings, raw)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings, raw: RawSettings) -> Result<(), String> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Worker => worker(settings).await,
        Command::Migrate => {
            let pool = startup::prepare_database(&settings)
                .await
                .map_err(|e| e.to_string())?;
            drop(pool);
            println!(
                "The {} database is up to date.",
                settings.database_url.backend_name()
            );
            Ok(())
        }
        Command::Calendar { from, months, json } => {
            calendar(&settings, from.as_deref(), months, json)
        }
        Command::Mail { command } => mail_command(settings, command).await,
        Command::User { command } => user_command(settings, command).await,
        Command::Release { command } => release_command(settings, command).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let pool = startup::prepare_database(&settings)
                .await
                .map_err(|e| e.to_string())?;
            match db::run(&pool, edl::audit::verify).await.map_err(|e: db::DbError| e.to_string())? {
                edl::audit::Verification::Intact { entries, last_hash } => {
                    println!("The audit log is intact: {entries} entries, every hash matches.");
                    println!("Latest hash: {last_hash}");
                    println!("Record it elsewhere: a later rewrite of the log will not reproduce it.");
                    Ok(())
                }
                edl::audit::Verification::Broken { seq, id, reason } => Err(format!(
                    "the audit log does not verify: entry {seq} (row id {id}) is the first that does not match: {reason}"
                )),
            }
        }
        Command::CheckConfig => {
            for (name, value, source) in raw.describe(&settings) {
                println!("{name:<28} {value:<48} ({source})");
            }
            Ok(())
        }
    }
}

fn read_password_line(flag: bool) -> Result<String, String> {
    if !flag {
        return Err("give the password on standard input with --password-stdin".into());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password was given on standard input".into());
    }
    Ok(password)
}

fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    names.iter().map(|n| n.parse::<Role>()).collect()
}

async fn user_command(settings: Settings, command: UserCommand) -> Result<(), String> {
    let pool = startup::prepare_database(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let find_id = |email: String| {
        let pool = pool.clone();
        async move {
            let address = AccountEmail::parse(&email)?;
            db::run(&pool, move |c| accounts::find_by_email(c, address.as_str()))
                .await
                .map_err(|e: db::DbError| e.to_string())?
                .map(|a| a.id)
                .ok_or_else(|| format!("there is no account with the email {email}"))
        }
    };
    let actor = "cli";
    match command {
        UserCommand::Add {
            email,
            name,
            roles,
            password_stdin,
        } => {
            let email = AccountEmail::parse(&email)?;
            let roles = parse_roles(&roles)?;
            if name.trim().is_empty() {
                return Err("--name must not be empty".into());
            }
            let password = read_password_line(password_stdin)?;
            password::check_policy(&password, email.as_str(), &name).map_err(|e| e.to_string())?;
            let hash = password::Hasher::default().hash(password).await?;
            let shown = email.as_str().to_owned();
            db::run(&pool, move |c| {
                accounts::create(c, actor, &email, &name, &hash, &roles, false)
            })
            .await
            .map_err(|e: accounts::AccountError| e.to_string())?;
            println!("Created the account {shown}.");
            Ok(())
        }
        UserCommand::List => {
            let all = db::run(&pool, accounts::list)
                .await
                .map_err(|e: db::DbError| e.to_string())?;
            for a in all {
                let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<36} {:<24} {:<40} {}",
                    a.account.email,
                    a.account.name,
                    roles.join(","),
                    if a.account.disabled {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            let id = find_id(email.clone()).await?;
            db::run(&pool, move |c| accounts::set_disabled(c, actor, id, true))
                .await
                .map_err(|e: accounts::AccountError| e.to_string())?;
            println!("Disabled {email} and ended its sessions.");
            Ok(())
        }
        UserCommand::Enable { email } => {
            let id = find_id(email.clone()).await?;
            db::run(&pool, move |c| accounts::set_disabled(c, actor, id, false))
                .await
                .map_err(|e: accounts::AccountError| e.to_string())?;
            println!("Enabled {email}.");
            Ok(())
        }
        UserCommand::SetRoles { email, roles } => {
            let roles = parse_roles(&roles)?;
            let id = find_id(email.clone()).await?;
            db::run(&pool, move |c| accounts::set_roles(c, actor, id, &roles))
                .await
                .map_err(|e: accounts::AccountError| e.to_string())?;
            println!("Saved the roles of {email}.");
            Ok(())
        }
        UserCommand::ResetPassword {
            email,
            password_stdin,
        } => {
            let id = find_id(email.clone()).await?;
            let password = read_password_line(password_stdin)?;
            let (address, name) = db::run(&pool, move |c| accounts::find(c, id))
                .await
                .map_err(|e: db::DbError| e.to_string())?
                .map(|a| (a.account.email, a.account.name))
                .ok_or("the account disappeared")?;
            password::check_policy(&password, &address, &name).map_err(|e| e.to_string())?;
            let hash = password::Hasher::default().hash(password).await?;
            db::run(&pool, move |c| {
                accounts::set_password(c, actor, id, &hash, false, None, "account.password-reset")
            })
            .await
            .map_err(|e: accounts::AccountError| e.to_string())?;
            println!("Set a new password for {email} and ended its sessions.");
            Ok(())
        }
    }
}

/// The account named by `--as`, which must hold the release-manager or admin role.
async fn release_actor(
    pool: &db::DbPool,
    email: &str,
) -> Result<edl::releases::release::Actor, String> {
    let address = AccountEmail::parse(email)?;
    let found = db::run(pool, move |c| {
        let account = accounts::find_by_email(c, address.as_str())?;
        match account {
            Some(a) => Ok::<_, db::DbError>(Some((a.clone(), accounts::roles_of(c, a.id)?))),
            None => Ok(None),
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some((account, roles)) = found else {
        return Err(format!("there is no account with the email {email}"));
    };
    if account.disabled || !(roles.contains(&Role::ReleaseManager) || roles.contains(&Role::Admin))
    {
        return Err(format!(
            "{email} is not an enabled release manager or admin"
        ));
    }
    Ok(edl::releases::release::Actor {
        account_id: account.id,
        email: account.email,
    })
}

async fn release_command(settings: Settings, command: ReleaseCommand) -> Result<(), String> {
    use edl::releases::release::{self, Plan};
    let pool = startup::prepare_database(&settings)
        .await
        .map_err(|e| e.to_string())?;
    match command {
        ReleaseCommand::Plan {
            kind,
            title,
            lines,
            date,
            at,
            upstream,
            notice_hours,
            members_may_deploy,
            by,
        } => {
            let actor = release_actor(&pool, &by).await?;
            let patch_tuesday = date
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map_err(|_| format!("{d:?} is not a date as YYYY-MM-DD"))
                })
                .transpose()?;
            let release_at = at
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| format!("{t:?} is not a time such as 2026-12-08T16:00:00Z"))
                })
                .transpose()?;
            let upstream_id = match upstream {
                Some(slug) => {
                    let all = db::run(&pool, release::upstreams)
                        .await
                        .map_err(|e: db::DbError| e.to_string())?;
                    Some(
                        all.into_iter()
                            .find(|u| u.slug == slug)
                            .map(|u| u.id)
                            .ok_or(format!("there is no upstream {slug:?}"))?,
                    )
                }
                None => None,
            };
            let plan = Plan {
                kind,
                title,
                release_lines: lines,
                patch_tuesday,
                release_at,
                upstream_id,
                notice_hours,
                members_may_deploy,
                notes: String::new(),
            };
            let calendar = settings.calendar();
            let id = db::run(&pool, move |c| {
                Ok::<_, db::DbError>(release::plan(
                    c,
                    &calendar,
                    &plan,
                    &actor,
                    chrono::Utc::now(),
                ))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            println!("Planned release {id}. Add advisories and patches, then have a second release manager approve it.");
            Ok(())
        }
        ReleaseCommand::List => {
            let all = db::run(&pool, release::list)
                .await
                .map_err(|e: db::DbError| e.to_string())?;
            for r in all {
                let state = if r.cancelled_at.is_some() {
                    "cancelled".to_owned()
                } else if r.published_at.is_some() {
                    "public".to_owned()
                } else if r.approved_current() {
                    format!("approved rev {}", r.revision)
                } else {
                    format!("needs approval (rev {})", r.revision)
                };
                println!(
                    "{:>5}  {:<14} {}  {:<28} {}",
                    r.id,
                    r.kind,
                    r.release_at.format("%Y-%m-%d %H:%M UTC"),
                    state,
                    r.title
                );
            }
            Ok(())
        }
        ReleaseCommand::Show { id } => {
            let shown = db::run(&pool, move |c| {
                let Some(r) = release::find(c, id)? else {
                    return Ok::<_, db::DbError>(None);
                };
                let advisories = release::advisories_of(c, id)?;
                let patches = release::patches_of(c, id)?;
                let blockers = release::blockers(c, &r)?;
                Ok(Some((r, advisories, patches, blockers)))
            })
            .await
            .map_err(|e| e.to_string())?;
            let Some((r, advisories, patches, blockers)) = shown else {
                return Err(format!("there is no release {id}"));
            };
            println!(
                "{} ({}), revision {}{}",
                r.title,
                r.kind,
                r.revision,
                if r.approved_current() {
                    ", approved"
                } else {
                    ""
                }
            );
            println!(
                "public at         {} UTC",
                r.release_at.format("%Y-%m-%d %H:%M")
            );
            if let Some(d) = r.disclosure_at {
                println!("early disclosure  {} UTC", d.format("%Y-%m-%d %H:%M"));
            }
            println!("release lines     {}", r.release_lines);
            for a in advisories {
                println!(
                    "advisory          {} ({}): {}",
                    a.cve_id, a.severity, a.summary
                );
            }
            for p in patches {
                let origin = if p.upstream_id.is_some() {
                    "upstream"
                } else {
                    "project"
                };
                println!(
                    "patch             {} [{}] {} sha256:{}",
                    p.filename, p.release_line, origin, p.sha256
                );
            }
            for b in blockers {
                println!("blocks approval   {b}");
            }
            Ok(())
        }
        ReleaseCommand::Approve {
            id,
            by,
            password_stdin,
        } => {
            let actor = release_actor(&pool, &by).await?;
            let password = read_password_line(password_stdin)?;
            let account_id = actor.account_id;
            let stored = db::run(&pool, move |c| accounts::find(c, account_id))
                .await
                .map_err(|e: db::DbError| e.to_string())?
                .map(|a| a.account.password_hash)
                .ok_or("the account disappeared")?;
            if password::Hasher::default()
                .verify(password, Some(stored))
                .await
                == password::Verified::No
            {
                return Err(format!("the password of {by} is not right"));
            }
            let revision = db::run(&pool, move |c| {
                Ok::<_, db::DbError>(release::approve(c, id, &actor))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            println!("Approved revision {revision} of release {id}.");
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let base_url = settings.base_url.clone();
    let backend = settings.database_url.masked();
    let mail_dir = settings
        .smtp_url
        .is_none()
        .then(|| settings.mail_dir.clone());
    let app = Application::build(settings, Options::default())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(folder) = mail_dir {
        tracing::info!(folder = %folder.display(), "No SMTP server is configured: mail is written as .eml files. Set EDL_SMTP_URL to send it.");
    }
    let admins = db::run(&app.state.pool, accounts::active_admin_count)
        .await
        .map_err(|e: db::DbError| e.to_string())?;
    if admins == 0 {
        tracing::warn!("No admin account exists yet. Create one with: printf '%s\\n' 'A-LONG-PASSPHRASE' | edl user add --email you@example.org --name 'Your Name' --role admin --password-stdin");
    }
    tracing::info!(%base_url, port = app.port(), database = %backend, "Listening.");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn worker(settings: Settings) -> Result<(), String> {
    if settings.outbox.workers == 0 {
        return Err("EDL_OUTBOX_WORKERS is 0: this process would do nothing".into());
    }
    let pool = startup::prepare_database(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let transport = Transport::from_settings(&settings).map_err(|e| e.to_string())?;
    let mailer = Mailer::new(&settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers =
        startup::spawn_workers(&settings, &pool, &transport, &mailer, &stopped, "worker");
    let key = accounts::session::cookie_key(&settings).map_err(|e| e.to_string())?;
    let env = edl::membership::Env::new(&settings, mailer.clone(), key.signing().to_vec())
        .map_err(|e| e.to_string())?;
    workers.push(startup::spawn_scheduler(
        &settings,
        &pool,
        env,
        stopped.clone(),
    ));
    shutdown_signal().await;
    tracing::info!("Stopping: finishing the messages in hand.");
    startup::stop_workers(&stop, workers).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn calendar(
    settings: &Settings,
    from: Option<&str>,
    months: u32,
    json: bool,
) -> Result<(), String> {
    let calendar = settings.calendar();
    let (year, month) = match from {
        Some(value) => parse_year_month(value)?,
        None => {
            let today = chrono::Utc::now().with_timezone(&settings.timezone);
            (today.year(), today.month())
        }
    };
    let entries: Vec<PatchTuesday> = calendar.months_from(year, month, months);
    if json {
        let text = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{:<14} {:<18} {:<26} {:<26}",
        "Patch Tuesday", "Early disclosure", "Release", "Disclosure mailing"
    );
    for pt in entries {
        println!(
            "{:<14} {:<18} {:<26} {:<26}",
            pt.patch_tuesday.to_string(),
            pt.early_disclosure.to_string(),
            pt.release_local,
            pt.early_disclosure_local
        );
    }
    Ok(())
}

async fn mail_command(settings: Settings, command: MailCommand) -> Result<(), String> {
    let mailer = Mailer::new(&settings);
    match command {
        MailCommand::List => {
            for name in mailer.templates.names() {
                println!("{name}");
            }
            Ok(())
        }
        MailCommand::Preview { name, part } => {
            let mail = mailer.templates.preview(&name).map_err(|e| e.to_string())?;
            match part {
                Part::Subject => println!("{}", mail.subject),
                Part::Text => print!("{}", mail.text),
                Part::Html => print!("{}", mail.html),
                Part::All => {
                    println!(
                        "Subject: {}\n\n----- text/plain -----\n{}",
                        mail.subject, mail.text
                    );
                    println!("----- text/html -----\n{}", mail.html);
                }
            }
            Ok(())
        }
        MailCommand::Test { to } => mail_test(settings, mailer, &to).await,
        MailCommand::Status => {
            let pool = startup::prepare_database(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let (counts, recent) = db::run(&pool, |conn| {
                Ok((
                    mail::outbox::counts(conn)?,
                    mail::outbox::recent(conn, 200)?,
                ))
            })
            .await
            .map_err(|e: db::DbError| e.to_string())?;
            println!(
                "queued {}  sending {}  sent {}  failed {}",
                counts.queued, counts.sending, counts.sent, counts.failed
            );
            for row in recent
                .iter()
                .filter(|r| r.last_error.is_some() && r.status != "sent")
                .take(20)
            {
                println!(
                    "#{} {} to {} ({} attempts): {}",
                    row.id,
                    row.status,
                    mail::transport::mask_address(&row.recipient),
                    row.attempts,
                    row.last_error.as_deref().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// Queues one test message and runs a worker pass at once, reporting what happened.
async fn mail_test(settings: Settings, mailer: Mailer, to: &str) -> Result<(), String> {
    if to.parse::<lettre::Address>().is_err() {
        return Err(format!("{to:?} is not an email address"));
    }
    let pool = startup::prepare_database(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let transport = Transport::from_settings(&settings).map_err(|e| e.to_string())?;
    let (to_owned, enqueuer) = (to.to_owned(), mailer.clone());
    let id = db::run(&pool, move |conn| {
        enqueuer
            .enqueue(
                conn,
                "test_message",
                &to_owned,
                serde_json::json!({ "requested_by": "edl mail test" }),
                None,
            )
            .map_err(|e| match e {
                mail::MailError::Db(db) => db,
                other => db::DbError::Task(other.to_string()),
            })
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some(id) = id else {
        return Err("the test message was not queued".into());
    };
    let worker = edl::mail::worker::Worker::new(
        format!("cli:{}", std::process::id()),
        pool.clone(),
        transport.clone(),
        mailer.from.clone(),
        settings.outbox.clone(),
        mailer.wake.clone(),
    );
    // Only this message: other due mail is left to the running workers.
    worker.send_one(id).await.map_err(|e| e.to_string())?;
    let row = db::run(&pool, move |conn| mail::outbox::find(conn, id))
        .await
        .map_err(|e: db::DbError| e.to_string())?;
    match row {
        Some(row) if row.status == "sent" => {
            println!(
                "Sent through {} (Message-ID {}).",
                transport.describe(),
                row.message_id
            );
            Ok(())
        }
        Some(row) if row.status == "failed" => Err(format!(
            "not sent, and it will not be retried: {}",
            row.last_error.unwrap_or_default()
        )),
        Some(row) => Err(format!(
            "not sent yet ({}): {}; it stays in the outbox and a running worker retries it",
            row.status,
            row.last_error.unwrap_or_default()
        )),
        None => Err("the test message was not found in the outbox".into()),
    }
}
