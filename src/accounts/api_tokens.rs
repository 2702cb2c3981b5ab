//! Tokens for the JSON API. An account makes tokens for itself, each with a name, the scopes it
//! may use and an expiry; the token (256 random bits) is shown once and only its SHA-256 is
//! stored. A scope opens the API routes that the matching web page opens, and only while the
//! account still holds a role that page asks for: taking a role away, disabling the account or
//! revoking the token takes effect on the next request.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::accounts::session::{new_token, token_hash};
use crate::accounts::{roles_of, Account, Role};
use crate::audit;
use crate::db::schema::{accounts, api_tokens};
use crate::db::{DbConnection, DbError};

/// Every token starts with this, so a leaked one is recognisable (secret scanners look for
/// such prefixes).
pub const TOKEN_PREFIX: &str = "edl_";

/// The longest a token may live.
pub const MAX_DAYS: i64 = 366;

crate::text_enum! {
    /// What a token may do. Each scope opens the API routes of one area, read or write.
    pub enum Scope ("scope") {
        /// Applications with their scorecards and votes: what reviewers see.
        ApplicationsRead = "applications:read",
        /// Members, with everything the roster export holds: what admins see.
        MembersRead = "members:read",
        /// Releases with advisories, patches' metadata and the delivery ledger.
        ReleasesRead = "releases:read",
        /// Planning releases and adding advisories and patches.
        ReleasesWrite = "releases:write",
    }
}

impl Scope {
    /// The web route whose access decides who may hold this scope: a token can do only what
    /// its account could do on that page.
    pub fn web_route(self) -> (actix_web::http::Method, &'static str) {
        use actix_web::http::Method;
        match self {
            Scope::ApplicationsRead => (Method::GET, "/review/applications"),
            Scope::MembersRead => (Method::GET, "/admin/members"),
            Scope::ReleasesRead => (Method::GET, "/manage/releases"),
            Scope::ReleasesWrite => (Method::POST, "/manage/releases"),
        }
    }

    /// Whether an account holding `roles` may hold this scope.
    pub fn allowed_for(self, roles: &[Role]) -> bool {
        let (method, path) = self.web_route();
        crate::startup::access_for(&method, path).is_some_and(|access| access.permits(roles))
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scope::ApplicationsRead => "Read applications, their checks and votes",
            Scope::MembersRead => "Read members and the roster export",
            Scope::ReleasesRead => "Read releases, advisories, patches' metadata and deliveries",
            Scope::ReleasesWrite => "Plan releases, add advisories and upload patches",
        }
    }
}

/// A token as its owner sees it in the list (never the token itself).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl TokenRow {
    pub fn scopes(&self) -> Vec<Scope> {
        parse_scopes(&self.scopes)
    }
}

fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The caller of an API request made with a valid token.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub token_id: i64,
    pub token_name: String,
    pub account_id: i64,
    pub email: String,
    pub roles: Vec<Role>,
    pub scopes: Vec<Scope>,
}

impl ApiCaller {
    /// The actor written in the audit log: the account, and the token it acted through.
    pub fn actor(&self) -> String {
        format!("{} (API token \"{}\")", self.email, self.token_name)
    }

    /// Whether this token may use `scope` now: granted to the token, and still allowed by
    /// the account's roles.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) && scope.allowed_for(&self.roles)
    }
}

/// Why a token was not accepted; each is its own machine-readable problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token this service made, or its account is disabled or gone.
    Invalid,
    Expired,
    Revoked,
}

impl TokenRefusal {
    pub fn kind(self) -> &'static str {
        match self {
            TokenRefusal::Missing => "token-missing",
            TokenRefusal::Invalid => "token-invalid",
            TokenRefusal::Expired => "token-expired",
            TokenRefusal::Revoked => "token-revoked",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            TokenRefusal::Missing => {
                "This endpoint needs an API token in an `Authorization: Bearer` header."
            }
            TokenRefusal::Invalid => "The API token is not valid.",
            TokenRefusal::Expired => "The API token has expired; make a new one.",
            TokenRefusal::Revoked => "The API token was revoked; make a new one.",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for TokenError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// What a new token is made of, checked.
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: NaiveDateTime,
}

impl NewToken {
    /// Checks a name, scope names and a lifetime in days for an account holding `roles`.
    pub fn parse(
        name: &str,
        scopes: &[String],
        days: &str,
        roles: &[Role],
        now: NaiveDateTime,
    ) -> Result<Self, crate::error::FieldErrors> {
        let mut errors = crate::error::FieldErrors::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.insert(
                "name".into(),
                "Give the token a name of up to 100 characters, such as the tool that uses it."
                    .into(),
            );
        }
        let mut parsed = Vec::new();
        for scope in scopes {
            match scope.parse::<Scope>() {
                Ok(s) if s.allowed_for(roles) => {
                    if !parsed.contains(&s) {
                        parsed.push(s);
                    }
                }
                Ok(s) => {
                    errors.insert(
                        "scopes".into(),
                        format!("Your roles do not allow the scope {s}."),
                    );
                }
                Err(_) => {
                    errors.insert("scopes".into(), format!("There is no scope {scope:?}."));
                }
            }
        }
        if parsed.is_empty() && !errors.contains_key("scopes") {
            errors.insert("scopes".into(), "Choose at least one scope.".into());
        }
        let days = match days.trim().parse::<i64>() {
            Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
            _ => {
                errors.insert(
                    "days".into(),
                    format!("Give the number of days the token lives, from 1 to {MAX_DAYS}."),
                );
                0
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        parsed.sort();
        Ok(Self {
            name: name.to_owned(),
            scopes: parsed,
            expires_at: now + chrono::Duration::days(days),
        })
    }
}

/// Makes a token for `account_id`; returns its id and the token, which is never shown again.
pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    actor: &str,
    token: &NewToken,
    now: NaiveDateTime,
) -> Result<(i64, String), DbError> {
    let secret = format!("{TOKEN_PREFIX}{}", new_token());
    let scopes = token
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    conn.transaction(|conn| {
        let id: i64 = diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::account_id.eq(account_id),
                api_tokens::name.eq(&token.name),
                api_tokens::token_hash.eq(token_hash(&secret)),
                api_tokens::scopes.eq(&scopes),
                api_tokens::created_at.eq(now),
                api_tokens::expires_at.eq(token.expires_at),
            ))
            .returning(api_tokens::id)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "api-token.created",
            &format!("account:{account_id}"),
            serde_json::json!({
                "token": id,
                "name": token.name,
                "scopes": scopes,
                "expires_at": token.expires_at.and_utc().to_rfc3339(),
            }),
        )?;
        Ok((id, secret))
    })
}

/// The account's tokens, newest first.
pub fn list(conn: &mut DbConnection, account_id: i64) -> Result<Vec<TokenRow>, DbError> {
    Ok(api_tokens::table
        .filter(api_tokens::account_id.eq(account_id))
        .order(api_tokens::id.desc())
        .select(TokenRow::as_select())
        .load(conn)?)
}

/// Revokes one of the account's own tokens; `false` when it has none by that id (or it was
/// revoked already).
pub fn revoke(
    conn: &mut DbConnection,
    account_id: i64,
    actor: &str,
    id: i64,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let changed = diesel::update(
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .filter(api_tokens::account_id.eq(account_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
        if changed == 1 {
            audit::record(
                conn,
                actor,
                "api-token.revoked",
                &format!("account:{account_id}"),
                serde_json::json!({ "token": id }),
            )?;
        }
        Ok(changed == 1)
    })
}

/// Revokes every active token of an account, when an admin resets its password: whoever
/// may have had the password may have made tokens with it. Returns how many; the caller's
/// audit entry records it.
pub fn revoke_all(
    conn: &mut DbConnection,
    account_id: i64,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::account_id.eq(account_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)?)
}

/// Who a presented token speaks for, or why it is refused.
pub fn authenticate(
    conn: &mut DbConnection,
    presented: &str,
    now: NaiveDateTime,
) -> Result<Result<ApiCaller, TokenRefusal>, DbError> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(Err(TokenRefusal::Invalid));
    }
    let found: Option<(TokenRow, Account)> = api_tokens::table
        .inner_join(accounts::table)
        .filter(api_tokens::token_hash.eq(token_hash(presented)))
        .select((TokenRow::as_select(), Account::as_select()))
        .first(conn)
        .optional()?;
    let Some((row, account)) = found else {
        return Ok(Err(TokenRefusal::Invalid));
    };
    if account.disabled {
        return Ok(Err(TokenRefusal::Invalid));
    }
    if row.revoked_at.is_some() {
        return Ok(Err(TokenRefusal::Revoked));
    }
    if now >= row.expires_at {
        return Ok(Err(TokenRefusal::Expired));
    }
    // Keep writes rare: the last use is shown to the day's precision anyway.
    if row
        .last_used_at
        .is_none_or(|t| now - t > chrono::Duration::minutes(1))
    {
        diesel::update(api_tokens::table.filter(api_tokens::id.eq(row.id)))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)?;
    }
    Ok(Ok(ApiCaller {
        roles: roles_of(conn, account.id)?,
        scopes: row.scopes(),
        token_id: row.id,
        token_name: row.name,
        account_id: account.id,
        email: account.email,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time")
    }

    #[test]
    fn every_scope_stands_for_a_route_of_the_table() {
        for scope in Scope::ALL {
            let (method, path) = scope.web_route();
            assert!(
                crate::startup::access_for(&method, path).is_some(),
                "{scope}: {method} {path} is not a route"
            );
        }
        assert!(Scope::ApplicationsRead.allowed_for(&[Role::Reviewer]));
        assert!(!Scope::MembersRead.allowed_for(&[Role::Reviewer, Role::ReleaseManager]));
    }

    #[test]
    fn a_token_asks_only_for_scopes_its_roles_allow() {
        let now = at("2028-02-28 12:00");
        let scopes = vec!["releases:read".to_owned(), "members:read".to_owned()];
        let errors = NewToken::parse("ci", &scopes, "30", &[Role::ReleaseManager], now)
            .err()
            .expect("members:read is an admin's");
        assert!(errors["scopes"].contains("members:read"));
        let ok = NewToken::parse(
            "ci",
            &scopes,
            "2",
            &[Role::ReleaseManager, Role::Admin],
            now,
        )
        .expect("an admin release manager may have both");
        assert_eq!(ok.scopes, vec![Scope::MembersRead, Scope::ReleasesRead]);
        // Across the leap day.
        assert_eq!(ok.expires_at, at("2028-03-01 12:00"));
    }

    #[test]
    fn names_scopes_and_lifetimes_are_checked() {
        let now = at("2026-12-31 23:00");
        let errors = NewToken::parse(" ", &[], "0", &[Role::Admin], now)
            .err()
            .expect("nothing given");
        assert_eq!(errors.len(), 3, "{errors:?}");
        let errors = NewToken::parse("x", &["everything".into()], "367", &[Role::Admin], now)
            .err()
            .expect("unknown scope, too long");
        assert!(errors["scopes"].contains("everything") && errors.contains_key("days"));
        let year = NewToken::parse("x", &["members:read".into()], "366", &[Role::Admin], now)
            .expect("a year");
        assert_eq!(year.expires_at, at("2028-01-01 23:00"), "2027 is not leap");
    }
}
