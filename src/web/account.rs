//! `/account`: who is signed in, and changing one's own password. A change ends every other
//! session of the account.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::password::{check_policy, Verified};
use crate::accounts::throttle::{self, Gate};
use crate::accounts::{self, AccountWithRoles};
use crate::db;
use crate::error::AppError;
use crate::web::auth::{CsrfForm, SignedIn, Viewer};
use crate::web::login::see_other;
use crate::web::AppState;

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    must_change: Option<String>,
    changed: Option<String>,
}

#[derive(Serialize)]
struct AccountPage {
    account: AccountWithRoles,
    must_change: bool,
    changed: bool,
    errors: BTreeMap<&'static str, String>,
}

async fn load(state: &AppState, id: i64) -> Result<AccountWithRoles, AppError> {
    db::run(&state.pool, move |c| accounts::find(c, id))
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let account = load(&state, user.account_id).await?;
    let page = AccountPage {
        must_change: account.account.must_change_password || query.must_change.is_some(),
        changed: query.changed.is_some(),
        account,
        errors: BTreeMap::new(),
    };
    state.pages.page(&viewer, "account.html", page)
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

pub async fn change_password(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let account = load(&state, user.account_id).await?;
    // Guessing the current password from a stolen session counts against the same lockout
    // as guessing it at sign-in.
    let key = throttle::email_key(&account.account.email);
    let gate_key = key.clone();
    if let Gate::Locked { until } = db::run(&state.pool, move |c| {
        throttle::check(c, &gate_key, db::now())
    })
    .await?
    {
        let retry_after = u64::try_from((until - db::now()).num_seconds())
            .unwrap_or(1)
            .max(1);
        return Err(AppError::TooManyRequests { retry_after });
    }
    let mut errors = BTreeMap::new();
    let current = state
        .hasher
        .verify(
            form.current_password.clone(),
            Some(account.account.password_hash.clone()),
        )
        .await;
    if current == Verified::No {
        let (threshold, window) = (
            state.settings.security.lockout_threshold,
            state.settings.security.lockout_window,
        );
        db::run(&state.pool, move |c| {
            db::write_transaction(c, |c| {
                throttle::record_failure(c, &key, threshold, window, db::now())
            })
        })
        .await?;
        errors.insert(
            "current_password",
            "The current password is not right.".to_owned(),
        );
    }
    if let Err(policy) = check_policy(
        &form.new_password,
        &account.account.email,
        &account.account.name,
    ) {
        errors.insert("new_password", policy.to_string());
    } else if form.new_password == form.current_password {
        errors.insert(
            "new_password",
            "Choose a password different from the current one.".to_owned(),
        );
    }
    if form.confirm_password != form.new_password {
        errors.insert(
            "confirm_password",
            "The two new passwords are not the same.".to_owned(),
        );
    }
    if !errors.is_empty() {
        let page = AccountPage {
            must_change: account.account.must_change_password,
            changed: false,
            account,
            errors,
        };
        return state.pages.page_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &viewer,
            "account.html",
            page,
        );
    }
    let hash = state
        .hasher
        .hash(form.new_password)
        .await
        .map_err(AppError::internal)?;
    let (id, session_id, actor) = (user.account_id, user.session_id, user.email.clone());
    db::run(&state.pool, move |c| {
        accounts::set_password(
            c,
            &actor,
            id,
            &hash,
            false,
            Some(session_id),
            "account.password-changed",
        )
    })
    .await
    .map_err(account_error)?;
    Ok(see_other("/account?changed=1"))
}

/// How account errors reach a person.
pub fn account_error(error: accounts::AccountError) -> AppError {
    use accounts::AccountError as E;
    match error {
        E::NotFound | E::NoSuchEmail(_) => AppError::NotFound,
        E::Exists(_) | E::Refused(_) => AppError::BadRequest(error.to_string()),
        E::Db(db) => db.into(),
    }
}
