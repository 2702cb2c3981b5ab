//! `/admin/outbox`: the mail queue for admins and release managers. Queued, failed and held
//! messages with their reasons, filtered and paged in the database, and "send again" for a
//! failed one (`mail::outbox::send_again`, audited). Subjects, bodies and attachments are never
//! shown: an embargoed mail's content stays out of this page.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::domain::OutboxStatus;
use crate::error::AppError;
use crate::mail::outbox::{self, Counts, Filter, Listed};
use crate::releases::release;
use crate::web::auth::{CsrfForm, SignedIn, Viewer};
use crate::web::form::act;
use crate::web::AppState;

pub const PAGE_SIZE: i64 = 50;

/// The filters as typed, kept as text so the form shows them again exactly. They arrive in
/// the query string of the page, and as hidden fields of the "send again" form, which returns
/// to the same listing.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Listing {
    /// Empty: the messages that need attention (queued, failed, held); `all`; or one status.
    #[serde(default)]
    status: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    recipient: String,
    /// A release id, or empty for any.
    #[serde(default)]
    release: String,
    /// From 1.
    #[serde(default)]
    page: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(flatten)]
    listing: Listing,
    notice: Option<String>,
    id: Option<i64>,
}

/// What the page shows unless told otherwise: the messages someone may have to act on.
const ATTENTION: &[OutboxStatus] = &[
    OutboxStatus::Queued,
    OutboxStatus::Failed,
    OutboxStatus::Held,
];

fn statuses_for(choice: &str) -> Option<Vec<OutboxStatus>> {
    match choice {
        "" => Some(ATTENTION.to_vec()),
        "all" => Some(Vec::new()),
        other => other.parse::<OutboxStatus>().ok().map(|s| vec![s]),
    }
}

fn count_of(counts: &Counts, status: OutboxStatus) -> i64 {
    match status {
        OutboxStatus::Queued => counts.queued,
        OutboxStatus::Sending => counts.sending,
        OutboxStatus::Sent => counts.sent,
        OutboxStatus::Failed => counts.failed,
        OutboxStatus::Held => counts.held,
    }
}

fn total(counts: &Counts, statuses: &[OutboxStatus]) -> i64 {
    if statuses.is_empty() {
        OutboxStatus::ALL.iter().map(|s| count_of(counts, *s)).sum()
    } else {
        statuses.iter().map(|s| count_of(counts, *s)).sum()
    }
}

/// The listing parsed: the filter for the database, the page, and a message per bad field.
struct Parsed {
    filter: Filter,
    page: i64,
    errors: BTreeMap<&'static str, String>,
}

fn parse(listing: &Listing) -> Parsed {
    let mut errors = BTreeMap::new();
    let statuses = statuses_for(listing.status.trim()).unwrap_or_else(|| {
        errors.insert("status", "Choose a status from the list.".to_owned());
        ATTENTION.to_vec()
    });
    let template = Some(listing.template.trim().to_owned()).filter(|t| !t.is_empty());
    let recipient = listing.recipient.trim();
    let recipient = if recipient.chars().count() > 254 {
        errors.insert(
            "recipient",
            "Give at most 254 characters of the address.".to_owned(),
        );
        None
    } else {
        Some(recipient.to_owned()).filter(|r| !r.is_empty())
    };
    let release_id = match listing.release.trim() {
        "" => None,
        text => text
            .parse::<i64>()
            .map_err(|_| errors.insert("release", "Choose a release from the list.".to_owned()))
            .ok(),
    };
    let page = match listing.page.trim() {
        "" => 1,
        text => text.parse::<i64>().unwrap_or(1).clamp(1, 1_000_000),
    };
    Parsed {
        filter: Filter {
            statuses,
            template,
            recipient,
            release_id,
        },
        page,
        errors,
    }
}

/// The page's address with these filters, on `page`, plus any `extra` pairs. Built from the
/// known fields only, so a form cannot send the browser anywhere else.
fn link(listing: &Listing, page: Option<i64>, extra: &[(&str, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("status", &listing.status),
        ("template", &listing.template),
        ("recipient", &listing.recipient),
        ("release", &listing.release),
    ] {
        if !value.trim().is_empty() {
            q.append_pair(key, value.trim());
        }
    }
    if let Some(page) = page.filter(|p| *p > 1) {
        q.append_pair("page", &page.to_string());
    }
    for (key, value) in extra {
        q.append_pair(key, value);
    }
    let query = q.finish();
    if query.is_empty() {
        "/admin/outbox".to_owned()
    } else {
        format!("/admin/outbox?{query}")
    }
}

#[derive(Serialize)]
struct Row {
    message: Listed,
    release_title: Option<String>,
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
    count: i64,
    link: String,
}

#[derive(Serialize)]
struct OutboxPage {
    rows: Vec<Row>,
    choices: Vec<Choice>,
    templates: Vec<String>,
    releases: Vec<(i64, String)>,
    listing: Listing,
    errors: BTreeMap<&'static str, String>,
    matching: i64,
    first: i64,
    last: i64,
    page: i64,
    pages: i64,
    previous_link: Option<String>,
    next_link: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn outbox_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    listing: Listing,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let Parsed {
        filter,
        page,
        errors,
    } = parse(&listing);
    // Filters that are not understood are shown beside their fields; the rest still apply.
    let status = if status == StatusCode::OK && !errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    let counts_filter = filter.clone();
    let (counts, templates, releases) = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>((
            outbox::counts_matching(c, &counts_filter)?,
            outbox::templates_in_use(c)?,
            release::list(c)?,
        ))
    })
    .await?;
    let matching = total(&counts, &filter.statuses);
    let pages = ((matching + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = page.min(pages);
    let offset = (page - 1) * PAGE_SIZE;
    let messages = db::run(&state.pool, move |c| {
        outbox::list(c, &filter, offset, PAGE_SIZE)
    })
    .await?;
    let titles: HashMap<i64, String> = releases.iter().map(|r| (r.id, r.title.clone())).collect();
    let rows = messages
        .into_iter()
        .map(|message| Row {
            release_title: message.release_id.and_then(|id| titles.get(&id).cloned()),
            message,
        })
        .collect::<Vec<_>>();
    let choice = |value: &'static str, label: &'static str, statuses: &[OutboxStatus]| {
        let mut target = listing.clone();
        target.status = value.to_owned();
        Choice {
            value,
            label,
            count: total(&counts, statuses),
            link: link(&target, None, &[]),
        }
    };
    let choices = vec![
        choice("", "Needs attention", ATTENTION),
        choice("queued", "Queued", &[OutboxStatus::Queued]),
        choice("sending", "Sending", &[OutboxStatus::Sending]),
        choice("sent", "Sent", &[OutboxStatus::Sent]),
        choice("failed", "Failed", &[OutboxStatus::Failed]),
        choice("held", "Held", &[OutboxStatus::Held]),
        choice("all", "All", &[]),
    ];
    let shown = rows.len() as i64;
    let context = OutboxPage {
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        previous_link: (page > 1).then(|| link(&listing, Some(page - 1), &[])),
        next_link: (page < pages).then(|| link(&listing, Some(page + 1), &[])),
        rows,
        choices,
        templates,
        releases: releases.into_iter().map(|r| (r.id, r.title)).collect(),
        errors,
        matching,
        page,
        pages,
        notice,
        error,
        listing,
    };
    state
        .pages
        .page_with_status(status, viewer, "admin/outbox.html", context)
}

pub async fn list(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let PageQuery {
        listing,
        notice,
        id,
    } = query.into_inner();
    let notice = match (notice.as_deref(), id) {
        (Some("sent-again"), Some(id)) => Some(format!(
            "Message #{id} is queued again and leaves at once, unless the check before \
             sending holds it back (for example, when its release was cancelled or its member \
             is no longer active)."
        )),
        _ => None,
    };
    outbox_page(&state, &viewer, StatusCode::OK, listing, notice, None).await
}

/// "Send again" for a failed message: back in the queue, audited, the workers woken. Anything
/// not failed is refused with the reason, on the same listing.
pub async fn resend(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(listing): CsrfForm<Listing>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let now = state.ctx.clock.now_naive();
    let (state, viewer): (&AppState, &Viewer) = (&state, &viewer);
    let back = listing.clone();
    act(
        state,
        move |c| outbox::send_again(c, id, user.actor(), now),
        |_| {
            link(
                &back,
                Some(parse(&back).page),
                &[("notice", "sent-again".to_owned()), ("id", id.to_string())],
            )
        },
        |refusal| async move {
            outbox_page(
                state,
                viewer,
                refusal.status(),
                listing,
                None,
                Some(refusal.message()),
            )
            .await
        },
    )
    .await
}
