//! `/admin/members`: the roster searched, filtered and paged; suspend, reinstate and remove
//! members with a reason (removal asked on a page of its own first), record breaches, mark
//! yearly reviews done, mail a member a link to give a new OpenPGP key, edit a member, and
//! export the roster as CSV or JSON. Members on an older policy version, members due for
//! review and keys that expire soon are flagged.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use serde_json::json;

use crate::accounts::session::CurrentUser;
use crate::audit;
use crate::db;
use crate::domain::MemberStatus;
use crate::error::{AppError, FieldErrors, Refusal};
use crate::membership::keys::{self, KeySummary};
use crate::membership::member_edit::{self, EditForm, PendingAlias};
use crate::membership::members::{self, Breach, Member};
use crate::membership::{self, roster, MemberAction};
use crate::web::auth::{CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::confirm::{self, ConfirmPage};
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
    /// A new alias waiting for its confirmation link to be followed.
    pending_alias: Option<PendingAlias>,
}

/// The search, status filter and page of `/admin/members`, as typed in its form.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Shown {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// From 1; anything else reads as the first page.
    #[serde(default)]
    page: String,
}

impl Shown {
    fn page(&self) -> i64 {
        self.page.trim().parse().unwrap_or(1)
    }

    /// `path` with the search and filter kept, and `page` when given.
    fn link(&self, path: &str, page: Option<i64>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("q", self.q.trim()), ("status", self.status.trim())] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        if let Some(page) = page {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    notice: Option<String>,
    #[serde(flatten)]
    shown: Shown,
}

/// The statuses the filter offers, as (value, label).
fn status_choices() -> Vec<(&'static str, &'static str)> {
    let mut choices = vec![("", "any")];
    choices.extend(MemberStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())));
    choices
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    shown: Shown,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    let filter = roster::Filter::parse(&shown.q, &shown.status).unwrap_or_else(|why| {
        errors.insert("status".into(), why);
        roster::Filter::parse(&shown.q, "").unwrap_or_default()
    });
    let status = if errors.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let now = state.ctx.clock.now_naive();
    let wanted = shown.page();
    let (found, rows, deliveries, pending) = db::run(&state.pool, move |c| {
        let found = roster::page(c, &filter, wanted, roster::PAGE_SIZE)?;
        let ids: Vec<i64> = found.members.iter().map(|m| m.id).collect();
        let breaches = members::breaches_of(c, &ids)?;
        let deliveries = keys::last_encrypted_deliveries(c, &ids)?;
        let pending = member_edit::pending(c, &ids, now)?;
        let rows: Vec<(Member, Vec<Breach>)> = found
            .members
            .iter()
            .cloned()
            .map(|member| {
                let own = breaches
                    .iter()
                    .filter(|b| b.member_id == member.id)
                    .cloned()
                    .collect();
                (member, own)
            })
            .collect();
        Ok::<_, db::DbError>((found, rows, deliveries, pending))
    })
    .await?;
    let version = state.ctx.policy.version;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(member, breaches)| Row {
            outdated_policy: member.status == MemberStatus::Active
                && member.policy_version < version,
            review_due: member.status != MemberStatus::Removed && member.next_review_due <= now,
            key: keys::summary(&member, now),
            last_encrypted: deliveries.get(&member.id).map(|at| {
                at.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }),
            pending_alias: pending.get(&member.id).cloned(),
            member,
            breaches,
        })
        .collect();
    let context = minijinja::context! {
        rows,
        notice,
        error,
        errors,
        policy_version => version,
        statuses => status_choices(),
        page => found.page,
        pages => found.pages,
        total => found.total,
        previous_link => (found.page > 1).then(|| shown.link("/admin/members", Some(found.page - 1))),
        next_link => (found.page < found.pages).then(|| shown.link("/admin/members", Some(found.page + 1))),
        csv_link => shown.link("/admin/members.csv", None),
        json_link => shown.link("/admin/members.json", None),
        shown,
    };
    state
        .pages
        .page_with_status(status, viewer, "admin/members.html", context)
}

pub async fn list(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let notice = match query.notice.as_deref() {
        Some("suspended") => Some("The member was suspended and told why."),
        Some("reinstated") => Some("The member was reinstated."),
        Some("removed") => Some("The member was removed and told why."),
        Some("reviewed") => Some("The yearly review was recorded."),
        Some("breach") => Some("The breach was recorded."),
        Some("key-link") => Some("A link to give a new OpenPGP key was mailed to the member."),
        _ => None,
    };
    list_page(&state, &viewer, StatusCode::OK, notice, None, query.shown).await
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn member_action(
    state: &AppState,
    viewer: &Viewer,
    admin: CurrentUser,
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
            Shown::default(),
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
                Shown::default(),
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

/// Asks before removing a member: what removal does, with the reason to give. The list links
/// here; the form posts to [`remove`].
pub async fn remove_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    show_remove(
        &state,
        &viewer,
        id.into_inner(),
        StatusCode::OK,
        String::new(),
        None,
        None,
    )
    .await
}

async fn show_remove(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    reason: String,
    error: Option<String>,
    reason_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let member = db::run(&state.pool, move |c| members::find(c, id))
        .await?
        .ok_or(AppError::NotFound)?;
    let removed = member.status == MemberStatus::Removed;
    let page = ConfirmPage {
        title: format!("Remove {}?", member.org_name),
        summary: format!(
            "{} ({}, {}) will be removed from the list.",
            member.org_name, member.org_domain, member.security_alias
        ),
        consequences: vec![
            "It receives no embargoed mail from now on; embargoed mail already queued for it is held back.".to_owned(),
            format!("The reason is mailed to {}, with a reminder that what it received earlier stays under embargo.", member.security_alias),
            "Removal is final: the page offers nothing further for a removed member. Its record, breaches and history are kept, and the removal is recorded in the audit log.".to_owned(),
        ],
        action: format!("/admin/members/{id}/remove"),
        button: "Remove the member".to_owned(),
        reason: Some(reason),
        reason_label: "Reason (mailed to the member)".to_owned(),
        reason_error,
        error: if removed {
            Some("This member has already been removed.".to_owned())
        } else {
            error
        },
        back: "/admin/members".to_owned(),
        back_label: "Cancel".to_owned(),
        can_act: !removed,
    };
    confirm::show(state, viewer, status, page)
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    reason: String,
    /// `yes`, sent by the confirmation page's form only: a bare post does nothing.
    #[serde(default)]
    confirm: String,
}

pub async fn remove(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let (error, reason_error) = if !confirm::confirmed(&form.confirm) {
        (Some(confirm::NOT_CONFIRMED.to_owned()), None)
    } else if form.reason.trim().is_empty() {
        (
            None,
            Some("Give a reason; the member is told it.".to_owned()),
        )
    } else {
        (None, None)
    };
    if error.is_some() || reason_error.is_some() {
        return show_remove(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.reason,
            error,
            reason_error,
        )
        .await;
    }
    member_action(
        &state,
        &viewer,
        admin,
        id,
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
            Shown::default(),
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
                Shown::default(),
            )
            .await
        },
    )
    .await
}

#[derive(Serialize)]
struct EditPage {
    member: Member,
    form: EditForm,
    errors: FieldErrors,
    problem: Option<String>,
    notice: Option<&'static str>,
    pending: Option<PendingAlias>,
    /// Set when the member's key has no usable user ID for the pending new alias.
    pending_key_warning: Option<String>,
    alias_change_days: i64,
}

async fn edit_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    form: Option<EditForm>,
    refusal: Option<Refusal>,
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now_naive();
    let (member, pending) = db::run(&state.pool, move |c| {
        let member = members::find(c, id)?;
        let pending = member_edit::pending(c, &[id], now)?.remove(&id);
        Ok::<_, db::DbError>((member, pending))
    })
    .await?;
    let member = member.ok_or(AppError::NotFound)?;
    let pending_key_warning = pending.as_ref().and_then(|p| {
        let key = member.pgp_key.as_deref()?;
        crate::openpgp::member_key::usable(key, &p.new_alias, state.ctx.clock.now())
            .err()
            .map(|why| format!("The member's OpenPGP key cannot be used for {}: {why} Once the alias changes, embargoed mail is withheld until the member gives a key for it (mail it a key link).", p.new_alias))
    });
    let page = EditPage {
        form: form.unwrap_or_else(|| EditForm::from_member(&member)),
        errors: refusal
            .as_ref()
            .map(Refusal::field_errors)
            .unwrap_or_default(),
        problem: refusal.as_ref().and_then(Refusal::banner),
        notice,
        pending,
        pending_key_warning,
        alias_change_days: member_edit::ALIAS_CHANGE_DAYS,
        member,
    };
    state
        .pages
        .page_with_status(status, viewer, "admin/member_edit.html", page)
}

#[derive(Debug, Deserialize)]
pub struct EditQuery {
    notice: Option<String>,
}

/// The form to change a member's organisation name, representative and security alias.
pub async fn edit_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
    query: web::Query<EditQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.notice.as_deref() {
        Some("saved") => Some("The changes were saved and recorded in the audit log."),
        Some("alias") => Some("A confirmation link was mailed to the new alias. The alias changes when someone who reads it follows the link."),
        Some("saved-alias") => Some("The changes were saved and recorded in the audit log. A confirmation link was mailed to the new alias; the alias changes when someone who reads it follows the link."),
        Some("unchanged") => Some("Nothing was changed."),
        _ => None,
    };
    edit_page(
        &state,
        &viewer,
        id.into_inner(),
        StatusCode::OK,
        None,
        None,
        notice,
    )
    .await
}

pub async fn edit(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let parsed = match form.parse() {
        Ok(parsed) => parsed,
        Err(errors) => {
            return edit_page(
                &state,
                &viewer,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(form),
                Some(Refusal::Invalid(errors)),
                None,
            )
            .await;
        }
    };
    let (state, viewer): (&AppState, &Viewer) = (&state, &viewer);
    let ctx = state.ctx.clone();
    act(
        state,
        move |c| member_edit::edit(c, &ctx, id, &admin, &parsed),
        |edited| {
            let notice = match (edited.changed.is_empty(), edited.alias_requested.is_some()) {
                (true, false) => "unchanged",
                (false, false) => "saved",
                (true, true) => "alias",
                (false, true) => "saved-alias",
            };
            format!("/admin/members/{id}/edit?notice={notice}")
        },
        |refusal| async move {
            edit_page(
                state,
                viewer,
                id,
                refusal.status(),
                Some(form),
                Some(refusal),
                None,
            )
            .await
        },
    )
    .await
}

/// What the export is filtered by: the list page's search and status.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

/// The roster the filter selects, as a download; the export is audited.
async fn export(
    state: &AppState,
    admin: CurrentUser,
    query: ExportQuery,
    format: &'static str,
) -> Result<HttpResponse, AppError> {
    let filter = roster::Filter::parse(&query.q, &query.status).map_err(AppError::Invalid)?;
    let rows = db::run(&state.pool, move |c| {
        let rows = roster::rows(c, &filter)?;
        db::write_transaction(c, |c| {
            audit::record(
                c,
                admin.actor(),
                "member.roster-exported",
                "members",
                json!({
                    "format": format,
                    "members": rows.len(),
                    "search": filter.search,
                    "status": filter.status,
                }),
            )
        })?;
        Ok::<_, db::DbError>(rows)
    })
    .await?;
    let mut body = Vec::new();
    let content_type = match format {
        "csv" => {
            roster::write_csv(&rows, &mut body).map_err(AppError::internal)?;
            "text/csv; charset=utf-8"
        }
        _ => {
            roster::write_json(&rows, &mut body).map_err(AppError::internal)?;
            "application/json"
        }
    };
    let day = state.ctx.clock.now().format("%Y-%m-%d");
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"members-{day}.{format}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// `GET /admin/members.csv`: the roster as CSV, for spreadsheets.
pub async fn export_csv(
    state: web::Data<AppState>,
    SignedIn(admin): SignedIn,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    export(&state, admin, query.into_inner(), "csv").await
}

/// `GET /admin/members.json`: the roster as JSON.
pub async fn export_json(
    state: web::Data<AppState>,
    SignedIn(admin): SignedIn,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    export(&state, admin, query.into_inner(), "json").await
}
