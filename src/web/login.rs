//! `/login` and `/logout`: the forms, and the pages for each answer of the sign-in workflow
//! (`accounts::signin`), which decides.

use actix_web::cookie::SameSite;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::signin::{self, Attempt, SignIn};
use crate::error::AppError;
use crate::web::auth::{
    client_ip, private_cookie, read_private_cookie, removal_cookie, safe_next, url_encode,
    AnySession, CsrfForm, EmptyForm, Viewer, SESSION_COOKIE,
};
use crate::web::form::see_other;
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
    let attempt = Attempt {
        email: form.email.clone(),
        password: form.password.clone(),
        ip: client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string()),
        previous_session: read_private_cookie(&req, &state.cookie_key, SESSION_COOKIE),
    };
    match signin::sign_in(state.sign_in_context(), attempt).await? {
        SignIn::Success {
            token,
            must_change_password,
            second_factor,
        } => {
            let secure = state.settings.base_url.scheme() == "https";
            let cookie = private_cookie(
                &state.cookie_key,
                SESSION_COOKIE,
                token,
                secure,
                SameSite::Lax,
            );
            let target = if second_factor {
                format!("/login/second-factor?next={}", url_encode(&next))
            } else if must_change_password {
                "/account?must_change=1".to_owned()
            } else {
                next
            };
            let mut response = see_other(&target);
            response.add_cookie(&cookie).map_err(AppError::internal)?;
            Ok(response)
        }
        SignIn::Locked { until } => locked(&state, &viewer, form.email.trim(), &next, until),
        SignIn::Failed => state.pages.page_with_status(
            StatusCode::UNAUTHORIZED,
            &viewer,
            "login.html",
            LoginPage {
                email: &form.email,
                next: &next,
                error: Some(FAILED.to_owned()),
            },
        ),
    }
}

fn locked(
    state: &AppState,
    viewer: &Viewer,
    email: &str,
    next: &str,
    until: chrono::NaiveDateTime,
) -> Result<HttpResponse, AppError> {
    let seconds = (until - state.ctx.clock.now_naive()).num_seconds().max(1);
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
    AnySession(user): AnySession,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = read_private_cookie(&req, &state.cookie_key, SESSION_COOKIE);
    signin::sign_out(&state.pool, token, user.account_id, user.email.clone()).await?;
    let mut response = see_other("/");
    response
        .add_cookie(&removal_cookie(SESSION_COOKIE))
        .map_err(AppError::internal)?;
    Ok(response)
}
