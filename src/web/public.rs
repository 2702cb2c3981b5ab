//! Public pages about the list: the membership criteria, the embargo policy, the roster of
//! members, and the signed link by which a member accepts a newer policy.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::db;
use crate::error::AppError;
use crate::membership::checks::ALL_CHECKS;
use crate::membership::members::{self, Member};
use crate::membership::{self};
use crate::releases::upstream::ENVOY_POLICY_URL;
use crate::web::auth::{CsrfForm, EmptyForm, Viewer};
use crate::web::AppState;

#[derive(Serialize)]
struct Criterion {
    title: &'static str,
    evidence: &'static str,
}

/// The criteria with what satisfies each; from the list's policy.
const CRITERIA: &[Criterion] = &[
    Criterion {
        title: "An actively monitored security alias",
        evidence: "An address such as security@ on a domain your organisation owns, reaching a team rather than one person. Not a free-mail address. We mail it a confirmation link that must be followed before review starts.",
    },
    Criterion {
        title: "You redistribute the project, or your product is closely coupled to it",
        evidence: "Your product page on your own site, and a description of how you ship or couple to the project.",
    },
    Criterion {
        title: "A user base beyond your own organisation",
        evidence: "A description of who uses your product and roughly how many.",
    },
    Criterion {
        title: "Active participation in the project's community",
        evidence: "Links to contributions (pull requests, issues, reviews, talks) and the handles of your contributors.",
    },
    Criterion {
        title: "Acceptance of the embargo policy",
        evidence: "Ticking the box for the current version of the embargo policy when you apply.",
    },
    Criterion {
        title: "Someone in the Product Security Working Group",
        evidence: "A named representative, with email and chat handle, who will take a turn as security release lead.",
    },
    Criterion {
        title: "A track record of fixing security issues",
        evidence: "Links to your own published security advisories or fixes, on your organisation's own site: no blogs, social media, videos or pages behind a login.",
    },
    Criterion {
        title: "The ability to ship a fix in time",
        evidence: "The number of days you need from receiving a patch to shipping it.",
    },
];

#[derive(Serialize)]
struct CriteriaPage {
    criteria: &'static [Criterion],
    checks: Vec<(&'static str, &'static str, bool)>,
    max_days_to_fix: u32,
    voucher_required: bool,
    policy_version: i32,
}

pub async fn criteria(
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    let required = &state.settings.membership.required_checks;
    let page = CriteriaPage {
        criteria: CRITERIA,
        checks: ALL_CHECKS
            .iter()
            .map(|(k, t)| (*k, *t, required.iter().any(|r| r == k)))
            .collect(),
        max_days_to_fix: state.settings.membership.max_days_to_fix,
        voucher_required: state.settings.membership.voucher_required,
        policy_version: state.ctx.policy.version,
    };
    state.pages.page(&viewer, "criteria.html", page)
}

pub async fn embargo_policy(
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    // Members check mail signatures against this key; the page says which one it is.
    let fingerprint = crate::mail::grouped_fingerprint(&state.ctx.mailer.signer.fingerprint);
    let context = minijinja::context! {
        policy => state.ctx.policy,
        envoy_policy_url => ENVOY_POLICY_URL,
        list_key_fingerprint => fingerprint,
    };
    state.pages.page(&viewer, "embargo_policy.html", context)
}

#[derive(Serialize)]
struct RosterEntry {
    org_name: String,
    joined: String,
    last_reviewed: String,
}

pub async fn roster(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let active: Vec<Member> = db::run(&state.pool, members::active).await?;
    let entries: Vec<RosterEntry> = active
        .into_iter()
        .map(|m| RosterEntry {
            org_name: m.org_name,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
            last_reviewed: m.last_reviewed_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    state.pages.page(
        &viewer,
        "members.html",
        minijinja::context! { members => entries },
    )
}

fn verified_link(state: &AppState, token: &str) -> Option<(i64, i32)> {
    state
        .ctx
        .links
        .verify_policy_link(token, state.ctx.clock.now().timestamp())
}

pub async fn accept_policy_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let Some((member_id, version)) = verified_link(&state, &token) else {
        return state.pages.page_with_status(
            StatusCode::GONE,
            &viewer,
            "link_problem.html",
            minijinja::context! { message => "This link is not valid or has expired. Ask the working group for a new one." },
        );
    };
    let member = db::run(&state.pool, move |c| members::find(c, member_id))
        .await?
        .ok_or(AppError::NotFound)?;
    let context = minijinja::context! {
        member => member,
        version => version,
        current => state.ctx.policy.version == version,
        accepted => member.policy_version >= version,
        policy => state.ctx.policy,
        token => token,
    };
    state.pages.page(&viewer, "accept_policy.html", context)
}

pub async fn accept_policy(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let Some((member_id, version)) = verified_link(&state, &token) else {
        return Err(AppError::Conflict(
            "This link is not valid or has expired.".into(),
        ));
    };
    let ctx = state.ctx.clone();
    db::run(&state.pool, move |c| {
        membership::accept_policy(c, &ctx, member_id, version)
    })
    .await?;
    state.pages.page(
        &viewer,
        "policy_accepted.html",
        minijinja::context! { version },
    )
}
