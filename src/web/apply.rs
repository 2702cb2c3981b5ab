//! The applicant's side: `/apply` (the form), `/apply/confirm/{token}` (the alias round trip)
//! and `/apply/status/{token}` (progress, editing while undecided, withdrawing). The form works
//! without JavaScript; a failed submission re-renders with every value kept and a message per
//! field.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::accounts::session::token_hash;
use crate::db;
use crate::error::AppError;
use crate::membership::application::{
    self, ApplicationForm, FieldErrors, LinkProblem, StoredCheck, CATEGORIES,
};
use crate::membership::{self, review, FlowError};
use crate::web::auth::{client_ip, CheckedForm, CsrfForm, EmptyForm, Viewer};
use crate::web::login::see_other;
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
    problem: Option<&'static str>,
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
    problem: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let editing = action != "/apply";
    let page = FormPage {
        form,
        errors,
        categories: CATEGORIES,
        policy_version: state.membership.policy.version,
        max_days_to_fix: state.membership.settings.max_days_to_fix,
        voucher_required: state.membership.settings.voucher_required,
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

/// Maps a workflow refusal onto the form: the message goes beside the field it concerns.
fn refusal_errors(error: &FlowError) -> Option<FieldErrors> {
    let mut errors = FieldErrors::new();
    match error {
        FlowError::AlreadyMember(domain) => {
            errors.insert(
                "org_domains".into(),
                format!(
                    "{domain} is already a member of the list; there is no need to apply again."
                ),
            );
        }
        FlowError::AlreadyOpen(domain) => {
            errors.insert(
                "org_domains".into(),
                format!(
                    "An application for {domain} is already open. Use the private status link sent with it to edit it, or wait for its decision."
                ),
            );
        }
        _ => return None,
    }
    Some(errors)
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
            Some(TOKEN_REFUSED),
        );
    }
    if !form.homepage.trim().is_empty() {
        // Only bots fill the hidden field: answer as if all went well, keep nothing.
        tracing::info!("An application was discarded by the honeypot.");
        return state.pages.page(&viewer, "apply_discarded.html", ());
    }
    let new = match form.parse(state.membership.policy.version) {
        Ok(new) => new,
        Err(errors) => {
            return form_page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                "/apply".into(),
                None,
            )
        }
    };
    let env = state.membership.clone();
    let ip = client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string());
    let submitted = db::run(&state.pool, move |c| {
        membership::submit(c, &env, &new, ip.as_deref())
    })
    .await;
    match submitted {
        Ok(done) => {
            state.mailer.wake_workers();
            Ok(see_other(&format!(
                "/apply/status/{}?submitted=1",
                done.status_token
            )))
        }
        Err(error) => match refusal_errors(&error) {
            Some(errors) => form_page(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                &form,
                &errors,
                "/apply".into(),
                None,
            ),
            None => Err(flow_error(error)),
        },
    }
}

/// How workflow errors reach a person.
pub fn flow_error(error: FlowError) -> AppError {
    match error {
        FlowError::NotFound => AppError::NotFound,
        FlowError::Decided => {
            AppError::Conflict("This application has already been decided.".into())
        }
        FlowError::Refused(reason) => AppError::Conflict(reason),
        FlowError::AlreadyMember(_) | FlowError::AlreadyOpen(_) => {
            AppError::Conflict(error.to_string())
        }
        FlowError::Mail(mail) => AppError::internal(mail),
        FlowError::Db(db) => db.into(),
    }
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
        awaiting_confirmation: app.status() == application::Status::AwaitingConfirmation,
        approvals: review::tally(&votes).approvals,
        approvals_required: state.membership.approvals_required,
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
            Some(TOKEN_REFUSED),
        );
    }
    let new = match form.parse(state.membership.policy.version) {
        Ok(new) => new,
        Err(errors) => {
            return form_page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                action,
                None,
            )
        }
    };
    let (env, id, status_token) = (state.membership.clone(), app.id, token.clone());
    match db::run(&state.pool, move |c| {
        membership::edit(c, &env, id, &new, &status_token)
    })
    .await
    {
        Ok(()) => {
            state.mailer.wake_workers();
            Ok(see_other(&format!("/apply/status/{token}?notice=edited")))
        }
        Err(error) => match refusal_errors(&error) {
            Some(errors) => form_page(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                &form,
                &errors,
                action,
                None,
            ),
            None => Err(flow_error(error)),
        },
    }
}

pub async fn resend(
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let app = by_status_token(&state, &token).await?;
    let (env, id, status_token) = (state.membership.clone(), app.id, token.clone());
    db::run(&state.pool, move |c| {
        membership::resend_confirmation(c, &env, id, &status_token)
    })
    .await
    .map_err(flow_error)?;
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
    db::run(&state.pool, move |c| membership::withdraw(c, id))
        .await
        .map_err(flow_error)?;
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
                alias: app.security_alias,
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
    let env = state.membership.clone();
    match db::run(&state.pool, move |c| membership::confirm(c, &env, &token))
        .await
        .map_err(flow_error)?
    {
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
