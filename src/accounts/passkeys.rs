//! Passkeys (WebAuthn) as a second factor, the stronger option beside TOTP: the browser's
//! authenticator signs a fresh challenge bound to this site's origin, so a passkey cannot be
//! phished onto another site or replayed. The ceremonies are webauthn-rs's; this module keeps
//! their state per session (used once, for a few minutes), stores the credentials, and counts
//! failures against the same lockout as wrong codes.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::accounts::second_factor::{self, Checked, CodeAttempt, Method};
use crate::audit;
use crate::db::schema::{passkey_ceremonies, passkeys};
use crate::db::{self, DbConnection, DbError};

/// How long a ceremony (the browser asking the authenticator) may take.
const CEREMONY_MINUTES: i64 = 5;
/// Passkeys one account may have.
pub const MAX_PER_ACCOUNT: i64 = 10;

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";

/// The relying party: this site, as `EDL_BASE_URL` names it.
#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
}

#[derive(Debug, thiserror::Error)]
#[error("EDL_BASE_URL {0} cannot name a WebAuthn relying party (it needs a host name)")]
pub struct ConfigError(String);

impl RelyingParty {
    pub fn new(base_url: &Url, name: &str) -> Result<Self, ConfigError> {
        let host = base_url
            .host_str()
            .ok_or_else(|| ConfigError(base_url.to_string()))?;
        let webauthn = WebauthnBuilder::new(host, base_url)
            .map_err(|_| ConfigError(base_url.to_string()))?
            .rp_name(name)
            .build()
            .map_err(|_| ConfigError(base_url.to_string()))?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
        })
    }
}

/// A passkey as the setup page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasskeyInfo {
    pub id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

pub fn list(conn: &mut DbConnection, account_id: i64) -> Result<Vec<PasskeyInfo>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::account_id.eq(account_id))
        .order(passkeys::id)
        .select((
            passkeys::id,
            passkeys::name,
            passkeys::created_at,
            passkeys::last_used_at,
        ))
        .load::<(i64, String, NaiveDateTime, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .map(|(id, name, created_at, last_used_at)| PasskeyInfo {
            id,
            name,
            created_at,
            last_used_at,
        })
        .collect())
}

/// The user handle an authenticator keeps: stable per account, and naming nobody.
fn user_handle(account_id: i64) -> Uuid {
    let digest = Sha256::digest(format!("edl account {account_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

fn stored(conn: &mut DbConnection, account_id: i64) -> Result<Vec<(i64, Passkey)>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::account_id.eq(account_id))
        .select((passkeys::id, passkeys::passkey))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .filter_map(|(id, json)| serde_json::from_str(&json).ok().map(|p| (id, p)))
        .collect())
}

fn save_ceremony(
    conn: &mut DbConnection,
    session_id: i64,
    purpose: &str,
    state: String,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::session_id.eq(session_id)))
        .execute(conn)?;
    diesel::insert_into(passkey_ceremonies::table)
        .values((
            passkey_ceremonies::session_id.eq(session_id),
            passkey_ceremonies::purpose.eq(purpose),
            passkey_ceremonies::state.eq(state),
            passkey_ceremonies::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The ceremony a session started for `purpose`, taken (it works once) if still fresh.
fn take_ceremony(
    conn: &mut DbConnection,
    session_id: i64,
    purpose: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, DbError> {
    let found: Option<(String, String, NaiveDateTime)> = passkey_ceremonies::table
        .filter(passkey_ceremonies::session_id.eq(session_id))
        .select((
            passkey_ceremonies::purpose,
            passkey_ceremonies::state,
            passkey_ceremonies::created_at,
        ))
        .first(conn)
        .optional()?;
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::session_id.eq(session_id)))
        .execute(conn)?;
    Ok(found
        .filter(|(p, _, at)| {
            p == purpose && now - *at <= chrono::Duration::minutes(CEREMONY_MINUTES)
        })
        .map(|(_, state, _)| state))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasskeyError {
    #[error("This account already has {MAX_PER_ACCOUNT} passkeys; remove one first.")]
    TooMany,
    #[error("Give the passkey a name of 1 to 60 characters, such as \"work laptop\".")]
    Name,
    #[error("The passkey could not be checked. Start again from this page.")]
    Refused,
    #[error("The passkey service is not available: {0}")]
    Unavailable(String),
}

/// Starts adding a passkey: the options for `navigator.credentials.create`.
pub fn start_registration(
    conn: &mut DbConnection,
    rp: &RelyingParty,
    account_id: i64,
    email: &str,
    display_name: &str,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<Result<CreationChallengeResponse, PasskeyError>, DbError> {
    db::write_transaction(conn, |conn| {
        let existing = stored(conn, account_id)?;
        if i64::try_from(existing.len()).unwrap_or(i64::MAX) >= MAX_PER_ACCOUNT {
            return Ok(Err(PasskeyError::TooMany));
        }
        let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
        let (options, state) = match rp.webauthn.start_passkey_registration(
            user_handle(account_id),
            email,
            display_name,
            Some(exclude),
        ) {
            Ok(started) => started,
            Err(e) => return Ok(Err(PasskeyError::Unavailable(e.to_string()))),
        };
        let state = serde_json::to_string(&state).map_err(|e| DbError::Task(e.to_string()))?;
        save_ceremony(conn, session_id, REGISTER, state, now)?;
        Ok(Ok(options))
    })
}

/// Finishes adding a passkey with the authenticator's answer. The session counts as having
/// just proven a second factor.
#[expect(
    clippy::too_many_arguments,
    reason = "who, which session, what and when: each is needed"
)]
pub fn finish_registration(
    conn: &mut DbConnection,
    rp: &RelyingParty,
    account_id: i64,
    email: &str,
    session_id: i64,
    name: &str,
    credential: &RegisterPublicKeyCredential,
    now: NaiveDateTime,
) -> Result<Result<(), PasskeyError>, DbError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Ok(Err(PasskeyError::Name));
    }
    db::write_transaction(conn, |conn| {
        let Some(state) = take_ceremony(conn, session_id, REGISTER, now)? else {
            return Ok(Err(PasskeyError::Refused));
        };
        let Ok(state) = serde_json::from_str::<PasskeyRegistration>(&state) else {
            return Ok(Err(PasskeyError::Refused));
        };
        let passkey = match rp.webauthn.finish_passkey_registration(credential, &state) {
            Ok(passkey) => passkey,
            Err(e) => {
                audit::record(
                    conn,
                    email,
                    "2fa.passkey.add-failed",
                    &format!("account:{account_id}"),
                    json!({ "reason": e.to_string() }),
                )?;
                return Ok(Err(PasskeyError::Refused));
            }
        };
        let credential_id = hex::encode(passkey.cred_id().as_ref() as &[u8]);
        let taken: bool = diesel::select(diesel::dsl::exists(
            passkeys::table.filter(passkeys::credential_id.eq(&credential_id)),
        ))
        .get_result(conn)?;
        if taken {
            return Ok(Err(PasskeyError::Refused));
        }
        let json = serde_json::to_string(&passkey).map_err(|e| DbError::Task(e.to_string()))?;
        diesel::insert_into(passkeys::table)
            .values((
                passkeys::account_id.eq(account_id),
                passkeys::name.eq(name),
                passkeys::credential_id.eq(&credential_id),
                passkeys::passkey.eq(json),
                passkeys::created_at.eq(now),
            ))
            .execute(conn)?;
        second_factor::mark_session(conn, session_id, now)?;
        audit::record(
            conn,
            email,
            "2fa.passkey.added",
            &format!("account:{account_id}"),
            json!({ "name": name }),
        )?;
        Ok(Ok(()))
    })
}

/// Starts proving the second factor with a passkey: the options for
/// `navigator.credentials.get`, or `None` if the account has none.
pub fn start_authentication(
    conn: &mut DbConnection,
    rp: &RelyingParty,
    account_id: i64,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<Option<RequestChallengeResponse>, DbError> {
    db::write_transaction(conn, |conn| {
        let keys: Vec<Passkey> = stored(conn, account_id)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let Ok((options, state)) = rp.webauthn.start_passkey_authentication(&keys) else {
            return Ok(None);
        };
        let state = serde_json::to_string(&state).map_err(|e| DbError::Task(e.to_string()))?;
        save_ceremony(conn, session_id, AUTHENTICATE, state, now)?;
        Ok(Some(options))
    })
}

/// Checks the authenticator's signed answer: the challenge this session was given (once),
/// one of the account's passkeys, this site's origin. A failure counts against the lockout of
/// the code step.
pub fn finish_authentication(
    conn: &mut DbConnection,
    rp: &RelyingParty,
    attempt: &CodeAttempt<'_>,
    credential: &PublicKeyCredential,
    lockout: (u32, std::time::Duration),
    now: NaiveDateTime,
) -> Result<Checked, DbError> {
    db::write_transaction(conn, |conn| {
        if let Some(until) = second_factor::locked(conn, attempt.account_email, now)? {
            return Ok(Checked::Locked { until });
        }
        let Some(session_id) = attempt.session_id else {
            return second_factor::record_failure(conn, attempt, lockout, now);
        };
        let state = take_ceremony(conn, session_id, AUTHENTICATE, now)?
            .and_then(|s| serde_json::from_str::<PasskeyAuthentication>(&s).ok());
        let result = state.and_then(|state| {
            rp.webauthn
                .finish_passkey_authentication(credential, &state)
                .ok()
        });
        let Some(result) = result else {
            return second_factor::record_failure(conn, attempt, lockout, now);
        };
        // The signature counter and backup state move forward in the stored credential.
        for (id, mut passkey) in stored(conn, attempt.account_id)? {
            if passkey.cred_id() != result.cred_id() {
                continue;
            }
            passkey.update_credential(&result);
            let json = serde_json::to_string(&passkey).map_err(|e| DbError::Task(e.to_string()))?;
            diesel::update(passkeys::table.filter(passkeys::id.eq(id)))
                .set((
                    passkeys::passkey.eq(json),
                    passkeys::last_used_at.eq(Some(now)),
                ))
                .execute(conn)?;
        }
        second_factor::record_success(conn, attempt, Method::Passkey, now)
    })
}

/// Removes one of the account's own passkeys. Returns whether it was theirs.
pub fn remove(
    conn: &mut DbConnection,
    account_id: i64,
    email: &str,
    passkey_id: i64,
) -> Result<bool, DbError> {
    db::write_transaction(conn, |conn| {
        let name: Option<String> = passkeys::table
            .filter(passkeys::id.eq(passkey_id))
            .filter(passkeys::account_id.eq(account_id))
            .select(passkeys::name)
            .first(conn)
            .optional()?;
        let Some(name) = name else {
            return Ok(false);
        };
        diesel::delete(passkeys::table.filter(passkeys::id.eq(passkey_id))).execute(conn)?;
        audit::record(
            conn,
            email,
            "2fa.passkey.removed",
            &format!("account:{account_id}"),
            json!({ "name": name }),
        )?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_handle_is_stable_and_differs_between_accounts() {
        assert_eq!(user_handle(7), user_handle(7));
        assert_ne!(user_handle(7), user_handle(8));
    }

    #[test]
    fn the_relying_party_is_the_base_url_host() {
        let base = Url::parse("https://edl.example.org/").expect("url");
        assert!(RelyingParty::new(&base, "Example list").is_ok());
    }
}
