//! What more than one benchmark stores the same way.

use diesel::prelude::*;
use edl::db::schema::members;
use edl::db::DbConnection;
use edl::domain::{MemberStatus, OrgDomain, SecurityAlias};

/// Stores active member number `i` on `domain`, with the alias `security@domain`, joined and
/// reviewed `now`; returns its id.
pub fn insert_member(
    conn: &mut DbConnection,
    i: usize,
    domain: &str,
    policy_version: i32,
    now: chrono::NaiveDateTime,
) -> QueryResult<i64> {
    let org_domain = OrgDomain::parse(domain).expect("a domain");
    let alias = SecurityAlias::parse(&format!("security@{domain}")).expect("an alias");
    diesel::insert_into(members::table)
        .values((
            members::org_name.eq(format!("Org {i}")),
            members::org_domain.eq(&org_domain),
            members::security_alias.eq(&alias),
            members::policy_version.eq(policy_version),
            members::status.eq(MemberStatus::Active),
            members::joined_at.eq(now),
            members::last_reviewed_at.eq(now),
            members::next_review_due.eq(now + chrono::Duration::days(365)),
            members::created_at.eq(now),
            members::updated_at.eq(now),
        ))
        .returning(members::id)
        .get_result(conn)
}
