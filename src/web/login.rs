//! `/login` and `/logout`. One message for any failed sign-in, the same work and the same
//! answers whether or not the email belongs to an account, a lockout per email address, and a
//! new session token at every sign-in.

use actix_web::cookie::SameSite;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::password::Verified;
use crate::accounts::session;
use crate::accounts::throttle::{self, Gate};
use crate::accounts::{self, AccountEmail};
use crate::audit;
use crate::db;
use crate::error::AppError;
use crate::web::auth::{
    client_ip, private_cookie, read_private_cookie, removal_cookie, safe_next, CsrfForm, EmptyForm,
    SignedIn, Viewer, SESSION_COOKIE,
};
use crate::web::AppState;

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Serialize)]
struct LoginPage<'a> {
    email: &'a str,
    next: &'a str,
    error: Option<String>,
}

/// The one sentence every failed sign-in gets.
pub const FAILED: &str = "The email address or the password is not right.";

pub async fn login_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(query.next.as_deref());
    if viewer.user.is_some() {
        return Ok(see_other(&next));
    }
    state.pages.page(
        &viewer,
        "login.html",
        LoginPage {
            email: "",
            next: &next,
            error: None,
        },
    )
}

pub async fn login(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(form.next.as_deref());
    let typed = form.email.trim().to_lowercase();
    let key = throttle::email_key(&typed);
    let ip = client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string());
    let security = state.settings.security.clone();

    let (gate_key, lookup) = (key.clone(), typed.clone());
    let (gate, account) = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>((
            throttle::check(c, &gate_key, db::now())?,
            accounts::find_by_email(c, &lookup)?,
        ))
    })
    .await?;
    if let Gate::Locked { until } = gate {
        return locked(&state, &viewer, &typed, &next, until);
    }
    let stored_hash = account
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone());
    let verified = state
        .hasher
        .verify(form.password.clone(), stored_hash)
        .await;

    if let (Some(account), Verified::Yes { rehash }) = (account, verified) {
        let new_hash = if rehash {
            state.hasher.hash(form.password.clone()).await.ok()
        } else {
            None
        };
        let previous = read_private_cookie(&req, &state.cookie_key, SESSION_COOKIE);
        let token = db::run(&state.pool, move |c| {
            db::write_transaction(c, |c| {
                throttle::clear(c, &key)?;
                if let Some(previous) = previous {
                    session::end(c, &previous)?;
                }
                if let Some(hash) = &new_hash {
                    accounts::upgrade_hash(c, account.id, hash)?;
                }
                let token = session::start(c, account.id, &security)?;
                audit::record(
                    c,
                    &account.email,
                    "login",
                    &format!("account:{}", account.id),
                    serde_json::json!({ "ip": ip, "hash_upgraded": new_hash.is_some() }),
                )?;
                Ok::<_, db::DbError>(token)
            })
        })
        .await?;
        let secure = state.settings.base_url.scheme() == "https";
        let cookie = private_cookie(
            &state.cookie_key,
            SESSION_COOKIE,
            token,
            secure,
            SameSite::Lax,
        );
        let target = if account.must_change_password {
            "/account?must_change=1".to_owned()
        } else {
            next
        };
        let mut response = see_other(&target);
        response.add_cookie(&cookie).map_err(AppError::internal)?;
        return Ok(response);
    }

    // Name the address in the audit log only if it is one; a password typed into the email
    // field must not end up there.
    let actor = AccountEmail::parse(&typed).map_or_else(
        |_| "(not an email address)".to_owned(),
        |e| e.as_str().to_owned(),
    );
    let (threshold, window) = (security.lockout_threshold, security.lockout_window);
    let gate = db::run(&state.pool, move |c| {
        db::write_transaction(c, |c| {
            let gate = throttle::record_failure(c, &key, threshold, window, db::now())?;
            audit::record(
                c,
                &actor,
                "login.failed",
                "login",
                serde_json::json!({ "ip": ip }),
            )?;
            Ok::<_, db::DbError>(gate)
        })
    })
    .await?;
    if let Gate::Locked { until } = gate {
        return locked(&state, &viewer, &typed, &next, until);
    }
    state.pages.page_with_status(
        StatusCode::UNAUTHORIZED,
        &viewer,
        "login.html",
        LoginPage {
            email: &form.email,
            next: &next,
            error: Some(FAILED.to_owned()),
        },
    )
}

fn locked(
    state: &AppState,
    viewer: &Viewer,
    email: &str,
    next: &str,
    until: chrono::NaiveDateTime,
) -> Result<HttpResponse, AppError> {
    let seconds = (until - db::now()).num_seconds().max(1);
    let minutes = (seconds + 59) / 60;
    let message = format!(
        "Sign-in for this email address is paused after too many failed attempts. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut response = state.pages.page_with_status(
        StatusCode::TOO_MANY_REQUESTS,
        viewer,
        "login.html",
        LoginPage {
            email,
            next,
            error: Some(message),
        },
    )?;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_str(&seconds.to_string()).map_err(AppError::internal)?,
    );
    Ok(response)
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = read_private_cookie(&req, &state.cookie_key, SESSION_COOKIE);
    db::run(&state.pool, move |c| {
        db::write_transaction(c, |c| {
            if let Some(token) = token {
                session::end(c, &token)?;
            }
            audit::record(
                c,
                user.actor(),
                "logout",
                &format!("account:{}", user.account_id),
                serde_json::json!({}),
            )?;
            Ok::<_, db::DbError>(())
        })
    })
    .await?;
    let mut response = see_other("/");
    response
        .add_cookie(&removal_cookie(SESSION_COOKIE))
        .map_err(AppError::internal)?;
    Ok(response)
}

/// Post/Redirect/Get: after a successful form, the browser is sent to a page to GET.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}
