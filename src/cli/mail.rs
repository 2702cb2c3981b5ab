//! `edl mail list|preview|test|status`: templates and delivery.

use clap::{Subcommand, ValueEnum};

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbError};
use crate::domain::OutboxStatus;
use crate::mail::templates::MailTemplates;
use crate::mail::transport::{mask_address, Transport};
use crate::mail::worker::Worker;
use crate::mail::{outbox, MailError, Mailer};
use crate::openpgp::ListKey;
use crate::startup;

#[derive(Subcommand)]
pub enum MailCommand {
    /// List the email templates, one per line, each with what it is for.
    List,
    /// Render an email template with its sample data; without a name, list the templates.
    Preview {
        /// The template, as `edl mail list` names it, e.g. embargoed_release.
        name: Option<String>,
        /// Which part to print.
        #[arg(long, value_enum, default_value_t = Part::All)]
        part: Part,
        /// List the templates instead, as `edl mail list` does.
        #[arg(long, conflicts_with = "name")]
        list: bool,
    },
    /// Queue a test message to an address and deliver it now, to check the mail settings.
    Test {
        /// The address to send the test message to.
        #[arg(long)]
        to: String,
    },
    /// Count the messages in the outbox by state, and show the latest failures.
    Status,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Part {
    /// The subject, the text part and the HTML part, one after the other.
    All,
    /// The subject line alone.
    Subject,
    /// The text/plain part.
    Text,
    /// The text/html part.
    Html,
}

/// The templates, one per line: the name, then what it is for when the folder says so.
fn print_names(templates: &MailTemplates) {
    let names = templates.names();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for name in names {
        match templates.description(&name) {
            Some(about) => println!("{name:<width$}  {about}"),
            None => println!("{name}"),
        }
    }
}

pub async fn run(settings: Settings, command: MailCommand) -> Result<(), String> {
    // Listing and previewing sign nothing: they read the key if there is one, and never make
    // one (a key made by an operator's account could be unreadable by the service's).
    let templates = || -> Result<_, String> {
        let key = ListKey::existing(&settings).map_err(|e| e.to_string())?;
        let fingerprint = key.map_or_else(
            || "(the list key's fingerprint)".to_owned(),
            |k| crate::mail::grouped_fingerprint(&k.fingerprint),
        );
        Ok(Mailer::templates(&settings, &fingerprint))
    };
    match command {
        // `--list` cannot come with a name, so a preview without one lists.
        MailCommand::List | MailCommand::Preview { name: None, .. } => {
            print_names(&templates()?);
            Ok(())
        }
        MailCommand::Preview {
            name: Some(name),
            part,
            ..
        } => {
            let templates = templates()?;
            let names = templates.names();
            if !names.contains(&name) {
                return Err(format!(
                    "there is no email template named {name:?}; the templates are {}",
                    names.join(", ")
                ));
            }
            let mail = templates.preview(&name).map_err(|e| e.to_string())?;
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
        MailCommand::Test { to } => {
            let mailer = Mailer::new(&settings).map_err(|e| e.to_string())?;
            test(settings, mailer, &to).await
        }
        MailCommand::Status => {
            let pool = super::open_database(&settings).await?;
            let (counts, recent) = db::run(&pool, |conn| {
                Ok((outbox::counts(conn)?, outbox::recent(conn, 200)?))
            })
            .await
            .map_err(|e: DbError| e.to_string())?;
            println!(
                "queued {}  sending {}  sent {}  failed {}  held {}",
                counts.queued, counts.sending, counts.sent, counts.failed, counts.held
            );
            for row in recent
                .iter()
                .filter(|r| matches!(r.status, OutboxStatus::Failed | OutboxStatus::Queued))
                .filter(|r| r.last_error.is_some())
                .take(20)
            {
                println!(
                    "#{} {} to {} ({} attempts): {}",
                    row.id,
                    row.status,
                    mask_address(&row.recipient),
                    row.attempts,
                    row.last_error.as_deref().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// Queues one test message and sends it at once, reporting what happened.
async fn test(settings: Settings, mailer: Mailer, to: &str) -> Result<(), String> {
    if to.parse::<lettre::Address>().is_err() {
        return Err(format!("{to:?} is not an email address"));
    }
    let pool = super::open_database(&settings).await?;
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
                MailError::Db(db) => db,
                other => DbError::Task(other.to_string()),
            })
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some(id) = id else {
        return Err("the test message was not queued".into());
    };
    let ctx = super::context(&settings, Clock::system())?;
    let delivery = startup::delivery(&ctx, &pool, &transport);
    let worker = Worker::new(format!("cli:{}", std::process::id()), delivery);
    // Only this message: other due mail is left to the running workers.
    worker.send_one(id).await.map_err(|e| e.to_string())?;
    let row = db::run(&pool, move |conn| outbox::find(conn, id))
        .await
        .map_err(|e: DbError| e.to_string())?;
    match row {
        Some(row) if row.status == OutboxStatus::Sent => {
            println!(
                "Sent through {} (Message-ID {}).",
                transport.describe(),
                row.message_id
            );
            Ok(())
        }
        Some(row) if row.status == OutboxStatus::Failed => Err(format!(
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
