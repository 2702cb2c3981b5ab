//! Reviewer votes and what they add up to. Each reviewer has one vote per application, which
//! can be changed until the application is decided; a reviewer from the applicant's own
//! organisation (by email domain) is recused.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{accounts, comments, votes};
use crate::db::{self, DbConnection, DbError};
use crate::domain::org_domain::on_any;
use crate::domain::OrgDomain;
use crate::membership::application::ApplicationStatus;

crate::text_enum! {
    /// A reviewer's vote.
    pub enum Vote ("vote") {
        Approve = "approve",
        Reject = "reject",
        Abstain = "abstain",
    }
}

/// A vote as shown to reviewers.
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct CastVote {
    pub account_id: i64,
    pub reviewer_name: String,
    pub reviewer_email: String,
    pub vote: Vote,
    pub reason: String,
    pub updated_at: NaiveDateTime,
}

pub fn votes_for(conn: &mut DbConnection, application_id: i64) -> Result<Vec<CastVote>, DbError> {
    Ok(votes::table
        .inner_join(accounts::table)
        .filter(votes::application_id.eq(application_id))
        // A disabled account's vote no longer counts.
        .filter(accounts::disabled.eq(false))
        .order(votes::created_at)
        .select((
            votes::account_id,
            accounts::name,
            accounts::email,
            votes::vote,
            votes::reason,
            votes::updated_at,
        ))
        .load(conn)?)
}

/// Records or replaces one reviewer's vote.
pub fn cast(
    conn: &mut DbConnection,
    application_id: i64,
    account_id: i64,
    vote: Vote,
    reason: &str,
) -> Result<(), DbError> {
    let now = db::now();
    let changed = diesel::update(
        votes::table
            .filter(votes::application_id.eq(application_id))
            .filter(votes::account_id.eq(account_id)),
    )
    .set((
        votes::vote.eq(vote),
        votes::reason.eq(reason),
        votes::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(votes::table)
            .values((
                votes::application_id.eq(application_id),
                votes::account_id.eq(account_id),
                votes::vote.eq(vote),
                votes::reason.eq(reason),
                votes::created_at.eq(now),
                votes::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The counts that decide an application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub approvals: u32,
    pub rejections: u32,
    pub abstentions: u32,
}

pub fn tally(votes: &[CastVote]) -> Tally {
    let mut t = Tally::default();
    for v in votes {
        match v.vote {
            Vote::Approve => t.approvals += 1,
            Vote::Reject => t.rejections += 1,
            Vote::Abstain => t.abstentions += 1,
        }
    }
    t
}

/// Where the votes put an application under review. Enough rejections reject it; otherwise
/// enough approvals recommend it (or, without final approval, approve it); otherwise it stays
/// in review. A changed vote can move it back.
pub fn outcome(
    t: Tally,
    approvals_required: u32,
    rejections_required: u32,
    final_approval: bool,
) -> ApplicationStatus {
    if t.rejections >= rejections_required {
        ApplicationStatus::Rejected
    } else if t.approvals >= approvals_required {
        if final_approval {
            ApplicationStatus::Recommended
        } else {
            ApplicationStatus::Approved
        }
    } else {
        ApplicationStatus::InReview
    }
}

/// Whether a reviewer belongs to the applicant's organisation and so may not vote on it.
pub fn is_recused(reviewer_email: &str, org_domains: &[OrgDomain]) -> bool {
    reviewer_email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| on_any(domain, org_domains))
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct Comment {
    pub author: String,
    pub body: String,
    pub created_at: NaiveDateTime,
}

pub fn comments_for(conn: &mut DbConnection, application_id: i64) -> Result<Vec<Comment>, DbError> {
    Ok(comments::table
        .inner_join(accounts::table)
        .filter(comments::application_id.eq(application_id))
        .order(comments::created_at)
        .select((accounts::name, comments::body, comments::created_at))
        .load(conn)?)
}

pub fn add_comment(
    conn: &mut DbConnection,
    application_id: i64,
    account_id: i64,
    body: &str,
) -> Result<(), DbError> {
    diesel::insert_into(comments::table)
        .values((
            comments::application_id.eq(application_id),
            comments::account_id.eq(account_id),
            comments::body.eq(body),
            comments::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(approvals: u32, rejections: u32) -> Tally {
        Tally {
            approvals,
            rejections,
            abstentions: 0,
        }
    }

    #[test]
    fn quorum_edges() {
        assert_eq!(outcome(t(1, 0), 2, 2, true), ApplicationStatus::InReview);
        assert_eq!(outcome(t(2, 0), 2, 2, true), ApplicationStatus::Recommended);
        assert_eq!(outcome(t(2, 0), 2, 2, false), ApplicationStatus::Approved);
        assert_eq!(outcome(t(2, 1), 2, 2, true), ApplicationStatus::Recommended);
        assert_eq!(outcome(t(3, 2), 2, 2, true), ApplicationStatus::Rejected);
        assert_eq!(outcome(t(0, 1), 2, 2, true), ApplicationStatus::InReview);
        assert_eq!(outcome(t(0, 1), 2, 1, true), ApplicationStatus::Rejected);
        assert_eq!(
            outcome(
                Tally {
                    approvals: 1,
                    rejections: 0,
                    abstentions: 5
                },
                2,
                2,
                true
            ),
            ApplicationStatus::InReview
        );
    }

    #[test]
    fn reviewers_of_the_applicant_are_recused() {
        let domains = vec![OrgDomain::parse("example.com").unwrap()];
        assert!(is_recused("ana@example.com", &domains));
        assert!(is_recused("ana@Eu.Example.com", &domains));
        assert!(!is_recused("ana@notexample.com", &domains));
        assert!(!is_recused("ana@other.org", &domains));
    }
}
