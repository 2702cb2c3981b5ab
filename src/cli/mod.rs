//! The `edl` command line: the argument grammar, and one module per command group. Each
//! command builds what it needs from [`Settings`], calls the workflow that owns the rule, and
//! prints the outcome; role checks go through the route table's access rules.

mod audit;
mod calendar;
mod mail;
mod member;
mod openpgp;
mod release;
mod serve;
mod upstream;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{RawSettings, Settings};
use crate::db::DbPool;
use crate::startup;

#[derive(Parser)]
#[command(
    name = "edl",
    version,
    about = "Runs a project's security early-disclosure list."
)]
pub struct Cli {
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
    Calendar(calendar::Args),
    /// Email templates and delivery.
    Mail {
        #[command(subcommand)]
        command: mail::MailCommand,
    },
    /// Print the effective settings, with secrets masked, and where each came from.
    CheckConfig,
    /// Working-group accounts.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Security releases.
    Release {
        #[command(subcommand)]
        command: release::ReleaseCommand,
    },
    /// Member organisations: the roster as a table, CSV or JSON.
    Member {
        #[command(subcommand)]
        command: member::MemberCommand,
    },
    /// Upstreams whose embargoed fixes are withheld: their trees, and the project's own paths.
    Upstream {
        #[command(subcommand)]
        command: upstream::UpstreamCommand,
    },
    /// The list's OpenPGP key, which signs every mail.
    Openpgp {
        #[command(subcommand)]
        command: openpgp::OpenPgpCommand,
    },
}

/// Runs a parsed command line; the exit code says how it went.
pub fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init();
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
    match runtime.block_on(dispatch(cli.command, settings, raw)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, settings: Settings, raw: RawSettings) -> Result<(), String> {
    match command {
        Command::Serve => serve::serve(settings).await,
        Command::Worker => serve::worker(settings).await,
        Command::Migrate => serve::migrate(settings).await,
        Command::CheckConfig => serve::check_config(&settings, &raw),
        Command::Calendar(args) => calendar::run(&settings, args),
        Command::Mail { command } => mail::run(settings, command).await,
        Command::User { command } => user::run(settings, command).await,
        Command::Release { command } => release::run(settings, command).await,
        Command::Audit { command } => audit::run(settings, command).await,
        Command::Member { command } => member::run(settings, command).await,
        Command::Upstream { command } => upstream::run(settings, command).await,
        Command::Openpgp { command } => openpgp::run(settings, command).await,
    }
}

/// The database, migrated, or the reason it cannot be used.
async fn open_database(settings: &Settings) -> Result<DbPool, String> {
    startup::prepare_database(settings)
        .await
        .map_err(|e| e.to_string())
}

/// What a command that renders or queues mail needs, as `edl serve` builds it: the settings,
/// the mailer with the list's key, the link key and the clock.
fn context(settings: &Settings, clock: crate::clock::Clock) -> Result<crate::app::Context, String> {
    let mailer = crate::mail::Mailer::new(settings).map_err(|e| e.to_string())?;
    let key = crate::accounts::session::cookie_key(settings).map_err(|e| e.to_string())?;
    crate::app::Context::new(
        std::sync::Arc::new(settings.clone()),
        mailer,
        key.signing().to_vec(),
        clock,
    )
    .map_err(|e| e.to_string())
}

/// One line from standard input: where passwords come from, never the command line (the
/// commands that read one require `--password-stdin`, so that nobody is surprised).
fn read_password_line() -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every argument of every command, as "edl SUB … --arg", that `--help` shows bare.
    fn arguments_without_help(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            // clap's own --help and --version describe themselves.
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                let shown = arg
                    .get_long()
                    .map_or_else(|| id.to_uppercase(), |long| format!("--{long}"));
                out.push(format!("{path} {shown}"));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            arguments_without_help(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_of_every_command_has_a_help_line() {
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        arguments_without_help(&command, "edl", &mut missing);
        assert!(
            missing.is_empty(),
            "these arguments have no help text:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn the_command_line_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
