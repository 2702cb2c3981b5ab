//! `/member/...`: a member's own page. It signs in with a single-use link mailed to its alias
//! (`/member/sign-in`), then sees the releases it was mailed and their states, acknowledges
//! one, accepts the current policy, edits its representative and asks for a new alias, reaches
//! its key's page, and reads where to report a leak. No member id is ever in a URL or a form:
//! every route acts on the member of the session, which the guard resolves. The rules are in
//! `membership::member_sign_in`, `membership::member_edit`, `membership::keys` and
//! `releases::member_mail`.

use std::time::{Duration, Instant};

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::domain::SecurityAlias;
use crate::error::{AppError, FieldErrors, Refusal, WorkflowError};
use crate::membership::member_edit::{self, EditError, EditForm, Editor};
use crate::membership::member_sign_in::{self, LinkProblem};
use crate::membership::{self, keys, members};
use crate::releases::member_mail;
use crate::web::auth::{
    private_cookie, removal_cookie, CheckedForm, CsrfForm, EmptyForm, SignedInMember, Viewer,
    MEMBER_COOKIE,
};
use crate::web::form::see_other;
use crate::web::AppState;

pub const SIGN_IN_PATH: &str = "/member/sign-in";

/// A request for a link takes at least this long, whatever it found, so its time does not
/// tell a member's address from another.
const SIGN_IN_FLOOR: Duration = Duration::from_millis(300);

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SignInForm {
    #[serde(default)]
    pub alias: String,
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    #[serde(default)]
    pub done: Option<String>,
}

fn sign_in_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    form: &SignInForm,
    errors: &FieldErrors,
    sent: bool,
) -> Result<HttpResponse, AppError> {
    state.pages.page_with_status(
        status,
        viewer,
        "member/sign_in.html",
        minijinja::context! {
            form, errors, sent,
            minutes => member_sign_in::LINK_MINUTES,
        },
    )
}

/// The form that asks for a link, or, after it was sent, the same answer for everyone.
pub async fn sign_in_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let sent = query.done.as_deref() == Some("sent");
    sign_in_page(
        &state,
        &viewer,
        StatusCode::OK,
        &SignInForm::default(),
        &FieldErrors::new(),
        sent,
    )
}

/// Mails a link if the address is an active member's; answers the same either way.
pub async fn request_link(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: CheckedForm<SignInForm>,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let CheckedForm { form, csrf_ok } = form;
    if !csrf_ok {
        return Err(AppError::Csrf);
    }
    let alias = match SecurityAlias::parse(&form.alias) {
        Ok(alias) => alias,
        Err(e) => {
            let errors = FieldErrors::from([(
                "alias".to_owned(),
                format!(
                    "Enter your organisation's security alias, e.g. security@example.com: {e}."
                ),
            )]);
            return sign_in_page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                false,
            );
        }
    };
    let ctx = state.ctx.clone();
    db::run(&state.pool, move |c| {
        member_sign_in::request_link(c, &ctx, &alias)
    })
    .await?;
    state.mailer.wake_workers();
    tokio::time::sleep(SIGN_IN_FLOOR.saturating_sub(started.elapsed())).await;
    Ok(see_other(&format!("{SIGN_IN_PATH}?done=sent")))
}

fn link_problem(
    state: &AppState,
    viewer: &Viewer,
    problem: LinkProblem,
) -> Result<HttpResponse, AppError> {
    let (status, message) = match problem {
        LinkProblem::Unknown => (StatusCode::NOT_FOUND, "This sign-in link is not known. Check that the whole link was copied from the mail, or ask for a new one."),
        LinkProblem::Used => (StatusCode::GONE, "This sign-in link was already used. Each link works once; ask for a new one."),
        LinkProblem::Expired => (StatusCode::GONE, "This sign-in link has expired, or a newer one was used. Ask for a new one."),
        LinkProblem::Refused => (StatusCode::FORBIDDEN, "This organisation cannot sign in: it is not an active member of the list. Write to the working group if you think this is wrong."),
    };
    state.pages.page_with_status(
        status,
        viewer,
        "link_problem.html",
        minijinja::context! { message },
    )
}

/// The link's page: a button, because mail scanners fetch links.
pub async fn link_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let (ctx, lookup) = (state.ctx.clone(), token.clone());
    match db::run(&state.pool, move |c| {
        member_sign_in::check_link(c, &ctx, &lookup)
    })
    .await?
    {
        Ok(link) => state.pages.page(
            &viewer,
            "member/sign_in_link.html",
            minijinja::context! { token, link },
        ),
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}

/// The link's button: the link is used up and a member session starts.
pub async fn use_link(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let ctx = state.ctx.clone();
    match db::run(&state.pool, move |c| {
        member_sign_in::use_link(c, &ctx, &token)
    })
    .await?
    {
        Ok(session) => {
            let secure = state.settings.base_url.scheme() == "https";
            let cookie = private_cookie(
                &state.cookie_key,
                MEMBER_COOKIE,
                session,
                secure,
                SameSite::Strict,
            );
            let mut response = see_other("/member");
            response.add_cookie(&cookie).map_err(AppError::internal)?;
            Ok(response)
        }
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}

pub async fn sign_out(
    state: web::Data<AppState>,
    SignedInMember(member): SignedInMember,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, move |c| member_sign_in::sign_out(c, &member)).await?;
    let mut response = see_other(SIGN_IN_PATH);
    response
        .add_cookie(&removal_cookie(MEMBER_COOKIE))
        .map_err(AppError::internal)?;
    Ok(response)
}

fn notice_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "acknowledged" => "Thank you: the receipt is recorded.",
        "policy" => "The current embargo policy is accepted.",
        "saved" => "The representative is saved.",
        "alias" => "A confirmation link was mailed to the new alias. The alias changes when someone who reads it follows the link; until then mail keeps going to the current one.",
        "saved-alias" => "The representative is saved, and a confirmation link was mailed to the new alias. The alias changes when the link is followed.",
        "unchanged" => "Nothing was changed.",
        _ => return None,
    })
}

/// The member's page.
pub async fn home(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedInMember(current): SignedInMember,
    query: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let id = current.member_id;
    let now = state.ctx.clock.now_naive();
    let (member, mailings, pending) = db::run(&state.pool, move |c| {
        let member = members::find(c, id)?.ok_or(db::DbError::Query(diesel::NotFound))?;
        let mailings = member_mail::mailings(c, id)?;
        let pending = member_edit::pending(c, &[id], now)?.remove(&id);
        Ok::<_, db::DbError>((member, mailings, pending))
    })
    .await?;
    let key = keys::summary(&member, now);
    state.pages.page(
        &viewer,
        "member/home.html",
        minijinja::context! {
            member, mailings, pending, key,
            current_policy => state.ctx.policy.version,
            report_to => state.ctx.report_to(),
            notice => notice_text(query.done.as_deref()),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct AcknowledgeForm {
    #[serde(default)]
    pub mail: String,
}

/// Acknowledges one of the member's own mails; another's, or one that did not reach it, is
/// "not found".
pub async fn acknowledge(
    state: web::Data<AppState>,
    SignedInMember(member): SignedInMember,
    CsrfForm(form): CsrfForm<AcknowledgeForm>,
) -> Result<HttpResponse, AppError> {
    let mail: i64 = form.mail.trim().parse().map_err(|_| AppError::NotFound)?;
    db::run(&state.pool, move |c| {
        member_mail::acknowledge(c, member.member_id, mail, member.alias.as_str())
    })
    .await?;
    Ok(see_other("/member?done=acknowledged"))
}

/// Accepts the policy version in force now.
pub async fn accept_policy(
    state: web::Data<AppState>,
    SignedInMember(member): SignedInMember,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let ctx = state.ctx.clone();
    db::run(&state.pool, move |c| {
        membership::accept_policy(c, &ctx, member.member_id, ctx.policy.version)
    })
    .await?;
    Ok(see_other("/member?done=policy"))
}

/// The member's contacts as typed: the organisation's name stays with the working group.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ContactsForm {
    #[serde(default)]
    pub rep_name: String,
    #[serde(default)]
    pub rep_email: String,
    #[serde(default)]
    pub security_alias: String,
}

async fn contacts_page(
    state: &AppState,
    viewer: &Viewer,
    member_id: i64,
    status: StatusCode,
    form: Option<ContactsForm>,
    refusal: Option<Refusal>,
) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now_naive();
    let (member, pending) = db::run(&state.pool, move |c| {
        let member = members::find(c, member_id)?.ok_or(db::DbError::Query(diesel::NotFound))?;
        let pending = member_edit::pending(c, &[member_id], now)?.remove(&member_id);
        Ok::<_, db::DbError>((member, pending))
    })
    .await?;
    let form = form.unwrap_or_else(|| ContactsForm {
        rep_name: member.rep_name.clone(),
        rep_email: member.rep_email.clone(),
        security_alias: member.security_alias.to_string(),
    });
    let errors = refusal
        .as_ref()
        .map(Refusal::field_errors)
        .unwrap_or_default();
    let problem = refusal.as_ref().and_then(Refusal::banner);
    state.pages.page_with_status(
        status,
        viewer,
        "member/contacts.html",
        minijinja::context! {
            member, pending, form, errors, problem,
            alias_change_days => member_edit::ALIAS_CHANGE_DAYS,
        },
    )
}

pub async fn contacts_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedInMember(member): SignedInMember,
) -> Result<HttpResponse, AppError> {
    contacts_page(
        &state,
        &viewer,
        member.member_id,
        StatusCode::OK,
        None,
        None,
    )
    .await
}

/// A member's own edit goes through the admins' rules (`member_edit`), except that another
/// member's name is never shown when the alias asked for is taken.
fn member_refusal(error: EditError) -> Result<Refusal, AppError> {
    match error {
        EditError::AliasTaken { .. } => Ok(Refusal::Conflict {
            reason: "That address cannot be this organisation's alias.".into(),
            fields: FieldErrors::from([(
                "security_alias".to_owned(),
                "That address is already another member's security alias; choose another.".into(),
            )]),
        }),
        other => other.into_response(),
    }
}

pub async fn save_contacts(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedInMember(member): SignedInMember,
    form: CheckedForm<ContactsForm>,
) -> Result<HttpResponse, AppError> {
    let CheckedForm { form, csrf_ok } = form;
    let id = member.member_id;
    if !csrf_ok {
        let refusal = Refusal::conflict(
            "This form's security token is missing or does not match this browser (the page was \
             open a long time, or cookies are blocked). Nothing was saved; send it again.",
        );
        return contacts_page(
            &state,
            &viewer,
            id,
            StatusCode::FORBIDDEN,
            Some(form),
            Some(refusal),
        )
        .await;
    }
    let stored = db::run(&state.pool, move |c| members::find(c, id))
        .await?
        .ok_or(AppError::NotFound)?;
    let typed = EditForm {
        org_name: stored.org_name.clone(),
        rep_name: form.rep_name.clone(),
        rep_email: form.rep_email.clone(),
        security_alias: form.security_alias.clone(),
    };
    let parsed = match typed.parse() {
        Ok(parsed) => parsed,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let refusal = Some(Refusal::Invalid(errors));
            return contacts_page(&state, &viewer, id, status, Some(form), refusal).await;
        }
    };
    let ctx = state.ctx.clone();
    let alias = member.alias.clone();
    let outcome = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>(member_edit::edit_as(
            c,
            &ctx,
            id,
            Editor::Member(&alias),
            &parsed,
        ))
    })
    .await?;
    match outcome {
        Ok(edited) => {
            state.mailer.wake_workers();
            let done = match (edited.changed.is_empty(), edited.alias_requested.is_some()) {
                (true, false) => "unchanged",
                (false, false) => "saved",
                (true, true) => "alias",
                (false, true) => "saved-alias",
            };
            Ok(see_other(&format!("/member?done={done}")))
        }
        Err(error) => {
            let refusal = member_refusal(error)?;
            contacts_page(
                &state,
                &viewer,
                id,
                refusal.status(),
                Some(form),
                Some(refusal),
            )
            .await
        }
    }
}

/// The member's key: to the existing key page, through a fresh signed key link of its own.
pub async fn key(
    state: web::Data<AppState>,
    SignedInMember(member): SignedInMember,
) -> Result<HttpResponse, AppError> {
    let (url, _) = keys::key_link(&state.ctx, member.member_id, state.ctx.clock.now());
    let path = url
        .find("/members/key/")
        .map_or(url.as_str(), |at| &url[at..])
        .to_owned();
    Ok(see_other(&path))
}
