//! The second factor of working-group accounts: TOTP (RFC 6238) with single-use recovery
//! codes. Which roles must have one is `EDL_REQUIRE_2FA`; sign-in asks for a code after the
//! password when the account has one, and sensitive actions ask again when the last one is
//! older than `EDL_STEP_UP_WINDOW` (the guard in `web::auth` decides where).
//!
//! The secret is kept encrypted with a key derived from the service's secret key: the service
//! must read it back to check a code, and a copy of the database alone must not give it away.
//! A code is accepted for the 30-second step before, at and after the current one, and a step
//! is accepted once: a code seen over a shoulder or in a log cannot be replayed. Failed codes
//! count against the same lockout as failed passwords, per account.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::accounts::throttle::{self, Gate};
use crate::audit;
use crate::db::schema::{passkeys, recovery_codes, sessions, totp_factors};
use crate::db::{self, DbConnection, DbError};

/// How long one TOTP code lasts.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Recovery codes made at setup (and when renewed).
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// Encrypts the TOTP secrets at rest (AES-256-GCM with a key derived from the cookie key).
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn new(master: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"edl second factor"), master);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8,160; expand cannot fail here.
        if hk.expand(b"totp secrets v1", &mut key).is_err() {
            unreachable!("HKDF-SHA256 gives 32 bytes");
        }
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    fn seal(&self, plain: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        format!("v1:{}:{}", hex::encode(nonce), hex::encode(sealed))
    }

    fn open(&self, stored: &str) -> Option<Vec<u8>> {
        let mut parts = stored.split(':');
        let (Some("v1"), Some(nonce), Some(sealed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let nonce = hex::decode(nonce).ok().filter(|n| n.len() == 12)?;
        let sealed = hex::decode(sealed).ok()?;
        self.cipher
            .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
            .ok()
    }
}

/// The HOTP value (RFC 4226) of `secret` at `counter`, as `DIGITS` digits.
pub fn hotp(secret: &[u8], counter: u64) -> String {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) else {
        unreachable!("HMAC takes a key of any length");
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The 30-second step a moment falls in.
pub fn step_of(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp().div_euclid(STEP_SECONDS)
}

/// The secret as authenticator apps type it: base32 without padding, in groups of four.
pub fn secret_for_people(secret: &[u8]) -> String {
    let text = data_encoding::BASE32_NOPAD.encode(secret);
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` address a QR code carries (the de facto format authenticator apps read).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |v: &str| crate::web::auth::url_encode(v).replace('+', "%20");
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        data_encoding::BASE32_NOPAD.encode(secret),
        enc(issuer),
    )
}

/// An SVG QR code of `text`, to embed in a page.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Only digits count; people type spaces.
fn digits_of(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS as usize && digits.chars().all(|c| c.is_ascii_digit()))
        .then_some(digits)
}

/// The step within one step of `now` whose code is `code`, if any.
fn matching_step(secret: &[u8], code: &str, now: NaiveDateTime) -> Option<i64> {
    let code = digits_of(code)?;
    let current = step_of(now);
    [current - 1, current, current + 1]
        .into_iter()
        .filter(|step| *step >= 0)
        .find(|step| {
            let expected = hotp(secret, u64::try_from(*step).unwrap_or_default());
            crate::web::auth::constant_time_eq(expected.as_bytes(), code.as_bytes())
        })
}

fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Ten random codes such as `k7p2-9xqm-4tdw` (about 60 bits each).
fn new_recovery_codes() -> Vec<String> {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            (0..3)
                .map(|_| {
                    (0..4)
                        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What an account has set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Its passkeys: (id, name, added, last used).
    pub passkeys: Vec<crate::accounts::passkeys::PasskeyInfo>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
    /// A TOTP setup begun and not confirmed.
    pub pending_setup: bool,
}

impl Status {
    pub fn has_second_factor(&self) -> bool {
        self.totp || !self.passkeys.is_empty()
    }
}

pub fn status(conn: &mut DbConnection, account_id: i64) -> Result<Status, DbError> {
    let confirmed: Option<Option<NaiveDateTime>> = totp_factors::table
        .filter(totp_factors::account_id.eq(account_id))
        .select(totp_factors::confirmed_at)
        .first(conn)
        .optional()?;
    let left: i64 = recovery_codes::table
        .filter(recovery_codes::account_id.eq(account_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(Status {
        passkeys: crate::accounts::passkeys::list(conn, account_id)?,
        totp: matches!(confirmed, Some(Some(_))),
        pending_setup: matches!(confirmed, Some(None)),
        recovery_codes_left: left,
    })
}

/// Whether an account has a confirmed second factor.
pub fn has_second_factor(conn: &mut DbConnection, account_id: i64) -> Result<bool, DbError> {
    Ok(status(conn, account_id)?.has_second_factor())
}

/// Of these accounts, the ones with a confirmed second factor.
pub fn with_second_factor(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<i64>, DbError> {
    let mut with: Vec<i64> = totp_factors::table
        .filter(totp_factors::account_id.eq_any(ids))
        .filter(totp_factors::confirmed_at.is_not_null())
        .select(totp_factors::account_id)
        .load(conn)?;
    with.extend(
        passkeys::table
            .filter(passkeys::account_id.eq_any(ids))
            .select(passkeys::account_id)
            .load::<i64>(conn)?,
    );
    with.sort_unstable();
    with.dedup();
    Ok(with)
}

/// A TOTP setup waiting for its first code: what the page shows once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret_text: String,
    pub uri: String,
    pub qr_svg: String,
}

/// Starts (or restarts) TOTP setup for an account without a confirmed authenticator: a new
/// secret, stored encrypted and unconfirmed. Refused while a confirmed one exists: replacing
/// it goes through removing it, which asks for the second factor (as adding one beside a
/// passkey does: the guard's step-up).
pub fn begin_totp(
    conn: &mut DbConnection,
    sealer: &SecretBox,
    account_id: i64,
    account_email: &str,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<Option<Enrolment>, DbError> {
    db::write_transaction(conn, |conn| {
        if status(conn, account_id)?.totp {
            return Ok(None);
        }
        let secret: [u8; SECRET_BYTES] = rand::random();
        diesel::delete(totp_factors::table.filter(totp_factors::account_id.eq(account_id)))
            .execute(conn)?;
        diesel::insert_into(totp_factors::table)
            .values((
                totp_factors::account_id.eq(account_id),
                totp_factors::secret.eq(sealer.seal(&secret)),
                totp_factors::confirmed_at.eq(None::<NaiveDateTime>),
                totp_factors::last_step.eq(0_i64),
                totp_factors::created_at.eq(now),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            account_email,
            "2fa.totp.setup-started",
            &format!("account:{account_id}"),
            json!({}),
        )?;
        let uri = otpauth_uri(issuer, account_email, &secret);
        Ok(Some(Enrolment {
            secret_text: secret_for_people(&secret),
            qr_svg: qr_svg(&uri),
            uri,
        }))
    })
}

/// The enrolment of a setup begun and not confirmed, to show the page again after a wrong
/// code.
pub fn pending_enrolment(
    conn: &mut DbConnection,
    sealer: &SecretBox,
    account_id: i64,
    account_email: &str,
    issuer: &str,
) -> Result<Option<Enrolment>, DbError> {
    let stored: Option<String> = totp_factors::table
        .filter(totp_factors::account_id.eq(account_id))
        .filter(totp_factors::confirmed_at.is_null())
        .select(totp_factors::secret)
        .first(conn)
        .optional()?;
    Ok(stored.and_then(|s| sealer.open(&s)).map(|secret| {
        let uri = otpauth_uri(issuer, account_email, &secret);
        Enrolment {
            secret_text: secret_for_people(&secret),
            qr_svg: qr_svg(&uri),
            uri,
        }
    }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Set up: the recovery codes, shown once.
    Done { recovery_codes: Vec<String> },
    /// The code does not match the new secret (or no setup was begun).
    WrongCode,
}

/// Confirms a TOTP setup with a code from the authenticator: the factor is on, ten recovery
/// codes are made, and the session counts as having just proven its second factor.
pub fn confirm_totp(
    conn: &mut DbConnection,
    sealer: &SecretBox,
    account_id: i64,
    account_email: &str,
    session_id: i64,
    code: &str,
    now: NaiveDateTime,
) -> Result<Confirmed, DbError> {
    db::write_transaction(conn, |conn| {
        let stored: Option<String> = totp_factors::table
            .filter(totp_factors::account_id.eq(account_id))
            .filter(totp_factors::confirmed_at.is_null())
            .select(totp_factors::secret)
            .first(conn)
            .optional()?;
        let step = stored
            .and_then(|s| sealer.open(&s))
            .and_then(|secret| matching_step(&secret, code, now));
        let Some(step) = step else {
            audit::record(
                conn,
                account_email,
                "2fa.totp.setup-failed",
                &format!("account:{account_id}"),
                json!({}),
            )?;
            return Ok(Confirmed::WrongCode);
        };
        diesel::update(totp_factors::table.filter(totp_factors::account_id.eq(account_id)))
            .set((
                totp_factors::confirmed_at.eq(Some(now)),
                totp_factors::last_step.eq(step),
            ))
            .execute(conn)?;
        let codes = replace_recovery_codes(conn, account_id, now)?;
        mark_session(conn, session_id, now)?;
        audit::record(
            conn,
            account_email,
            "2fa.totp.enabled",
            &format!("account:{account_id}"),
            json!({ "recovery_codes": codes.len() }),
        )?;
        Ok(Confirmed::Done {
            recovery_codes: codes,
        })
    })
}

fn replace_recovery_codes(
    conn: &mut DbConnection,
    account_id: i64,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account_id)))
        .execute(conn)?;
    let codes = new_recovery_codes();
    for code in &codes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::account_id.eq(account_id),
                recovery_codes::code_hash.eq(recovery_hash(code)),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(codes)
}

/// New recovery codes in place of the old ones (which stop working), for an account with a
/// second factor; `None` without one.
pub fn renew_recovery_codes(
    conn: &mut DbConnection,
    account_id: i64,
    account_email: &str,
    now: NaiveDateTime,
) -> Result<Option<Vec<String>>, DbError> {
    db::write_transaction(conn, |conn| {
        if !has_second_factor(conn, account_id)? {
            return Ok(None);
        }
        let codes = replace_recovery_codes(conn, account_id, now)?;
        audit::record(
            conn,
            account_email,
            "2fa.recovery-codes.renewed",
            &format!("account:{account_id}"),
            json!({}),
        )?;
        Ok(Some(codes))
    })
}

/// Records in a session that its second factor was just proven.
pub(crate) fn mark_session(
    conn: &mut DbConnection,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(sessions::table.filter(sessions::id.eq(session_id)))
        .set(sessions::second_factor_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// Which kind of code proved the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
    Passkey,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery-code",
            Self::Passkey => "passkey",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Accepted {
        method: Method,
        recovery_codes_left: i64,
    },
    /// Wrong, reused or expired (one answer for all three).
    Refused,
    /// Too many failures for this account; try again after `until`.
    Locked { until: NaiveDateTime },
}

/// What checking a code needs to know about where it comes from.
#[derive(Debug, Clone)]
pub struct CodeAttempt<'a> {
    pub account_id: i64,
    pub account_email: &'a str,
    /// The session to mark as proven; `None` on the command line.
    pub session_id: Option<i64>,
    pub code: &'a str,
    /// `web` or `cli`, for the audit log.
    pub channel: &'static str,
    pub ip: Option<String>,
}

/// Checks a TOTP code or a recovery code for an account, in one transaction: a TOTP step is
/// accepted once, a recovery code is used up, a failure counts against the account's lockout.
pub fn check_code(
    conn: &mut DbConnection,
    sealer: &SecretBox,
    attempt: &CodeAttempt<'_>,
    lockout: (u32, std::time::Duration),
    now: NaiveDateTime,
) -> Result<Checked, DbError> {
    db::write_transaction(conn, |conn| {
        if let Some(until) = locked(conn, attempt.account_email, now)? {
            return Ok(Checked::Locked { until });
        }
        let factor: Option<(String, i64)> = totp_factors::table
            .filter(totp_factors::account_id.eq(attempt.account_id))
            .filter(totp_factors::confirmed_at.is_not_null())
            .select((totp_factors::secret, totp_factors::last_step))
            .first(conn)
            .optional()?;
        let mut method = None;
        if let Some((stored, last_step)) = factor {
            let step = sealer
                .open(&stored)
                .and_then(|secret| matching_step(&secret, attempt.code, now))
                .filter(|step| *step > last_step);
            if let Some(step) = step {
                diesel::update(
                    totp_factors::table.filter(totp_factors::account_id.eq(attempt.account_id)),
                )
                .set(totp_factors::last_step.eq(step))
                .execute(conn)?;
                method = Some(Method::Totp);
            } else if digits_of(attempt.code).is_none() {
                let used = diesel::update(
                    recovery_codes::table
                        .filter(recovery_codes::account_id.eq(attempt.account_id))
                        .filter(recovery_codes::code_hash.eq(recovery_hash(attempt.code)))
                        .filter(recovery_codes::used_at.is_null()),
                )
                .set(recovery_codes::used_at.eq(Some(now)))
                .execute(conn)?;
                if used > 0 {
                    method = Some(Method::RecoveryCode);
                }
            }
        }
        match method {
            Some(method) => record_success(conn, attempt, method, now),
            None => record_failure(conn, attempt, lockout, now),
        }
    })
}

fn lockout_key(email: &str) -> String {
    format!("2fa:{}", throttle::email_key(email))
}

/// Whether the code step of an account is locked now.
pub(crate) fn locked(
    conn: &mut DbConnection,
    email: &str,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(match throttle::check(conn, &lockout_key(email), now)? {
        Gate::Locked { until } => Some(until),
        Gate::Open => None,
    })
}

/// A failed proof: counted against the account's lockout, audited.
pub(crate) fn record_failure(
    conn: &mut DbConnection,
    attempt: &CodeAttempt<'_>,
    lockout: (u32, std::time::Duration),
    now: NaiveDateTime,
) -> Result<Checked, DbError> {
    let key = lockout_key(attempt.account_email);
    let gate = throttle::record_failure(conn, &key, lockout.0, lockout.1, now)?;
    audit::record(
        conn,
        attempt.account_email,
        "2fa.failed",
        &format!("account:{}", attempt.account_id),
        json!({ "channel": attempt.channel, "ip": attempt.ip }),
    )?;
    Ok(match gate {
        Gate::Locked { until } => Checked::Locked { until },
        Gate::Open => Checked::Refused,
    })
}

/// A proof accepted: the lockout count cleared, the session marked, audited.
pub(crate) fn record_success(
    conn: &mut DbConnection,
    attempt: &CodeAttempt<'_>,
    method: Method,
    now: NaiveDateTime,
) -> Result<Checked, DbError> {
    throttle::clear(conn, &lockout_key(attempt.account_email))?;
    if let Some(session_id) = attempt.session_id {
        mark_session(conn, session_id, now)?;
    }
    let left: i64 = recovery_codes::table
        .filter(recovery_codes::account_id.eq(attempt.account_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    audit::record(
        conn,
        attempt.account_email,
        "2fa.used",
        &format!("account:{}", attempt.account_id),
        json!({
            "method": method.as_str(),
            "channel": attempt.channel,
            "ip": attempt.ip,
            "recovery_codes_left": left,
        }),
    )?;
    Ok(Checked::Accepted {
        method,
        recovery_codes_left: left,
    })
}

/// Removes an account's second factor (TOTP, recovery codes and passkeys) and ends its sessions, so
/// the next sign-in starts from the password: an admin's reset for someone who lost their
/// authenticator, or the person's own removal (after proving the factor, which the route
/// table's step-up asks for). Returns whether there was anything to remove.
pub fn remove(
    conn: &mut DbConnection,
    actor: &str,
    account_id: i64,
    action: &str,
    keep_session: Option<i64>,
) -> Result<bool, DbError> {
    db::write_transaction(conn, |conn| {
        let totp =
            diesel::delete(totp_factors::table.filter(totp_factors::account_id.eq(account_id)))
                .execute(conn)?;
        let codes =
            diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account_id)))
                .execute(conn)?;
        let passkeys_removed =
            diesel::delete(passkeys::table.filter(passkeys::account_id.eq(account_id)))
                .execute(conn)?;
        let sessions_ended = {
            let query = sessions::table.filter(sessions::account_id.eq(account_id));
            match keep_session {
                Some(keep) => diesel::delete(query.filter(sessions::id.ne(keep))).execute(conn)?,
                None => diesel::delete(query).execute(conn)?,
            }
        };
        if let Some(keep) = keep_session {
            diesel::update(sessions::table.filter(sessions::id.eq(keep)))
                .set(sessions::second_factor_at.eq(None::<NaiveDateTime>))
                .execute(conn)?;
        }
        audit::record(
            conn,
            actor,
            action,
            &format!("account:{account_id}"),
            json!({
                "totp": totp > 0,
                "recovery_codes": codes,
                "passkeys": passkeys_removed,
                "sessions_ended": sessions_ended,
            }),
        )?;
        Ok(totp > 0 || codes > 0 || passkeys_removed > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, SHA-1 (its eight-digit values, of which a six-digit code is the
    /// last six digits).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let at = chrono::DateTime::from_timestamp(time, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default();
            let step = u64::try_from(step_of(at)).unwrap_or_default();
            assert_eq!(hotp(secret, step), expected[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890";
        let at = |s: i64| {
            chrono::DateTime::from_timestamp(s, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default()
        };
        let code = hotp(secret, 1000);
        assert_eq!(matching_step(secret, &code, at(30_000)), Some(1000));
        assert_eq!(matching_step(secret, &code, at(30_029)), Some(1000));
        assert_eq!(matching_step(secret, &code, at(30_030)), Some(1000));
        assert_eq!(matching_step(secret, &code, at(29_970)), Some(1000));
        assert_eq!(matching_step(secret, &code, at(30_060)), None);
        assert_eq!(matching_step(secret, &code, at(29_969)), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(secret, &spaced, at(30_000)), Some(1000));
        assert_eq!(matching_step(secret, "12345", at(30_000)), None);
        assert_eq!(matching_step(secret, "abcdef", at(30_000)), None);
    }

    #[test]
    fn secrets_are_sealed_and_only_open_with_the_same_key() {
        let sealer = SecretBox::new(&[7u8; 64]);
        let sealed = sealer.seal(b"twenty bytes secret!");
        assert!(!sealed.contains("twenty"));
        assert_eq!(
            sealer.open(&sealed).as_deref(),
            Some(&b"twenty bytes secret!"[..])
        );
        assert_eq!(SecretBox::new(&[8u8; 64]).open(&sealed), None);
        assert_eq!(sealer.open("v1:00:00"), None);
    }

    #[test]
    fn recovery_codes_are_compared_without_case_or_dashes() {
        assert_eq!(
            recovery_hash("K7P2-9XQM-4TDW"),
            recovery_hash("k7p29xqm4tdw")
        );
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(
            codes.iter().collect::<std::collections::HashSet<_>>().len(),
            RECOVERY_CODES
        );
    }

    #[test]
    fn the_setup_address_names_the_issuer_and_account() {
        let uri = otpauth_uri("Example list", "rm@example.org", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20list:rm%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20list&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&uri).starts_with("<?xml"));
    }
}
