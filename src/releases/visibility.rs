//! What the public may see of a release, decided here and nowhere else. A release is public
//! once it is announced or published and not cancelled; until it is published the public learns
//! only the pre-announcement facts (date, number of issues, highest severity, release lines),
//! never an advisory, a patch or the release's kind ("third-party" would reveal that an
//! upstream's embargo is running). Pages, the feed, the calendar and the manage page's
//! ready-to-paste text all take what they show from here.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{CvssVector, Severity};
use crate::releases::release::{Advisory, Release};

/// What the public may know about a release at a given moment.
#[derive(Debug, Clone, Serialize)]
pub struct PublicRelease {
    pub id: i64,
    /// For example "Security release 1.9.5, 1.8.6".
    pub title: String,
    pub release_at: DateTime<Utc>,
    /// When the pre-announcement went public.
    pub announced_at: DateTime<Utc>,
    /// When the release became public; `None` while it is announced only.
    pub published_at: Option<DateTime<Utc>>,
    pub release_lines: Vec<String>,
    pub issue_count: usize,
    pub highest_severity: Option<Severity>,
    /// Empty until published.
    pub advisories: Vec<PublicAdvisory>,
    /// Absolute URL of `/releases/{id}`.
    pub url: String,
}

/// One advisory of a published release. Never anything about patches.
#[derive(Debug, Clone, Serialize)]
pub struct PublicAdvisory {
    pub cve_id: String,
    pub severity: Severity,
    /// `None` when none was given (stored as an empty string).
    pub cvss_vector: Option<CvssVector>,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
}

/// A public release, and whether it was announced ahead (the ICS calendar lists announced
/// releases only; `announced_at` cannot tell, as it falls back to the publication time).
#[derive(Debug, Clone)]
pub struct Shown {
    pub release: PublicRelease,
    pub announced: bool,
}

/// Public knowledge: announced or published, and not cancelled. Anything else is embargoed,
/// and is treated exactly like a release that does not exist.
pub fn is_public(release: &Release) -> bool {
    release.cancelled_at.is_none()
        && (release.announced_at.is_some() || release.published_at.is_some())
}

/// The only way from stored rows to what the public sees. It refuses a release that is not
/// public, and it keeps the advisories (and so CVE ids and summaries) only once the release is
/// published; before that they give just their count and highest severity, which the
/// pre-announcement states anyway. Taking the advisories by value means a caller has nothing
/// left to leak.
pub fn public_view(site_url: &str, release: Release, advisories: Vec<Advisory>) -> Option<Shown> {
    if !is_public(&release) {
        return None;
    }
    let published_at = release.published_at.map(|t| t.and_utc());
    // A release is always announced by the time it is published; should the record say
    // otherwise, it went public when it was published.
    let announced_at = release.announced_at.or(release.published_at)?.and_utc();
    let announced = release.announced_at.is_some();
    Some(Shown {
        release: facts(site_url, &release, advisories, announced_at, published_at),
        announced,
    })
}

/// What the pre-announcement of a release not yet public will say, for the release
/// managers' ready-to-paste text: the same facts the public will get, and nothing more.
pub fn as_announced(site_url: &str, release: &Release, advisories: Vec<Advisory>) -> PublicRelease {
    let announced_at = release.announce_at.unwrap_or(release.release_at).and_utc();
    facts(site_url, release, advisories, announced_at, None)
}

fn facts(
    site_url: &str,
    release: &Release,
    advisories: Vec<Advisory>,
    announced_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
) -> PublicRelease {
    let issue_count = advisories.len();
    let highest_severity = Severity::highest(advisories.iter().map(|a| a.severity));
    let advisories = if published_at.is_some() {
        advisories
            .into_iter()
            .map(|a| PublicAdvisory {
                cve_id: a.cve_id.as_str().to_owned(),
                severity: a.severity,
                // Checked when it was stored; an empty one means none was given.
                cvss_vector: CvssVector::parse(&a.cvss_vector).ok(),
                summary: a.summary,
                affected_versions: a.affected_versions,
                fixed_versions: a.fixed_versions,
            })
            .collect()
    } else {
        Vec::new()
    };
    PublicRelease {
        id: release.id,
        url: format!("{site_url}/releases/{}", release.id),
        release_lines: release.lines().to_vec(),
        title: release.title.clone(),
        release_at: release.release_at.and_utc(),
        announced_at,
        published_at,
        issue_count,
        highest_severity,
        advisories,
    }
}

#[cfg(test)]
pub(crate) mod test_fixtures {
    //! A release and its advisories in every public state, for the rule's and the pages' tests.

    use chrono::NaiveDateTime;

    use crate::domain::{CveId, JsonList, ReleaseKind, Severity};
    use crate::releases::release::{Advisory, Approval, Release};

    pub fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    pub fn release(announced: bool, published: bool, cancelled: bool) -> Release {
        Release {
            id: 7,
            kind: ReleaseKind::ThirdParty,
            title: "Security release 1.9.5, 1.8.6".into(),
            revision: 1,
            release_at: at("2026-12-08 16:00"),
            disclosure_at: Some(at("2026-11-24 16:00")),
            announce_at: Some(at("2026-11-24 16:00")),
            upstream_id: Some(1),
            release_lines: JsonList(vec!["1.9".into(), "1.8".into()]),
            members_may_deploy: false,
            notes: "internal notes".into(),
            created_by: 1,
            disclosed_at: announced.then(|| at("2026-11-24 16:00")),
            announced_at: announced.then(|| at("2026-11-24 16:00")),
            published_at: published.then(|| at("2026-12-08 16:00")),
            created_at: at("2026-11-01 10:00"),
            updated_at: at("2026-11-20 10:00"),
            notice_hours: 0,
            non_security_exception: None,
            cancelled_at: cancelled.then(|| at("2026-11-30 10:00")),
            cancel_reason: cancelled.then(|| "secret reason".into()),
            approval: Approval {
                approved_by: Some(2),
                approved_at: Some(at("2026-11-20 10:00")),
            },
        }
    }

    pub fn advisories() -> Vec<Advisory> {
        [
            ("CVE-2026-1111", Severity::Medium, "Header <smuggling>."),
            ("CVE-2026-2222", Severity::High, "Authorization bypass."),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (cve, severity, summary))| Advisory {
            id: i64::try_from(i).unwrap(),
            release_id: 7,
            cve_id: CveId::parse(cve).unwrap(),
            severity,
            cvss_vector: String::new(),
            summary: summary.into(),
            affected_versions: "< 1.9.5".into(),
            fixed_versions: "1.9.5".into(),
            created_at: at("2026-11-02 10:00"),
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_fixtures::{advisories, at, release};
    use super::*;

    const SITE: &str = "https://security.example.org";

    #[test]
    fn embargoed_and_cancelled_releases_are_not_public() {
        assert!(public_view(SITE, release(false, false, false), advisories()).is_none());
        assert!(public_view(SITE, release(true, false, true), advisories()).is_none());
        assert!(public_view(SITE, release(true, true, true), advisories()).is_none());
    }

    #[test]
    fn announced_release_gives_facts_but_no_advisories() {
        let shown = public_view(SITE, release(true, false, false), advisories()).unwrap();
        assert!(shown.announced);
        assert!(shown.release.advisories.is_empty());
        assert_eq!(shown.release.issue_count, 2);
        assert_eq!(shown.release.highest_severity, Some(Severity::High));
        assert_eq!(shown.release.release_lines, ["1.9", "1.8"]);
        assert_eq!(shown.release.url, "https://security.example.org/releases/7");
    }

    #[test]
    fn published_release_carries_its_advisories() {
        let shown = public_view(SITE, release(true, true, false), advisories()).unwrap();
        assert_eq!(shown.release.advisories.len(), 2);
        assert_eq!(shown.release.advisories[0].affected_versions, "< 1.9.5");
    }

    #[test]
    fn published_without_announcement_counts_as_announced_then_but_not_for_the_calendar() {
        let shown = public_view(SITE, release(false, true, false), Vec::new()).unwrap();
        assert!(!shown.announced);
        assert_eq!(shown.release.announced_at, at("2026-12-08 16:00").and_utc());
        assert_eq!(shown.release.highest_severity, None);
    }

    #[test]
    fn the_managers_preview_says_what_the_pre_announcement_will_and_no_more() {
        let preview = as_announced(SITE, &release(false, false, false), advisories());
        assert!(preview.advisories.is_empty());
        assert_eq!(preview.published_at, None);
        assert_eq!(preview.issue_count, 2);
        assert_eq!(preview.announced_at, at("2026-11-24 16:00").and_utc());
    }
}
