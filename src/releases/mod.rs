//! Releases: the Patch Tuesday calendar and, around it, releases, patches and the rule that an
//! upstream's embargoed fixes (Envoy's) are never redistributed.
//!
//! - `calendar`: Patch Tuesdays, early-disclosure dates, moments in the list's zone.
//! - `release`: a release and every change to it, revision by revision.
//! - `approval`: the two-person rule and what blocks approval.
//! - `upstream`: the upstream (Envoy) rule, from detection to the last check at send.
//! - `distribution`: the scheduler's mailing, announcement and publication.
//! - `visibility`: what the public may see of a release.
//! - `advisory_formats`: a published release as OSV and CSAF 2.0 documents.
//! - `patch`: reading an uploaded patch file; `feeds`: the Atom feed, ICS and ready text.
//! - `wording`: how mail and announcements name a release and its lines.
//! - `member_mail`: what a member was mailed about releases, as its own page shows it.

pub mod advisory_formats;
pub mod approval;
pub mod calendar;
pub mod distribution;
pub mod feeds;
pub mod member_mail;
pub mod patch;
pub mod release;
pub mod upstream;
pub mod visibility;
pub mod wording;
