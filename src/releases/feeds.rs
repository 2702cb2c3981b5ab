//! The public channels for security releases: the Atom feed, the ICS calendar of announced
//! releases, and ready-to-paste text for the discussion board and chat. Everything here renders
//! only what the public may know; advisories appear only once a release is published, and so
//! do the feed's links to their OSV and CSAF documents.

use std::cmp::Reverse;

use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Person, Text, WriteConfig};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, Component, Event, EventLike, EventStatus, Property};

use crate::releases::advisory_formats;
use crate::releases::calendar::Moment;

pub use crate::releases::visibility::{PublicAdvisory, PublicRelease};
use crate::releases::wording;

pub struct FeedInfo {
    pub title: String,
    /// No trailing slash.
    pub site_url: String,
    pub feed_url: String,
    pub updated: DateTime<Utc>,
    /// The list's zone: dates and times in entries are shown in it, with UTC beside them.
    pub timezone: Tz,
}

/// The advisories the public may see: none until the release is published, whatever the caller
/// passed, because a leaked advisory before the release time breaks the embargo for everyone.
fn published_advisories(release: &PublicRelease) -> Option<(DateTime<Utc>, &[PublicAdvisory])> {
    release
        .published_at
        .map(|at| (at, release.advisories.as_slice()))
}

fn issues(count: usize) -> String {
    if count == 1 {
        "1 issue".to_owned()
    } else {
        format!("{count} issues")
    }
}

/// The local weekday, date and time with UTC beside them.
fn when(at: DateTime<Utc>, tz: Tz) -> String {
    Moment::new(at, tz).day_and_time()
}

/// The local date alone, for headings.
fn day(at: DateTime<Utc>, tz: Tz) -> String {
    Moment::new(at, tz).local_day()
}

/// Line breaks inside a field would break list items and one-line summaries apart.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pre-announcement facts as one sentence group: date, time, issues, severity, lines. The
/// kind is left out on purpose: "third-party" would tell the world an upstream has an embargo.
fn announcement_facts(release: &PublicRelease, tz: Tz) -> String {
    let mut s = format!(
        "A security release is planned for {}. It fixes {}",
        when(release.release_at, tz),
        issues(release.issue_count)
    );
    match &release.highest_severity {
        Some(severity) => s.push_str(&format!(
            "; the highest severity is {}.",
            one_line(severity.as_str())
        )),
        None => s.push('.'),
    }
    if !release.release_lines.is_empty() {
        s.push_str(&format!(
            " It is for {}.",
            one_line(&wording::lines_phrase(&release.release_lines))
        ));
    }
    s
}

/// Said after the facts while the release is announced only; stale once it is published.
const DETAILS_LATER: &str = " Details will be published at the release time.";

fn advisory_line(advisory: &PublicAdvisory) -> String {
    format!(
        "{} ({}): {} Fixed in: {}",
        one_line(&advisory.cve_id),
        one_line(advisory.severity.as_str()),
        one_line(&advisory.summary),
        one_line(&advisory.fixed_versions)
    )
}

// ---------------------------------------------------------------------------------------------
// Atom

/// Drops the characters XML 1.0 forbids outright, which the writer would pass through and which
/// would make every subscriber's reader reject the whole feed. Escaping is the writer's job.
fn xml_chars(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// Whole seconds: the crate prints whatever precision the time has, and subscribers need none.
fn atom_time(at: DateTime<Utc>) -> FixedDateTime {
    at.trunc_subsecs(0).fixed_offset()
}

fn link(href: &str, rel: &str) -> Link {
    Link {
        href: xml_chars(href),
        rel: rel.to_owned(),
        ..Link::default()
    }
}

/// A link to one of the release's machine-readable documents (JSON), named for readers that
/// show link titles.
fn document_link(href: &str, rel: &str, title: &str) -> Link {
    Link {
        mime_type: Some("application/json".to_owned()),
        title: Some(title.to_owned()),
        ..link(href, rel)
    }
}

struct Item {
    updated: DateTime<Utc>,
    /// At equal times (a 0-day is announced and published at once) the publication is newer.
    published: bool,
    release_id: i64,
    entry: Entry,
}

fn announcement_entry(release: &PublicRelease, tz: Tz) -> Item {
    let title = format!(
        "Security release planned: {} on {}",
        one_line(&release.title),
        day(release.release_at, tz)
    );
    let summary = format!("{}{DETAILS_LATER}", announcement_facts(release, tz));
    Item {
        updated: release.announced_at,
        published: false,
        release_id: release.id,
        entry: Entry {
            id: xml_chars(&format!("{}#announced", release.url)),
            title: Text::plain(xml_chars(&title)),
            updated: atom_time(release.announced_at),
            links: vec![link(&release.url, "alternate")],
            summary: Some(Text::plain(xml_chars(&summary))),
            ..Entry::default()
        },
    }
}

fn publication_entry(
    release: &PublicRelease,
    published_at: DateTime<Utc>,
    advisories: &[PublicAdvisory],
    tz: Tz,
) -> Item {
    let title = format!("Security release published: {}", one_line(&release.title));
    let mut content = format!(
        "{} was published on {}.\n",
        one_line(&release.title),
        when(published_at, tz)
    );
    if advisories.is_empty() {
        content.push_str("\nNo advisories are listed; see the release page.\n");
    } else {
        content.push_str("\nAdvisories:\n");
        for advisory in advisories {
            content.push_str(&format!("- {}\n", advisory_line(advisory)));
        }
    }
    content.push_str(&format!("\nRelease page: {}", one_line(&release.url)));
    Item {
        updated: published_at,
        published: true,
        release_id: release.id,
        entry: Entry {
            id: xml_chars(&format!("{}#published", release.url)),
            title: Text::plain(xml_chars(&title)),
            updated: atom_time(published_at),
            // The CSAF document is this entry again, as data; the OSV documents describe its
            // advisories one by one, so they are related rather than a second alternate of the
            // same type (RFC 4287 allows one per type).
            links: vec![
                link(&release.url, "alternate"),
                document_link(
                    &advisory_formats::csaf_url(release),
                    "alternate",
                    "CSAF 2.0 security advisory",
                ),
                document_link(
                    &advisory_formats::osv_url(release),
                    "related",
                    "OSV advisories",
                ),
            ],
            content: Some(Content {
                value: Some(xml_chars(&content)),
                content_type: Some("text".to_owned()),
                ..Content::default()
            }),
            ..Entry::default()
        },
    }
}

/// An Atom 1.0 feed (RFC 4287): one entry per pre-announcement and one per publication.
pub fn atom(info: &FeedInfo, releases: &[PublicRelease]) -> String {
    let mut items = Vec::with_capacity(releases.len() * 2);
    for release in releases {
        items.push(announcement_entry(release, info.timezone));
        if let Some((published_at, advisories)) = published_advisories(release) {
            items.push(publication_entry(
                release,
                published_at,
                advisories,
                info.timezone,
            ));
        }
    }
    items.sort_by_key(|e| {
        (
            Reverse(e.updated),
            Reverse(e.published),
            Reverse(e.release_id),
        )
    });

    let title = xml_chars(&info.title);
    let feed = Feed {
        id: xml_chars(&info.feed_url),
        title: Text::plain(title.clone()),
        updated: atom_time(info.updated),
        links: vec![
            link(&info.feed_url, "self"),
            link(&info.site_url, "alternate"),
        ],
        // Entries name no author of their own, so RFC 4287 requires one on the feed.
        authors: vec![Person {
            name: title,
            ..Person::default()
        }],
        entries: items.into_iter().map(|item| item.entry).collect(),
        ..Feed::default()
    };
    let config = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    // Writing into a Vec cannot fail, and the writer emits only the UTF-8 it was given.
    let bytes = feed
        .write_with_config(Vec::new(), config)
        .unwrap_or_default();
    let mut out = String::from_utf8(bytes).unwrap_or_default();
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// iCalendar

/// Control characters other than tab are not allowed in a content line, and the crate passes
/// them through; a stray CR would end the line early in some clients, so they are dropped. A
/// line feed stays: the crate escapes it as TEXT requires.
fn ics_text(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n') || !c.is_control())
        .collect()
}

/// URI values are not TEXT and take no escapes; only line-breaking characters go.
fn ics_uri(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Folds one content line so no physical line exceeds 75 octets (RFC 5545 §3.1). The fold is
/// placed between characters, never inside a multi-octet UTF-8 sequence.
fn push_line(out: &mut String, line: &str) {
    const LIMIT: usize = 75;
    let mut width = 0;
    for ch in line.chars() {
        let len = ch.len_utf8();
        if width + len > LIMIT {
            out.push_str("\r\n ");
            // The leading space of a continuation line counts towards its 75 octets.
            width = 1;
        }
        out.push(ch);
        width += len;
    }
    out.push_str("\r\n");
}

/// The crate folds too, but a content line whose last piece is exactly 75 octets long comes out
/// as a 76-octet continuation line (its loop stops while 75 octets remain and then prefixes
/// the space). Its folds are undone and every line is folded again here. Unfolding is exact:
/// every content line starts with a property name, and no value holds a raw line break.
fn refold(calendar: &str) -> String {
    let unfolded = calendar.replace("\r\n ", "");
    let mut out = String::with_capacity(calendar.len());
    for line in unfolded.split_terminator("\r\n") {
        push_line(&mut out, line);
    }
    out
}

/// The host for UIDs, so they stay unique across installations; an unparsable site URL (which
/// configuration should have refused) still yields something stable.
fn uid_host(site_url: &str) -> String {
    url::Url::parse(site_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| ics_uri(site_url))
}

/// An iCalendar (RFC 5545) calendar with one all-day-free, timed VEVENT per release at its
/// release time (UTC), 1 hour long.
pub fn ics(
    prodid_name: &str,
    site_url: &str,
    releases: &[PublicRelease],
    now: DateTime<Utc>,
    tz: Tz,
) -> String {
    let host = uid_host(site_url);
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(Property::new(
            "PRODID",
            format!("-//{}//EN", ics_text(prodid_name)),
        ))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .append_property(Property::new(
            "X-WR-CALNAME",
            ics_text(&format!("{prodid_name} security releases")),
        ));
    for release in releases {
        // Only the pre-announcement facts: the calendar is a schedule, and the release page
        // (URL) carries the advisories once they are public.
        let status = if release.published_at.is_some() {
            " Published. The advisories are on the release page."
        } else {
            DETAILS_LATER
        };
        let description = format!(
            "{}\n{}{status}\n{}",
            one_line(&release.title),
            announcement_facts(release, tz),
            one_line(&release.url)
        );
        calendar.push(
            Event::new()
                .uid(&ics_text(&format!("release-{}@{}", release.id, host)))
                // Set explicitly, or the crate stamps the wall-clock time instead of `now`.
                .timestamp(now)
                .starts(release.release_at)
                .ends(release.release_at + TimeDelta::hours(1))
                .summary(&ics_text(&one_line(&release.title)))
                .description(&ics_text(&description))
                .url(&ics_uri(&release.url))
                // Every public release has been pre-announced, and policy says only announced
                // releases are shown as confirmed.
                .status(EventStatus::Confirmed)
                .done(),
        );
    }
    refold(&calendar.to_string())
}

// ---------------------------------------------------------------------------------------------
// Text for the discussion board and chat

/// Ready-to-paste pre-announcement text for the discussion board and chat (plain text/Markdown),
/// with no details beyond date, time (in the list's zone and UTC), number of issues, highest severity and release lines.
/// The release title and any advisories are deliberately not used, so a careless title or an
/// advisory passed too early cannot leak through this channel.
pub fn announcement_text(release: &PublicRelease, project_name: &str, tz: Tz) -> String {
    let project = one_line(project_name);
    let mut out = format!(
        "**{project} security release planned for {}**\n\n\
         The {project} project will publish a security release on {}.\n\n",
        day(release.release_at, tz),
        when(release.release_at, tz),
    );
    out.push_str(&format!(
        "- Number of issues: {}\n",
        issues(release.issue_count)
    ));
    if let Some(severity) = &release.highest_severity {
        out.push_str(&format!(
            "- Highest severity: {}\n",
            one_line(severity.as_str())
        ));
    }
    if !release.release_lines.is_empty() {
        out.push_str(&format!(
            "- For {}\n",
            one_line(&wording::lines_phrase(&release.release_lines))
        ));
    }
    out.push_str(&format!(
        "\nDetails and fixed versions will be published at the release time on {}\n",
        one_line(&release.url)
    ));
    out
}

/// Ready-to-paste publication text listing the advisories (CVE, severity, summary, fixed
/// versions) and the release page URL. For a release not yet published this returns the
/// pre-announcement text instead: advisories must not go out before the release time.
pub fn publication_text(release: &PublicRelease, project_name: &str, tz: Tz) -> String {
    let Some((published_at, advisories)) = published_advisories(release) else {
        return announcement_text(release, project_name, tz);
    };
    let project = one_line(project_name);
    let title = one_line(&release.title);
    // "Security release 1.9.6" needs no "security release" in front of it.
    let heading = if wording::is_a_release_name(&title) {
        format!("{project}: {title} published")
    } else {
        format!("{project} security release published: {title}")
    };
    let mut out = format!(
        "**{heading}**\n\n\
         Published on {}. It fixes {}.\n\n",
        when(published_at, tz),
        issues(release.issue_count),
    );
    if advisories.is_empty() {
        out.push_str("No advisories are listed; see the release page.\n");
    } else {
        for advisory in advisories {
            out.push_str(&format!(
                "- **{}** ({}): {} Fixed in: {}\n",
                one_line(&advisory.cve_id),
                one_line(advisory.severity.as_str()),
                one_line(&advisory.summary),
                one_line(&advisory.fixed_versions)
            ));
        }
    }
    out.push_str(&format!("\nRelease page: {}\n", one_line(&release.url)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn advisories() -> Vec<PublicAdvisory> {
        vec![
            PublicAdvisory {
                cve_id: "CVE-2026-1111".into(),
                severity: Severity::High,
                cvss_vector: None,
                summary: "Header smuggling in the HTTP/2 codec.".into(),
                affected_versions: "< 1.9.5".into(),
                fixed_versions: "1.9.5, 1.8.6".into(),
            },
            PublicAdvisory {
                cve_id: "CVE-2026-2222".into(),
                severity: Severity::Medium,
                cvss_vector: None,
                summary: "Authorization bypass via path normalisation.".into(),
                affected_versions: "< 1.9.5".into(),
                fixed_versions: "1.9.5".into(),
            },
        ]
    }

    /// Announced only; `advisories` is what a buggy caller might (wrongly) pass.
    fn announced(advisories: Vec<PublicAdvisory>) -> PublicRelease {
        PublicRelease {
            id: 7,
            title: "Security release 1.9.5, 1.8.6".into(),
            release_at: at(2026, 12, 8, 16, 0),
            announced_at: at(2026, 11, 24, 16, 0),
            published_at: None,
            release_lines: vec!["1.9".into(), "1.8".into()],
            issue_count: 2,
            highest_severity: Some(Severity::High),
            advisories,
            url: "https://security.example.org/releases/7".into(),
        }
    }

    fn published() -> PublicRelease {
        PublicRelease {
            published_at: Some(at(2026, 12, 8, 16, 0)),
            advisories: advisories(),
            ..announced(Vec::new())
        }
    }

    fn info() -> FeedInfo {
        FeedInfo {
            title: "Example security releases".into(),
            site_url: "https://security.example.org".into(),
            feed_url: "https://security.example.org/releases.atom".into(),
            updated: at(2026, 12, 8, 16, 0),
            timezone: chrono_tz::UTC,
        }
    }

    /// A small well-formedness check for what `atom` emits: balanced tags, quoted attributes,
    /// a single root, and every `&` starting one of the five predefined entities.
    fn assert_well_formed(xml: &str) {
        fn check_amps(s: &str) {
            for (i, _) in s.match_indices('&') {
                let rest = &s[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| rest.starts_with(e)),
                    "bare & at {:?}",
                    &rest[..rest.len().min(20)]
                );
            }
        }
        let body = xml
            .strip_prefix("<?xml version=\"1.0\"?>\n")
            .expect("XML declaration first");
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray > in text {text:?}");
            check_amps(text);
            if stack.is_empty() {
                assert!(text.trim().is_empty(), "text outside the root: {text:?}");
            }
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "< inside tag {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else {
                let self_closing = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let name = tag.split_whitespace().next().expect("tag name");
                // Attributes: name="value" pairs, values free of < and with valid entities.
                let mut attrs = tag[name.len()..].trim();
                while !attrs.is_empty() {
                    let eq = attrs.find("=\"").expect("attribute with quoted value");
                    let end = attrs[eq + 2..].find('"').expect("closing quote") + eq + 2;
                    check_amps(&attrs[eq + 2..end]);
                    attrs = attrs[end + 1..].trim_start();
                }
                if stack.is_empty() {
                    roots += 1;
                }
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(rest.trim().is_empty(), "trailing text");
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(roots, 1, "exactly one root element");
    }

    fn entries(xml: &str) -> Vec<&str> {
        xml.split("<entry>").skip(1).collect()
    }

    /// The markup without the indentation between tags, for assertions about nesting.
    fn compact(xml: &str) -> String {
        xml.lines().map(str::trim_start).collect()
    }

    #[test]
    fn atom_feed_header_is_complete_and_well_formed() {
        let xml = atom(&info(), &[published()]);
        assert_well_formed(&xml);
        let header = compact(xml.split("<entry>").next().expect("header"));
        for expected in [
            "<feed xmlns=\"http://www.w3.org/2005/Atom\">",
            "<id>https://security.example.org/releases.atom</id>",
            "<title>Example security releases</title>",
            "<updated>2026-12-08T16:00:00+00:00</updated>",
            "<link href=\"https://security.example.org/releases.atom\" rel=\"self\"/>",
            "<link href=\"https://security.example.org\" rel=\"alternate\"/>",
            "<author><name>Example security releases</name></author>",
        ] {
            assert!(header.contains(expected), "missing {expected} in\n{xml}");
        }
    }

    #[test]
    fn atom_times_are_whole_seconds() {
        let release = PublicRelease {
            announced_at: at(2026, 11, 24, 16, 0) + TimeDelta::microseconds(123_456),
            ..announced(Vec::new())
        };
        let feed = FeedInfo {
            updated: at(2026, 12, 8, 16, 0) + TimeDelta::milliseconds(999),
            ..info()
        };
        let xml = atom(&feed, &[release]);
        assert!(xml.contains("<updated>2026-11-24T16:00:00+00:00</updated>"));
        assert!(xml.contains("<updated>2026-12-08T16:00:00+00:00</updated>"));
    }

    #[test]
    fn announced_release_has_one_entry_without_advisory_text() {
        // Even when advisories are (wrongly) passed for an unpublished release.
        let xml = atom(&info(), &[announced(advisories())]);
        assert_well_formed(&xml);
        let entries = entries(&xml);
        assert_eq!(entries.len(), 1);
        let entry = entries[0];
        assert!(entry.contains("<id>https://security.example.org/releases/7#announced</id>"));
        assert!(entry.contains(
            "<title>Security release planned: Security release 1.9.5, 1.8.6 on Tuesday 8 December 2026</title>"
        ));
        assert!(entry.contains("<updated>2026-11-24T16:00:00+00:00</updated>"));
        let summary = entry
            .split("<summary>")
            .nth(1)
            .and_then(|s| s.split("</summary>").next())
            .expect("summary");
        for expected in [
            "Tuesday 8 December 2026",
            "16:00 UTC",
            "2 issues",
            "high",
            "It is for release lines 1.8 and 1.9.",
        ] {
            assert!(summary.contains(expected), "{expected} missing: {summary}");
        }
        for advisory in advisories() {
            assert!(!xml.contains(&advisory.cve_id));
            assert!(!xml.contains(&advisory.summary));
        }
        assert!(!xml.contains("CVE-"));
    }

    #[test]
    fn published_release_has_two_entries_newest_first() {
        let xml = atom(&info(), &[published()]);
        assert_well_formed(&xml);
        let entries = entries(&xml);
        assert_eq!(entries.len(), 2);
        assert!(entries[0].contains("<id>https://security.example.org/releases/7#published</id>"));
        assert!(entries[0].contains("<updated>2026-12-08T16:00:00+00:00</updated>"));
        assert!(entries[0]
            .contains("<title>Security release published: Security release 1.9.5, 1.8.6</title>"));
        assert!(entries[0].contains("<content type=\"text\">"));
        assert!(entries[0].contains("CVE-2026-1111 (high): Header smuggling"));
        assert!(entries[0].contains("Fixed in: 1.9.5, 1.8.6"));
        assert!(entries[0].contains("CVE-2026-2222 (medium)"));
        assert!(entries[1].contains("#announced</id>"));
        assert!(!entries[1].contains("CVE-"));
        assert!(entries[0].contains(
            "<link href=\"https://security.example.org/releases/7/csaf.json\" rel=\"alternate\" type=\"application/json\" title=\"CSAF 2.0 security advisory\"/>"
        ), "{}", entries[0]);
        assert!(entries[0].contains(
            "<link href=\"https://security.example.org/releases/7/osv.json\" rel=\"related\" type=\"application/json\" title=\"OSV advisories\"/>"
        ));
        assert!(
            !entries[1].contains(".json"),
            "no document is linked before publication"
        );
    }

    #[test]
    fn entries_of_several_releases_interleave_by_time() {
        let older = PublicRelease {
            id: 6,
            url: "https://security.example.org/releases/6".into(),
            announced_at: at(2026, 10, 27, 16, 0),
            release_at: at(2026, 11, 10, 16, 0),
            published_at: Some(at(2026, 11, 10, 16, 0)),
            advisories: advisories(),
            ..announced(Vec::new())
        };
        // A 0-day: announced and published at the same instant.
        let zero_day = PublicRelease {
            id: 8,
            url: "https://security.example.org/releases/8".into(),
            announced_at: at(2026, 12, 1, 9, 0),
            release_at: at(2026, 12, 1, 9, 0),
            published_at: Some(at(2026, 12, 1, 9, 0)),
            ..announced(Vec::new())
        };
        let xml = atom(&info(), &[older, announced(Vec::new()), zero_day]);
        assert_well_formed(&xml);
        let ids: Vec<&str> = entries(&xml)
            .iter()
            .map(|e| {
                let start = e.find("/releases/").expect("id") + "/releases/".len();
                &e[start..e.find("</id>").expect("id end")]
            })
            .collect();
        assert_eq!(
            ids,
            [
                "8#published",
                "8#announced",
                "7#announced",
                "6#published",
                "6#announced"
            ]
        );
    }

    #[test]
    fn atom_escapes_markup_in_text_and_attributes() {
        let release = PublicRelease {
            title: "<script>alert('x')</script> & \"more\"".into(),
            url: "https://security.example.org/releases/7?a=1&b=2".into(),
            ..published()
        };
        let feed = FeedInfo {
            title: "Tom & Jerry's <releases>".into(),
            ..info()
        };
        let xml = atom(&feed, &[release]);
        assert_well_formed(&xml);
        assert!(!xml.contains("<script>"));
        assert!(xml
            .contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(xml.contains("href=\"https://security.example.org/releases/7?a=1&amp;b=2\""));
        assert!(xml.contains("<title>Tom &amp; Jerry&apos;s &lt;releases&gt;</title>"));
    }

    #[test]
    fn atom_drops_characters_xml_forbids() {
        let release = PublicRelease {
            title: "bad\u{0}\u{1b}title".into(),
            ..announced(Vec::new())
        };
        let xml = atom(&info(), &[release]);
        assert!(xml.contains("badtitle"));
        assert!(!xml
            .chars()
            .any(|c| c < ' ' && !matches!(c, '\t' | '\n' | '\r')));
    }

    fn assert_ics_lines(ics: &str) {
        assert!(ics.ends_with("\r\n"));
        for (i, b) in ics.bytes().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && ics.as_bytes()[i - 1] == b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(ics.as_bytes().get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
    }

    /// Undoes folding the way a client does: a CRLF followed by one space disappears.
    fn unfold(ics: &str) -> String {
        ics.replace("\r\n ", "")
    }

    #[test]
    fn ics_has_calendar_and_event_properties() {
        let cal = ics(
            "Example EDL",
            "https://security.example.org",
            &[announced(Vec::new())],
            at(2026, 11, 30, 12, 34),
            chrono_tz::UTC,
        );
        assert_ics_lines(&cal);
        let cal = unfold(&cal);
        for expected in [
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
            "PRODID:-//Example EDL//EN\r\n",
            "CALSCALE:GREGORIAN\r\n",
            "METHOD:PUBLISH\r\n",
            "X-WR-CALNAME:Example EDL security releases\r\n",
            "BEGIN:VEVENT\r\n",
            "UID:release-7@security.example.org\r\n",
            "DTSTAMP:20261130T123400Z\r\n",
            "DTSTART:20261208T160000Z\r\n",
            "DTEND:20261208T170000Z\r\n",
            "SUMMARY:Security release 1.9.5\\, 1.8.6\r\n",
            "URL:https://security.example.org/releases/7\r\n",
            "STATUS:CONFIRMED\r\n",
            "END:VEVENT\r\nEND:VCALENDAR\r\n",
        ] {
            assert!(cal.contains(expected), "missing {expected:?} in\n{cal}");
        }
        assert!(cal.contains("DESCRIPTION:Security release 1.9.5\\, 1.8.6\\nA security release"));
        assert!(cal.contains("2 issues\\; the highest severity is high."));
        assert!(cal.contains("It is for release lines 1.8 and 1.9."));
    }

    #[test]
    fn ics_never_shows_advisories_and_uses_host_with_port_stripped() {
        let cal = ics(
            "Example EDL",
            "http://localhost:8080",
            &[published(), announced(advisories())],
            at(2026, 12, 8, 17, 0),
            chrono_tz::UTC,
        );
        assert_ics_lines(&cal);
        assert!(!cal.contains("CVE-"));
        assert!(cal.contains("UID:release-7@localhost\r\n"));
        assert_eq!(cal.matches("BEGIN:VEVENT").count(), 2);
        let cal = unfold(&cal);
        assert!(cal.contains("Published. The advisories are on the release page."));
        assert!(cal.contains("Details will be published at the release time."));
    }

    #[test]
    fn ics_folds_long_multibyte_lines_between_characters() {
        let release = PublicRelease {
            title: "Sécurité — release; with, punctuation \\ and é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é— to force folding"
                .into(),
            ..announced(Vec::new())
        };
        let cal = ics(
            "Example EDL",
            "https://security.example.org",
            std::slice::from_ref(&release),
            at(2026, 11, 30, 0, 0),
            chrono_tz::UTC,
        );
        assert_ics_lines(&cal);
        // Each physical line is valid UTF-8 on its own, so no character was split.
        for line in cal.as_bytes().split(|&b| b == b'\n') {
            assert!(
                std::str::from_utf8(line).is_ok(),
                "split character in {line:?}"
            );
        }
        let description_lines = cal
            .split("\r\n")
            .skip_while(|l| !l.starts_with("DESCRIPTION:"))
            .take_while(|l| l.starts_with("DESCRIPTION:") || l.starts_with(' '))
            .count();
        assert!(description_lines > 2, "expected a folded DESCRIPTION");
        let unfolded = unfold(&cal);
        let expected_title = "Sécurité — release\\; with\\, punctuation \\\\ and é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é— to force folding";
        assert!(unfolded.contains(&format!("SUMMARY:{expected_title}\r\n")));
        assert!(unfolded.contains(&format!("DESCRIPTION:{expected_title}\\n")));
    }

    #[test]
    fn push_line_fills_lines_to_exactly_75_octets() {
        let mut out = String::new();
        push_line(&mut out, &"a".repeat(200));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [75, 75, 52]
        );
        assert!(lines[1].starts_with(' ') && lines[2].starts_with(' '));
    }

    #[test]
    fn ics_drops_control_characters() {
        let release = PublicRelease {
            title: "bad\u{0}\u{1b}\u{7f}title".into(),
            url: "https://security.example.org/releases/7\u{1b}".into(),
            ..announced(Vec::new())
        };
        let cal = ics(
            "Example\u{0} EDL",
            "https://security.example.org",
            &[release],
            at(2026, 11, 30, 0, 0),
            chrono_tz::UTC,
        );
        assert_ics_lines(&cal);
        let cal = unfold(&cal);
        assert!(cal.contains("SUMMARY:badtitle\r\n"));
        assert!(cal.contains("URL:https://security.example.org/releases/7\r\n"));
        assert!(cal.contains("PRODID:-//Example EDL//EN\r\n"));
        assert!(!cal
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\r' | '\n')));
    }

    /// A content line whose last piece is exactly 75 octets is where the crate's own folding
    /// overruns; every length around it must still fold to at most 75 octets per line.
    #[test]
    fn ics_lines_of_every_length_fold_within_75_octets() {
        for len in 60..=240 {
            let release = PublicRelease {
                title: "x".repeat(len - "SUMMARY:".len()),
                ..announced(Vec::new())
            };
            let cal = ics(
                "Example EDL",
                "https://security.example.org",
                std::slice::from_ref(&release),
                at(2026, 11, 30, 0, 0),
                chrono_tz::UTC,
            );
            assert_ics_lines(&cal);
            assert!(unfold(&cal).contains(&format!("\r\nSUMMARY:{}\r\n", release.title)));
        }
    }

    #[test]
    fn announcement_text_states_the_facts_and_nothing_more() {
        let text = announcement_text(&announced(advisories()), "Example", chrono_tz::UTC);
        for expected in [
            "Tuesday 8 December 2026",
            "16:00 UTC",
            "2 issues",
            "high",
            "- For release lines 1.8 and 1.9\n",
            "https://security.example.org/releases/7",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
        assert!(!text.contains("CVE-"));
        for advisory in advisories() {
            assert!(!text.contains(&advisory.summary));
        }
        assert!(!text.contains("1.9.5"), "no fixed versions before release");
    }

    #[test]
    fn announcement_text_omits_advisories_even_after_publication() {
        let text = announcement_text(&published(), "Example", chrono_tz::UTC);
        assert!(!text.contains("CVE-"));
        assert!(!text.contains("smuggling"));
    }

    #[test]
    fn publication_text_lists_advisories_and_release_page() {
        let text = publication_text(&published(), "Example", chrono_tz::UTC);
        for expected in [
            "CVE-2026-1111",
            "(high)",
            "Header smuggling in the HTTP/2 codec.",
            "Fixed in: 1.9.5, 1.8.6",
            "CVE-2026-2222",
            "(medium)",
            "Release page: https://security.example.org/releases/7",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
    }

    #[test]
    fn publication_text_before_publication_leaks_nothing() {
        let release = announced(advisories());
        let text = publication_text(&release, "Example", chrono_tz::UTC);
        assert!(!text.contains("CVE-"));
        assert_eq!(text, announcement_text(&release, "Example", chrono_tz::UTC));
    }

    #[test]
    fn the_announcement_keeps_the_local_day_of_a_zone_behind_utc() {
        // Patch Tuesday 8 December 2026 at 16:00 in Los Angeles is 00:00 UTC on Wednesday.
        let release = PublicRelease {
            release_at: at(2026, 12, 9, 0, 0),
            ..announced(Vec::new())
        };
        let la = chrono_tz::America::Los_Angeles;
        let text = announcement_text(&release, "Example", la);
        assert!(
            text.starts_with("**Example security release planned for Tuesday 8 December 2026**"),
            "{text}"
        );
        assert!(
            text.contains("on Tuesday 8 December 2026 at 16:00 PST (2026-12-09 00:00 UTC)."),
            "{text}"
        );
        let xml = atom(
            &FeedInfo {
                timezone: la,
                ..info()
            },
            std::slice::from_ref(&release),
        );
        assert!(xml.contains("on Tuesday 8 December 2026</title>"), "{xml}");
        let cal = unfold(&ics(
            "Example EDL",
            "https://security.example.org",
            &[release],
            at(2026, 11, 30, 0, 0),
            la,
        ));
        assert!(cal.contains("16:00 PST (2026-12-09 00:00 UTC)"), "{cal}");
        // In UTC the time is said once.
        let text = announcement_text(&announced(Vec::new()), "Example", chrono_tz::UTC);
        assert!(text.contains("at 16:00 UTC."), "{text}");
        assert!(!text.contains("(2026"), "{text}");
    }

    #[test]
    fn one_line_is_named_in_the_singular_and_its_version_is_not_announced() {
        let release = PublicRelease {
            release_lines: vec!["1.9.6".into()],
            ..announced(Vec::new())
        };
        let text = announcement_text(&release, "Example", chrono_tz::UTC);
        assert!(text.contains("- For release line 1.9\n"), "{text}");
        assert!(!text.contains("1.9.6") && !text.contains("lines"), "{text}");
        let cal = unfold(&ics(
            "Example EDL",
            "https://security.example.org",
            &[release],
            at(2026, 11, 30, 0, 0),
            chrono_tz::UTC,
        ));
        assert!(cal.contains("It is for release line 1.9."), "{cal}");
    }

    #[test]
    fn a_title_that_says_release_is_not_called_a_security_release_again() {
        let named = PublicRelease {
            title: "Security release 1.9.6".into(),
            ..published()
        };
        let text = publication_text(&named, "Example", chrono_tz::UTC);
        assert!(
            text.starts_with("**Example: Security release 1.9.6 published**\n"),
            "{text}"
        );
        let other = PublicRelease {
            title: "HTTP/2 header fixes".into(),
            ..published()
        };
        let text = publication_text(&other, "Example", chrono_tz::UTC);
        assert!(
            text.starts_with("**Example security release published: HTTP/2 header fixes**\n"),
            "{text}"
        );
    }

    #[test]
    fn singular_issue() {
        let release = PublicRelease {
            issue_count: 1,
            ..announced(Vec::new())
        };
        assert!(announcement_text(&release, "Example", chrono_tz::UTC).contains("1 issue\n"));
    }
}
