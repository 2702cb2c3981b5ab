//! A member signs in to its own page with a single-use link mailed to its security alias, and
//! keeps a member session of its own, apart from staff sessions. Only SHA-256 hashes of link
//! and session tokens are stored. A request for a link does the same work whether or not the
//! address is a member's (a row is written either way; the per-address limit counts both), and
//! a session works only while its member is active: the status is read on every request.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::accounts::session::{new_token, token_hash};
use crate::app::Context;
use crate::audit;
use crate::db::schema::{member_sessions, member_sign_in_links, members};
use crate::db::{self, DbConnection, DbError};
use crate::domain::{MemberStatus, SecurityAlias};
use crate::membership::members::Member;
use crate::membership::FlowError;

/// How long a sign-in link works.
pub const LINK_MINUTES: i64 = 15;
/// Links asked for one address within [`LINK_WINDOW_MINUTES`]; more are not mailed.
pub const LINKS_PER_ADDRESS: i64 = 3;
pub const LINK_WINDOW_MINUTES: i64 = 60;
/// A member session ends after this long without a request…
pub const SESSION_IDLE_MINUTES: i64 = 60;
/// …and this long after the link was used, whichever comes first.
pub const SESSION_MAX_HOURS: i64 = 12;

/// The member signed in on this request.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentMember {
    pub member_id: i64,
    pub alias: SecurityAlias,
    pub org_name: String,
    #[serde(skip)]
    pub session_id: i64,
}

/// The hash a requested address is counted under: the address itself is not kept.
fn address_hash(alias: &SecurityAlias) -> String {
    hex::encode(Sha256::digest(alias.as_str().as_bytes()))
}

/// Asks for a sign-in link for `alias`. If it is the alias of an active member, and the
/// address has not asked too often, a link valid for [`LINK_MINUTES`] is mailed to it. The
/// caller answers the same whatever happened, so nothing here is returned.
pub fn request_link(
    conn: &mut DbConnection,
    ctx: &Context,
    alias: &SecurityAlias,
) -> Result<(), FlowError> {
    let now = ctx.clock.now_naive();
    let hash = address_hash(alias);
    db::write_transaction(conn, |conn| {
        // Requests older than a day count for nothing: swept whenever one comes in.
        diesel::delete(
            member_sign_in_links::table
                .filter(member_sign_in_links::created_at.lt(now - Duration::days(1))),
        )
        .execute(conn)?;
        let recent: i64 = member_sign_in_links::table
            .filter(member_sign_in_links::address_hash.eq(&hash))
            .filter(
                member_sign_in_links::created_at.gt(now - Duration::minutes(LINK_WINDOW_MINUTES)),
            )
            .count()
            .get_result(conn)?;
        let member: Option<Member> = members::table
            .filter(members::security_alias.eq(alias))
            .filter(members::status.eq(MemberStatus::Active))
            .select(Member::as_select())
            .first(conn)
            .optional()?;
        if recent >= LINKS_PER_ADDRESS {
            return Ok(());
        }
        let token = new_token();
        let expires_at = now + Duration::minutes(LINK_MINUTES);
        diesel::insert_into(member_sign_in_links::table)
            .values((
                member_sign_in_links::address_hash.eq(&hash),
                member_sign_in_links::member_id.eq(member.as_ref().map(|m| m.id)),
                member_sign_in_links::token_hash.eq(token_hash(&token)),
                member_sign_in_links::created_at.eq(now),
                member_sign_in_links::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        let mail = json!({
            "org_name": member.as_ref().map_or("", |m| m.org_name.as_str()),
            "alias": alias,
            "sign_in_url": ctx.url(&format!("/member/sign-in/{token}")),
            "expires_at": expires_at,
            "minutes": LINK_MINUTES,
        });
        match member {
            Some(member) => {
                ctx.mailer
                    .enqueue(conn, "member_sign_in", alias.as_str(), mail, None)?;
                audit::record(
                    conn,
                    alias.as_str(),
                    "member.sign-in-link-sent",
                    &format!("member:{}", member.id),
                    json!({ "expires": expires_at.to_string() }),
                )?;
            }
            None => {
                // The same rendering work as for a member, thrown away: no mail, no entry.
                ctx.mailer
                    .templates
                    .render("member_sign_in", mail)
                    .map_err(crate::mail::MailError::from)?;
            }
        }
        Ok(())
    })
}

/// Why a sign-in link does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Never made, made for an address that is no member's, or swept away.
    Unknown,
    Used,
    Expired,
    /// The member is suspended or removed.
    Refused,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = member_sign_in_links)]
struct Link {
    id: i64,
    member_id: Option<i64>,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
}

/// What a link's page shows before its button is pressed.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub org_name: String,
    pub alias: String,
    pub expires_at: NaiveDateTime,
}

fn open_link(
    conn: &mut DbConnection,
    token: &str,
    now: NaiveDateTime,
) -> Result<Result<(Link, Member), LinkProblem>, DbError> {
    let Some(link) = member_sign_in_links::table
        .filter(member_sign_in_links::token_hash.eq(token_hash(token)))
        .select(Link::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(Err(LinkProblem::Unknown));
    };
    let Some(member_id) = link.member_id else {
        return Ok(Err(LinkProblem::Unknown));
    };
    if link.used_at.is_some() {
        return Ok(Err(LinkProblem::Used));
    }
    if link.expires_at <= now {
        return Ok(Err(LinkProblem::Expired));
    }
    let Some(member) = crate::membership::members::find(conn, member_id)? else {
        return Ok(Err(LinkProblem::Unknown));
    };
    if member.status != MemberStatus::Active {
        return Ok(Err(LinkProblem::Refused));
    }
    Ok(Ok((link, member)))
}

/// Looks a link up without using it (mail scanners fetch links).
pub fn check_link(
    conn: &mut DbConnection,
    ctx: &Context,
    token: &str,
) -> Result<Result<LinkView, LinkProblem>, DbError> {
    let now = ctx.clock.now_naive();
    Ok(open_link(conn, token, now)?.map(|(link, member)| LinkView {
        org_name: member.org_name,
        alias: member.security_alias.to_string(),
        expires_at: link.expires_at,
    }))
}

/// Uses a link: it stops working, the member's other unused links too, and a member session
/// starts. Returns the session's token for the cookie.
pub fn use_link(
    conn: &mut DbConnection,
    ctx: &Context,
    token: &str,
) -> Result<Result<String, LinkProblem>, FlowError> {
    let now = ctx.clock.now_naive();
    db::write_transaction(conn, |conn| {
        let (link, member) = match open_link(conn, token, now)? {
            Ok(found) => found,
            Err(problem) => return Ok(Err(problem)),
        };
        let claimed = diesel::update(
            member_sign_in_links::table
                .filter(member_sign_in_links::id.eq(link.id))
                .filter(member_sign_in_links::used_at.is_null()),
        )
        .set(member_sign_in_links::used_at.eq(Some(now)))
        .execute(conn)?;
        if claimed != 1 {
            return Ok(Err(LinkProblem::Used));
        }
        diesel::update(
            member_sign_in_links::table
                .filter(member_sign_in_links::member_id.eq(member.id))
                .filter(member_sign_in_links::used_at.is_null())
                .filter(member_sign_in_links::expires_at.gt(now)),
        )
        .set(member_sign_in_links::expires_at.eq(now))
        .execute(conn)?;
        // Sessions that ended on their own are swept whenever one starts.
        diesel::delete(member_sessions::table.filter(
            member_sessions::expires_at.le(now).or(
                member_sessions::last_seen_at.le(now - Duration::minutes(SESSION_IDLE_MINUTES)),
            ),
        ))
        .execute(conn)?;
        let session = new_token();
        diesel::insert_into(member_sessions::table)
            .values((
                member_sessions::member_id.eq(member.id),
                member_sessions::token_hash.eq(token_hash(&session)),
                member_sessions::created_at.eq(now),
                member_sessions::last_seen_at.eq(now),
                member_sessions::expires_at.eq(now + Duration::hours(SESSION_MAX_HOURS)),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            member.security_alias.as_str(),
            "member.signed-in",
            &format!("member:{}", member.id),
            json!({ "link": link.id }),
        )?;
        Ok(Ok(session))
    })
}

/// The member a session token belongs to, while the session is alive and the member active.
/// A session of a member that is no longer active, or that ran out, is deleted.
pub fn resolve(
    conn: &mut DbConnection,
    token: &str,
    now: NaiveDateTime,
) -> Result<Option<CurrentMember>, DbError> {
    let found: Option<(i64, NaiveDateTime, NaiveDateTime, Member)> = member_sessions::table
        .inner_join(members::table)
        .filter(member_sessions::token_hash.eq(token_hash(token)))
        .select((
            member_sessions::id,
            member_sessions::last_seen_at,
            member_sessions::expires_at,
            Member::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((session_id, last_seen, expires_at, member)) = found else {
        return Ok(None);
    };
    let idle = Duration::minutes(SESSION_IDLE_MINUTES);
    if member.status != MemberStatus::Active || now >= expires_at || now - last_seen >= idle {
        diesel::delete(member_sessions::table.filter(member_sessions::id.eq(session_id)))
            .execute(conn)?;
        return Ok(None);
    }
    // Keep writes rare: a minute is precision enough for an hour's idle limit.
    if now - last_seen > Duration::seconds(60) {
        diesel::update(member_sessions::table.filter(member_sessions::id.eq(session_id)))
            .set(member_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(CurrentMember {
        member_id: member.id,
        alias: member.security_alias,
        org_name: member.org_name,
        session_id,
    }))
}

/// Signs the member out: its session row goes, so a copied cookie stops working too.
pub fn sign_out(conn: &mut DbConnection, member: &CurrentMember) -> Result<(), DbError> {
    db::write_transaction(conn, |conn| {
        diesel::delete(member_sessions::table.filter(member_sessions::id.eq(member.session_id)))
            .execute(conn)?;
        audit::record(
            conn,
            member.alias.as_str(),
            "member.signed-out",
            &format!("member:{}", member.member_id),
            json!({}),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_by_hash_of_the_parsed_alias() {
        let a = SecurityAlias::parse("Security@Example.com").expect("alias");
        let b = SecurityAlias::parse("security@example.com").expect("alias");
        assert_eq!(address_hash(&a), address_hash(&b));
        assert!(!address_hash(&a).contains("example"));
    }
}
