//! Signing in, signing out and changing one's own password: the workflows, whatever asks for
//! them (a web form now, other front ends later). One answer for any failed sign-in, the same
//! work whether or not the email belongs to an account, a lockout per email address that
//! behaves the same for unknown addresses, and a new session token at every sign-in. Guessing
//! the current password from a stolen session counts against the same lockout.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::accounts::password::{check_policy, Hasher, Verified};
use crate::accounts::throttle::{self, Gate};
use crate::accounts::{self, second_factor, session, AccountEmail, AccountError};
use crate::audit;
use crate::clock::Clock;
use crate::config::SecuritySettings;
use crate::db::{self, DbError, DbPool};
use crate::error::FieldErrors;

/// What signing in needs besides the attempt itself.
#[derive(Clone)]
pub struct SignInContext<'a> {
    pub pool: &'a DbPool,
    pub hasher: &'a Hasher,
    pub security: &'a SecuritySettings,
    pub clock: &'a Clock,
}

/// A sign-in as typed.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub email: String,
    pub password: String,
    /// For the audit log.
    pub ip: Option<String>,
    /// The session the browser had before, which signing in replaces.
    pub previous_session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in: the token for the session cookie.
    Success {
        token: String,
        must_change_password: bool,
        /// The account has a second factor: the session waits for its code.
        second_factor: bool,
    },
    /// Wrong address or password (the same answer for both).
    Failed,
    /// Too many failures for this address; try again after `until`.
    Locked { until: NaiveDateTime },
}

pub async fn sign_in(cx: SignInContext<'_>, attempt: Attempt) -> Result<SignIn, DbError> {
    let typed = attempt.email.trim().to_lowercase();
    let key = throttle::email_key(&typed);
    let now = cx.clock.now_naive();
    let (gate_key, lookup) = (key.clone(), typed.clone());
    let (gate, account) = db::run(cx.pool, move |c| {
        Ok::<_, DbError>((
            throttle::check(c, &gate_key, now)?,
            accounts::find_by_email(c, &lookup)?,
        ))
    })
    .await?;
    if let Gate::Locked { until } = gate {
        return Ok(SignIn::Locked { until });
    }
    let stored_hash = account
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone());
    let verified = cx
        .hasher
        .verify(attempt.password.clone(), stored_hash)
        .await;
    let ip = attempt.ip.clone();

    if let (Some(account), Verified::Yes { rehash }) = (account, verified) {
        let new_hash = if rehash {
            cx.hasher.hash(attempt.password.clone()).await.ok()
        } else {
            None
        };
        let (previous, security) = (attempt.previous_session, cx.security.clone());
        let must_change_password = account.must_change_password;
        let (token, second_factor) = db::run(cx.pool, move |c| {
            db::write_transaction(c, |c| {
                throttle::clear(c, &key)?;
                if let Some(previous) = previous {
                    session::end(c, &previous)?;
                }
                if let Some(hash) = &new_hash {
                    accounts::upgrade_hash(c, account.id, hash)?;
                }
                let token = session::start(c, account.id, &security, now)?;
                let second_factor = second_factor::has_second_factor(c, account.id)?;
                audit::record(
                    c,
                    &account.email,
                    if second_factor {
                        "login.password"
                    } else {
                        "login"
                    },
                    &format!("account:{}", account.id),
                    json!({ "ip": ip, "hash_upgraded": new_hash.is_some() }),
                )?;
                Ok::<_, DbError>((token, second_factor))
            })
        })
        .await?;
        return Ok(SignIn::Success {
            token,
            must_change_password,
            second_factor,
        });
    }

    // Name the address in the audit log only if it is one; a password typed into the email
    // field must not end up there.
    let actor = AccountEmail::parse(&typed).map_or_else(
        |_| "(not an email address)".to_owned(),
        |e| e.as_str().to_owned(),
    );
    let (threshold, window) = (cx.security.lockout_threshold, cx.security.lockout_window);
    let gate = db::run(cx.pool, move |c| {
        db::write_transaction(c, |c| {
            let gate = throttle::record_failure(c, &key, threshold, window, now)?;
            audit::record(c, &actor, "login.failed", "login", json!({ "ip": ip }))?;
            Ok::<_, DbError>(gate)
        })
    })
    .await?;
    Ok(match gate {
        Gate::Locked { until } => SignIn::Locked { until },
        Gate::Open => SignIn::Failed,
    })
}

/// Ends a session and records it.
pub async fn sign_out(
    pool: &DbPool,
    token: Option<String>,
    account_id: i64,
    actor: String,
) -> Result<(), DbError> {
    db::run(pool, move |c| {
        db::write_transaction(c, |c| {
            if let Some(token) = token {
                session::end(c, &token)?;
            }
            audit::record(
                c,
                &actor,
                "logout",
                &format!("account:{account_id}"),
                json!({}),
            )?;
            Ok::<_, DbError>(())
        })
    })
    .await
}

/// A password change as typed.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub confirm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Done,
    /// One message per field: `current_password`, `new_password`, `confirm_password`.
    Refused(FieldErrors),
    Locked {
        until: NaiveDateTime,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{0}")]
    Hashing(String),
}

impl From<DbError> for ChangeError {
    fn from(error: DbError) -> Self {
        Self::Account(error.into())
    }
}

/// Changes the signed-in account's own password after checking the current one; every other
/// session of the account ends.
pub async fn change_password(
    cx: SignInContext<'_>,
    account_id: i64,
    session_id: i64,
    change: PasswordChange,
) -> Result<Changed, ChangeError> {
    let account = db::run(cx.pool, move |c| accounts::find(c, account_id))
        .await?
        .ok_or(AccountError::NotFound)?
        .account;
    let key = throttle::email_key(&account.email);
    let now = cx.clock.now_naive();
    let gate_key = key.clone();
    if let Gate::Locked { until } =
        db::run(cx.pool, move |c| throttle::check(c, &gate_key, now)).await?
    {
        return Ok(Changed::Locked { until });
    }
    let mut errors = FieldErrors::new();
    let current = cx
        .hasher
        .verify(change.current.clone(), Some(account.password_hash.clone()))
        .await;
    if current == Verified::No {
        let (threshold, window) = (cx.security.lockout_threshold, cx.security.lockout_window);
        db::run(cx.pool, move |c| {
            db::write_transaction(c, |c| {
                throttle::record_failure(c, &key, threshold, window, now)
            })
        })
        .await?;
        errors.insert(
            "current_password".into(),
            "The current password is not right.".into(),
        );
    }
    if let Err(policy) = check_policy(&change.new, &account.email, &account.name) {
        errors.insert("new_password".into(), policy.to_string());
    } else if change.new == change.current {
        errors.insert(
            "new_password".into(),
            "Choose a password different from the current one.".into(),
        );
    }
    if change.confirm != change.new {
        errors.insert(
            "confirm_password".into(),
            "The two new passwords are not the same.".into(),
        );
    }
    if !errors.is_empty() {
        return Ok(Changed::Refused(errors));
    }
    let hash = cx
        .hasher
        .hash(change.new)
        .await
        .map_err(ChangeError::Hashing)?;
    let actor = account.email.clone();
    db::run(cx.pool, move |c| {
        accounts::set_password(
            c,
            &actor,
            account_id,
            &hash,
            false,
            Some(session_id),
            "account.password-changed",
        )
    })
    .await?;
    Ok(Changed::Done)
}
