//! `/admin`: accounts and roles (searched, filtered and paged), password resets, and the audit
//! log. Admins only (the route table says so); every change is audited by the account
//! functions themselves. Disabling an account and resetting a password are asked on a page of
//! their own first ([`crate::web::confirm`]), as the members and release pages do.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::accounts::password::check_policy;
use crate::accounts::{self, AccountEmail, AccountWithRoles, Role};
use crate::audit;
use crate::db;
use crate::error::{AppError, FieldErrors, Refusal, WorkflowError};
use crate::mail::outbox;
use crate::releases::release::Actor;
use crate::releases::upstream;
use crate::web::auth::{CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::confirm;
use crate::web::form::act;
use crate::web::AppState;

#[derive(Serialize)]
struct Dashboard {
    accounts: usize,
    admins: i64,
    chain: audit::Verification,
    outbox: outbox::Counts,
}

pub async fn index(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now_naive();
    let dashboard = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>(Dashboard {
            accounts: accounts::list(c)?.len(),
            admins: accounts::active_admin_count(c)?,
            chain: audit::verify_since_checkpoint(c, now)?,
            outbox: outbox::counts(c)?,
        })
    })
    .await?;
    state.pages.page(&viewer, "admin/index.html", dashboard)
}

/// The search, filters and page of `/admin/users`, as typed in its form.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct UsersShown {
    #[serde(default)]
    q: String,
    /// `enabled`, `disabled`, or empty for both.
    #[serde(default)]
    state: String,
    /// A role's name, or empty for any.
    #[serde(default)]
    role: String,
    #[serde(default)]
    page: String,
}

impl UsersShown {
    fn filter(&self, errors: &mut FieldErrors) -> accounts::AccountFilter {
        let search = self.q.trim();
        let disabled = match self.state.trim() {
            "" | "all" => None,
            "enabled" => Some(false),
            "disabled" => Some(true),
            other => {
                errors.insert(
                    "state".into(),
                    format!("{other:?} is not a state; use enabled or disabled."),
                );
                None
            }
        };
        let role = match self.role.trim() {
            "" | "any" => None,
            name => name
                .parse::<Role>()
                .map_err(|why| errors.insert("role".into(), why))
                .ok(),
        };
        accounts::AccountFilter {
            search: (!search.is_empty()).then(|| search.to_owned()),
            disabled,
            role,
        }
    }

    fn link(&self, page: i64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", self.q.trim()),
            ("state", self.state.trim()),
            ("role", self.role.trim()),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        query.append_pair("page", &page.to_string());
        format!("/admin/users?{}", query.finish())
    }
}

/// Accounts on one page of `/admin/users`.
pub const USERS_PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    notice: Option<String>,
    #[serde(flatten)]
    shown: UsersShown,
}

#[derive(Serialize, Default)]
struct NewUserValues {
    email: String,
    name: String,
    roles: Vec<String>,
}

#[derive(Serialize)]
struct UsersPage {
    accounts: Vec<AccountWithRoles>,
    second_factor_ids: Vec<i64>,
    roles: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<String>,
    values: NewUserValues,
    errors: FieldErrors,
    /// Messages beside the search form's fields.
    filter_errors: FieldErrors,
    shown: UsersShown,
    page: i64,
    pages: i64,
    total: i64,
    previous_link: Option<String>,
    next_link: Option<String>,
}

fn role_choices() -> Vec<(&'static str, &'static str)> {
    Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect()
}

fn notice_text(code: &str) -> Option<&'static str> {
    match code {
        "roles" => Some("The roles were saved."),
        "disabled" => Some("The account was disabled and its sessions ended."),
        "enabled" => Some("The account was enabled."),
        "second-factor-reset" => {
            Some("The second factor was reset and the account's sessions ended.")
        }
        _ => None,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "every caller names what it shows again"
)]
async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    values: NewUserValues,
    errors: FieldErrors,
    shown: UsersShown,
) -> Result<HttpResponse, AppError> {
    let mut filter_errors = FieldErrors::new();
    let filter = shown.filter(&mut filter_errors);
    let status = if filter_errors.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let wanted = shown.page.trim().parse().unwrap_or(1);
    let (accounts, total, page, second_factor_ids) = db::run(&state.pool, move |c| {
        let (accounts, total, page) = accounts::search(c, &filter, wanted, USERS_PAGE_SIZE)?;
        let ids: Vec<i64> = accounts.iter().map(|a| a.account.id).collect();
        let with_factor = crate::accounts::second_factor::with_second_factor(c, &ids)?;
        Ok::<_, db::DbError>((accounts, total, page, with_factor))
    })
    .await?;
    let pages = ((total + USERS_PAGE_SIZE - 1) / USERS_PAGE_SIZE).max(1);
    let page = UsersPage {
        accounts,
        second_factor_ids,
        roles: role_choices(),
        notice,
        error,
        values,
        errors,
        filter_errors,
        page,
        pages,
        total,
        previous_link: (page > 1).then(|| shown.link(page - 1)),
        next_link: (page < pages).then(|| shown.link(page + 1)),
        shown,
    };
    state
        .pages
        .page_with_status(status, viewer, "admin/users.html", page)
}

pub async fn users(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let notice = query.notice.as_deref().and_then(notice_text);
    users_page(
        &state,
        &viewer,
        StatusCode::OK,
        notice,
        None,
        NewUserValues::default(),
        FieldErrors::new(),
        query.shown,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    names.iter().map(|n| n.parse::<Role>()).collect()
}

#[derive(Serialize)]
struct TemporaryPasswordPage {
    email: String,
    password: String,
    created: bool,
}

pub async fn create_user(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    let email = AccountEmail::parse(&form.email)
        .map_err(|e| errors.insert("email".into(), e))
        .ok();
    let name = form.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.insert(
            "name".into(),
            "Enter the person's name (at most 200 characters).".to_owned(),
        );
    }
    let roles = parse_roles(&form.roles)
        .map_err(|e| errors.insert("roles".into(), e))
        .ok();
    let values = NewUserValues {
        email: form.email.clone(),
        name: form.name.clone(),
        roles: form.roles.clone(),
    };
    let (Some(email), Some(roles), true) = (email, roles, errors.is_empty()) else {
        return users_page(
            &state,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            values,
            errors,
            UsersShown::default(),
        )
        .await;
    };
    let password = accounts::temporary_password();
    let hash = state
        .hasher
        .hash(password.clone())
        .await
        .map_err(AppError::internal)?;
    let (actor, address) = (admin.email.clone(), email.clone());
    let created = db::run(&state.pool, move |c| {
        accounts::create(c, &actor, &address, &name, &hash, &roles, true)
    })
    .await;
    match created {
        Ok(_) => state.pages.page(
            &viewer,
            "admin/temporary_password.html",
            TemporaryPasswordPage {
                email: email.as_str().to_owned(),
                password,
                created: true,
            },
        ),
        Err(error) => {
            let refusal = error.into_response()?;
            users_page(
                &state,
                &viewer,
                refusal.status(),
                None,
                refusal.banner(),
                values,
                refusal.field_errors(),
                UsersShown::default(),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RolesForm {
    #[serde(default)]
    roles: Vec<String>,
}

/// Runs an account change; a refusal (e.g. removing the last admin) re-renders the list with
/// the reason instead of failing.
async fn account_change<F>(
    state: &AppState,
    viewer: &Viewer,
    notice: &str,
    change: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut db::DbConnection) -> Result<(), accounts::AccountError> + Send + 'static,
{
    act(
        state,
        change,
        |()| format!("/admin/users?notice={notice}"),
        |refusal: Refusal| async move {
            users_page(
                state,
                viewer,
                refusal.status(),
                None,
                Some(refusal.message()),
                NewUserValues::default(),
                refusal.field_errors(),
                UsersShown::default(),
            )
            .await
        },
    )
    .await
}

pub async fn set_roles(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<RolesForm>,
) -> Result<HttpResponse, AppError> {
    let roles = parse_roles(&form.roles).map_err(AppError::Invalid)?;
    let id = id.into_inner();
    account_change(&state, &viewer, "roles", move |c| {
        accounts::set_roles(c, &admin.email, id, &roles)
    })
    .await
}

/// The form a confirmation page posts: `confirm=yes` says the person saw what will happen.
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

async fn account_for_page(state: &AppState, id: i64) -> Result<AccountWithRoles, AppError> {
    db::run(&state.pool, move |c| accounts::find(c, id))
        .await?
        .ok_or(AppError::NotFound)
}

async fn show_disable(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let a = account_for_page(state, id).await?;
    let page = confirm::ConfirmPage {
        title: format!("Disable the account of {}?", a.account.name),
        summary: format!(
            "{} ({}) will no longer be able to sign in.",
            a.account.name, a.account.email
        ),
        consequences: vec![
            "Every session of the account ends at once.".to_owned(),
            "Its roles and history are kept; Enable on the accounts page lets it back in."
                .to_owned(),
            "The change is recorded in the audit log. The last active admin cannot be disabled."
                .to_owned(),
        ],
        action: format!("/admin/users/{id}/disable"),
        button: "Disable the account".to_owned(),
        reason: None,
        reason_label: String::new(),
        reason_error: None,
        error: if a.account.disabled {
            Some("This account is already disabled.".to_owned())
        } else {
            error
        },
        back: "/admin/users".to_owned(),
        back_label: "Cancel".to_owned(),
        can_act: !a.account.disabled,
    };
    confirm::show(state, viewer, status, page)
}

/// Asks before disabling an account; the form posts to [`disable`].
pub async fn disable_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    show_disable(&state, &viewer, id.into_inner(), StatusCode::OK, None).await
}

pub async fn disable(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !confirm::confirmed(&form.confirm) {
        return show_disable(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(confirm::NOT_CONFIRMED.to_owned()),
        )
        .await;
    }
    account_change(&state, &viewer, "disabled", move |c| {
        accounts::set_disabled(c, &admin.email, id, true)
    })
    .await
}

pub async fn enable(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    account_change(&state, &viewer, "enabled", move |c| {
        accounts::set_disabled(c, &admin.email, id, false)
    })
    .await
}

async fn show_reset(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let a = account_for_page(state, id).await?;
    let page = confirm::ConfirmPage {
        title: format!("Reset the password of {}?", a.account.name),
        summary: format!(
            "The password of {} ({}) will be replaced by a temporary one.",
            a.account.name, a.account.email
        ),
        consequences: vec![
            "The current password stops working, and every session of the account ends at once."
                .to_owned(),
            "The next page shows the temporary password, once. Pass it on over a channel you trust; its owner must choose a new password at the next sign-in.".to_owned(),
            "The reset is recorded in the audit log.".to_owned(),
        ],
        action: format!("/admin/users/{id}/reset-password"),
        button: "Reset the password".to_owned(),
        reason: None,
        reason_label: String::new(),
        reason_error: None,
        error,
        back: "/admin/users".to_owned(),
        back_label: "Cancel".to_owned(),
        can_act: true,
    };
    confirm::show(state, viewer, status, page)
}

/// Asks before resetting a password; the form posts to [`reset_password`].
pub async fn reset_password_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    show_reset(&state, &viewer, id.into_inner(), StatusCode::OK, None).await
}

/// Sets a temporary password, shown once to the admin, and ends the account's sessions; the
/// person must choose a new password at the next sign-in.
pub async fn reset_password(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !confirm::confirmed(&form.confirm) {
        return show_reset(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(confirm::NOT_CONFIRMED.to_owned()),
        )
        .await;
    }
    let account = account_for_page(&state, id).await?;
    let password = accounts::temporary_password();
    debug_assert!(check_policy(&password, &account.account.email, &account.account.name).is_ok());
    let hash = state
        .hasher
        .hash(password.clone())
        .await
        .map_err(AppError::internal)?;
    let actor = admin.email.clone();
    db::run(&state.pool, move |c| {
        accounts::set_password(c, &actor, id, &hash, true, None, "account.password-reset")
    })
    .await?;
    state.pages.page(
        &viewer,
        "admin/temporary_password.html",
        TemporaryPasswordPage {
            email: account.account.email,
            password,
            created: false,
        },
    )
}

async fn show_second_factor_reset(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let a = account_for_page(state, id).await?;
    let page = confirm::ConfirmPage {
        title: format!("Reset the second factor of {}?", a.account.name),
        summary: format!(
            "The authenticator and the recovery codes of {} ({}) will be removed.",
            a.account.name, a.account.email
        ),
        consequences: vec![
            "Every session of the account ends at once; the next sign-in asks for the password only.".to_owned(),
            "An account whose role requires a second factor must set up a new one before it can do anything else.".to_owned(),
            "Do this only once you are sure who asked for it: with the second factor gone, the password alone opens the account until a new one is set up.".to_owned(),
            "The reset is recorded in the audit log.".to_owned(),
        ],
        action: format!("/admin/users/{id}/second-factor/reset"),
        button: "Reset the second factor".to_owned(),
        reason: None,
        reason_label: String::new(),
        reason_error: None,
        error,
        back: "/admin/users".to_owned(),
        back_label: "Cancel".to_owned(),
        can_act: true,
    };
    confirm::show(state, viewer, status, page)
}

/// Asks before resetting a second factor; the form posts to [`reset_second_factor`].
pub async fn reset_second_factor_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    show_second_factor_reset(&state, &viewer, id.into_inner(), StatusCode::OK, None).await
}

/// Removes an account's second factor (a lost phone) and ends its sessions; audited.
pub async fn reset_second_factor(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !confirm::confirmed(&form.confirm) {
        return show_second_factor_reset(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(confirm::NOT_CONFIRMED.to_owned()),
        )
        .await;
    }
    account_for_page(&state, id).await?;
    let actor = admin.email.clone();
    db::run(&state.pool, move |c| {
        crate::accounts::second_factor::remove(c, &actor, id, "2fa.reset", None)
    })
    .await?;
    Ok(crate::web::form::see_other(
        "/admin/users?notice=second-factor-reset",
    ))
}

#[derive(Debug, Deserialize, Serialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    page: i64,
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<audit::Entry>,
    actions: Vec<String>,
    query: AuditQuery,
    page: i64,
    more: bool,
    previous_link: Option<String>,
    next_link: Option<String>,
    errors: BTreeMap<&'static str, String>,
    chain: audit::Verification,
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn parse_day(
    value: &str,
    field: &'static str,
    errors: &mut BTreeMap<&'static str, String>,
) -> Option<NaiveDate> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| errors.insert(field, "Enter a date as YYYY-MM-DD.".to_owned()))
        .ok()
}

pub const AUDIT_PAGE_SIZE: i64 = 50;

pub async fn audit_log(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let mut errors = BTreeMap::new();
    let from = parse_day(&query.from, "from", &mut errors);
    let until = parse_day(&query.until, "until", &mut errors);
    let filter = audit::Filter {
        actor: non_empty(&query.actor),
        action: non_empty(&query.action),
        subject: non_empty(&query.subject),
        from: from.and_then(|d| d.and_hms_opt(0, 0, 0)),
        // "until" includes the whole day named.
        until: until
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
    };
    let page = query.page.max(0);
    let now = state.ctx.clock.now_naive();
    let (entries, more, actions, chain) = db::run(&state.pool, move |c| {
        let (entries, more) = audit::list(c, &filter, page, AUDIT_PAGE_SIZE)?;
        Ok::<_, db::DbError>((
            entries,
            more,
            audit::actions(c)?,
            audit::verify_since_checkpoint(c, now)?,
        ))
    })
    .await?;
    let link = |p: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &query.actor),
            ("action", &query.action),
            ("subject", &query.subject),
            ("from", &query.from),
            ("until", &query.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("page", &p.to_string());
        format!("/admin/audit?{}", q.finish())
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page_data = AuditPage {
        entries,
        actions,
        page,
        more,
        previous_link: (page > 0).then(|| link(page - 1)),
        next_link: more.then(|| link(page + 1)),
        errors,
        chain,
        query,
    };
    state
        .pages
        .page_with_status(status, &viewer, "admin/audit.html", page_data)
}

#[derive(Debug, Deserialize)]
pub struct UpstreamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    policy_url: String,
    #[serde(default)]
    may_redistribute: String,
}

async fn upstreams_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    refusal: Option<Refusal>,
    values: Option<&UpstreamForm>,
) -> Result<HttpResponse, AppError> {
    let upstreams = db::run(&state.pool, upstream::list).await?;
    let context = minijinja::context! {
        upstreams,
        error => refusal.as_ref().map(Refusal::message),
        errors => refusal.as_ref().map(Refusal::field_errors).unwrap_or_default(),
        name => values.map(|v| v.name.clone()).unwrap_or_default(),
        policy_url => values.map(|v| v.policy_url.clone()).unwrap_or_default(),
    };
    state
        .pages
        .page_with_status(status, viewer, "admin/upstreams.html", context)
}

pub async fn upstreams(
    state: web::Data<AppState>,
    viewer: Viewer,
) -> Result<HttpResponse, AppError> {
    upstreams_page(&state, &viewer, StatusCode::OK, None, None).await
}

pub async fn add_upstream(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(admin): SignedIn,
    CsrfForm(form): CsrfForm<UpstreamForm>,
) -> Result<HttpResponse, AppError> {
    let by = Actor::from(&admin);
    let (name, url, may) = (
        form.name.clone(),
        form.policy_url.clone(),
        !form.may_redistribute.is_empty(),
    );
    act(
        &state,
        move |c| upstream::add(c, &name, &url, may, &by),
        |_| "/admin/upstreams".to_owned(),
        |refusal| async {
            upstreams_page(
                &state,
                &viewer,
                refusal.status(),
                Some(refusal),
                Some(&form),
            )
            .await
        },
    )
    .await
}
