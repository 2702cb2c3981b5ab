//! The workflow context: what every workflow of the service needs besides a database
//! connection (settings, the embargo policy, the mailer, the link signer, the clock, and the
//! members' keys already judged). Built once at start and shared by the web handlers, the
//! scheduler and the CLI.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::links::LinkSigner;
use crate::mail::Mailer;
use crate::membership::policy::{Policy, PolicyError};
use crate::openpgp::member_key::Judgements;

#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub policy: Policy,
    pub mailer: Mailer,
    pub links: LinkSigner,
    pub clock: Clock,
    /// Members' keys found usable, shared by the mailing and the workers of this process, so a
    /// key judged when its mail is queued is not verified again when the mail leaves.
    pub keys: Arc<Judgements>,
    /// Wakes the scheduler before its next tick, e.g. when an approval makes a mailing due.
    scheduler: Arc<tokio::sync::Notify>,
    base_url: String,
}

impl Context {
    pub fn new(
        settings: Arc<Settings>,
        mailer: Mailer,
        link_key: Vec<u8>,
        clock: Clock,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            base_url: settings.base_url.as_str().trim_end_matches('/').to_owned(),
            policy: Policy::load(settings.membership.policy_file.as_deref())?,
            settings,
            mailer,
            links: LinkSigner::new(link_key),
            clock,
            keys: Arc::new(Judgements::default()),
            scheduler: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Asks the scheduler to run now rather than at its next tick (an approval after the
    /// early-disclosure moment mails members at once). Idempotent: a tick with nothing due
    /// does nothing.
    pub fn wake_scheduler(&self) {
        self.scheduler.notify_one();
    }

    /// Resolves when [`Self::wake_scheduler`] was called.
    pub async fn scheduler_woken(&self) {
        self.scheduler.notified().await;
    }

    /// An absolute address on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The list's time zone, for dates shown to people.
    /// An instant as people read it: in the list's zone, with UTC beside it.
    pub fn moment(&self, at: chrono::DateTime<chrono::Utc>) -> crate::releases::calendar::Moment {
        crate::releases::calendar::Moment::new(at, self.timezone())
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.settings.timezone
    }

    /// Where members report a leak (`EDL_SECURITY_CONTACT`); templates read the same value as
    /// the global `security_contact`.
    pub fn report_to(&self) -> String {
        self.settings.security_contact.to_string()
    }
}
