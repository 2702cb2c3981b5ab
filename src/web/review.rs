//! `/review/applications`: the working group's queue and each application's page with its
//! answers, scorecard, votes and comments; voting, commenting, and an approver's decision.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::Role;
use crate::db;
use crate::domain::OrgDomain;
use crate::error::{AppError, FieldErrors, Refusal};
use crate::membership::application::{self, Application, ApplicationStatus, StoredCheck};
use crate::membership::review::{self, CastVote, Comment, Tally, Vote};
use crate::membership::{self, FlowError};
use crate::web::auth::{CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::form;
use crate::web::AppState;

pub const PAGE_SIZE: i64 = 25;

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    #[serde(default)]
    page: i64,
}

#[derive(Serialize)]
struct QueueRow {
    application: Application,
    status_label: &'static str,
    waiting_days: i64,
}

pub async fn queue(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let selected = query
        .status
        .as_deref()
        .and_then(|s| s.parse::<ApplicationStatus>().ok());
    let statuses: Vec<ApplicationStatus> = match selected {
        Some(status) => vec![status],
        None => vec![ApplicationStatus::InReview, ApplicationStatus::Recommended],
    };
    let page = query.page.max(0);
    let (rows, more, counts) = db::run(&state.pool, move |c| {
        let (rows, more) = application::queue(c, &statuses, page, PAGE_SIZE)?;
        Ok::<_, db::DbError>((rows, more, application::status_counts(c)?))
    })
    .await?;
    let now = state.ctx.clock.now_naive();
    let rows: Vec<QueueRow> = rows
        .into_iter()
        .map(|a| QueueRow {
            status_label: a.status().label(),
            waiting_days: (now - a.alias_confirmed_at.unwrap_or(a.created_at)).num_days(),
            application: a,
        })
        .collect();
    let filters: Vec<(&str, &str, i64)> = ApplicationStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                s.label(),
                counts.iter().find(|(n, _)| n == s).map_or(0, |(_, c)| *c),
            )
        })
        .collect();
    let status_param = selected
        .map(|s| format!("status={}&", s.as_str()))
        .unwrap_or_default();
    let context = minijinja::context! {
        rows,
        filters,
        selected => selected.map(|s| s.as_str()),
        page,
        previous_link => (page > 0).then(|| format!("/review/applications?{status_param}page={}", page - 1)),
        next_link => more.then(|| format!("/review/applications?{status_param}page={}", page + 1)),
    };
    state.pages.page(&viewer, "review/queue.html", context)
}

#[derive(Serialize)]
struct DetailPage {
    application: Application,
    status_label: &'static str,
    domains: Vec<OrgDomain>,
    track_record: Vec<String>,
    community_links: Vec<String>,
    checks: Vec<StoredCheck>,
    failing_required: Vec<String>,
    votes: Vec<CastVote>,
    tally: Tally,
    approvals_required: u32,
    comments: Vec<Comment>,
    my_vote: Option<CastVote>,
    can_vote: bool,
    recused: bool,
    can_decide: bool,
    open: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    errors: FieldErrors,
    values: BTreeMap<&'static str, String>,
}

/// What a re-rendered detail page tells the person: a notice, a refusal, or form mistakes
/// with the values typed.
#[derive(Default)]
struct Feedback {
    notice: Option<&'static str>,
    error: Option<String>,
    errors: FieldErrors,
    values: BTreeMap<&'static str, String>,
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, AppError> {
    let Feedback {
        notice,
        error,
        errors,
        values,
    } = feedback;
    let user = viewer.user.clone().ok_or(AppError::SignInRequired)?;
    let (app, checks, votes, comments) = db::run(&state.pool, move |c| {
        let app = application::find(c, id)?;
        Ok::<_, db::DbError>((
            app,
            application::load_checks(c, id)?,
            review::votes_for(c, id)?,
            review::comments_for(c, id)?,
        ))
    })
    .await?;
    let app = app.ok_or(AppError::NotFound)?;
    let domains = app.domains().to_vec();
    let recused = review::is_recused(&user.email, &domains);
    let open_for_votes = matches!(
        app.status(),
        ApplicationStatus::InReview | ApplicationStatus::Recommended
    );
    let page = DetailPage {
        status_label: app.status().label(),
        track_record: app.track_record.0.clone(),
        community_links: app.community_links.0.clone(),
        failing_required: checks
            .iter()
            .filter(|c| c.failed_required())
            .map(|c| c.title.clone())
            .collect(),
        tally: review::tally(&votes),
        approvals_required: state.settings.approvals_required,
        my_vote: votes
            .iter()
            .find(|v| v.account_id == user.account_id)
            .cloned(),
        can_vote: user.has(Role::Reviewer) && !recused && open_for_votes,
        can_decide: user.has(Role::Approver) && !recused && open_for_votes,
        open: open_for_votes,
        recused,
        domains,
        checks,
        votes,
        comments,
        application: app,
        notice,
        error,
        errors,
        values,
    };
    state
        .pages
        .page_with_status(status, viewer, "review/detail.html", page)
}

pub async fn detail(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.notice.as_deref() {
        Some("voted") => Some("Your vote was recorded."),
        Some("commented") => Some("Your comment was added."),
        Some("approved") => Some("The application was approved; the organisation is now a member."),
        Some("declined") => Some("The application was declined; the applicant was told why."),
        _ => None,
    };
    detail_page(
        &state,
        &viewer,
        id.into_inner(),
        StatusCode::OK,
        Feedback {
            notice,
            ..Feedback::default()
        },
    )
    .await
}

/// Runs a review action; a refusal shows the page again with the reason and what was typed.
async fn act<F>(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: &'static str,
    values: BTreeMap<&'static str, String>,
    action: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut db::DbConnection) -> Result<(), FlowError> + Send + 'static,
{
    form::act(
        state,
        action,
        |()| format!("/review/applications/{id}?notice={notice}"),
        |refusal: Refusal| async move {
            let status = refusal.status();
            let feedback = Feedback {
                error: Some(refusal.message()),
                errors: refusal.field_errors(),
                values,
                ..Feedback::default()
            };
            detail_page(state, viewer, id, status, feedback).await
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct VoteForm {
    #[serde(default)]
    vote: String,
    #[serde(default)]
    reason: String,
}

pub async fn vote(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<VoteForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let mut errors = FieldErrors::new();
    let choice = form.vote.parse::<Vote>().ok();
    if choice.is_none() {
        errors.insert(
            "vote".into(),
            "Choose approve, reject or abstain.".to_owned(),
        );
    }
    let reason = form.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 4000 {
        errors.insert(
            "reason".into(),
            "Give a reason for your vote (at most 4000 characters).".to_owned(),
        );
    }
    let Some(choice) = choice.filter(|_| errors.is_empty()) else {
        let values = BTreeMap::from([("vote", form.vote), ("reason", form.reason)]);
        return detail_page(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                errors,
                values,
                ..Feedback::default()
            },
        )
        .await;
    };
    let ctx = state.ctx.clone();
    let typed = BTreeMap::from([("vote", form.vote), ("reason", form.reason)]);
    act(&state, &viewer, id, "voted", typed, move |c| {
        membership::vote(c, &ctx, id, &user, choice, &reason).map(|_| ())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
}

pub async fn comment(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let body = form.body.trim().to_owned();
    if body.is_empty() || body.chars().count() > 4000 {
        let errors = FieldErrors::from([(
            "body".to_owned(),
            "Write a comment of at most 4000 characters.".to_owned(),
        )]);
        let values = BTreeMap::from([("body", form.body)]);
        return detail_page(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                errors,
                values,
                ..Feedback::default()
            },
        )
        .await;
    }
    let typed = BTreeMap::from([("body", form.body)]);
    act(&state, &viewer, id, "commented", typed, move |c| {
        membership::comment(c, id, &user, &body)
    })
    .await
}

pub async fn approve(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ctx = state.ctx.clone();
    act(&state, &viewer, id, "approved", BTreeMap::new(), move |c| {
        membership::final_approve(c, &ctx, id, &user).map(|_| ())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    reason: String,
}

pub async fn decline(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<DeclineForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let reason = form.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 4000 {
        let errors = FieldErrors::from([(
            "decline_reason".to_owned(),
            "Give the reason the applicant will be sent.".to_owned(),
        )]);
        let values = BTreeMap::from([("decline_reason", form.reason)]);
        return detail_page(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                errors,
                values,
                ..Feedback::default()
            },
        )
        .await;
    }
    let ctx = state.ctx.clone();
    let typed = BTreeMap::from([("decline_reason", form.reason)]);
    act(&state, &viewer, id, "declined", typed, move |c| {
        membership::decline(c, &ctx, id, &user, &reason)
    })
    .await
}
