//! `edl serve`, `edl worker`, `edl migrate` and `edl check-config`: running the service.

use crate::accounts;
use crate::clock::Clock;
use crate::config::{RawSettings, SecurityContact, Settings};
use crate::db::{self, DbError};
use crate::mail::transport::Transport;
use crate::startup::{self, Application, Options};

/// Said once the service has started: development lets leak reports go to the sending address.
fn warn_about_the_security_contact(contact: &SecurityContact) {
    if let SecurityContact::SendingAddress(address) = contact {
        tracing::warn!(%address, "EDL_SECURITY_CONTACT is not set: pages and mail tell people to report a leak to the address mail is sent from. Set it to a mailbox the people who handle leaks read; production requires it.");
    }
}

pub async fn serve(settings: Settings) -> Result<(), String> {
    let contact = settings.security_contact.clone();
    let base_url = settings.base_url.clone();
    let backend = settings.database_url.masked();
    let mail_dir = settings
        .smtp_url
        .is_none()
        .then(|| settings.mail_dir.clone());
    let app = Application::build(settings, Options::default())
        .await
        .map_err(|e| e.to_string())?;
    // The web server listens for signals only once it is first polled, below; the mail workers
    // already run. Listened for from here, a SIGTERM in between stops the service as
    // gracefully as one later. (Before here, a signal stops the process at once, as it should
    // while start-up may wait on the database and nothing has been sent.)
    let stop = stop_requested();
    warn_about_the_security_contact(&contact);
    if let Some(folder) = mail_dir {
        tracing::info!(folder = %folder.display(), "No SMTP server is configured: mail is written as .eml files. Set EDL_SMTP_URL to send it.");
    }
    let admins = db::run(&app.state.pool, accounts::active_admin_count)
        .await
        .map_err(|e: DbError| e.to_string())?;
    if admins == 0 {
        tracing::warn!("No admin account exists yet. Create one with: printf '%s\\n' 'A-LONG-PASSPHRASE' | edl user add --email you@example.org --name 'Your Name' --role admin --password-stdin");
    }
    let handle = app.handle();
    let stopper = tokio::spawn(async move {
        stop.await;
        handle.stop(true).await;
    });
    tracing::info!(%base_url, port = app.port(), database = %backend, "Listening.");
    let result = app.run_until_stopped().await;
    stopper.abort();
    result.map_err(|e| e.to_string())
}

pub async fn worker(settings: Settings) -> Result<(), String> {
    if settings.outbox.workers == 0 {
        return Err("EDL_OUTBOX_WORKERS is 0: this process would do nothing".into());
    }
    let pool = super::open_database(&settings).await?;
    startup::bring_derived_facts_up_to_date(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let transport = Transport::from_settings(&settings).map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ctx = super::context(&settings, Clock::system())?;
    warn_about_the_security_contact(&ctx.settings.security_contact);
    // From the moment the workers start, a signal lets them finish what they hold.
    let stop_asked = stop_requested();
    let delivery = startup::delivery(&ctx, &pool, &transport);
    let mut workers = startup::spawn_workers(&ctx.settings, &delivery, &stopped, "worker");
    workers.extend(startup::spawn_checkpointer(
        &pool,
        &ctx.settings,
        stopped.clone(),
    ));
    workers.push(startup::spawn_scheduler(&pool, ctx, stopped.clone()));
    stop_asked.await;
    tracing::info!("Stopping: finishing the messages in hand.");
    startup::stop_workers(&stop, workers).await;
    Ok(())
}

pub async fn migrate(settings: Settings) -> Result<(), String> {
    let pool = super::open_database(&settings).await?;
    startup::bring_derived_facts_up_to_date(&pool)
        .await
        .map_err(|e| e.to_string())?;
    drop(pool);
    println!(
        "The {} database is up to date.",
        settings.database_url.backend_name()
    );
    Ok(())
}

pub fn check_config(settings: &Settings, raw: &RawSettings) -> Result<(), String> {
    for (name, value, source) in raw.describe(settings) {
        println!("{name:<28} {value:<48} ({source})");
    }
    Ok(())
}

/// Listens for SIGINT and SIGTERM from the moment it is called (so none sent before the
/// returned future is first awaited is missed); the future completes at the first of them.
fn stop_requested() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
