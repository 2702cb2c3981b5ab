//! The audit log: append-only, each entry chained to the one before by a SHA-256 hash over its
//! own fields and the previous hash. Entries are written in the transaction of the change they
//! record. Changing, removing or reordering any entry breaks the chain from that entry on, and
//! [`verify`] names the first entry that does not match.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::{audit_checkpoint, audit_log};
use crate::db::{DbConnection, DbError};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    pub id: i64,
    pub seq: i64,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewEntry<'a> {
    seq: i64,
    occurred_at: NaiveDateTime,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

/// What PostgreSQL answers for an entry written unlinked ([`crate::db::KeptPrepared`] is read
/// back, never executed by reference).
#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[allow(dead_code)]
    id: i64,
}

/// The hash of an entry: SHA-256 over a JSON array of the previous hash and every field, so
/// no two different entries serialise alike.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    occurred_at: NaiveDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let prev = serde_json::Value::from(prev_hash);
    let canonical = format!(
        "[{prev},{seq},{}",
        chain_tail(occurred_at, actor, action, subject, details)
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The part of an entry's hashed array that does not depend on its place in the chain: every
/// element after `seq`, and the closing bracket. PostgreSQL stores it with an entry it links
/// at commit (see [`record`]) and puts the head's hash and the next `seq` in front.
fn chain_tail(
    occurred_at: NaiveDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let time = occurred_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let fields = serde_json::json!([time, actor, action, subject, details]).to_string();
    // A JSON array's text always starts with its one-byte bracket.
    fields[1..].to_owned()
}

/// Appends an entry. Call it inside the transaction of the change it records.
///
/// The chain grows one entry at a time, in the order the transactions commit. On SQLite a
/// [`crate::db::write_transaction`] already holds the only write lock, so the entry is linked
/// as it is written. On PostgreSQL it is written unlinked, with its [`chain_tail`], and a
/// deferred trigger links it during COMMIT under the chain's lock (migration
/// `audit_chain_at_commit`): the lock is then held only for work inside the server, not over
/// round trips to this process. Until its transaction commits, the entry's `seq` and `hash`
/// are placeholders; nobody else sees it before then.
pub fn record(
    conn: &mut DbConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), DbError> {
    let occurred_at = crate::db::now();
    let details = details.to_string();
    if let DbConnection::Postgresql(pg) = conn {
        use diesel::sql_types::{Text, Timestamp};
        crate::db::kept_prepared(
            diesel::sql_query(
                "INSERT INTO audit_log \
                 (seq, occurred_at, actor, action, subject, details, prev_hash, hash, chain_tail) \
                 SELECT -n, $1, $2, $3, $4, $5, '', 'unlinked ' || n, $6 \
                 FROM (SELECT nextval('audit_log_unlinked') AS n) AS unlinked \
                 RETURNING id",
            )
            .bind::<Timestamp, _>(occurred_at)
            .bind::<Text, _>(actor)
            .bind::<Text, _>(action)
            .bind::<Text, _>(subject)
            .bind::<Text, _>(&details)
            .bind::<Text, _>(chain_tail(occurred_at, actor, action, subject, &details)),
        )
        .get_result::<Written>(pg)?;
        return Ok(());
    }
    let last: Option<(i64, String)> = audit_log::table
        .order(audit_log::seq.desc())
        .select((audit_log::seq, audit_log::hash))
        .first(conn)
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let hash = entry_hash(
        &prev_hash,
        seq,
        occurred_at,
        actor,
        action,
        subject,
        &details,
    );
    crate::db::kept_prepared(diesel::insert_into(audit_log::table).values(NewEntry {
        seq,
        occurred_at,
        actor,
        action,
        subject,
        details: &details,
        prev_hash: &prev_hash,
        hash: &hash,
    }))
    .execute(conn)?;
    Ok(())
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verification {
    /// Every entry matches; `last_hash` is the head of the chain, worth recording elsewhere.
    Intact {
        entries: i64,
        last_hash: String,
    },
    Broken {
        seq: i64,
        id: i64,
        reason: String,
    },
}

/// Walks the whole chain in order and names the first entry that does not match.
pub fn verify(conn: &mut DbConnection) -> Result<Verification, DbError> {
    walk(conn, 1, GENESIS.to_owned())
}

/// What the admin pages show: the chain checked from the last entry a page found intact (the
/// checkpoint), so a view costs the entries written since, not the whole log. The checkpoint's
/// own entry must still hash to the value recorded for it; if not, the whole chain is walked.
/// `edl audit verify` ([`verify`]) walks everything and trusts no checkpoint.
pub fn verify_since_checkpoint(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Verification, DbError> {
    let checkpoint: Option<(i64, String)> = audit_checkpoint::table
        .select((audit_checkpoint::seq, audit_checkpoint::hash))
        .first(conn)
        .optional()?;
    let start = match checkpoint.clone() {
        Some((0, _)) | None => None,
        Some((seq, hash)) => {
            // The checked entry must still be what was checked: its contents hash to the
            // recorded value. Otherwise trust nothing and walk from the start.
            let entry: Option<Entry> = audit_log::table
                .filter(audit_log::seq.eq(seq))
                .select(Entry::as_select())
                .first(conn)
                .optional()?;
            let unchanged = entry.is_some_and(|e| {
                e.hash == hash
                    && entry_hash(
                        &e.prev_hash,
                        e.seq,
                        e.occurred_at,
                        &e.actor,
                        &e.action,
                        &e.subject,
                        &e.details,
                    ) == hash
            });
            unchanged.then_some((seq + 1, hash))
        }
    };
    let outcome = match start {
        Some((seq, hash)) => walk(conn, seq, hash)?,
        None => verify(conn)?,
    };
    if let Verification::Intact { entries, last_hash } = &outcome {
        // The row is made by the migration; a page view only moves it forward, and writes it
        // only when entries were written since: on PostgreSQL every write is a commit to wait
        // for, and views at the same moment would queue for the one row.
        if checkpoint.as_ref() != Some(&(*entries, last_hash.clone())) {
            diesel::update(audit_checkpoint::table.filter(audit_checkpoint::id.eq(1)))
                .set((
                    audit_checkpoint::seq.eq(*entries),
                    audit_checkpoint::hash.eq(last_hash.as_str()),
                    audit_checkpoint::verified_at.eq(now),
                ))
                .execute(conn)?;
        }
    }
    Ok(outcome)
}

/// Walks the chain from entry `from_seq`, which must point to `prev` (the hash of the entry
/// before it, or the genesis value for the first).
fn walk(conn: &mut DbConnection, from_seq: i64, prev: String) -> Result<Verification, DbError> {
    const PAGE: i64 = 1000;
    let mut expected_prev = prev;
    let mut expected_seq = from_seq;
    loop {
        let page: Vec<Entry> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq.asc())
            .limit(PAGE)
            .select(Entry::as_select())
            .load(conn)?;
        if page.is_empty() {
            // Every stored entry is in the chain: one never linked (a `seq` below 1, as
            // PostgreSQL writes it until its commit links it) would otherwise go unchecked.
            let unlinked: Option<(i64, i64)> = audit_log::table
                .filter(audit_log::seq.lt(1))
                .select((audit_log::seq, audit_log::id))
                .first(conn)
                .optional()?;
            if let Some((seq, id)) = unlinked {
                return Ok(Verification::Broken {
                    seq,
                    id,
                    reason: "it was never linked into the chain".to_owned(),
                });
            }
            return Ok(Verification::Intact {
                entries: expected_seq - 1,
                last_hash: expected_prev,
            });
        }
        for entry in page {
            let broken = |reason: String| Verification::Broken {
                seq: entry.seq,
                id: entry.id,
                reason,
            };
            if entry.seq != expected_seq {
                return Ok(broken(format!("entry {expected_seq} is missing")));
            }
            if entry.prev_hash != expected_prev {
                return Ok(broken(
                    "it does not point to the entry before it".to_owned(),
                ));
            }
            let computed = entry_hash(
                &entry.prev_hash,
                entry.seq,
                entry.occurred_at,
                &entry.actor,
                &entry.action,
                &entry.subject,
                &entry.details,
            );
            if computed != entry.hash {
                return Ok(broken("its contents do not match its hash".to_owned()));
            }
            expected_prev = entry.hash;
            expected_seq += 1;
        }
    }
}

/// Filters for the audit page.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// One page of entries, newest first, and whether there are more.
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Entry>, bool), DbError> {
    let mut query = audit_log::table.into_boxed();
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::actor.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(audit_log::subject.eq(subject.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_log::occurred_at.lt(until));
    }
    let mut rows: Vec<Entry> = query
        .order(audit_log::seq.desc())
        .offset(page.clamp(0, 1_000_000).saturating_mul(per_page))
        .limit(per_page + 1)
        .select(Entry::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// The distinct actions recorded so far, in order, for the filter form. Each is the first
/// action after the one before it, found in the index on actions: a few dozen lookups however
/// long the log, where `SELECT DISTINCT` would read every entry.
pub fn actions(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let mut found: Vec<String> = Vec::new();
    loop {
        let mut next = audit_log::table
            .select(diesel::dsl::min(audit_log::action))
            .into_boxed();
        if let Some(last) = found.last() {
            next = next.filter(audit_log::action.gt(last.clone()));
        }
        match next.get_result::<Option<String>>(conn)? {
            Some(action) => found.push(action),
            None => return Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .and_then(|d| d.and_hms_micro_opt(10, 0, 0, 123_456))
            .expect("time");
        let base = entry_hash(GENESIS, 1, t, "admin@x", "login", "account:1", "{}");
        assert_eq!(base.len(), 64);
        assert_ne!(
            base,
            entry_hash("1", 1, t, "admin@x", "login", "account:1", "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 2, t, "admin@x", "login", "account:1", "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, t, "admin@y", "login", "account:1", "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, t, "admin@x", "logout", "account:1", "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, t, "admin@x", "login", "account:2", "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, t, "admin@x", "login", "account:1", "{\"a\":1}")
        );
        let later = t + chrono::Duration::microseconds(1);
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, later, "admin@x", "login", "account:1", "{}")
        );
        // Field boundaries cannot be shifted to forge the same hash.
        assert_ne!(
            entry_hash(GENESIS, 1, t, "ab", "c", "s", "{}"),
            entry_hash(GENESIS, 1, t, "a", "bc", "s", "{}")
        );
    }

    /// The hash is SHA-256 of the whole array as compact JSON, however it is put together:
    /// the split that lets PostgreSQL add the head at commit changes no hash.
    #[test]
    fn the_hash_is_of_the_whole_array_as_compact_json() {
        let t = chrono::NaiveDate::from_ymd_opt(2028, 2, 29)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 7))
            .expect("time");
        let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} unit \u{1f} \
                   del \u{7f} line \u{2028} é 漢 🦀 </script>";
        for (prev, seq) in [(GENESIS, 1), ("ab\"c", 42), (odd, i64::MAX)] {
            let whole = serde_json::json!([
                prev,
                seq,
                "2028-02-29T23:59:59.000007",
                odd,
                "act",
                "subject:1",
                odd
            ])
            .to_string();
            assert_eq!(
                entry_hash(prev, seq, t, odd, "act", "subject:1", odd),
                hex::encode(Sha256::digest(whole.as_bytes()))
            );
        }
    }
}
