//! The applicant's side: `/apply` (the form), `/apply/confirm/{token}` (the alias round trip)
//! and `/apply/status/{token}` (progress, editing while undecided, withdrawing). The form works
//! without JavaScript; a failed submission re-renders with every value kept and a message per
//! field.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::accounts::session::token_hash;
use crate::db;
use crate::error::{AppError, FieldErrors, Refusal};
use crate::membership::application::{
    self, ApplicationForm, ApplicationStatus, LinkProblem, StoredCheck, CATEGORIES,
};
use crate::membership::{self, review};
use crate::web::auth::{client_ip, CheckedForm, CsrfForm, EmptyForm, Viewer};
use crate::web::form::{act, see_other};
use crate::web::AppState;

#[derive(Serialize)]
struct FormPage<'a> {
    form: &'a ApplicationForm,
    errors: &'a FieldErrors,
    categories: &'static [(&'static str, &'static str)],
    policy_version: i32,
    max_days_to_fix: u32,
    voucher_required: bool,
    /// Where the form posts: `/apply`, or the status page's edit address.
    action: String,
    editing: bool,
    /// Why the form came back although no field is wrong.
    problem: Option<String>,
}

/// The form came back because its CSRF token did not match: nothing was stored.
const TOKEN_REFUSED: &str = "Your answers are kept below, but they were not sent: the form's security token did not match this browser. That happens when cookies are blocked or the page was open for a long time. Please send the form again.";

fn form_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    form: &ApplicationForm,
    errors: &FieldErrors,
    action: String,
    problem: Option<String>,
) -> Result<HttpResponse, AppError> {
    let editing = action != "/apply";
    let page = FormPage {
        form,
        errors,
        categories: CATEGORIES,
        policy_version: state.ctx.policy.version,
        max_days_to_fix: state.settings.membership.max_days_to_fix,
        voucher_required: state.settings.membership.voucher_required,
        action,
        editing,
        problem,
    };
    state
        .pages
        .page_with_status(status, viewer, "apply.html", page)
}

pub async fn form(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    form_page(
        &state,
        &viewer,
        StatusCode::OK,
        &ApplicationForm::default(),
        &FieldErrors::new(),
        "/apply".into(),
        None,
    )
}

/// The form again after a refusal: every value typed, the message beside its field.
fn refused_form(
    state: &AppState,
    viewer: &Viewer,
    form: &ApplicationForm,
    action: String,
    refusal: Refusal,
) -> Result<HttpResponse, AppError> {
    form_page(
        state,
        viewer,
        refusal.status(),
        form,
        &refusal.field_errors(),
        action,
        refusal.banner(),
    )
}

pub async fn submit(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    CheckedForm { form, csrf_ok }: CheckedForm<ApplicationForm>,
) -> Result<HttpResponse, AppError> {
    if !csrf_ok {
        let errors = FieldErrors::new();
        return form_page(
            &state,
            &viewer,
            StatusCode::FORBIDDEN,
            &form,
            &errors,
            "/apply".into(),
            Some(TOKEN_REFUSED.into()),
        );
    }
    if !form.homepage.trim().is_empty() {
        // Only bots fill the hidden field: answer as if all went well, keep nothing.
        tracing::info!("An application was discarded by the honeypot.");
        return state.pages.page(&viewer, "apply_discarded.html", ());
    }
    let new = match form.parse(state.ctx.policy.version) {
        Ok(new) => new,
        Err(errors) => {
            return refused_form(
                &state,
                &viewer,
                &form,
                "/apply".into(),
                Refusal::Invalid(errors),
            )
        }
    };
    let ctx = state.ctx.clone();
    let ip = client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string());
    act(
        &state,
        move |c| membership::submit(c, &ctx, &new, ip.as_deref()),
        |done| format!("/apply/status/{}?submitted=1", done.status_token),
        |refusal| async { refused_form(&state, &viewer, &form, "/apply".into(), refusal) },
    )
    .await
}

#[derive(Serialize)]
struct StatusPage {
    application: application::Application,
    status_label: &'static str,
    open: bool,
    awaiting_confirmation: bool,
    checks: Vec<StoredCheck>,
    approvals: u32,
    approvals_required: u32,
    token: String,
    submitted: bool,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct StatusQuery {
    submitted: Option<String>,
    notice: Option<String>,
}

async fn by_status_token(
    state: &AppState,
    token: &str,
) -> Result<application::Application, AppError> {
    let hash = token_hash(token);
    db::run(&state.pool, move |c| {
        application::find_by_status_token(c, &hash)
    })
    .await?
    .ok_or(AppError::NotFound)
}

pub async fn status(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    let id = app.id;
    let (checks, votes) = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>((application::load_checks(c, id)?, review::votes_for(c, id)?))
    })
    .await?;
    let notice = match query.notice.as_deref() {
        Some("edited") => Some("Your changes were saved and the checks ran again."),
        Some("resent") => Some("A new confirmation link was sent to the security alias."),
        Some("withdrawn") => Some("The application was withdrawn."),
        _ => None,
    };
    let page = StatusPage {
        status_label: app.status().label(),
        open: app.status().is_open(),
        awaiting_confirmation: app.status() == ApplicationStatus::AwaitingConfirmation,
        approvals: review::tally(&votes).approvals,
        approvals_required: state.settings.approvals_required,
        application: app,
        checks,
        token,
        submitted: query.submitted.is_some(),
        notice,
    };
    state.pages.page(&viewer, "apply_status.html", page)
}

pub async fn edit_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    if !app.status().is_open() {
        return Err(AppError::Conflict(
            "This application has already been decided and cannot be changed.".into(),
        ));
    }
    let form = ApplicationForm::from_application(&app);
    form_page(
        &state,
        &viewer,
        StatusCode::OK,
        &form,
        &FieldErrors::new(),
        format!("/apply/status/{token}/edit"),
        None,
    )
}

pub async fn edit(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CheckedForm { form, csrf_ok }: CheckedForm<ApplicationForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    let action = format!("/apply/status/{token}/edit");
    if !csrf_ok {
        let errors = FieldErrors::new();
        return form_page(
            &state,
            &viewer,
            StatusCode::FORBIDDEN,
            &form,
            &errors,
            action,
            Some(TOKEN_REFUSED.into()),
        );
    }
    let new = match form.parse(state.ctx.policy.version) {
        Ok(new) => new,
        Err(errors) => {
            return refused_form(&state, &viewer, &form, action, Refusal::Invalid(errors))
        }
    };
    let (ctx, id, status_token) = (state.ctx.clone(), app.id, token.clone());
    act(
        &state,
        move |c| membership::edit(c, &ctx, id, &new, &status_token),
        |()| format!("/apply/status/{token}?notice=edited"),
        |refusal| async { refused_form(&state, &viewer, &form, action, refusal) },
    )
    .await
}

pub async fn resend(
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    let (ctx, id, status_token) = (state.ctx.clone(), app.id, token.clone());
    db::run(&state.pool, move |c| {
        membership::resend_confirmation(c, &ctx, id, &status_token)
    })
    .await?;
    state.mailer.wake_workers();
    Ok(see_other(&format!("/apply/status/{token}?notice=resent")))
}

pub async fn withdraw(
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    let id = app.id;
    db::run(&state.pool, move |c| membership::withdraw(c, id)).await?;
    Ok(see_other(&format!(
        "/apply/status/{token}?notice=withdrawn"
    )))
}

#[derive(Serialize)]
struct ConfirmPage {
    token: String,
    org_name: String,
    alias: String,
}

fn link_problem(
    state: &AppState,
    viewer: &Viewer,
    problem: LinkProblem,
) -> Result<HttpResponse, AppError> {
    let (status, message) = match problem {
        LinkProblem::Unknown => (StatusCode::NOT_FOUND, "This confirmation link is not known. Check that the whole link was copied from the mail."),
        LinkProblem::Used => (StatusCode::GONE, "This confirmation link was already used. Each link works once; the alias is confirmed if you followed it before."),
        LinkProblem::Expired => (StatusCode::GONE, "This confirmation link has expired. Ask for a new one from the application's status page."),
        LinkProblem::Closed => (StatusCode::GONE, "This application was withdrawn or has been decided, so its confirmation link no longer applies."),
    };
    state.pages.page_with_status(
        status,
        viewer,
        "link_problem.html",
        minijinja::context! { message },
    )
}

/// Shows what following the link will do. Nothing changes on GET: mail scanners fetch links.
pub async fn confirm_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let lookup = token.clone();
    let checked = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>(match application::check_confirmation(c, &lookup)? {
            Ok(id) => Ok(application::find(c, id)?),
            Err(problem) => Err(problem),
        })
    })
    .await?;
    match checked {
        // The page already says what the button would: a closed application's link is dead.
        Ok(Some(app)) if !app.status().is_open() => {
            link_problem(&state, &viewer, LinkProblem::Closed)
        }
        Ok(Some(app)) => state.pages.page(
            &viewer,
            "confirm.html",
            ConfirmPage {
                token,
                org_name: app.org_name,
                alias: app.security_alias.to_string(),
            },
        ),
        Ok(None) => Err(AppError::NotFound),
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}

pub async fn confirm(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let ctx = state.ctx.clone();
    match db::run(&state.pool, move |c| membership::confirm(c, &ctx, &token)).await? {
        Ok(app) => {
            state.mailer.wake_workers();
            state.pages.page(
                &viewer,
                "confirmed.html",
                minijinja::context! { org_name => app.org_name, alias => app.security_alias },
            )
        }
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}
