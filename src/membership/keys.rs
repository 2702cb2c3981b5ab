//! A member's OpenPGP key kept current. A key handed in through the signed key link takes
//! effect only once the member proves it holds the key, by typing back a code the list
//! encrypted to it; keys close to their expiry are reminded of once per key; an admin can mail
//! a member a fresh key link; and what pages show of a stored key is decided here.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use pgp::composed::ArmorOptions;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::accounts::session::CurrentUser;
use crate::app::Context;
use crate::audit;
use crate::db::schema::{member_key_changes, members, outbox};
use crate::db::{self, DbConnection, DbError};
use crate::domain::MemberStatus;
use crate::mail::{grouped_fingerprint, MailError};
use crate::membership::members::{self as roster, Member};
use crate::membership::FlowError;
use crate::openpgp::member_key;

/// How long the code encrypted to a new key can be typed back.
pub const CODE_MINUTES: i64 = 30;
/// Wrong codes allowed before a pending change is void.
pub const MAX_ATTEMPTS: i32 = 5;
/// A key expiring within this many days is flagged to admins and reminded of by mail.
pub const EXPIRY_NOTICE_DAYS: i64 = 30;
/// Length of the code, from an alphabet without look-alikes (no 0/O, 1/I/L).
pub const CODE_LENGTH: usize = 8;
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No member behind the link or id.
    #[error("not found")]
    NotFound,
    #[error("This organisation is no longer a member of the list, so its key cannot be changed.")]
    Removed,
    /// The key cannot be used for the member's address now: every problem, with its fix.
    #[error("{0}")]
    Unusable(String),
    /// A code that does not match; the attempt is counted.
    #[error("That is not the code. Decrypt the message shown and type what it prints; {attempts_left} {} left.", if *attempts_left == 1 { "try" } else { "tries" })]
    WrongCode { attempts_left: i32 },
    /// The pending change can no longer be confirmed (used, expired, too many wrong codes,
    /// replaced by a newer one): why, and what to do.
    #[error("{0}")]
    Void(String),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for KeyError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

// Follows the policy written in `src/error.rs`: 422 for a value to fix (beside its field),
// 409 for a state that forbids the change, 404 for a member that does not exist.
/// The member a key link or an admin acts for, if it is still on the list: a removed member's
/// links do nothing. Suspended members may still change their key.
pub fn member_for_link(conn: &mut DbConnection, member_id: i64) -> Result<Member, KeyError> {
    let member = roster::find(conn, member_id)?.ok_or(KeyError::NotFound)?;
    if member.status == MemberStatus::Removed {
        return Err(KeyError::Removed);
    }
    Ok(member)
}

/// How long a link to replace a member's key stays valid.
pub const KEY_LINK_DAYS: i64 = 14;

/// A signed link by which `member_id` can give a new key, valid for [`KEY_LINK_DAYS`] from
/// `now`, and when it expires.
pub fn key_link(ctx: &Context, member_id: i64, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let expires = now + Duration::days(KEY_LINK_DAYS);
    let token = ctx.links.key_link(member_id, expires.timestamp());
    (ctx.url(&format!("/members/key/{token}")), expires)
}

/// A new key waiting for its code.
#[derive(Debug, Clone, Serialize)]
pub struct PendingChange {
    pub id: i64,
    /// Upper-case hex.
    pub fingerprint: String,
    pub expires_at: NaiveDateTime,
    pub attempts_left: i32,
}

/// What the member is shown after handing in a usable key.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub change: PendingChange,
    /// The code, signed by the list and encrypted to the new key, ASCII-armored.
    pub challenge: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = member_key_changes)]
struct KeyChange {
    id: i64,
    pgp_key: String,
    fingerprint: String,
    code_sha256: String,
    attempts: i32,
    expires_at: NaiveDateTime,
    confirmed_at: Option<NaiveDateTime>,
}

fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..CODE_LENGTH)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// The SHA-256 of a code as typed: spaces and dashes dropped, case ignored.
fn code_hash(typed: &str) -> String {
    let normalized: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// Takes a key the member handed in. A key that cannot be used for the member's address now
/// is refused with every problem; a usable one is kept aside, not used, and a code is
/// encrypted to it for the member to type back ([`confirm`]). A new request voids the ones
/// before it.
pub fn propose(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    armored: &str,
) -> Result<Proposal, KeyError> {
    let now = ctx.clock.now();
    let member = member_for_link(conn, member_id)?;
    let alias = member.security_alias.as_str().to_owned();
    let key = member_key::usable(armored, &alias, now).map_err(KeyError::Unusable)?;
    let stored = key
        .key
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| KeyError::Unusable(format!("The key could not be stored: {e}.")))?;
    let code = new_code();
    // Signing and encrypting is CPU work only, done before the write transaction starts.
    let challenge = ctx
        .mailer
        .signer
        .sign_and_encrypt(format!("{code}\n").into_bytes(), &key)
        .map_err(|error| {
            tracing::warn!(member_id, fingerprint = %key.fingerprint, %error, "A member's new key passed the checks but a code could not be encrypted to it.");
            KeyError::Unusable(
                "The list could not encrypt to this key. Make sure its encryption subkey is \
                 Curve25519 or RSA, export it again, and paste it once more."
                    .to_owned(),
            )
        })?;
    let created_at = now.naive_utc();
    let expires_at = created_at + Duration::minutes(CODE_MINUTES);
    let id = db::write_transaction(conn, |conn| {
        member_for_link(conn, member_id)?;
        diesel::update(
            member_key_changes::table
                .filter(member_key_changes::member_id.eq(member_id))
                .filter(member_key_changes::confirmed_at.is_null())
                .filter(member_key_changes::expires_at.gt(created_at)),
        )
        .set(member_key_changes::expires_at.eq(created_at))
        .execute(conn)?;
        let id: i64 = diesel::insert_into(member_key_changes::table)
            .values((
                member_key_changes::member_id.eq(member_id),
                member_key_changes::pgp_key.eq(&stored),
                member_key_changes::fingerprint.eq(&key.fingerprint),
                member_key_changes::code_sha256.eq(code_hash(&code)),
                member_key_changes::attempts.eq(0),
                member_key_changes::created_at.eq(created_at),
                member_key_changes::expires_at.eq(expires_at),
            ))
            .returning(member_key_changes::id)
            .get_result(conn)?;
        audit::record(
            conn,
            &alias,
            "member.key-submitted",
            &format!("member:{member_id}"),
            json!({ "change": id, "fingerprint": key.fingerprint }),
        )?;
        Ok::<_, KeyError>(id)
    })?;
    Ok(Proposal {
        change: PendingChange {
            id,
            fingerprint: key.fingerprint,
            expires_at,
            attempts_left: MAX_ATTEMPTS,
        },
        challenge,
    })
}

/// A pending change of `member_id` that can still be confirmed at `now`.
pub fn open_change(
    conn: &mut DbConnection,
    member_id: i64,
    change_id: i64,
    now: NaiveDateTime,
) -> Result<Option<PendingChange>, DbError> {
    Ok(member_key_changes::table
        .filter(member_key_changes::id.eq(change_id))
        .filter(member_key_changes::member_id.eq(member_id))
        .filter(member_key_changes::confirmed_at.is_null())
        .filter(member_key_changes::expires_at.gt(now))
        .filter(member_key_changes::attempts.lt(MAX_ATTEMPTS))
        .select((
            member_key_changes::fingerprint,
            member_key_changes::expires_at,
            member_key_changes::attempts,
        ))
        .first::<(String, NaiveDateTime, i32)>(conn)
        .optional()?
        .map(|(fingerprint, expires_at, attempts)| PendingChange {
            id: change_id,
            fingerprint,
            expires_at,
            attempts_left: MAX_ATTEMPTS - attempts,
        }))
}

/// The key that took effect.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedKey {
    pub fingerprint: String,
    pub old_fingerprint: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
}

const VOID_UNKNOWN: &str =
    "There is no pending key change for this link any more. Paste the key again for a new code.";
const VOID_USED: &str =
    "This code was already used; the key it confirmed is the one in use. To change the key again, paste it again.";
const VOID_EXPIRED: &str =
    "The code has expired (it works for 30 minutes), or a newer code replaced it; the key was not changed. Paste the key again for a new code.";
const VOID_ATTEMPTS: &str =
    "Too many wrong codes: this key change is void and the key was not changed. Paste the key again for a new code.";

/// The member types back the code of pending change `change_id`. The right code within the
/// time and the tries allowed puts the key in use, tells the member's address, and is
/// audited; a wrong one is counted, and the fifth voids the change.
pub fn confirm(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    change_id: i64,
    typed: &str,
) -> Result<ChangedKey, KeyError> {
    let now = ctx.clock.now();
    let at = now.naive_utc();
    // The outer error rolls the transaction back; the inner one is a refusal that must be
    // committed first, so that a wrong code counts.
    let outcome = db::write_transaction(conn, |conn| {
        let member = member_for_link(conn, member_id)?;
        let alias = member.security_alias.as_str().to_owned();
        let subject = format!("member:{member_id}");
        let Some(change) = member_key_changes::table
            .filter(member_key_changes::id.eq(change_id))
            .filter(member_key_changes::member_id.eq(member_id))
            .select(KeyChange::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(Err(KeyError::Void(VOID_UNKNOWN.to_owned())));
        };
        if change.confirmed_at.is_some() {
            return Ok(Err(KeyError::Void(VOID_USED.to_owned())));
        }
        if change.expires_at <= at {
            return Ok(Err(KeyError::Void(VOID_EXPIRED.to_owned())));
        }
        if change.attempts >= MAX_ATTEMPTS {
            return Ok(Err(KeyError::Void(VOID_ATTEMPTS.to_owned())));
        }
        let right = bool::from(
            code_hash(typed)
                .as_bytes()
                .ct_eq(change.code_sha256.as_bytes()),
        );
        let open = member_key_changes::table
            .filter(member_key_changes::id.eq(change.id))
            .filter(member_key_changes::confirmed_at.is_null())
            .filter(member_key_changes::attempts.lt(MAX_ATTEMPTS));
        if !right {
            // Counted in the database, so parallel guesses are counted too.
            let counted = diesel::update(open)
                .set(member_key_changes::attempts.eq(member_key_changes::attempts + 1))
                .execute(conn)?;
            let attempts: i32 = member_key_changes::table
                .find(change.id)
                .select(member_key_changes::attempts)
                .first(conn)?;
            if counted == 1 && attempts < MAX_ATTEMPTS {
                return Ok(Err(KeyError::WrongCode {
                    attempts_left: MAX_ATTEMPTS - attempts,
                }));
            }
            if counted == 1 {
                audit::record(
                    conn,
                    &alias,
                    "member.key-change-void",
                    &subject,
                    json!({ "change": change.id, "fingerprint": change.fingerprint, "why": "too many wrong codes" }),
                )?;
            }
            return Ok(Err(KeyError::Void(VOID_ATTEMPTS.to_owned())));
        }
        // Judged again: the key may have expired or been replaced in the half hour since.
        if let Err(why) = member_key::usable(&change.pgp_key, &alias, now) {
            return Ok(Err(KeyError::Void(format!(
                "The key can no longer be used, so it was not put in use: {why}"
            ))));
        }
        let claimed = diesel::update(open)
            .set(member_key_changes::confirmed_at.eq(Some(at)))
            .execute(conn)?;
        if claimed != 1 {
            return Ok(Err(KeyError::Void(VOID_USED.to_owned())));
        }
        roster::set_key(conn, member_id, Some(&change.pgp_key))?;
        let stored = roster::find(conn, member_id)?.ok_or(KeyError::NotFound)?;
        let changed = ChangedKey {
            fingerprint: change.fingerprint.clone(),
            old_fingerprint: member.pgp_fingerprint.clone(),
            expires_at: stored.pgp_expires_at,
        };
        audit::record(
            conn,
            &alias,
            "member.key-changed",
            &subject,
            json!({
                "change": change.id,
                "old_fingerprint": changed.old_fingerprint,
                "new_fingerprint": changed.fingerprint,
            }),
        )?;
        ctx.mailer.enqueue(
            conn,
            "key_changed",
            &alias,
            json!({
                "org_name": member.org_name,
                "alias": alias,
                "fingerprint": grouped_fingerprint(&changed.fingerprint),
                "old_fingerprint": changed.old_fingerprint.as_deref().map(grouped_fingerprint),
                "expires_on": expiry_text(changed.expires_at),
                "changed_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "report_to": ctx.report_to(),
            }),
            Some(format!("key-changed:{}", change.id)),
        )?;
        Ok::<_, KeyError>(Ok(changed))
    })?;
    outcome
}

/// An admin mails a member a fresh key link, e.g. after the member asked for one.
pub fn send_key_link(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    admin: &CurrentUser,
) -> Result<(), KeyError> {
    let now = ctx.clock.now();
    db::write_transaction(conn, |conn| {
        let member = member_for_link(conn, member_id)?;
        let (url, expires) = key_link(ctx, member_id, now);
        ctx.mailer.enqueue(
            conn,
            "key_link",
            member.security_alias.as_str(),
            json!({
                "org_name": member.org_name,
                "alias": member.security_alias,
                "fingerprint": member.pgp_fingerprint.as_deref().map(grouped_fingerprint),
                "expires_on": expiry_text(member.pgp_expires_at),
                "key_url": url,
                "key_url_expires": ctx.moment(expires).local_date(),
                "policy_url": ctx.url("/embargo-policy"),
            }),
            None,
        )?;
        audit::record(
            conn,
            admin.actor(),
            "member.key-link-sent",
            &format!("member:{member_id}"),
            json!({ "expires": expires.format("%Y-%m-%d %H:%M UTC").to_string() }),
        )?;
        Ok(())
    })
}

/// Whether a key expiring at `expires_at` needs renewing soon (or already expired) at `now`.
pub fn expires_soon(expires_at: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    expires_at.is_some_and(|e| e <= now + Duration::days(EXPIRY_NOTICE_DAYS))
}

/// Mails each active member whose key expires within [`EXPIRY_NOTICE_DAYS`] (or has expired)
/// a reminder with a fresh key link, once per key: `key_reminder_for` records the key it was
/// sent for. Returns how many were queued.
pub fn remind_expiring(
    conn: &mut DbConnection,
    ctx: &Context,
    now: NaiveDateTime,
) -> Result<usize, FlowError> {
    let due: Vec<Member> = members::table
        .filter(members::status.eq(MemberStatus::Active))
        .filter(members::pgp_fingerprint.is_not_null())
        .filter(members::pgp_expires_at.le(now + Duration::days(EXPIRY_NOTICE_DAYS)))
        .select(Member::as_select())
        .load(conn)?;
    let mut queued = 0;
    for member in due {
        let (Some(fingerprint), Some(expires_at)) =
            (&member.pgp_fingerprint, member.pgp_expires_at)
        else {
            continue;
        };
        if member.key_reminder_for.as_ref() == Some(fingerprint) {
            continue;
        }
        let (url, link_expires) = key_link(ctx, member.id, now.and_utc());
        let sent = ctx.mailer.enqueue(
            conn,
            "key_expiring",
            member.security_alias.as_str(),
            json!({
                "org_name": member.org_name,
                "alias": member.security_alias,
                "fingerprint": grouped_fingerprint(fingerprint),
                "expires_on": ctx.moment(expires_at.and_utc()).local_date(),
                "expired": expires_at <= now,
                "key_url": url,
                "key_url_expires": ctx.moment(link_expires).local_date(),
                "policy_url": ctx.url("/embargo-policy"),
            }),
            Some(format!(
                "key-expiring:{}:{fingerprint}:{}",
                member.id,
                expires_at.and_utc().timestamp()
            )),
        )?;
        diesel::update(members::table.filter(members::id.eq(member.id)))
            .set(members::key_reminder_for.eq(Some(fingerprint)))
            .execute(conn)?;
        queued += usize::from(sent.is_some());
    }
    Ok(queued)
}

/// What a page shows of a member's stored key.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// In groups of four; `None` without a readable key.
    pub fingerprint: Option<String>,
    /// A date, "never", "no key", or that the stored key cannot be read.
    pub expires: String,
    /// Set when the key has expired or expires within [`EXPIRY_NOTICE_DAYS`].
    pub warning: Option<String>,
}

fn expiry_text(expires_at: Option<NaiveDateTime>) -> String {
    expires_at.map_or_else(|| "never".to_owned(), |e| e.format("%Y-%m-%d").to_string())
}

pub fn summary(member: &Member, now: NaiveDateTime) -> KeySummary {
    let Some(fingerprint) = &member.pgp_fingerprint else {
        let expires = if member.pgp_key.is_some() {
            "the stored key cannot be read"
        } else {
            "no key"
        };
        return KeySummary {
            fingerprint: None,
            expires: expires.to_owned(),
            warning: None,
        };
    };
    let warning = match member.pgp_expires_at {
        Some(e) if e <= now => Some(format!(
            "The key expired on {}: embargoed mail cannot be encrypted to it and is withheld until a new key is given.",
            e.format("%Y-%m-%d")
        )),
        e if expires_soon(e, now) => Some(format!(
            "The key expires on {}, within {EXPIRY_NOTICE_DAYS} days.",
            expiry_text(e)
        )),
        _ => None,
    };
    KeySummary {
        fingerprint: Some(grouped_fingerprint(fingerprint)),
        expires: expiry_text(member.pgp_expires_at),
        warning,
    }
}

/// When each of `member_ids` last received a message that left encrypted: member id → time
/// sent. Only the members asked about are read (a page shows fifty of them), each through the
/// outbox's index on members, never the whole outbox with its bodies.
pub fn last_encrypted_deliveries(
    conn: &mut DbConnection,
    member_ids: &[i64],
) -> Result<HashMap<i64, NaiveDateTime>, DbError> {
    let rows: Vec<(Option<i64>, Option<NaiveDateTime>)> = outbox::table
        .filter(outbox::member_id.eq_any(member_ids))
        .filter(outbox::encrypted.eq(true))
        .group_by(outbox::member_id)
        .select((outbox::member_id, diesel::dsl::max(outbox::sent_at)))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(member, sent)| Some((member?, sent?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_compare_as_typed() {
        let code = new_code();
        assert_eq!(code.len(), CODE_LENGTH);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        let spaced = format!(" {}-{} ", &code[..4], &code[4..]).to_ascii_lowercase();
        assert_eq!(code_hash(&spaced), code_hash(&code));
        assert_ne!(code_hash("ABCD2345"), code_hash("ABCD2346"));
    }

    #[test]
    fn soon_means_within_the_notice_period_or_past() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        assert!(!expires_soon(None, now));
        assert!(expires_soon(Some(now + Duration::days(20)), now));
        assert!(expires_soon(Some(now - Duration::days(1)), now));
        assert!(!expires_soon(Some(now + Duration::days(31)), now));
    }
}
