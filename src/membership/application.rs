//! Applications: the form as typed, its parsing into checked values at the edge, and storage.
//! A failed parse yields one message per field, and the form keeps every value typed.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::db::schema::{applications, confirmation_tokens, criteria_results};
use crate::db::{self, DbConnection, DbError};
use crate::domain::{JsonList, OrgDomain, SecurityAlias};
pub use crate::error::FieldErrors;
use crate::membership::checks::{CheckResult, Outcome};

pub use crate::domain::ApplicationStatus;

pub const CATEGORIES: &[(&str, &str)] = &[
    ("distributor", "Distributor of the project"),
    (
        "platform-provider",
        "Platform provider that runs the project for others",
    ),
    ("coupled-product", "Product closely coupled to the project"),
    ("large-end-user", "Large end user"),
];

/// The form as typed. Every field is kept as text so a failed submission re-renders exactly.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate)]
pub struct ApplicationForm {
    #[serde(default)]
    #[validate(length(
        min = 1,
        max = 200,
        message = "Enter the organisation's name (at most 200 characters)."
    ))]
    pub org_name: String,
    #[serde(default)]
    #[validate(length(
        min = 1,
        max = 1000,
        message = "Enter the organisation's domain, e.g. example.com."
    ))]
    pub org_domains: String,
    #[serde(default)]
    #[validate(
        length(max = 500, message = "The address is too long."),
        url(
            message = "Enter the organisation's website as a full address starting with https://."
        )
    )]
    pub website: String,
    #[serde(default)]
    #[validate(
        length(max = 254, message = "The address is too long."),
        email(
            message = "Enter the security alias as an email address, e.g. security@example.com."
        )
    )]
    pub security_alias: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    #[validate(length(
        min = 1,
        max = 200,
        message = "Enter the product's name (at most 200 characters)."
    ))]
    pub product_name: String,
    #[serde(default)]
    #[validate(
        length(max = 500, message = "The address is too long."),
        url(message = "Enter the product's address starting with https://.")
    )]
    pub product_url: String,
    #[serde(default)]
    #[validate(length(
        min = 20,
        max = 4000,
        message = "Describe in 20 to 4000 characters how you redistribute the project or couple to it."
    ))]
    pub redistribution: String,
    #[serde(default)]
    #[validate(length(
        min = 20,
        max = 4000,
        message = "Describe your users in 20 to 4000 characters."
    ))]
    pub user_base: String,
    #[serde(default)]
    #[validate(length(
        min = 1,
        max = 100,
        message = "Give an approximate size, e.g. \"about 2,000 companies\"."
    ))]
    pub user_base_size: String,
    #[serde(default)]
    #[validate(length(max = 4000, message = "At most 4000 characters."))]
    pub track_record: String,
    #[serde(default)]
    #[validate(length(max = 4000, message = "At most 4000 characters."))]
    pub community_links: String,
    #[serde(default)]
    #[validate(length(max = 1000, message = "At most 1000 characters."))]
    pub contributor_handles: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 200, message = "Enter the representative's name."))]
    pub rep_name: String,
    #[serde(default)]
    #[validate(
        length(max = 254, message = "The address is too long."),
        email(message = "Enter the representative's email address.")
    )]
    pub rep_email: String,
    #[serde(default)]
    #[validate(length(max = 200, message = "At most 200 characters."))]
    pub rep_chat: String,
    #[serde(default)]
    #[validate(length(max = 254, message = "The address is too long."))]
    pub voucher_alias: String,
    #[serde(default)]
    pub days_to_fix: String,
    #[serde(default)]
    #[validate(length(max = 65536, message = "The key is larger than 64 KiB."))]
    pub pgp_key: String,
    /// The policy version accepted, sent by the checkbox.
    #[serde(default)]
    pub accept_policy: String,
    #[serde(default)]
    pub stage_privately: String,
    #[serde(default)]
    pub contribute_back: String,
    /// A field people never see; bots fill it in.
    #[serde(default)]
    pub homepage: String,
}

/// A parsed application: every value checked, domains and addresses in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    pub org_name: String,
    /// At least one; the first is the organisation's primary domain.
    pub org_domains: Vec<OrgDomain>,
    pub website: String,
    pub security_alias: SecurityAlias,
    pub category: String,
    pub product_name: String,
    pub product_url: String,
    pub redistribution: String,
    pub user_base: String,
    pub user_base_size: String,
    pub track_record: Vec<String>,
    pub community_links: Vec<String>,
    pub contributor_handles: String,
    pub rep_name: String,
    pub rep_email: String,
    pub rep_chat: String,
    pub voucher_alias: Option<SecurityAlias>,
    pub days_to_fix: i32,
    pub pgp_key: Option<String>,
    pub policy_version: i32,
    pub stage_privately: bool,
    pub contribute_back: bool,
}

impl NewApplication {
    pub fn primary_domain(&self) -> &OrgDomain {
        // `parse` refuses an application without a domain.
        &self.org_domains[0]
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_links(value: &str, field: &str, errors: &mut FieldErrors) -> Vec<String> {
    let links = split_list(value);
    if links.len() > 20 {
        errors.insert(field.to_owned(), "Give at most 20 links.".to_owned());
    }
    for link in &links {
        if !is_web_address(link) {
            errors.insert(
                field.to_owned(),
                format!("{link:?} is not a full address (it should start with https://)."),
            );
            break;
        }
    }
    links
}

/// An http(s) address with a host: no `javascript:`, `data:` or other schemes reach a page.
fn is_web_address(value: &str) -> bool {
    url::Url::parse(value.trim())
        .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
}

impl ApplicationForm {
    /// Checks every field and returns the parsed application, or a message per bad field.
    pub fn parse(&self, policy_version: i32) -> Result<NewApplication, FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Err(invalid) = self.validate() {
            for (field, problems) in invalid.field_errors() {
                if let Some(message) = problems.iter().find_map(|p| p.message.clone()) {
                    errors.insert(field.to_string(), message.into_owned());
                }
            }
        }
        for (field, value, what) in [
            ("website", &self.website, "the organisation's website"),
            ("product_url", &self.product_url, "the product's page"),
        ] {
            if !value.trim().is_empty() && !is_web_address(value) {
                errors.insert(
                    field.into(),
                    format!("Enter {what} as an address starting with https://."),
                );
            }
        }
        let mut org_domains: Vec<OrgDomain> = Vec::new();
        for part in split_list(&self.org_domains) {
            match OrgDomain::parse(&part) {
                Ok(domain) if !org_domains.contains(&domain) => org_domains.push(domain),
                Ok(_) => {}
                Err(message) => {
                    errors.insert("org_domains".into(), message);
                }
            }
        }
        if org_domains.len() > 10 {
            errors.insert("org_domains".into(), "Give at most 10 domains.".into());
        }
        if org_domains.is_empty() && !errors.contains_key("org_domains") {
            errors.insert(
                "org_domains".into(),
                "Enter the organisation's domain, e.g. example.com.".into(),
            );
        }
        let security_alias = match SecurityAlias::parse(&self.security_alias) {
            Ok(alias) => Some(alias),
            Err(_) => {
                errors.entry("security_alias".into()).or_insert_with(|| {
                    "Enter the security alias as an email address, e.g. security@example.com."
                        .into()
                });
                None
            }
        };
        if !CATEGORIES.iter().any(|(key, _)| *key == self.category) {
            errors.insert(
                "category".into(),
                "Choose the category that describes you best.".into(),
            );
        }
        let track_record = parse_links(&self.track_record, "track_record", &mut errors);
        let community_links = parse_links(&self.community_links, "community_links", &mut errors);
        let days_to_fix = match self.days_to_fix.trim().parse::<i32>() {
            Ok(days) if (1..=365).contains(&days) => days,
            _ => {
                errors.insert(
                    "days_to_fix".into(),
                    "Enter the number of days you need to ship a fix, from 1 to 365.".into(),
                );
                0
            }
        };
        let voucher = match self.voucher_alias.trim() {
            "" => None,
            text => SecurityAlias::parse(text)
                .map_err(|_| {
                    errors.insert(
                        "voucher_alias".into(),
                        "Enter the voucher's alias as an email address, or leave it empty.".into(),
                    )
                })
                .ok(),
        };
        let key = self.pgp_key.trim();
        if key.contains("PRIVATE KEY BLOCK") {
            errors.insert(
                "pgp_key".into(),
                "This is a private key. It was not stored; treat it as exposed and paste only the public key.".into(),
            );
        } else if !key.is_empty() && !key.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            errors.insert("pgp_key".into(), "Paste an ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK-----), or leave it empty.".into());
        }
        if self.accept_policy.trim() != policy_version.to_string() {
            errors.insert(
                "accept_policy".into(),
                format!("Accept version {policy_version} of the embargo policy to apply."),
            );
        }
        if self.stage_privately.is_empty() {
            errors.insert(
                "stage_privately".into(),
                "Confirm that you can prepare fixes privately.".into(),
            );
        }
        if self.contribute_back.is_empty() {
            errors.insert(
                "contribute_back".into(),
                "Confirm that you will contribute fixes back.".into(),
            );
        }
        let Some(security_alias) = security_alias.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        Ok(NewApplication {
            org_name: self.org_name.trim().to_owned(),
            org_domains,
            website: self.website.trim().to_owned(),
            security_alias,
            category: self.category.clone(),
            product_name: self.product_name.trim().to_owned(),
            product_url: self.product_url.trim().to_owned(),
            redistribution: self.redistribution.trim().to_owned(),
            user_base: self.user_base.trim().to_owned(),
            user_base_size: self.user_base_size.trim().to_owned(),
            track_record,
            community_links,
            contributor_handles: self.contributor_handles.trim().to_owned(),
            rep_name: self.rep_name.trim().to_owned(),
            rep_email: self.rep_email.trim().to_lowercase(),
            rep_chat: self.rep_chat.trim().to_owned(),
            voucher_alias: voucher,
            days_to_fix,
            pgp_key: (!key.is_empty()).then(|| key.to_owned()),
            policy_version,
            stage_privately: true,
            contribute_back: true,
        })
    }

    /// The form filled in from a stored application, for editing.
    pub fn from_application(a: &Application) -> Self {
        Self {
            org_name: a.org_name.clone(),
            org_domains: a
                .org_domains
                .iter()
                .map(OrgDomain::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            website: a.website.clone(),
            security_alias: a.security_alias.to_string(),
            category: a.category.clone(),
            product_name: a.product_name.clone(),
            product_url: a.product_url.clone(),
            redistribution: a.redistribution.clone(),
            user_base: a.user_base.clone(),
            user_base_size: a.user_base_size.clone(),
            track_record: a.track_record.join("\n"),
            community_links: a.community_links.join("\n"),
            contributor_handles: a.contributor_handles.clone(),
            rep_name: a.rep_name.clone(),
            rep_email: a.rep_email.clone(),
            rep_chat: a.rep_chat.clone(),
            voucher_alias: a
                .voucher_alias
                .as_ref()
                .map(SecurityAlias::to_string)
                .unwrap_or_default(),
            days_to_fix: a.days_to_fix.to_string(),
            pgp_key: a.pgp_key.clone().unwrap_or_default(),
            // What the applicant attested stays ticked; a policy version that is no longer
            // the current one shows unticked and must be accepted again.
            accept_policy: a.policy_version.to_string(),
            stage_privately: if a.attests_stage_privately { "yes" } else { "" }.to_owned(),
            contribute_back: if a.attests_contribute_back { "yes" } else { "" }.to_owned(),
            homepage: String::new(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = applications)]
pub struct Application {
    pub id: i64,
    pub status: ApplicationStatus,
    pub org_name: String,
    pub org_domains: JsonList<OrgDomain>,
    pub website: String,
    pub security_alias: SecurityAlias,
    pub category: String,
    pub product_name: String,
    pub product_url: String,
    pub redistribution: String,
    pub user_base: String,
    pub user_base_size: String,
    pub track_record: JsonList<String>,
    pub community_links: JsonList<String>,
    pub contributor_handles: String,
    pub rep_name: String,
    pub rep_email: String,
    pub rep_chat: String,
    pub voucher_alias: Option<SecurityAlias>,
    pub days_to_fix: i32,
    pub pgp_key: Option<String>,
    pub policy_version: i32,
    pub attests_stage_privately: bool,
    pub attests_contribute_back: bool,
    #[serde(skip)]
    pub status_token_hash: String,
    pub alias_confirmed_at: Option<NaiveDateTime>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub primary_domain: OrgDomain,
    pub recommended_at: Option<NaiveDateTime>,
}

impl Application {
    pub fn status(&self) -> ApplicationStatus {
        self.status
    }

    pub fn domains(&self) -> &[OrgDomain] {
        &self.org_domains
    }
}

#[derive(AsChangeset, Insertable)]
#[diesel(table_name = applications)]
struct Answers<'a> {
    org_name: &'a str,
    org_domains: String,
    primary_domain: &'a OrgDomain,
    website: &'a str,
    security_alias: &'a SecurityAlias,
    category: &'a str,
    product_name: &'a str,
    product_url: &'a str,
    redistribution: &'a str,
    user_base: &'a str,
    user_base_size: &'a str,
    track_record: String,
    community_links: String,
    contributor_handles: &'a str,
    rep_name: &'a str,
    rep_email: &'a str,
    rep_chat: &'a str,
    voucher_alias: Option<&'a SecurityAlias>,
    days_to_fix: i32,
    pgp_key: Option<&'a str>,
    policy_version: i32,
    attests_stage_privately: bool,
    attests_contribute_back: bool,
    updated_at: NaiveDateTime,
}

fn answers(new: &NewApplication) -> Answers<'_> {
    Answers {
        org_name: &new.org_name,
        org_domains: JsonList::to_json(&new.org_domains),
        primary_domain: new.primary_domain(),
        website: &new.website,
        security_alias: &new.security_alias,
        category: &new.category,
        product_name: &new.product_name,
        product_url: &new.product_url,
        redistribution: &new.redistribution,
        user_base: &new.user_base,
        user_base_size: &new.user_base_size,
        track_record: JsonList::to_json(&new.track_record),
        community_links: JsonList::to_json(&new.community_links),
        contributor_handles: &new.contributor_handles,
        rep_name: &new.rep_name,
        rep_email: &new.rep_email,
        rep_chat: &new.rep_chat,
        voucher_alias: new.voucher_alias.as_ref(),
        days_to_fix: new.days_to_fix,
        pgp_key: new.pgp_key.as_deref(),
        policy_version: new.policy_version,
        attests_stage_privately: new.stage_privately,
        attests_contribute_back: new.contribute_back,
        updated_at: db::now(),
    }
}

/// Stores a new application, waiting for its alias to be confirmed.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewApplication,
    status_token_hash: &str,
) -> Result<i64, DbError> {
    let now = db::now();
    Ok(db::kept_prepared(
        diesel::insert_into(applications::table)
            .values((
                answers(new),
                applications::status.eq(ApplicationStatus::AwaitingConfirmation),
                applications::status_token_hash.eq(status_token_hash),
                applications::created_at.eq(now),
            ))
            .returning(applications::id),
    )
    .get_result(conn)?)
}

pub fn update_answers(
    conn: &mut DbConnection,
    id: i64,
    new: &NewApplication,
) -> Result<(), DbError> {
    diesel::update(applications::table.filter(applications::id.eq(id)))
        .set(answers(new))
        .execute(conn)?;
    Ok(())
}

pub fn set_status(
    conn: &mut DbConnection,
    id: i64,
    status: ApplicationStatus,
) -> Result<(), DbError> {
    diesel::update(applications::table.filter(applications::id.eq(id)))
        .set((
            applications::status.eq(status),
            applications::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<Application>, DbError> {
    Ok(applications::table
        .filter(applications::id.eq(id))
        .select(Application::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_status_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<Application>, DbError> {
    Ok(applications::table
        .filter(applications::status_token_hash.eq(token_hash))
        .select(Application::as_select())
        .first(conn)
        .optional()?)
}

/// The open application whose primary domain is one of `domains`, other than `except`.
pub fn open_for_domains(
    conn: &mut DbConnection,
    domains: &[OrgDomain],
    except: Option<i64>,
) -> Result<Option<Application>, DbError> {
    let mut query = applications::table
        .filter(applications::primary_domain.eq_any(domains))
        .filter(applications::status.eq_any(ApplicationStatus::open()))
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(applications::id.ne(id));
    }
    Ok(query
        .select(Application::as_select())
        .first(conn)
        .optional()?)
}

/// One page of the review queue, oldest first.
pub fn queue(
    conn: &mut DbConnection,
    statuses: &[ApplicationStatus],
    page: i64,
    per_page: i64,
) -> Result<(Vec<Application>, bool), DbError> {
    let mut rows: Vec<Application> = applications::table
        .filter(applications::status.eq_any(statuses))
        .order((applications::created_at.asc(), applications::id.asc()))
        .offset(page.clamp(0, 1_000_000).saturating_mul(per_page))
        .limit(per_page + 1)
        .select(Application::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// How many applications are in each state.
pub fn status_counts(conn: &mut DbConnection) -> Result<Vec<(ApplicationStatus, i64)>, DbError> {
    Ok(applications::table
        .group_by(applications::status)
        .select((applications::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// A check result as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = criteria_results)]
pub struct StoredCheck {
    pub check_key: String,
    pub title: String,
    pub outcome: Outcome,
    pub reason: String,
    pub required: bool,
    pub checked_at: NaiveDateTime,
}

impl StoredCheck {
    pub fn failed_required(&self) -> bool {
        self.required && self.outcome == Outcome::Fail
    }
}

/// Replaces the stored results of an application's checks.
pub fn store_checks(
    conn: &mut DbConnection,
    id: i64,
    results: &[CheckResult],
) -> Result<(), DbError> {
    diesel::delete(criteria_results::table.filter(criteria_results::application_id.eq(id)))
        .execute(conn)?;
    insert_checks(conn, id, results)
}

/// Stores the check results of an application that has none yet, in one statement.
pub fn insert_checks(
    conn: &mut DbConnection,
    id: i64,
    results: &[CheckResult],
) -> Result<(), DbError> {
    if results.is_empty() {
        return Ok(());
    }
    let now = db::now();
    let rows: Vec<_> = results
        .iter()
        .map(|r| {
            (
                criteria_results::application_id.eq(id),
                criteria_results::check_key.eq(r.key),
                criteria_results::title.eq(r.title),
                criteria_results::outcome.eq(r.outcome),
                criteria_results::reason.eq(&r.reason),
                criteria_results::required.eq(r.required),
                criteria_results::checked_at.eq(now),
            )
        })
        .collect();
    // One statement for all of them; the enum connection cannot say that to both backends.
    // An application has the same checks each time, so PostgreSQL keeps the statement.
    let insert = diesel::insert_into(criteria_results::table).values(&rows);
    match conn {
        DbConnection::Postgresql(pg) => db::kept_prepared(insert.returning(criteria_results::id))
            .load::<i64>(pg)?
            .len(),
        DbConnection::Sqlite(sq) => insert.execute(sq)?,
    };
    Ok(())
}

pub fn load_checks(conn: &mut DbConnection, id: i64) -> Result<Vec<StoredCheck>, DbError> {
    Ok(criteria_results::table
        .filter(criteria_results::application_id.eq(id))
        .order(criteria_results::id)
        .select(StoredCheck::as_select())
        .load(conn)?)
}

/// Why a confirmation link did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Unknown,
    Used,
    Expired,
    /// The application was withdrawn or decided before the link was followed.
    Closed,
}

/// Issues a confirmation link for an application; earlier unused links stop working.
pub fn new_confirmation(
    conn: &mut DbConnection,
    application_id: i64,
    ttl: chrono::Duration,
) -> Result<ConfirmationLink, DbError> {
    let now = db::now();
    diesel::update(
        confirmation_tokens::table
            .filter(confirmation_tokens::application_id.eq(application_id))
            .filter(confirmation_tokens::used_at.is_null())
            .filter(confirmation_tokens::expires_at.gt(now)),
    )
    .set(confirmation_tokens::expires_at.eq(now))
    .execute(conn)?;
    let link = ConfirmationLink::new(now, ttl);
    insert_confirmation(conn, application_id, &link)?;
    Ok(link)
}

/// A confirmation link made before it is stored, so that its mail can be rendered first.
pub struct ConfirmationLink {
    pub token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl ConfirmationLink {
    pub fn new(now: NaiveDateTime, ttl: chrono::Duration) -> Self {
        Self {
            token: crate::accounts::session::new_token(),
            created_at: now,
            expires_at: now + ttl,
        }
    }
}

/// Stores a link for an application that has no live one (a new application); see
/// [`new_confirmation`] for one that may.
pub fn insert_confirmation(
    conn: &mut DbConnection,
    application_id: i64,
    link: &ConfirmationLink,
) -> Result<(), DbError> {
    db::kept_prepared(diesel::insert_into(confirmation_tokens::table).values((
        confirmation_tokens::application_id.eq(application_id),
        confirmation_tokens::token_hash.eq(crate::accounts::session::token_hash(&link.token)),
        confirmation_tokens::expires_at.eq(link.expires_at),
        confirmation_tokens::created_at.eq(link.created_at),
    )))
    .execute(conn)?;
    Ok(())
}

/// Looks a confirmation link up without using it.
pub fn check_confirmation(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Result<i64, LinkProblem>, DbError> {
    let row: Option<(i64, i64, NaiveDateTime, Option<NaiveDateTime>)> = confirmation_tokens::table
        .filter(confirmation_tokens::token_hash.eq(crate::accounts::session::token_hash(token)))
        .select((
            confirmation_tokens::id,
            confirmation_tokens::application_id,
            confirmation_tokens::expires_at,
            confirmation_tokens::used_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => Err(LinkProblem::Unknown),
        Some((_, _, _, Some(_))) => Err(LinkProblem::Used),
        Some((_, _, expires, None)) if expires <= db::now() => Err(LinkProblem::Expired),
        Some((_, application_id, _, None)) => Ok(application_id),
    })
}

/// Uses a confirmation link once; a second use, or a use after expiry, fails.
pub fn use_confirmation(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Result<i64, LinkProblem>, DbError> {
    let application_id = match check_confirmation(conn, token)? {
        Ok(id) => id,
        Err(problem) => return Ok(Err(problem)),
    };
    let now = db::now();
    let taken = diesel::update(
        confirmation_tokens::table
            .filter(confirmation_tokens::token_hash.eq(crate::accounts::session::token_hash(token)))
            .filter(confirmation_tokens::used_at.is_null()),
    )
    .set(confirmation_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(if taken == 1 {
        Ok(application_id)
    } else {
        Err(LinkProblem::Used)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_form() -> ApplicationForm {
        ApplicationForm {
            org_name: "Example Corp".into(),
            org_domains: "Example.com, example.net".into(),
            website: "https://example.com".into(),
            security_alias: "Security@Example.com".into(),
            category: "distributor".into(),
            product_name: "Example Mesh".into(),
            product_url: "https://example.com/mesh".into(),
            redistribution: "We ship the project in our distribution.".into(),
            user_base: "Thousands of companies run our distribution.".into(),
            user_base_size: "about 2000 companies".into(),
            track_record: "https://example.com/security/advisories".into(),
            community_links: "https://github.com/project/project/pulls?q=author%3Aexample".into(),
            contributor_handles: "@alice".into(),
            rep_name: "Alice Example".into(),
            rep_email: "alice@example.com".into(),
            rep_chat: "@alice".into(),
            voucher_alias: String::new(),
            days_to_fix: "14".into(),
            pgp_key: String::new(),
            accept_policy: "1".into(),
            stage_privately: "yes".into(),
            contribute_back: "yes".into(),
            homepage: String::new(),
        }
    }

    #[test]
    fn a_complete_form_parses_with_normalised_values() {
        let new = good_form().parse(1).expect("valid");
        let domains: Vec<&str> = new.org_domains.iter().map(OrgDomain::as_str).collect();
        assert_eq!(domains, ["example.com", "example.net"]);
        assert_eq!(new.security_alias.as_str(), "security@example.com");
        assert_eq!(new.primary_domain().as_str(), "example.com");
        assert_eq!(new.days_to_fix, 14);
        assert_eq!(new.voucher_alias, None);
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let mut form = good_form();
        form.org_name = String::new();
        form.org_domains = "https://example.com/".into();
        form.security_alias = "not an address".into();
        form.website = "example.com".into();
        form.category = "other".into();
        form.days_to_fix = "soon".into();
        form.accept_policy = String::new();
        form.track_record = "not-a-link".into();
        let errors = form.parse(1).expect_err("invalid");
        for field in [
            "org_name",
            "org_domains",
            "security_alias",
            "website",
            "category",
            "days_to_fix",
            "accept_policy",
            "track_record",
        ] {
            assert!(
                errors.contains_key(field),
                "no message for {field}: {errors:?}"
            );
        }
        assert!(!errors.contains_key("product_name"));
    }

    #[test]
    fn accepting_an_older_policy_version_is_not_enough() {
        let errors = good_form().parse(2).expect_err("old version");
        assert!(errors["accept_policy"].contains("version 2"));
    }

    #[test]
    fn a_form_without_a_domain_is_refused_beside_the_field() {
        let mut form = good_form();
        form.org_domains = " , ".into();
        let errors = form.parse(1).expect_err("no domain");
        assert!(errors["org_domains"].contains("domain"), "{errors:?}");
    }
}
