//! Sessions live in the database; the browser holds only a random token inside an encrypted,
//! authenticated cookie. Signing out deletes the row, so a copied cookie stops working too.
//! A session ends after `session_idle_timeout` without requests and `session_max_age` after
//! sign-in, whichever comes first; a new token is issued at every sign-in.

use std::path::Path;

use actix_web::cookie::Key;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::accounts::{roles_of, Account, Role};
use crate::config::{Mode, SecuritySettings, Settings};
use crate::db::schema::{accounts, passkeys, sessions, totp_factors};
use crate::db::{DbConnection, DbError};

/// The signed-in account behind a request.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentUser {
    pub account_id: i64,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    #[serde(skip)]
    pub session_id: i64,
    pub must_change_password: bool,
    /// The account has a confirmed second factor.
    pub has_second_factor: bool,
    /// When this session last proved it; `None` while it waits for the code after the
    /// password (and for accounts without one).
    #[serde(skip)]
    pub second_factor_at: Option<NaiveDateTime>,
}

impl CurrentUser {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Signed in with the password, the second factor still to come: such a session may do
    /// nothing but give the code or sign out.
    pub fn awaiting_second_factor(&self) -> bool {
        self.has_second_factor && self.second_factor_at.is_none()
    }

    /// Whether the account must set up a second factor before anything else.
    pub fn must_set_up_second_factor(&self, required: &[Role]) -> bool {
        !self.has_second_factor && self.roles.iter().any(|r| required.contains(r))
    }

    /// Whether the second factor was proven within `window` of `now` (always false without
    /// one).
    pub fn second_factor_is_fresh(&self, window: std::time::Duration, now: NaiveDateTime) -> bool {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(5));
        self.second_factor_at.is_some_and(|at| now - at <= window)
    }

    /// How the audit log names this person.
    pub fn actor(&self) -> &str {
        &self.email
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: i64,
    last_seen_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    second_factor_at: Option<NaiveDateTime>,
}

/// A random token, as it travels inside the encrypted cookie.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Only the hash of a token is stored, so a copy of the database opens no session.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session for an account; returns the token for the cookie.
pub fn start(
    conn: &mut DbConnection,
    account_id: i64,
    security: &SecuritySettings,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let token = new_token();
    let max_age =
        chrono::Duration::from_std(security.session_max_age).unwrap_or(chrono::Duration::hours(12));
    // Sessions that ended on their own are swept away whenever a new one starts.
    let idle = chrono::Duration::from_std(security.session_idle_timeout)
        .unwrap_or(chrono::Duration::minutes(30));
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .lt(now)
                .or(sessions::last_seen_at.lt(now - idle)),
        ),
    )
    .execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash(&token)),
            sessions::account_id.eq(account_id),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(now + max_age),
        ))
        .execute(conn)?;
    diesel::update(accounts::table.filter(accounts::id.eq(account_id)))
        .set(accounts::last_login_at.eq(Some(now)))
        .execute(conn)?;
    Ok(token)
}

/// The user a token belongs to, if its session is still alive and the account enabled.
pub fn resolve(
    conn: &mut DbConnection,
    token: &str,
    security: &SecuritySettings,
    now: NaiveDateTime,
) -> Result<Option<CurrentUser>, DbError> {
    let found: Option<(SessionRow, Account, Option<NaiveDateTime>)> = sessions::table
        .inner_join(accounts::table.left_join(totp_factors::table))
        .filter(sessions::token_hash.eq(token_hash(token)))
        .select((
            SessionRow::as_select(),
            Account::as_select(),
            totp_factors::confirmed_at.nullable(),
        ))
        .first(conn)
        .optional()?;
    let Some((session, account, totp)) = found else {
        return Ok(None);
    };
    let has_second_factor = totp.is_some()
        || diesel::select(diesel::dsl::exists(
            passkeys::table.filter(passkeys::account_id.eq(account.id)),
        ))
        .get_result::<bool>(conn)?;
    let (session_id, last_seen, expires_at) =
        (session.id, session.last_seen_at, session.expires_at);
    let idle = chrono::Duration::from_std(security.session_idle_timeout)
        .unwrap_or(chrono::Duration::minutes(30));
    if account.disabled || now >= expires_at || now - last_seen >= idle {
        diesel::delete(sessions::table.filter(sessions::id.eq(session_id))).execute(conn)?;
        return Ok(None);
    }
    // Keep writes rare: the idle clock needs only a fraction of its own length in precision.
    if now - last_seen > (idle / 4).min(chrono::Duration::seconds(60)) {
        diesel::update(sessions::table.filter(sessions::id.eq(session_id)))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(CurrentUser {
        roles: roles_of(conn, account.id)?,
        account_id: account.id,
        email: account.email,
        name: account.name,
        session_id,
        must_change_password: account.must_change_password,
        has_second_factor,
        second_factor_at: session.second_factor_at,
    }))
}

/// Ends the session of a token.
pub fn end(conn: &mut DbConnection, token: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash(token))))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the secret key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("EDL_SECRET_KEY is required in production mode")]
    Missing,
}

/// The key for encrypted cookies: derived from `EDL_SECRET_KEY`, or in development mode from
/// a key generated once and kept in `EDL_DATA_DIR/secret.key`, so sessions survive restarts.
pub fn cookie_key(settings: &Settings) -> Result<Key, KeyError> {
    if let Some(secret) = &settings.secret_key {
        return Ok(Key::derive_from(secret.expose().as_bytes()));
    }
    if settings.mode == Mode::Production {
        return Err(KeyError::Missing);
    }
    let path = settings.data_dir.join("secret.key");
    let secret = read_or_create_key_file(&path).map_err(|e| KeyError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Key::derive_from(secret.as_bytes()))
}

fn read_or_create_key_file(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let key = new_token() + &new_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(path)?.write_all(key.as_bytes())?;
    tracing::info!(path = %path.display(), "Generated a secret key for cookies. Set EDL_SECRET_KEY in production.");
    Ok(key)
}
