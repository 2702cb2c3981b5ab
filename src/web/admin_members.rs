//! `/admin/members`: suspend, reinstate and remove members with a reason, record breaches, and
//! mark yearly reviews done, and mail a member a link to give a new OpenPGP key. Members on an
//! older policy version, members due for review and keys that expire soon are flagged.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::domain::MemberStatus;
use crate::error::AppError;
use crate::membership::keys::{self, KeySummary};
use crate::membership::members::{self, Breach, Member};
use crate::membership::{self, MemberAction};
use crate::web::auth::{CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::form::{act, see_other};
use crate::web::AppState;

#[derive(Serialize)]
struct Row {
    member: Member,
    breaches: Vec<Breach>,
    outdated_policy: bool,
    review_due: bool,
    key: KeySummary,
    /// When a message last left encrypted to the member's key.
    last_encrypted: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (rows, deliveries) = db::run(&state.pool, |c| {
        let breaches = members::all_breaches(c)?;
        let deliveries = keys::last_encrypted_deliveries(c)?;
        let rows: Vec<(Member, Vec<Breach>)> = members::all(c)?
            .into_iter()
            .map(|member| {
                let own = breaches
                    .iter()
                    .filter(|b| b.member_id == member.id)
                    .cloned()
                    .collect();
                (member, own)
            })
            .collect();
        Ok::<_, db::DbError>((rows, deliveries))
    })
    .await?;
    let now = state.ctx.clock.now_naive();
    let version = state.ctx.policy.version;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(member, breaches)| Row {
            outdated_policy: member.status == MemberStatus::Active
                && member.policy_version < version,
            review_due: member.status != MemberStatus::Removed && member.next_review_due <= now,
            key: keys::summary(&member, now),
            last_encrypted: deliveries
                .get(&member.id)
                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
            member,
            breaches,
        })
        .collect();
    let context = minijinja::context! { rows, notice, error, policy_version => version };
    state
        .pages
        .page_with_status(status, viewer, "admin/members.html", context)
}

pub async fn list(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.notice.as_deref() {
        Some("suspended") => Some("The member was suspended and told why."),
        Some("reinstated") => Some("The member was reinstated."),
        Some("removed") => Some("The member was removed and told why."),
        Some("reviewed") => Some("The yearly review was recorded."),
        Some("breach") => Some("The breach was recorded."),
        Some("key-link") => Some("A link to give a new OpenPGP key was mailed to the member."),
        _ => None,
    };
    list_page(&state, &viewer, StatusCode::OK, notice, None).await
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn member_action(
    state: &AppState,
    viewer: &Viewer,
    admin: crate::accounts::session::CurrentUser,
    id: i64,
    action: MemberAction,
    reason: String,
    notice: &str,
) -> Result<HttpResponse, AppError> {
    if action != MemberAction::MarkReviewed && reason.trim().is_empty() {
        return list_page(
            state,
            viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Give a reason; the member is told it.".into()),
        )
        .await;
    }
    let ctx = state.ctx.clone();
    act(
        state,
        move |c| membership::member_action(c, &ctx, id, &admin, action, reason.trim()),
        |()| format!("/admin/members?notice={notice}"),
        |refusal| async move {
            list_page(
                state,
                viewer,
                refusal.status(),
                None,
                Some(refusal.message()),
            )
            .await
        },
    )
    .await
}

pub async fn suspend(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    member_action(
        &state,
        &viewer,
        admin,
        id.into_inner(),
        MemberAction::Suspend,
        form.reason,
        "suspended",
    )
    .await
}

pub async fn reinstate(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    member_action(
        &state,
        &viewer,
        admin,
        id.into_inner(),
        MemberAction::Reinstate,
        form.reason,
        "reinstated",
    )
    .await
}

pub async fn remove(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    member_action(
        &state,
        &viewer,
        admin,
        id.into_inner(),
        MemberAction::Remove,
        form.reason,
        "removed",
    )
    .await
}

pub async fn reviewed(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    member_action(
        &state,
        &viewer,
        admin,
        id.into_inner(),
        MemberAction::MarkReviewed,
        form.reason,
        "reviewed",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct BreachForm {
    #[serde(default)]
    what_leaked: String,
    #[serde(default)]
    leaked_to: String,
    #[serde(default)]
    occurred_on: String,
    #[serde(default)]
    follow_up: String,
}

pub async fn breach(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<BreachForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let mut errors: BTreeMap<&str, &str> = BTreeMap::new();
    if form.what_leaked.trim().is_empty() {
        errors.insert("what_leaked", "Say what leaked.");
    }
    if form.leaked_to.trim().is_empty() {
        errors.insert("leaked_to", "Say to whom it leaked.");
    }
    let day = NaiveDate::parse_from_str(form.occurred_on.trim(), "%Y-%m-%d").ok();
    if day.is_none() {
        errors.insert("occurred_on", "Give the date as YYYY-MM-DD.");
    }
    let Some(occurred_at) = day
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .filter(|_| errors.is_empty())
    else {
        let message = errors.values().copied().collect::<Vec<_>>().join(" ");
        return list_page(
            &state,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(message),
        )
        .await;
    };
    let (what, to, follow) = (
        form.what_leaked.trim().to_owned(),
        form.leaked_to.trim().to_owned(),
        form.follow_up.trim().to_owned(),
    );
    db::run(&state.pool, move |c| {
        membership::record_breach(c, id, &admin, &what, &to, occurred_at, &follow)
    })
    .await?;
    Ok(see_other("/admin/members?notice=breach"))
}

/// Mails the member a fresh link to give the list a new OpenPGP key.
pub async fn key_link(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let (state, viewer): (&AppState, &Viewer) = (&state, &viewer);
    let ctx = state.ctx.clone();
    act(
        state,
        move |c| keys::send_key_link(c, &ctx, id, &admin),
        |()| "/admin/members?notice=key-link".to_owned(),
        |refusal| async move {
            list_page(
                state,
                viewer,
                refusal.status(),
                None,
                Some(refusal.message()),
            )
            .await
        },
    )
    .await
}
