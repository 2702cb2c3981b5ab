//! Mail: templates render a message, the outbox holds it durably, workers deliver it through a
//! transport. Callers only ever enqueue, inside their own transaction, through [`Mailer`].

pub mod outbox;
pub mod smtp;
pub mod templates;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use lettre::message::Mailbox;
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::{DbConnection, DbError};
use crate::openpgp::{ListKey, OpenPgpError};
use outbox::NewMail;
use templates::{Globals, MailTemplates, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for MailError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// What makes a mail one member's copy of a release mail: the ledger reads these columns.
#[derive(Debug, Clone)]
pub struct ReleaseMail {
    pub dedupe_key: String,
    pub release_id: i64,
    pub member_id: i64,
    pub revision: i32,
    /// Patches attached when the message is sent, subject to the upstream rule's last check.
    pub attachments: Vec<i64>,
}

/// Renders and enqueues mail. Cheap to clone; shared by web handlers, the CLI and the scheduler.
#[derive(Clone)]
pub struct Mailer {
    pub templates: MailTemplates,
    pub from: Mailbox,
    /// The list's key: it signs every message the workers send.
    pub signer: Arc<ListKey>,
    id_domain: String,
    /// Wakes idle workers after a commit, so mail leaves without waiting for the next poll.
    pub wake: Arc<Notify>,
    /// Set when the mail server cannot be reached: every worker of the process waits it out.
    pub pause: Arc<worker::ServerPause>,
}

impl Mailer {
    /// A mailer signing with the list's key (loaded, or generated on first use; see
    /// [`ListKey::load_or_create`]).
    pub fn new(settings: &Settings) -> Result<Self, OpenPgpError> {
        Ok(Self::with_key(
            settings,
            Arc::new(ListKey::load_or_create(settings)?),
        ))
    }

    pub fn with_key(settings: &Settings, signer: Arc<ListKey>) -> Self {
        let id_domain = settings
            .base_url
            .host_str()
            .map(str::to_owned)
            .unwrap_or_else(|| settings.mail_from.email.domain().to_owned());
        Self {
            templates: Self::templates(settings, &grouped_fingerprint(&signer.fingerprint)),
            from: settings.mail_from.clone(),
            signer,
            id_domain,
            wake: Arc::new(Notify::new()),
            pause: Arc::default(),
        }
    }

    /// The templates as the list's mail renders them, with `fingerprint` (as people read it)
    /// in every footer.
    pub fn templates(settings: &Settings, fingerprint: &str) -> MailTemplates {
        let globals = Globals {
            list_name: settings.list_name.clone(),
            project_name: settings.project_name.clone(),
            base_url: settings.base_url.to_string(),
            list_key_fingerprint: fingerprint.to_owned(),
            security_contact: settings.security_contact.to_string(),
            timezone: settings.timezone,
        };
        MailTemplates::new(&globals, settings.templates_dir.as_deref())
    }

    /// Renders `template` for `recipient` and adds it to the outbox on `conn`, which should be
    /// inside the transaction of the change that causes the mail. Returns the outbox id, or
    /// `None` if a mail with the same dedupe key was enqueued before.
    pub fn enqueue(
        &self,
        conn: &mut DbConnection,
        template: &str,
        recipient: &str,
        context: impl Serialize,
        dedupe_key: Option<String>,
    ) -> Result<Option<i64>, MailError> {
        let mut mail = self.render(template, recipient, context)?;
        mail.dedupe_key = dedupe_key;
        Ok(outbox::enqueue(conn, &mail, &self.id_domain)?)
    }

    /// Renders `template` for `recipient`, to be queued with [`Mailer::enqueue_many`]: a
    /// caller that can render before its transaction keeps the transaction short.
    pub fn render(
        &self,
        template: &str,
        recipient: &str,
        context: impl Serialize,
    ) -> Result<NewMail, TemplateError> {
        Ok(NewMail {
            template: template.to_owned(),
            recipient: recipient.to_owned(),
            rendered: self.templates.render(template, context)?,
            dedupe_key: None,
            release_id: None,
            member_id: None,
            revision: None,
            attachments: Vec::new(),
        })
    }

    /// Enqueues one member's copy of a release mail, with the patches to attach.
    pub fn enqueue_for_member(
        &self,
        conn: &mut DbConnection,
        template: &str,
        recipient: &str,
        context: impl Serialize,
        release: ReleaseMail,
    ) -> Result<Option<i64>, MailError> {
        let rendered = self.templates.render(template, context)?;
        let mail = NewMail {
            template: template.to_owned(),
            recipient: recipient.to_owned(),
            rendered,
            dedupe_key: Some(release.dedupe_key),
            release_id: Some(release.release_id),
            member_id: Some(release.member_id),
            revision: Some(release.revision),
            attachments: release.attachments,
        };
        Ok(outbox::enqueue(conn, &mail, &self.id_domain)?)
    }

    /// Renders one member's copy of a release mail, to be queued with [`Mailer::enqueue_many`]:
    /// rendering happens outside the transaction that queues it.
    pub fn render_for_member(
        &self,
        template: &str,
        recipient: &str,
        context: impl Serialize,
        release: ReleaseMail,
    ) -> Result<NewMail, TemplateError> {
        Ok(NewMail {
            template: template.to_owned(),
            recipient: recipient.to_owned(),
            rendered: self.templates.render(template, context)?,
            dedupe_key: Some(release.dedupe_key),
            release_id: Some(release.release_id),
            member_id: Some(release.member_id),
            revision: Some(release.revision),
            attachments: release.attachments,
        })
    }

    /// Adds rendered mails to the outbox on `conn`, inside the caller's transaction, skipping
    /// those whose dedupe key is already there. Returns how many were added.
    pub fn enqueue_many(
        &self,
        conn: &mut DbConnection,
        mails: &[NewMail],
    ) -> Result<usize, MailError> {
        Ok(outbox::enqueue_many(conn, mails, &self.id_domain)?)
    }

    /// Call after committing a transaction that enqueued mail.
    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
    }
}

/// "ABCD 1234 …": a fingerprint as people read it aloud and compare it.
pub fn grouped_fingerprint(fingerprint: &str) -> String {
    fingerprint
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
