//! The outbox worker: claim a batch, send each message, record each outcome. Runs inside
//! `edl serve` and alone in `edl worker`; any number may run against one PostgreSQL database.
//! Just before each message leaves, the worker asks the [`SendGuard`] it was given whether it
//! may, and what it attaches; the rules behind that answer belong to the features that queue
//! the mail, not to the mail layer.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use lettre::message::Mailbox;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::OutboxSettings;
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::mail::outbox::{self, OutboxRow};
use crate::mail::transport::{
    mask_address, mask_addresses, Attachment, Envelope, Seal, SendError, Transport,
};
use crate::openpgp::ListKey;

/// The answer of the last check before a message leaves.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Send it, with these files attached, sealed so.
    Send {
        attachments: Vec<Attachment>,
        seal: Seal,
    },
    /// Keep it back on purpose, with the reason (not a failure; nobody is alerted).
    Hold(String),
    /// Never send it: something in it must not leave (the reason is shown as a failure).
    Refuse(String),
    /// The check could not run (the database): try again shortly.
    Unchecked,
}

/// The last check before messages leave, run on a database connection at `now` for a batch of
/// rows at once: one verdict per row, in order.
pub type SendGuard = Arc<
    dyn Fn(&mut DbConnection, &[OutboxRow], NaiveDateTime) -> Result<Vec<Verdict>, DbError>
        + Send
        + Sync,
>;

/// How old the last check of a batch may be when one of its messages leaves: older, and the
/// rest of the batch is checked again first, so a cancelled release, a removed member or a
/// revoked key stops its mail within this time even behind a slow server.
const CHECK_FRESH_FOR: Duration = Duration::from_secs(1);

/// Sent messages are recorded several to a statement: once this many wait for their record,
/// or once the oldest of them left this long ago (while the next message is being sent, if
/// that takes longer), and all of them before the batch ends, is handed back or has its lease
/// renewed. One statement a message cost more database work than sealing the message did.
/// The price is the window after a crash: the messages that left in it (at most this many,
/// within this time, per worker) were not yet recorded and are sent again when their lease
/// ends, where a record a message left one.
const RECORD_SENT_EVERY: usize = 16;
const RECORD_SENT_WITHIN: Duration = Duration::from_millis(100);

/// What every worker of a process shares.
#[derive(Clone)]
pub struct Delivery {
    pub pool: DbPool,
    pub transport: Transport,
    pub from: Mailbox,
    pub settings: OutboxSettings,
    /// Wakes idle workers after a commit, so mail leaves without waiting for the next poll.
    pub wake: Arc<Notify>,
    /// The backoff the workers share while the mail server cannot be reached.
    pub pause: Arc<ServerPause>,
    pub guard: SendGuard,
    pub clock: Clock,
    /// The list's key, which signs every message.
    pub signer: Arc<ListKey>,
}

#[derive(Clone)]
pub struct Worker {
    pub name: String,
    pool: DbPool,
    transport: Transport,
    from: Mailbox,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    pause: Arc<ServerPause>,
    guard: SendGuard,
    clock: Clock,
    signer: Arc<ListKey>,
}

/// While the mail server cannot be reached, every worker waits until the same moment instead
/// of each message trying (and logging) on its own: the first message that finds the server
/// gone sets the pause, the rest of every batch goes back to the queue untouched, and the pause
/// doubles (up to the retry maximum) while the server stays away.
#[derive(Debug, Default)]
pub struct ServerPause {
    state: std::sync::Mutex<PauseState>,
}

#[derive(Debug, Default)]
struct PauseState {
    until: Option<NaiveDateTime>,
    failures: u32,
}

impl ServerPause {
    /// The moment sending may resume, if it is paused at `now`.
    pub fn until(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.until.filter(|until| *until > now)
    }

    fn server_gone(&self, now: NaiveDateTime, settings: &OutboxSettings) -> NaiveDateTime {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.failures = state.failures.saturating_add(1);
        let delay = outbox::backoff(state.failures, settings.retry_base, settings.retry_max);
        let until = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::minutes(1));
        state.until = Some(state.until.map_or(until, |u| u.max(until)));
        until
    }

    fn server_back(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = PauseState::default();
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub held: usize,
    /// Claimed but handed back untried, because the mail server could not be reached.
    pub released: usize,
}

impl Worker {
    pub fn new(name: String, delivery: Delivery) -> Self {
        Self {
            name,
            pool: delivery.pool,
            transport: delivery.transport,
            from: delivery.from,
            settings: delivery.settings,
            wake: delivery.wake,
            pause: delivery.pause,
            guard: delivery.guard,
            clock: delivery.clock,
            signer: delivery.signer,
        }
    }

    /// Works until `shutdown` turns true, then hands back what it had claimed but not sent.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %self.name, transport = %self.transport.describe(), "Outbox worker started.");
        while !*shutdown.borrow() {
            let claimed = match self.pass(Some(&shutdown)).await {
                Ok(pass) => pass.claimed,
                Err(error) => {
                    tracing::warn!(worker = %self.name, %error, "Outbox worker could not reach the database; it will try again.");
                    0
                }
            };
            if claimed == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        tracing::info!(worker = %self.name, "Outbox worker stopped.");
    }

    /// Claims one batch and delivers it. With a shutdown signal, stops between messages.
    pub async fn pass(&self, shutdown: Option<&watch::Receiver<bool>>) -> Result<Pass, DbError> {
        let (name, batch, lease, now) = (
            self.name.clone(),
            self.settings.batch_size,
            self.settings.lease,
            self.clock.now_naive(),
        );
        if self.pause.until(now).is_some() {
            // The mail server is away: nothing is claimed until the shared pause ends.
            return Ok(Pass::default());
        }
        let rows = Arc::new(
            db::run(&self.pool, move |conn| {
                outbox::claim(conn, &name, batch, lease, now)
            })
            .await?,
        );
        let mut pass = Pass {
            claimed: rows.len(),
            ..Pass::default()
        };
        let mut leased_at = std::time::Instant::now();
        let mut unrecorded = Unrecorded::default();
        // The last check: when it ran, the row it started at, a verdict per row from there.
        let mut checked: Option<(std::time::Instant, usize, Vec<Verdict>)> = None;
        // Rows another worker took over (their lease ran out): not ours to send.
        let mut lost: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for i in 0..rows.len() {
            let row = &rows[i];
            let paused = self.pause.until(self.clock.now_naive()).is_some();
            if paused || shutdown.is_some_and(|s| *s.borrow()) {
                self.record_sent(&mut unrecorded, leased_at).await?;
                // Hand the rest back untried (their attempts uncounted): on shutdown for
                // another worker, while paused for after the pause.
                let rest: Vec<i64> = rows[i..]
                    .iter()
                    .map(|r| r.id)
                    .filter(|id| !lost.contains(id))
                    .collect();
                let name = self.name.clone();
                pass.released +=
                    db::run(&self.pool, move |conn| outbox::release(conn, &rest, &name)).await?;
                break;
            }
            if leased_at.elapsed() > self.settings.lease / 2 {
                // What was sent under the lease that is ending is recorded under it.
                self.record_sent(&mut unrecorded, leased_at).await?;
                // Half the lease is gone: extend it for the rest of the batch at once, so a
                // long batch behind a slow server never outlives it.
                let rest: Vec<i64> = rows[i..]
                    .iter()
                    .map(|r| r.id)
                    .filter(|id| !lost.contains(id))
                    .collect();
                let (name, lease, now) = (
                    self.name.clone(),
                    self.settings.lease,
                    self.clock.now_naive(),
                );
                let asked = rest.clone();
                let ours = db::run(&self.pool, move |conn| {
                    outbox::renew(conn, &asked, &name, lease, now)
                })
                .await?;
                leased_at = std::time::Instant::now();
                let taken: Vec<i64> = rest.into_iter().filter(|id| !ours.contains(id)).collect();
                if !taken.is_empty() {
                    tracing::warn!(worker = %self.name, lost = taken.len(), "Outbox rows were taken over by another worker before they were sent; skipping them.");
                    lost.extend(taken);
                }
            }
            if lost.contains(&row.id) {
                continue;
            }
            let fresh = checked
                .as_ref()
                .is_some_and(|(at, _, _)| at.elapsed() <= CHECK_FRESH_FOR);
            if !fresh {
                let verdicts = self.check(rows.clone(), i).await;
                checked = Some((std::time::Instant::now(), i, verdicts));
            }
            let verdict = checked
                .as_mut()
                .and_then(|(_, start, verdicts)| verdicts.get_mut(i - *start))
                .map_or(Verdict::Unchecked, |v| {
                    std::mem::replace(v, Verdict::Unchecked)
                });
            if unrecorded.oldest_elapsed() >= RECORD_SENT_WITHIN {
                self.record_sent(&mut unrecorded, leased_at).await?;
            }
            // A send that takes longer than the rest of the window (a slow or stalled server)
            // does not hold back the record of those that left before it: they are recorded
            // while it waits.
            let send = self.deliver(row, verdict);
            tokio::pin!(send);
            let mut recorded = Ok(());
            let delivered = if unrecorded.is_empty() {
                send.await
            } else {
                let window = RECORD_SENT_WITHIN.saturating_sub(unrecorded.oldest_elapsed());
                tokio::select! {
                    delivered = &mut send => delivered,
                    () = tokio::time::sleep(window) => {
                        let (record, delivered) =
                            tokio::join!(self.record_sent(&mut unrecorded, leased_at), &mut send);
                        recorded = record;
                        delivered
                    }
                }
            };
            match delivered {
                (Outcome::Sent, encrypted) => {
                    pass.sent += 1;
                    unrecorded.push(row.id, encrypted);
                }
                (Outcome::Retry, _) => pass.retried += 1,
                (Outcome::Failed, _) => pass.failed += 1,
                (Outcome::Held, _) => pass.held += 1,
            }
            recorded?;
            if unrecorded.len() >= RECORD_SENT_EVERY {
                self.record_sent(&mut unrecorded, leased_at).await?;
            }
        }
        self.record_sent(&mut unrecorded, leased_at).await?;
        Ok(pass)
    }

    /// Sends one given row now, if it is due; `None` when it was not (already sent, or held
    /// by another worker).
    pub async fn send_one(&self, id: i64) -> Result<Option<Outcome>, DbError> {
        let (name, lease, now) = (
            self.name.clone(),
            self.settings.lease,
            self.clock.now_naive(),
        );
        let row = db::run(&self.pool, move |conn| {
            outbox::claim_one(conn, id, &name, lease, now)
        })
        .await?;
        match row {
            Some(row) => {
                let verdict = self
                    .check(Arc::new(vec![row.clone()]), 0)
                    .await
                    .pop()
                    .unwrap_or(Verdict::Unchecked);
                let (outcome, encrypted) = self.deliver(&row, verdict).await;
                if outcome == Outcome::Sent {
                    let mut unrecorded = Unrecorded::default();
                    unrecorded.push(row.id, encrypted);
                    self.record_sent(&mut unrecorded, std::time::Instant::now())
                        .await?;
                }
                Ok(Some(outcome))
            }
            None => Ok(None),
        }
    }

    /// Sends one row and records any outcome but a delivery, which it leaves to the caller
    /// ([`Self::record_sent`]): the outcome, and whether the message left encrypted.
    async fn deliver(&self, row: &OutboxRow, verdict: Verdict) -> (Outcome, bool) {
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let recipient = mask_address(&row.recipient);
        if attempts > self.settings.max_attempts {
            // Only reachable when workers died mid-send again and again.
            let reason = format!("gave up after {} attempts without a reply", attempts - 1);
            self.record(row.id, Record::Failed(reason.clone())).await;
            tracing::error!(outbox_id = row.id, %recipient, reason = %mask_addresses(&reason), "Mail marked failed.");
            return (Outcome::Failed, false);
        }
        let (attachments, seal) = match verdict {
            Verdict::Send { attachments, seal } => (attachments, seal),
            Verdict::Hold(reason) => {
                self.record(row.id, Record::Held(reason.clone())).await;
                tracing::info!(outbox_id = row.id, %recipient, reason = %mask_addresses(&reason), "Mail held back.");
                return (Outcome::Held, false);
            }
            Verdict::Refuse(reason) => {
                self.record(row.id, Record::Failed(reason.clone())).await;
                tracing::error!(outbox_id = row.id, %recipient, reason = %mask_addresses(&reason), "Mail refused.");
                return (Outcome::Failed, false);
            }
            Verdict::Unchecked => {
                let next = self.clock.now_naive() + chrono::Duration::seconds(30);
                let reason = "the check before sending could not run".to_owned();
                self.record(row.id, Record::Retry(reason, next)).await;
                return (Outcome::Retry, false);
            }
        };
        let envelope = Envelope {
            message_id: row.message_id.clone(),
            recipient: row.recipient.clone(),
            subject: row.subject.clone(),
            text: row.body_text.clone(),
            html: row.body_html.clone(),
            attachments,
            seal,
        };
        let encrypted = envelope.seal.is_encrypted();
        match self
            .transport
            .send(&self.from, envelope, &self.signer)
            .await
        {
            Ok(()) => {
                self.pause.server_back();
                tracing::info!(outbox_id = row.id, template = %row.template, %recipient, attempt = attempts, "Mail sent.");
                (Outcome::Sent, encrypted)
            }
            Err(SendError::Unreachable(reason)) if attempts < self.settings.max_attempts => {
                let until = self
                    .pause
                    .server_gone(self.clock.now_naive(), &self.settings);
                tracing::warn!(outbox_id = row.id, %recipient, attempt = attempts, reason = %mask_addresses(&reason), resume_at = %until, "The mail server cannot be reached; every worker waits before trying again.");
                self.record(row.id, Record::Retry(reason, until)).await;
                (Outcome::Retry, false)
            }
            Err(SendError::Transient(reason)) if attempts < self.settings.max_attempts => {
                let delay =
                    outbox::backoff(attempts, self.settings.retry_base, self.settings.retry_max);
                let next = self.clock.now_naive()
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::minutes(1));
                tracing::warn!(outbox_id = row.id, %recipient, attempt = attempts, reason = %mask_addresses(&reason), retry_in = ?delay, "Mail delivery failed; it will be retried.");
                self.record(row.id, Record::Retry(reason, next)).await;
                (Outcome::Retry, false)
            }
            Err(error) => {
                let reason = match error {
                    SendError::Transient(r) | SendError::Unreachable(r) => {
                        format!("gave up after {attempts} attempts: {r}")
                    }
                    SendError::Permanent(r) => r,
                };
                tracing::error!(outbox_id = row.id, %recipient, attempt = attempts, reason = %mask_addresses(&reason), "Mail marked failed.");
                self.record(row.id, Record::Failed(reason)).await;
                (Outcome::Failed, false)
            }
        }
    }

    /// Asks the guard whether the rows from `from` on may leave, and with which attachments: one
    /// verdict per row, `Unchecked` for all when the check itself could not run.
    async fn check(&self, rows: Arc<Vec<OutboxRow>>, from: usize) -> Vec<Verdict> {
        let (guard, now) = (self.guard.clone(), self.clock.now_naive());
        let count = rows.len().saturating_sub(from);
        match db::run(&self.pool, move |conn| guard(conn, &rows[from..], now)).await {
            Ok(verdicts) if verdicts.len() == count => verdicts,
            Ok(_) => vec![Verdict::Unchecked; count],
            Err(error) => {
                tracing::warn!(worker = %self.name, %error, "The check before sending could not run; the batch is retried shortly.");
                vec![Verdict::Unchecked; count]
            }
        }
    }

    /// Records the deliveries waiting in `unrecorded`, trying again until their lease would end
    /// (it was taken or last renewed at `leased_at`): losing the record would mean they are sent
    /// again when it expires, so the database gets every chance to come back meanwhile. If it
    /// does not, the error ends the pass, so no more mail leaves whose delivery could not be
    /// recorded.
    async fn record_sent(
        &self,
        unrecorded: &mut Unrecorded,
        leased_at: std::time::Instant,
    ) -> Result<(), DbError> {
        let sent = std::mem::take(unrecorded);
        let give_up = leased_at + self.settings.lease;
        for encrypted in [true, false] {
            let ids: Vec<i64> = sent
                .sent
                .iter()
                .filter(|(_, e)| *e == encrypted)
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            for attempt in 1u32.. {
                let (name, now, asked) = (self.name.clone(), self.clock.now_naive(), ids.clone());
                let result = db::run(&self.pool, move |conn| {
                    outbox::mark_sent(conn, &asked, &name, encrypted, now)
                })
                .await;
                match result {
                    Ok(recorded) => {
                        if recorded.len() < ids.len() {
                            tracing::warn!(worker = %self.name, rows = ids.len() - recorded.len(), "Outbox rows were no longer leased to this worker; their delivery was not recorded.");
                        }
                        break;
                    }
                    Err(error) => {
                        let wait =
                            (Duration::from_millis(200) * attempt).min(Duration::from_secs(5));
                        if std::time::Instant::now() + wait >= give_up {
                            tracing::error!(worker = %self.name, rows = ids.len(), %error, "Could not record deliveries; their rows will be claimed again when their lease expires.");
                            return Err(error);
                        }
                        tracing::warn!(worker = %self.name, rows = ids.len(), attempt, %error, "Could not record deliveries; trying again.");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes an outcome, trying again until the row's lease would end: after a send, losing
    /// the record would mean the row is sent again when its lease expires, so the database
    /// gets every chance to come back while the row is still this worker's.
    async fn record(&self, id: i64, record: Record) {
        let give_up = std::time::Instant::now() + self.settings.lease;
        for attempt in 1u32.. {
            let (name, record_now, now) =
                (self.name.clone(), record.clone(), self.clock.now_naive());
            let result = db::run(&self.pool, move |conn| match record_now {
                Record::Retry(reason, next) => {
                    outbox::mark_retry(conn, id, &name, &reason, next, now)
                }
                Record::Failed(reason) => outbox::mark_failed(conn, id, &name, &reason, now),
                Record::Held(reason) => outbox::mark_held(conn, id, &name, &reason, now),
            })
            .await;
            match result {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(outbox_id = id, worker = %self.name, "Outbox row was no longer leased to this worker; its outcome was not recorded.");
                    return;
                }
                Err(error) => {
                    let wait = (Duration::from_millis(200) * attempt).min(Duration::from_secs(5));
                    if std::time::Instant::now() + wait >= give_up {
                        break;
                    }
                    tracing::warn!(outbox_id = id, attempt, %error, "Could not record a mail outcome; trying again.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        tracing::error!(outbox_id = id, "Could not record a mail outcome; the row will be claimed again when its lease expires.");
    }
}

/// Messages that have left and wait for their record ([`RECORD_SENT_EVERY`]): each id, with
/// whether it left encrypted, and when the first of them left.
#[derive(Debug, Default)]
struct Unrecorded {
    sent: Vec<(i64, bool)>,
    since: Option<std::time::Instant>,
}

impl Unrecorded {
    fn push(&mut self, id: i64, encrypted: bool) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.sent.push((id, encrypted));
    }

    fn len(&self) -> usize {
        self.sent.len()
    }

    fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// How long the oldest has waited; zero when none does.
    fn oldest_elapsed(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |at| at.elapsed())
    }
}

#[derive(Debug, Clone)]
enum Record {
    Retry(String, NaiveDateTime),
    Failed(String),
    Held(String),
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry,
    Failed,
    Held,
}
