//! `/account`: who is signed in, and changing one's own password. A change ends every other
//! session of the account.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::signin::{self, ChangeError, Changed, PasswordChange};
use crate::accounts::{self, AccountWithRoles};
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::web::auth::{CsrfForm, SignedIn, Viewer};
use crate::web::form::see_other;
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
    errors: FieldErrors,
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
        errors: FieldErrors::new(),
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
    let change = PasswordChange {
        current: form.current_password,
        new: form.new_password,
        confirm: form.confirm_password,
    };
    let outcome = signin::change_password(
        state.sign_in_context(),
        user.account_id,
        user.session_id,
        change,
    )
    .await;
    match outcome {
        Ok(Changed::Done) => Ok(see_other("/account?changed=1")),
        Ok(Changed::Locked { until }) => {
            let retry_after = u64::try_from((until - state.ctx.clock.now_naive()).num_seconds())
                .unwrap_or(1)
                .max(1);
            Err(AppError::TooManyRequests { retry_after })
        }
        Ok(Changed::Refused(errors)) => {
            let account = load(&state, user.account_id).await?;
            let page = AccountPage {
                must_change: account.account.must_change_password,
                changed: false,
                account,
                errors,
            };
            state.pages.page_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &viewer,
                "account.html",
                page,
            )
        }
        Err(ChangeError::Account(error)) => Err(error.into()),
        Err(ChangeError::Hashing(error)) => Err(AppError::internal(error)),
    }
}
