//! Working-group accounts: who may sign in, with which roles. Every change to an account is
//! written to the audit log in the same transaction.

pub mod api_tokens;
pub mod passkeys;
pub mod password;
pub mod second_factor;
pub mod session;
pub mod signin;
pub mod throttle;

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit;
use crate::db::schema::{account_roles, accounts, sessions};
use crate::db::{self, DbConnection, DbError};

/// What an account may do. An account may hold several; `admin` does not imply the others.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Reviewer,
    Approver,
    ReleaseManager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Reviewer,
        Role::Approver,
        Role::ReleaseManager,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reviewer => "reviewer",
            Self::Approver => "approver",
            Self::ReleaseManager => "release-manager",
            Self::Admin => "admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Reviewer => "Reviewer",
            Self::Approver => "Approver",
            Self::ReleaseManager => "Release manager",
            Self::Admin => "Admin",
        }
    }
}

crate::text_column!(Role);

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                format!("{s:?} is not a role: use reviewer, approver, release-manager or admin")
            })
    }
}

/// An email address as accounts use it: trimmed, lower case, and shaped like an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEmail(String);

impl AccountEmail {
    pub fn parse(value: &str) -> Result<Self, String> {
        let email = value.trim().to_lowercase();
        if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err("Enter an email address such as name@example.org.".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub last_login_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub must_change_password: bool,
}

/// An account with its roles, as pages and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountWithRoles {
    #[serde(flatten)]
    pub account: Account,
    pub roles: Vec<Role>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with the email {0} already exists")]
    Exists(String),
    #[error("there is no account with the email {0}")]
    NoSuchEmail(String),
    #[error("there is no such account")]
    NotFound,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for AccountError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

pub fn roles_of(conn: &mut DbConnection, account_id: i64) -> Result<Vec<Role>, DbError> {
    let mut roles: Vec<Role> = account_roles::table
        .filter(account_roles::account_id.eq(account_id))
        .select(account_roles::role)
        .load(conn)?;
    roles.sort();
    Ok(roles)
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<Account>, DbError> {
    Ok(accounts::table
        .filter(accounts::email.eq(email))
        .select(Account::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<AccountWithRoles>, DbError> {
    let account = accounts::table
        .filter(accounts::id.eq(id))
        .select(Account::as_select())
        .first(conn)
        .optional()?;
    match account {
        Some(account) => {
            let roles = roles_of(conn, account.id)?;
            Ok(Some(AccountWithRoles { account, roles }))
        }
        None => Ok(None),
    }
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<AccountWithRoles>, DbError> {
    let all: Vec<Account> = accounts::table
        .order(accounts::email)
        .select(Account::as_select())
        .load(conn)?;
    let pairs: Vec<(i64, Role)> = account_roles::table
        .select((account_roles::account_id, account_roles::role))
        .load(conn)?;
    Ok(all
        .into_iter()
        .map(|account| {
            let mut roles: Vec<Role> = pairs
                .iter()
                .filter(|(id, _)| *id == account.id)
                .map(|(_, r)| *r)
                .collect();
            roles.sort();
            AccountWithRoles { account, roles }
        })
        .collect())
}

/// Enabled accounts holding a role.
pub fn with_role(conn: &mut DbConnection, role: Role) -> Result<Vec<Account>, DbError> {
    Ok(accounts::table
        .inner_join(account_roles::table)
        .filter(account_roles::role.eq(role))
        .filter(accounts::disabled.eq(false))
        .order(accounts::email)
        .select(Account::as_select())
        .load(conn)?)
}

/// Active accounts holding the admin role.
pub fn active_admin_count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(accounts::table
        .inner_join(account_roles::table)
        .filter(account_roles::role.eq(Role::Admin))
        .filter(accounts::disabled.eq(false))
        .count()
        .get_result(conn)?)
}

#[derive(Insertable)]
#[diesel(table_name = accounts)]
struct NewAccount<'a> {
    email: &'a str,
    name: &'a str,
    password_hash: &'a str,
    disabled: bool,
    must_change_password: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Creates an account with a hashed password and its roles; `actor` is who did it.
pub fn create(
    conn: &mut DbConnection,
    actor: &str,
    email: &AccountEmail,
    name: &str,
    password_hash: &str,
    roles: &[Role],
    must_change_password: bool,
) -> Result<i64, AccountError> {
    db::write_transaction(conn, |conn| {
        if find_by_email(conn, email.as_str())?.is_some() {
            return Err(AccountError::Exists(email.as_str().to_owned()));
        }
        let now = db::now();
        let id: i64 = diesel::insert_into(accounts::table)
            .values(NewAccount {
                email: email.as_str(),
                name: name.trim(),
                password_hash,
                disabled: false,
                must_change_password,
                created_at: now,
                updated_at: now,
            })
            .returning(accounts::id)
            .get_result(conn)?;
        write_roles(conn, id, roles)?;
        audit::record(
            conn,
            actor,
            "account.created",
            &format!("account:{id}"),
            serde_json::json!({ "email": email.as_str(), "roles": role_names(roles) }),
        )?;
        Ok(id)
    })
}

fn role_names(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}

fn write_roles(conn: &mut DbConnection, id: i64, roles: &[Role]) -> Result<(), DbError> {
    diesel::delete(account_roles::table.filter(account_roles::account_id.eq(id))).execute(conn)?;
    let mut unique = roles.to_vec();
    unique.sort();
    unique.dedup();
    for role in unique {
        diesel::insert_into(account_roles::table)
            .values((
                account_roles::account_id.eq(id),
                account_roles::role.eq(role),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Refuses a change that would leave no active admin.
fn keep_an_admin(conn: &mut DbConnection, id: i64, losing_admin: bool) -> Result<(), AccountError> {
    if !losing_admin {
        return Ok(());
    }
    db::lock_for_transaction(conn, "accounts:admins")?;
    let is_admin = roles_of(conn, id)?.contains(&Role::Admin);
    let disabled = find(conn, id)?.is_some_and(|a| a.account.disabled);
    if is_admin && !disabled && active_admin_count(conn)? <= 1 {
        return Err(AccountError::Refused(
            "This is the only active admin; give another account the admin role first.".into(),
        ));
    }
    Ok(())
}

pub fn set_roles(
    conn: &mut DbConnection,
    actor: &str,
    id: i64,
    roles: &[Role],
) -> Result<(), AccountError> {
    db::write_transaction(conn, |conn| {
        let before = find(conn, id)?.ok_or(AccountError::NotFound)?;
        keep_an_admin(conn, id, !roles.contains(&Role::Admin))?;
        write_roles(conn, id, roles)?;
        touch(conn, id)?;
        audit::record(
            conn,
            actor,
            "account.roles-changed",
            &format!("account:{id}"),
            serde_json::json!({
                "email": before.account.email,
                "before": role_names(&before.roles),
                "after": role_names(roles),
            }),
        )?;
        Ok(())
    })
}

/// Disables or re-enables an account. Disabling ends all its sessions.
pub fn set_disabled(
    conn: &mut DbConnection,
    actor: &str,
    id: i64,
    disabled: bool,
) -> Result<(), AccountError> {
    db::write_transaction(conn, |conn| {
        let account = find(conn, id)?.ok_or(AccountError::NotFound)?;
        if disabled {
            keep_an_admin(conn, id, true)?;
        }
        diesel::update(accounts::table.filter(accounts::id.eq(id)))
            .set((
                accounts::disabled.eq(disabled),
                accounts::updated_at.eq(db::now()),
            ))
            .execute(conn)?;
        if disabled {
            end_sessions(conn, id, None)?;
        }
        let action = if disabled {
            "account.disabled"
        } else {
            "account.enabled"
        };
        audit::record(
            conn,
            actor,
            action,
            &format!("account:{id}"),
            serde_json::json!({ "email": account.account.email }),
        )?;
        Ok(())
    })
}

/// Stores a new password hash and ends every session of the account except `keep_session`.
pub fn set_password(
    conn: &mut DbConnection,
    actor: &str,
    id: i64,
    password_hash: &str,
    must_change: bool,
    keep_session: Option<i64>,
    action: &str,
) -> Result<(), AccountError> {
    db::write_transaction(conn, |conn| {
        let account = find(conn, id)?.ok_or(AccountError::NotFound)?;
        diesel::update(accounts::table.filter(accounts::id.eq(id)))
            .set((
                accounts::password_hash.eq(password_hash),
                accounts::must_change_password.eq(must_change),
                accounts::updated_at.eq(db::now()),
            ))
            .execute(conn)?;
        end_sessions(conn, id, keep_session)?;
        // A reset by an admin answers a lost or stolen password: the tokens made with it go too.
        let revoked = if must_change {
            api_tokens::revoke_all(conn, id, db::now())?
        } else {
            0
        };
        let mut details = serde_json::json!({ "email": account.account.email });
        if revoked > 0 {
            details["api_tokens_revoked"] = revoked.into();
        }
        audit::record(conn, actor, action, &format!("account:{id}"), details)?;
        Ok(())
    })
}

/// Replaces a hash made with weaker parameters, after a successful sign-in.
pub fn upgrade_hash(conn: &mut DbConnection, id: i64, password_hash: &str) -> Result<(), DbError> {
    diesel::update(accounts::table.filter(accounts::id.eq(id)))
        .set(accounts::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(())
}

fn touch(conn: &mut DbConnection, id: i64) -> Result<(), DbError> {
    diesel::update(accounts::table.filter(accounts::id.eq(id)))
        .set(accounts::updated_at.eq(db::now()))
        .execute(conn)?;
    Ok(())
}

fn end_sessions(conn: &mut DbConnection, id: i64, keep: Option<i64>) -> Result<usize, DbError> {
    let query = sessions::table.filter(sessions::account_id.eq(id));
    let n = match keep {
        Some(keep) => diesel::delete(query.filter(sessions::id.ne(keep))).execute(conn)?,
        None => diesel::delete(query).execute(conn)?,
    };
    Ok(n)
}

/// A random password for an admin reset or a new account: the person changes it at first
/// sign-in. 20 characters from an alphabet without look-alikes.
pub fn temporary_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|i| {
            let c = ALPHABET[rng.random_range(0..ALPHABET.len())] as char;
            if i > 0 && i % 5 == 0 {
                format!("-{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Which accounts `/admin/users` shows: those whose email or name contains `search` (any
/// letter case), enabled or disabled, holding `role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub search: Option<String>,
    pub disabled: Option<bool>,
    pub role: Option<Role>,
}

/// Page `page` (from 1; past the end, the last) of the accounts `filter` selects, by email,
/// with their roles; and how many accounts match in all.
pub fn search(
    conn: &mut DbConnection,
    filter: &AccountFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<AccountWithRoles>, i64, i64), DbError> {
    use crate::db::search::{contains, lower, ESCAPE};
    let filtered = || {
        let mut query = accounts::table.into_boxed();
        if let Some(search) = &filter.search {
            let pattern = contains(search);
            query = query.filter(
                lower(accounts::email)
                    .like(pattern.clone())
                    .escape(ESCAPE)
                    .or(lower(accounts::name).like(pattern).escape(ESCAPE)),
            );
        }
        if let Some(disabled) = filter.disabled {
            query = query.filter(accounts::disabled.eq(disabled));
        }
        if let Some(role) = filter.role {
            query = query.filter(
                accounts::id.eq_any(
                    account_roles::table
                        .filter(account_roles::role.eq(role))
                        .select(account_roles::account_id),
                ),
            );
        }
        query
    };
    let per_page = per_page.max(1);
    let total: i64 = filtered().count().get_result(conn)?;
    let page = page.clamp(1, ((total + per_page - 1) / per_page).max(1));
    let found: Vec<Account> = filtered()
        .order((accounts::email.asc(), accounts::id.asc()))
        .offset((page - 1) * per_page)
        .limit(per_page)
        .select(Account::as_select())
        .load(conn)?;
    let ids: Vec<i64> = found.iter().map(|a| a.id).collect();
    let pairs: Vec<(i64, Role)> = account_roles::table
        .filter(account_roles::account_id.eq_any(&ids))
        .select((account_roles::account_id, account_roles::role))
        .load(conn)?;
    let with_roles = found
        .into_iter()
        .map(|account| {
            let mut roles: Vec<Role> = pairs
                .iter()
                .filter(|(id, _)| *id == account.id)
                .map(|(_, r)| *r)
                .collect();
            roles.sort();
            AccountWithRoles { account, roles }
        })
        .collect();
    Ok((with_roles, total, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            AccountEmail::parse(" Ana@Example.ORG ").map(|e| e.0),
            Ok("ana@example.org".into())
        );
        assert!(AccountEmail::parse("not an email").is_err());
    }

    #[test]
    fn temporary_passwords_meet_the_policy() {
        let p = temporary_password();
        assert_eq!(p.len(), 23, "{p}");
        assert_eq!(
            password::check_policy(&p, "someone@example.org", "Someone"),
            Ok(())
        );
        assert_ne!(p, temporary_password());
    }
}
