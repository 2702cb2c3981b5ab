//! Members: organisations on the list, made from approved applications. Active, suspended (no
//! mail) or removed; reviewed yearly; breaches recorded; and the embargo-policy version each
//! accepted, with a signed link to accept a newer one.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{breaches, members};
use crate::db::{self, DbConnection, DbError};
use crate::domain::{MemberStatus, OrgDomain, SecurityAlias};
use crate::membership::application::Application;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: i64,
    pub application_id: Option<i64>,
    pub org_name: String,
    pub org_domain: OrgDomain,
    pub security_alias: SecurityAlias,
    pub pgp_key: Option<String>,
    pub policy_version: i32,
    pub status: MemberStatus,
    pub status_reason: Option<String>,
    pub joined_at: NaiveDateTime,
    pub last_reviewed_at: NaiveDateTime,
    pub next_review_due: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The stored key's fingerprint and when it stops being usable for encryption.
    pub pgp_fingerprint: Option<String>,
    pub pgp_expires_at: Option<NaiveDateTime>,
    /// The fingerprint of the key whose coming expiry the member was reminded of.
    pub key_reminder_for: Option<String>,
    /// The organisation's representative: copied from the application, edited by admins.
    /// Empty for a member recorded before representatives were kept on members.
    pub rep_name: String,
    pub rep_email: String,
}

/// Stores a member's key with its fingerprint and expiry, read once here so that pages and
/// reminders need not parse it. `None` removes the key.
pub fn set_key(conn: &mut DbConnection, id: i64, armored: Option<&str>) -> Result<(), DbError> {
    let armored = armored.map(str::trim).filter(|k| !k.is_empty());
    let facts = armored.and_then(crate::openpgp::member_key::facts);
    diesel::update(members::table.filter(members::id.eq(id)))
        .set((
            members::pgp_key.eq(armored),
            members::pgp_fingerprint.eq(facts.as_ref().map(|(f, _)| f.clone())),
            members::pgp_expires_at.eq(facts.and_then(|(_, e)| e).map(|e| e.naive_utc())),
            members::key_reminder_for.eq(None::<String>),
            members::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    // Release mail held because the old key did not work is decided again with this one.
    if armored.is_some() {
        crate::mail::outbox::requeue_held_for_member(conn, id, db::now())?;
    }
    Ok(())
}

/// Reads the fingerprint and expiry of keys stored before they were recorded (a database
/// from an earlier version). Returns how many members it updated.
pub fn record_missing_key_facts(conn: &mut DbConnection) -> Result<usize, DbError> {
    let missing: Vec<(i64, String)> = members::table
        .filter(members::pgp_key.is_not_null())
        .filter(members::pgp_fingerprint.is_null())
        .select((members::id, members::pgp_key.assume_not_null()))
        .load(conn)?;
    let mut updated = 0;
    for (id, key) in missing {
        if crate::openpgp::member_key::facts(&key).is_some() {
            set_key(conn, id, Some(&key))?;
            updated += 1;
        }
    }
    Ok(updated)
}

/// Creates the member an approved application describes.
pub fn create_from(conn: &mut DbConnection, application: &Application) -> Result<i64, DbError> {
    let now = db::now();
    // An organisation removed earlier and admitted again keeps its one member row.
    let earlier: Option<i64> = members::table
        .filter(
            members::org_domain
                .eq(&application.primary_domain)
                .or(members::security_alias.eq(&application.security_alias)),
        )
        .select(members::id)
        .first(conn)
        .optional()?;
    if let Some(id) = earlier {
        diesel::update(members::table.filter(members::id.eq(id)))
            .set((
                members::application_id.eq(Some(application.id)),
                members::org_name.eq(&application.org_name),
                members::org_domain.eq(&application.primary_domain),
                members::security_alias.eq(&application.security_alias),
                members::rep_name.eq(&application.rep_name),
                members::rep_email.eq(&application.rep_email),
                members::pgp_key.eq(&application.pgp_key),
                members::policy_version.eq(application.policy_version),
                members::status.eq(MemberStatus::Active),
                members::status_reason.eq(None::<String>),
                members::joined_at.eq(now),
                members::last_reviewed_at.eq(now),
                members::next_review_due.eq(now + chrono::Duration::days(365)),
                members::updated_at.eq(now),
            ))
            .execute(conn)?;
        set_key(conn, id, application.pgp_key.as_deref())?;
        return Ok(id);
    }
    let id = diesel::insert_into(members::table)
        .values((
            members::application_id.eq(Some(application.id)),
            members::org_name.eq(&application.org_name),
            members::org_domain.eq(&application.primary_domain),
            members::security_alias.eq(&application.security_alias),
            members::rep_name.eq(&application.rep_name),
            members::rep_email.eq(&application.rep_email),
            members::pgp_key.eq(&application.pgp_key),
            members::policy_version.eq(application.policy_version),
            members::status.eq(MemberStatus::Active),
            members::joined_at.eq(now),
            members::last_reviewed_at.eq(now),
            members::next_review_due.eq(now + chrono::Duration::days(365)),
            members::created_at.eq(now),
            members::updated_at.eq(now),
        ))
        .returning(members::id)
        .get_result(conn)?;
    set_key(conn, id, application.pgp_key.as_deref())?;
    Ok(id)
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<Member>, DbError> {
    Ok(members::table
        .filter(members::id.eq(id))
        .select(Member::as_select())
        .first(conn)
        .optional()?)
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<Member>, DbError> {
    Ok(members::table
        .order(members::org_name)
        .select(Member::as_select())
        .load(conn)?)
}

pub fn active(conn: &mut DbConnection) -> Result<Vec<Member>, DbError> {
    Ok(members::table
        .filter(members::status.eq(MemberStatus::Active))
        .order(members::org_name)
        .select(Member::as_select())
        .load(conn)?)
}

/// (org domain, alias, status) of every member not removed: what a new application is
/// checked against (its domains must be no member's; a voucher must be an active member).
/// What the membership checks of one application need to know of the members still on the
/// list (active or suspended): those whose domain is one of `domains`, a parent of one or a
/// subdomain of one, and the one whose alias is `voucher`. Read without reading every member:
/// the parents are looked up by the domains' index, and only the subdomains are found by a
/// filter over the table, in the database.
pub fn on_domains_or_alias(
    conn: &mut DbConnection,
    domains: &[OrgDomain],
    voucher: Option<&SecurityAlias>,
) -> Result<Vec<(OrgDomain, SecurityAlias, MemberStatus)>, DbError> {
    use crate::db::search::{ends_with, ESCAPE};
    // Each domain and every parent of it: a.b.example, b.example, example.
    let mut names: Vec<&str> = Vec::new();
    for domain in domains {
        let mut name = domain.as_str();
        names.push(name);
        while let Some((_, parent)) = name.split_once('.') {
            names.push(parent);
            name = parent;
        }
    }
    let mut query = members::table
        .filter(members::org_domain.eq_any(names))
        .into_boxed();
    for domain in domains {
        query = query.or_filter(
            members::org_domain
                .like(ends_with(&format!(".{domain}")))
                .escape(ESCAPE),
        );
    }
    if let Some(voucher) = voucher {
        query = query.or_filter(members::security_alias.eq(voucher));
    }
    let rows: Vec<(OrgDomain, SecurityAlias, MemberStatus)> = query
        .select((
            members::org_domain,
            members::security_alias,
            members::status,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, status)| *status != MemberStatus::Removed)
        .collect())
}

pub fn set_status(
    conn: &mut DbConnection,
    id: i64,
    status: MemberStatus,
    reason: &str,
) -> Result<(), DbError> {
    diesel::update(members::table.filter(members::id.eq(id)))
        .set((
            members::status.eq(status),
            members::status_reason.eq(Some(reason)),
            members::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn mark_reviewed(conn: &mut DbConnection, id: i64) -> Result<(), DbError> {
    let now = db::now();
    diesel::update(members::table.filter(members::id.eq(id)))
        .set((
            members::last_reviewed_at.eq(now),
            members::next_review_due.eq(now + chrono::Duration::days(365)),
            members::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn accept_policy(conn: &mut DbConnection, id: i64, version: i32) -> Result<(), DbError> {
    diesel::update(members::table.filter(members::id.eq(id)))
        .set((
            members::policy_version.eq(version),
            members::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = breaches)]
pub struct Breach {
    pub id: i64,
    pub member_id: i64,
    pub what_leaked: String,
    pub leaked_to: String,
    pub occurred_at: NaiveDateTime,
    pub follow_up: String,
    pub recorded_by: i64,
    pub created_at: NaiveDateTime,
}

pub fn record_breach(
    conn: &mut DbConnection,
    member_id: i64,
    what_leaked: &str,
    leaked_to: &str,
    occurred_at: NaiveDateTime,
    follow_up: &str,
    recorded_by: i64,
) -> Result<(), DbError> {
    diesel::insert_into(breaches::table)
        .values((
            breaches::member_id.eq(member_id),
            breaches::what_leaked.eq(what_leaked),
            breaches::leaked_to.eq(leaked_to),
            breaches::occurred_at.eq(occurred_at),
            breaches::follow_up.eq(follow_up),
            breaches::recorded_by.eq(recorded_by),
            breaches::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The breaches recorded for these members, newest first: a page of the roster needs only
/// its own.
pub fn breaches_of(conn: &mut DbConnection, member_ids: &[i64]) -> Result<Vec<Breach>, DbError> {
    Ok(breaches::table
        .filter(breaches::member_id.eq_any(member_ids))
        .order(breaches::occurred_at.desc())
        .select(Breach::as_select())
        .load(conn)?)
}

/// Every recorded breach, newest first; pages group them by member.
pub fn all_breaches(conn: &mut DbConnection) -> Result<Vec<Breach>, DbError> {
    Ok(breaches::table
        .order(breaches::occurred_at.desc())
        .select(Breach::as_select())
        .load(conn)?)
}
