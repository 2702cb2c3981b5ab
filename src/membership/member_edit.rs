//! An admin edits a member. The organisation's name and its representative change at once and
//! are audited with what they were. A new security alias changes nothing yet: a single-use link
//! is mailed to the new alias (only its hash is stored; it expires), and following it proves
//! that someone reads the new address; only then is the alias changed, audited, and the old
//! alias told. The new alias follows the rule an application's does: on one of the
//! organisation's domains, and nobody else's alias on the list.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use validator::{Validate, ValidateEmail};

use crate::accounts::session::{self, CurrentUser};
use crate::app::Context;
use crate::audit;
use crate::db::schema::{accounts, member_alias_changes, members};
use crate::db::{self, DbConnection, DbError};
use crate::domain::org_domain::on_any;
use crate::domain::{MemberStatus, OrgDomain, SecurityAlias};
use crate::error::FieldErrors;
use crate::mail::MailError;
use crate::membership::application;
use crate::membership::members::{self as roster, Member};

/// How long a link to confirm a new alias works, as long as an application's.
pub const ALIAS_CHANGE_DAYS: i64 = crate::membership::CONFIRMATION_DAYS;

/// The edit form as typed; every field is text so a refused form shows again as it was.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate)]
pub struct EditForm {
    #[serde(default)]
    #[validate(length(
        max = 200,
        message = "Enter the organisation's name (at most 200 characters)."
    ))]
    pub org_name: String,
    #[serde(default)]
    #[validate(length(max = 200, message = "At most 200 characters."))]
    pub rep_name: String,
    #[serde(default)]
    #[validate(length(max = 254, message = "The address is too long."))]
    pub rep_email: String,
    #[serde(default)]
    #[validate(length(max = 254, message = "The address is too long."))]
    pub security_alias: String,
}

/// A parsed edit: every value checked, addresses in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub org_name: String,
    /// Both empty, or both given.
    pub rep_name: String,
    pub rep_email: String,
    pub security_alias: SecurityAlias,
}

impl EditForm {
    /// The form filled in with the member as stored.
    pub fn from_member(member: &Member) -> Self {
        Self {
            org_name: member.org_name.clone(),
            rep_name: member.rep_name.clone(),
            rep_email: member.rep_email.clone(),
            security_alias: member.security_alias.to_string(),
        }
    }

    /// Checks every field; returns the edit or a message per bad field.
    pub fn parse(&self) -> Result<Edit, FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Err(invalid) = self.validate() {
            for (field, problems) in invalid.field_errors() {
                if let Some(message) = problems.iter().find_map(|p| p.message.clone()) {
                    errors.insert(field.to_string(), message.into_owned());
                }
            }
        }
        let org_name = self.org_name.trim();
        if org_name.is_empty() {
            errors.insert(
                "org_name".into(),
                "Enter the organisation's name (at most 200 characters).".into(),
            );
        }
        let rep_name = self.rep_name.trim();
        let rep_email = self.rep_email.trim().to_lowercase();
        if !rep_email.is_empty() && !rep_email.validate_email() {
            errors.entry("rep_email".into()).or_insert_with(|| {
                "Enter the representative's email address, e.g. alice@example.com.".into()
            });
        }
        match (rep_name.is_empty(), rep_email.is_empty()) {
            (true, false) => {
                errors.insert(
                    "rep_name".into(),
                    "Enter the representative's name too, or leave both empty.".into(),
                );
            }
            (false, true) => {
                errors.insert(
                    "rep_email".into(),
                    "Enter the representative's email address too, or leave both empty.".into(),
                );
            }
            _ => {}
        }
        let alias = SecurityAlias::parse(&self.security_alias)
            .map_err(|e| {
                errors
                    .entry("security_alias".into())
                    .or_insert_with(|| format!("The security alias must be an email address: {e}."))
            })
            .ok();
        match alias {
            Some(security_alias) if errors.is_empty() => Ok(Edit {
                org_name: org_name.to_owned(),
                rep_name: rep_name.to_owned(),
                rep_email,
                security_alias,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("not found")]
    NotFound,
    /// The member's state forbids the change.
    #[error("{0}")]
    Refused(String),
    /// A value to fix, beside its field.
    #[error("some values are not usable")]
    Invalid(FieldErrors),
    /// The new alias is another member's.
    #[error("{alias} is already the security alias of {org}.")]
    AliasTaken { alias: String, org: String },
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for EditError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// What an edit did.
#[derive(Debug, Clone, Default)]
pub struct Edited {
    /// The fields changed at once.
    pub changed: Vec<&'static str>,
    /// The alias a confirmation link was mailed to.
    pub alias_requested: Option<SecurityAlias>,
}

/// The domains a member's alias may be on: its own, and every domain its application named.
fn own_domains(conn: &mut DbConnection, member: &Member) -> Result<Vec<OrgDomain>, DbError> {
    let mut domains = vec![member.org_domain.clone()];
    if let Some(app) = member
        .application_id
        .map(|id| application::find(conn, id))
        .transpose()?
        .flatten()
    {
        for domain in app.domains() {
            if !domains.contains(domain) {
                domains.push(domain.clone());
            }
        }
    }
    Ok(domains)
}

/// The member other than `member_id` whose alias `alias` is, if any.
fn holder_of(
    conn: &mut DbConnection,
    alias: &SecurityAlias,
    member_id: i64,
) -> Result<Option<String>, DbError> {
    Ok(members::table
        .filter(members::security_alias.eq(alias))
        .filter(members::id.ne(member_id))
        .select(members::org_name)
        .first(conn)
        .optional()?)
}

/// Who edits a member: an admin, or the member itself on its own page (signed in by a link
/// to its alias). The audit log names the admin's account or the member's alias.
#[derive(Debug, Clone, Copy)]
pub enum Editor<'a> {
    Admin(&'a CurrentUser),
    Member(&'a SecurityAlias),
}

impl Editor<'_> {
    fn actor(&self) -> &str {
        match self {
            Editor::Admin(admin) => admin.actor(),
            Editor::Member(alias) => alias.as_str(),
        }
    }

    /// The account that asked, for `member_alias_changes.requested_by`; none for a member.
    fn account_id(&self) -> Option<i64> {
        match self {
            Editor::Admin(admin) => Some(admin.account_id),
            Editor::Member(_) => None,
        }
    }
}

/// Applies an admin's edit of member `member_id`: name and representative at once, a new
/// alias by a link mailed to it ([`confirm_alias_change`]). A removed member is not edited.
pub fn edit(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    admin: &CurrentUser,
    edit: &Edit,
) -> Result<Edited, EditError> {
    edit_as(conn, ctx, member_id, Editor::Admin(admin), edit)
}

/// Applies an edit of member `member_id` by `editor`, under the same rules for admins and
/// members: name and representative at once, a new alias only through the link mailed to it.
pub fn edit_as(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    editor: Editor<'_>,
    edit: &Edit,
) -> Result<Edited, EditError> {
    let now = ctx.clock.now_naive();
    db::write_transaction(conn, |conn| {
        let member = roster::find(conn, member_id)?.ok_or(EditError::NotFound)?;
        if member.status == MemberStatus::Removed {
            return Err(EditError::Refused(
                "This organisation was removed from the list; its record is kept as it was.".into(),
            ));
        }
        let alias_changed = edit.security_alias != member.security_alias;
        if alias_changed {
            let domains = own_domains(conn, &member)?;
            if !on_any(edit.security_alias.domain(), &domains) {
                let list: Vec<&str> = domains.iter().map(OrgDomain::as_str).collect();
                return Err(EditError::Invalid(FieldErrors::from([(
                    "security_alias".to_owned(),
                    format!(
                        "{} is not one of the organisation's domains ({}); the alias must be on a domain the organisation owns.",
                        edit.security_alias.domain(),
                        list.join(", ")
                    ),
                )])));
            }
            if let Some(org) = holder_of(conn, &edit.security_alias, member_id)? {
                return Err(EditError::AliasTaken {
                    alias: edit.security_alias.to_string(),
                    org,
                });
            }
        }
        let mut changes = serde_json::Map::new();
        let mut changed = Vec::new();
        for (field, before, after) in [
            ("org_name", &member.org_name, &edit.org_name),
            ("rep_name", &member.rep_name, &edit.rep_name),
            ("rep_email", &member.rep_email, &edit.rep_email),
        ] {
            if before != after {
                changes.insert(field.to_owned(), json!({ "from": before, "to": after }));
                changed.push(field);
            }
        }
        let subject = format!("member:{member_id}");
        if !changed.is_empty() {
            diesel::update(members::table.filter(members::id.eq(member_id)))
                .set((
                    members::org_name.eq(&edit.org_name),
                    members::rep_name.eq(&edit.rep_name),
                    members::rep_email.eq(&edit.rep_email),
                    members::updated_at.eq(now),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                editor.actor(),
                "member.edited",
                &subject,
                json!({ "changes": changes }),
            )?;
        }
        let alias_requested = if alias_changed {
            request_alias_change(
                conn,
                ctx,
                member_id,
                &edit.org_name,
                &member.security_alias,
                &edit.security_alias,
                editor,
                now,
            )?;
            Some(edit.security_alias.clone())
        } else {
            None
        };
        Ok(Edited {
            changed,
            alias_requested,
        })
    })
}

/// Mails `new` a link to confirm it as the member's alias; earlier links for the member stop
/// working.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, each value named there"
)]
fn request_alias_change(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    org_name: &str,
    old: &SecurityAlias,
    new: &SecurityAlias,
    editor: Editor<'_>,
    now: NaiveDateTime,
) -> Result<(), EditError> {
    diesel::update(
        member_alias_changes::table
            .filter(member_alias_changes::member_id.eq(member_id))
            .filter(member_alias_changes::confirmed_at.is_null())
            .filter(member_alias_changes::expires_at.gt(now)),
    )
    .set(member_alias_changes::expires_at.eq(now))
    .execute(conn)?;
    let token = session::new_token();
    let expires_at = now + chrono::Duration::days(ALIAS_CHANGE_DAYS);
    let change: i64 = diesel::insert_into(member_alias_changes::table)
        .values((
            member_alias_changes::member_id.eq(member_id),
            member_alias_changes::old_alias.eq(old.as_str()),
            member_alias_changes::new_alias.eq(new.as_str()),
            member_alias_changes::token_hash.eq(session::token_hash(&token)),
            member_alias_changes::requested_by.eq(editor.account_id()),
            member_alias_changes::created_at.eq(now),
            member_alias_changes::expires_at.eq(expires_at),
        ))
        .returning(member_alias_changes::id)
        .get_result(conn)?;
    ctx.mailer.enqueue(
        conn,
        "confirm_alias_change",
        new.as_str(),
        json!({
            "org_name": org_name,
            "old_alias": old,
            "new_alias": new,
            "confirm_url": ctx.url(&format!("/members/alias/{token}")),
            "expires_at": expires_at,
        }),
        None,
    )?;
    audit::record(
        conn,
        editor.actor(),
        "member.alias-change-requested",
        &format!("member:{member_id}"),
        json!({ "change": change, "from": old, "to": new, "expires": expires_at.to_string() }),
    )?;
    Ok(())
}

/// A change of alias waiting for its link to be followed.
#[derive(Debug, Clone, Serialize)]
pub struct PendingAlias {
    pub new_alias: String,
    pub requested_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// The open alias change of each of these members, if it has one.
pub fn pending(
    conn: &mut DbConnection,
    member_ids: &[i64],
    now: NaiveDateTime,
) -> Result<HashMap<i64, PendingAlias>, DbError> {
    let rows: Vec<(i64, String, NaiveDateTime, NaiveDateTime)> = member_alias_changes::table
        .filter(member_alias_changes::member_id.eq_any(member_ids))
        .filter(member_alias_changes::confirmed_at.is_null())
        .filter(member_alias_changes::expires_at.gt(now))
        .order(member_alias_changes::id.asc())
        .select((
            member_alias_changes::member_id,
            member_alias_changes::new_alias,
            member_alias_changes::created_at,
            member_alias_changes::expires_at,
        ))
        .load(conn)?;
    // Only one is open per member; were there more, the newest wins.
    Ok(rows
        .into_iter()
        .map(|(member, new_alias, requested_at, expires_at)| {
            (
                member,
                PendingAlias {
                    new_alias,
                    requested_at,
                    expires_at,
                },
            )
        })
        .collect())
}

/// Why an alias link does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasLinkProblem {
    Unknown,
    Used,
    /// Ran out of time, or a newer request replaced it.
    Expired,
    /// The organisation was removed from the list.
    Closed,
    /// The new alias became another member's in the meantime.
    Taken,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = member_alias_changes)]
struct AliasChange {
    id: i64,
    member_id: i64,
    new_alias: String,
    requested_by: Option<i64>,
    expires_at: NaiveDateTime,
    confirmed_at: Option<NaiveDateTime>,
}

/// What the link's page shows, and what following it did.
#[derive(Debug, Clone, Serialize)]
pub struct AliasChangeView {
    pub org_name: String,
    pub old_alias: String,
    pub new_alias: String,
    pub expires_at: NaiveDateTime,
    /// Set when the member's stored OpenPGP key has no usable user ID for the new alias.
    pub key_warning: Option<String>,
}

/// The change behind `token` and its member, or why the link does nothing now.
fn open_change(
    conn: &mut DbConnection,
    token: &str,
    now: NaiveDateTime,
) -> Result<Result<(AliasChange, Member), AliasLinkProblem>, DbError> {
    let Some(change) = member_alias_changes::table
        .filter(member_alias_changes::token_hash.eq(session::token_hash(token)))
        .select(AliasChange::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(Err(AliasLinkProblem::Unknown));
    };
    if change.confirmed_at.is_some() {
        return Ok(Err(AliasLinkProblem::Used));
    }
    if change.expires_at <= now {
        return Ok(Err(AliasLinkProblem::Expired));
    }
    let Some(member) = roster::find(conn, change.member_id)? else {
        return Ok(Err(AliasLinkProblem::Unknown));
    };
    if member.status == MemberStatus::Removed {
        return Ok(Err(AliasLinkProblem::Closed));
    }
    Ok(Ok((change, member)))
}

fn view(ctx: &Context, change: &AliasChange, member: &Member) -> AliasChangeView {
    let key_warning = member.pgp_key.as_deref().and_then(|key| {
        crate::openpgp::member_key::usable(key, &change.new_alias, ctx.clock.now())
            .err()
            .map(|why| {
                format!(
                    "The OpenPGP key the list holds for this organisation cannot be used for {}: {why} Embargoed mail to the new alias is withheld until the organisation gives a key with a user ID for it; ask the working group for a key link.",
                    change.new_alias
                )
            })
    });
    AliasChangeView {
        org_name: member.org_name.clone(),
        old_alias: member.security_alias.to_string(),
        new_alias: change.new_alias.clone(),
        expires_at: change.expires_at,
        key_warning,
    }
}

/// Looks an alias link up without using it: what its page shows.
pub fn check_alias_link(
    conn: &mut DbConnection,
    ctx: &Context,
    token: &str,
) -> Result<Result<AliasChangeView, AliasLinkProblem>, DbError> {
    let now = ctx.clock.now_naive();
    Ok(open_change(conn, token, now)?.map(|(change, member)| view(ctx, &change, &member)))
}

/// Follows an alias link (its page's button): the member's alias becomes the new one, the
/// change is audited, and the old alias is told. A link works once, until it expires or a
/// newer request replaces it.
pub fn confirm_alias_change(
    conn: &mut DbConnection,
    ctx: &Context,
    token: &str,
) -> Result<Result<AliasChangeView, AliasLinkProblem>, EditError> {
    let now = ctx.clock.now_naive();
    let outcome = db::write_transaction(conn, |conn| {
        let (change, member) = match open_change(conn, token, now)? {
            Ok(found) => found,
            Err(problem) => return Ok(Err(problem)),
        };
        let new = SecurityAlias::parse(&change.new_alias).map_err(|e| {
            EditError::Db(DbError::Task(format!(
                "a stored alias change does not hold an alias: {e}"
            )))
        })?;
        if holder_of(conn, &new, member.id)?.is_some() {
            return Ok(Err(AliasLinkProblem::Taken));
        }
        let claimed = diesel::update(
            member_alias_changes::table
                .filter(member_alias_changes::id.eq(change.id))
                .filter(member_alias_changes::confirmed_at.is_null())
                .filter(member_alias_changes::expires_at.gt(now)),
        )
        .set(member_alias_changes::confirmed_at.eq(Some(now)))
        .execute(conn)?;
        if claimed != 1 {
            return Ok(Err(AliasLinkProblem::Used));
        }
        // The unique index decides a race with another member taking the alias; the whole
        // transaction is then undone and the link stays unused.
        diesel::update(members::table.filter(members::id.eq(member.id)))
            .set((
                members::security_alias.eq(&new),
                members::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => EditError::AliasTaken {
                    alias: new.to_string(),
                    org: String::new(),
                },
                other => other.into(),
            })?;
        // No account: the member asked on its own page.
        let requested_by: Option<String> = match change.requested_by {
            Some(account) => accounts::table
                .filter(accounts::id.eq(account))
                .select(accounts::email)
                .first(conn)
                .optional()?,
            None => Some(member.security_alias.to_string()),
        };
        let shown = view(ctx, &change, &member);
        audit::record(
            conn,
            new.as_str(),
            "member.alias-changed",
            &format!("member:{}", member.id),
            json!({
                "change": change.id,
                "from": member.security_alias,
                "to": new,
                "requested_by": requested_by,
            }),
        )?;
        ctx.mailer.enqueue(
            conn,
            "alias_changed",
            member.security_alias.as_str(),
            json!({
                "org_name": member.org_name,
                "old_alias": member.security_alias,
                "new_alias": new,
                "changed_at": now,
                "report_to": ctx.report_to(),
            }),
            Some(format!("alias-changed:{}", change.id)),
        )?;
        Ok::<_, EditError>(Ok(shown))
    });
    match outcome {
        Err(EditError::AliasTaken { .. }) => Ok(Err(AliasLinkProblem::Taken)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> EditForm {
        EditForm {
            org_name: " Example Corp ".into(),
            rep_name: "Alice Example".into(),
            rep_email: "Alice@Example.com".into(),
            security_alias: "PSIRT@example.com".into(),
        }
    }

    #[test]
    fn a_good_form_parses_trimmed_and_lowered() {
        let edit = form().parse().expect("valid");
        assert_eq!(edit.org_name, "Example Corp");
        assert_eq!(edit.rep_email, "alice@example.com");
        assert_eq!(edit.security_alias.as_str(), "psirt@example.com");
    }

    #[test]
    fn each_bad_field_has_its_message() {
        let mut bad = form();
        bad.org_name = "  ".into();
        bad.rep_email = "not an address".into();
        bad.security_alias = "security-at-example.com".into();
        let errors = bad.parse().expect_err("invalid");
        for field in ["org_name", "rep_email", "security_alias"] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
        assert!(!errors.contains_key("rep_name"));
    }

    #[test]
    fn a_representative_is_both_name_and_address_or_neither() {
        let mut none = form();
        none.rep_name = String::new();
        none.rep_email = String::new();
        assert!(none.parse().is_ok());
        let mut half = form();
        half.rep_email = String::new();
        assert!(half.parse().expect_err("half")["rep_email"].contains("too"));
    }
}
