//! `/account/tokens`: an account's own API tokens. A token is made with a name, the scopes the
//! account's roles allow and a lifetime, shown once on the page that made it, listed after
//! (never the token itself) and revocable. Making a token is a step-up action: it hands out
//! a credential.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::api_tokens::{self, NewToken, Scope, TokenRow};
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::web::auth::{CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::form::see_other;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    days: String,
}

#[derive(Debug, Deserialize)]
pub struct TokensQuery {
    notice: Option<String>,
}

#[derive(Serialize)]
struct ScopeChoice {
    name: &'static str,
    what: &'static str,
    checked: bool,
}

#[derive(Serialize)]
struct ListedToken {
    #[serde(flatten)]
    row: TokenRow,
    state: &'static str,
    scope_list: Vec<&'static str>,
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    user: &crate::accounts::session::CurrentUser,
    form: &TokenForm,
    errors: FieldErrors,
    created: Option<(String, String)>,
    notice: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let id = user.account_id;
    let rows = db::run(&state.pool, move |c| api_tokens::list(c, id)).await?;
    let now = state.ctx.clock.now_naive();
    let tokens: Vec<ListedToken> = rows
        .into_iter()
        .map(|row| {
            let state = if row.revoked_at.is_some() {
                "revoked"
            } else if row.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            let scope_list = row.scopes().iter().map(|s| s.as_str()).collect();
            ListedToken {
                row,
                state,
                scope_list,
            }
        })
        .collect();
    let scopes: Vec<ScopeChoice> = Scope::ALL
        .iter()
        .filter(|s| s.allowed_for(&user.roles))
        .map(|s| ScopeChoice {
            name: s.as_str(),
            what: s.describe(),
            checked: form.scopes.iter().any(|c| c == s.as_str()),
        })
        .collect();
    state.pages.page_with_status(
        status,
        viewer,
        "api_tokens.html",
        minijinja::context! {
            tokens, scopes, form, errors, notice,
            created_name => created.as_ref().map(|c| c.0.clone()),
            created_token => created.map(|c| c.1),
            max_days => api_tokens::MAX_DAYS,
        },
    )
}

/// `GET /account/tokens`
pub async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    query: web::Query<TokensQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("The token is revoked: it no longer works."),
        Some("not-found") => Some("That token is not one of yours, or it was revoked already."),
        _ => None,
    };
    let form = TokenForm {
        days: "90".into(),
        ..TokenForm::default()
    };
    page(
        &state,
        &viewer,
        StatusCode::OK,
        &user,
        &form,
        FieldErrors::new(),
        None,
        notice,
    )
    .await
}

/// `POST /account/tokens`: the new token is on the page this answers with, and nowhere else.
pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now_naive();
    let token = match NewToken::parse(&form.name, &form.scopes, &form.days, &user.roles, now) {
        Ok(token) => token,
        Err(errors) => {
            return page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &user,
                &form,
                errors,
                None,
                None,
            )
            .await
        }
    };
    let (id, email, name) = (user.account_id, user.email.clone(), token.name.clone());
    let (_, secret) = db::run(&state.pool, move |c| {
        api_tokens::create(c, id, &email, &token, now)
    })
    .await?;
    let blank = TokenForm {
        days: "90".into(),
        ..TokenForm::default()
    };
    page(
        &state,
        &viewer,
        StatusCode::CREATED,
        &user,
        &blank,
        FieldErrors::new(),
        Some((name, secret)),
        None,
    )
    .await
}

/// `POST /account/tokens/{id}/revoke`
pub async fn revoke(
    state: web::Data<AppState>,
    SignedIn(user): SignedIn,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = path.parse::<i64>().map_err(|_| AppError::NotFound)?;
    let (id, email, now) = (
        user.account_id,
        user.email.clone(),
        state.ctx.clock.now_naive(),
    );
    let revoked = db::run(&state.pool, move |c| {
        api_tokens::revoke(c, id, &email, token, now)
    })
    .await?;
    // Another account's token, or one revoked already: nothing is said about which.
    let notice = if revoked { "revoked" } else { "not-found" };
    Ok(see_other(&format!("/account/tokens?notice={notice}")))
}
