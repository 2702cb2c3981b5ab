//! Times as people read them on a list that does not run in UTC: the release date does not
//! shift in the announcement, the mail or the command line; the short-notice note is exact
//! across daylight-saving changes, lead times and either order of the two times of day; and
//! the home page says which Patch Tuesdays carry a security release.

use chrono::{DateTime, NaiveDate, Utc};

use crate::helpers::{Backend, Browser};
use crate::on_both_backends;
use crate::releases::{
    add_member, add_patch, approve, distribute, find, planned_on, setup_with, utc, Setup,
    PROJECT_PATCH,
};

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// Page text with every run of white space made one space, as a reader sees it.
fn squash(html: &str) -> String {
    html.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// A list's timing settings and a Patch Tuesday whose lead window is worth testing.
struct Case {
    zone: &'static str,
    lead_days: &'static str,
    disclosure_time: &'static str,
    release_time: &'static str,
    patch_tuesday: &'static str,
    /// The release moment as the mail must state it.
    release_text: &'static str,
    /// The real notice of a mailing sent at its planned moment.
    notice: &'static str,
}

const CASES: &[Case] = &[
    // A week's lead, releasing at 09:00 and disclosing at 16:00: on time is 6 days 17 hours.
    Case {
        zone: "America/Los_Angeles",
        lead_days: "7",
        disclosure_time: "16:00",
        release_time: "09:00",
        patch_tuesday: "2027-01-12",
        release_text: "2027-01-12 09:00 PST (2027-01-12 17:00 UTC)",
        notice: "6 days and 17 hours",
    },
    // Berlin's clocks go back on 31 October 2027, inside the fortnight before 9 November.
    Case {
        zone: "Europe/Berlin",
        lead_days: "14",
        disclosure_time: "09:00",
        release_time: "18:00",
        patch_tuesday: "2027-11-09",
        release_text: "2027-11-09 18:00 CET (2027-11-09 17:00 UTC)",
        notice: "14 days and 10 hours",
    },
    // Auckland's go back on 4 April 2027; the release time of day is before the disclosure's.
    Case {
        zone: "Pacific/Auckland",
        lead_days: "14",
        disclosure_time: "16:00",
        release_time: "09:00",
        patch_tuesday: "2027-04-13",
        release_text: "2027-04-13 09:00 NZST (2027-04-12 21:00 UTC)",
        notice: "13 days and 18 hours",
    },
    // Los Angeles goes forward on 12 March 2028, inside the window before 14 March (a leap
    // year: the window opens on 29 February).
    Case {
        zone: "America/Los_Angeles",
        lead_days: "14",
        disclosure_time: "16:00",
        release_time: "16:00",
        patch_tuesday: "2028-03-14",
        release_text: "2028-03-14 16:00 PDT (2028-03-14 23:00 UTC)",
        notice: "13 days and 23 hours",
    },
];

async fn setup_for(backend: Backend, case: &Case) -> Option<Setup> {
    setup_with(
        backend,
        &[
            ("EDL_TIMEZONE", case.zone),
            ("EDL_LEAD_DAYS", case.lead_days),
            ("EDL_DISCLOSURE_TIME", case.disclosure_time),
            ("EDL_RELEASE_TIME", case.release_time),
        ],
    )
    .await
}

/// Plans, fills and approves a release on `patch_tuesday`; returns its id.
async fn approved_release(s: &Setup, patch_tuesday: &str, title: &str) -> i64 {
    let id = planned_on(s, Some(day(patch_tuesday)), title, Utc::now()).await;
    add_patch(s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    approve(s, id, &s.approver).await.expect("approved");
    id
}

on_both_backends!(an_on_time_mailing_states_its_real_notice_and_no_short_notice_note);

async fn an_on_time_mailing_states_its_real_notice_and_no_short_notice_note(backend: Backend) {
    for case in CASES {
        let Some(s) = setup_for(backend, case).await else {
            return;
        };
        add_member(&s.app, "alpha.example", "active", 1).await;
        let id = approved_release(&s, case.patch_tuesday, "Security release 1.9.6").await;
        let planned = utc(find(&s, id)
            .await
            .disclosure_at
            .expect("a disclosure moment"));
        assert_eq!(distribute(&s, planned).await.mailed, 1, "{}", case.zone);
        let mail = s
            .smtp
            .wait_for("security@alpha.example", "[EMBARGOED]")
            .await;
        let text = mail.text();
        assert!(
            text.contains(&format!("You have {} of notice.", case.notice)),
            "{} {}: {text}",
            case.zone,
            case.patch_tuesday
        );
        assert!(
            !text.contains("less than the usual lead time"),
            "{} {}: an on-time mailing carries the short-notice note: {text}",
            case.zone,
            case.patch_tuesday
        );
        assert!(
            text.contains(case.release_text),
            "{} {}: the release moment is not stated as {:?}: {text}",
            case.zone,
            case.patch_tuesday,
            case.release_text
        );
        s.app.outbox_idle().await;
    }
}

on_both_backends!(a_late_mailing_says_so_with_the_notice_left);

async fn a_late_mailing_says_so_with_the_notice_left(backend: Backend) {
    let case = &CASES[0];
    let Some(s) = setup_for(backend, case).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = approved_release(&s, "2027-02-09", "Security release 1.9.7").await;
    let planned = utc(find(&s, id)
        .await
        .disclosure_at
        .expect("a disclosure moment"));
    // Three hours after the planned moment (a server that was down): 6 days 14 hours are left.
    let late = planned + chrono::Duration::hours(3);
    assert_eq!(distribute(&s, late).await.mailed, 1);
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert!(
        mail.text()
            .contains("6 days and 14 hours of notice, less than the usual lead time"),
        "{}",
        mail.text()
    );
    s.app.outbox_idle().await;
}

on_both_backends!(the_home_page_says_which_patch_tuesdays_carry_a_release);

async fn the_home_page_says_which_patch_tuesdays_carry_a_release(backend: Backend) {
    let Some(s) = setup_with(backend, &[("EDL_TIMEZONE", "America/Los_Angeles")]).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    // Wednesday 27 January 2027, noon in Los Angeles: February's early-disclosure moment
    // (26 January, 16:00 PST) has passed and nothing was pre-announced.
    s.app.move_to(instant("2027-01-27T20:00:00Z"));
    let browser = Browser::open(&s.app).await;
    let home = squash(&browser.get("/").await.text().await.expect("home page"));
    assert!(
        home.contains("There is no scheduled security release on the coming Patch Tuesday, <time datetime=\"2027-02-10T00:00:00Z\">Tuesday 9 February 2027</time>"),
        "{home}"
    );
    // The next Patch Tuesday that may still carry one is March's, at 16:00 PST, which is
    // already Wednesday in UTC.
    assert!(
        home.contains(
            "<time datetime=\"2027-03-10T00:00:00Z\">2027-03-09 16:00 PST (2027-03-10 00:00 UTC)</time>"
        ),
        "{home}"
    );
    assert!(!home.contains("Pre-announced security release"), "{home}");

    // March's release is planned, approved and pre-announced at its early-disclosure moment.
    let id = approved_release(&s, "2027-03-09", "Security release 1.9.8").await;
    let disclosure = utc(find(&s, id).await.disclosure_at.expect("disclosure"));
    assert_eq!(disclosure, instant("2027-02-24T00:00:00Z")); // 23 February, 16:00 PST
    s.app.move_to(disclosure + chrono::Duration::minutes(5));
    let tick = distribute(&s, disclosure + chrono::Duration::minutes(5)).await;
    assert_eq!((tick.mailed, tick.announced), (1, 1));
    let home = squash(&browser.get("/").await.text().await.expect("home page"));
    let announced = home
        .split("Pre-announced security release")
        .nth(1)
        .expect("the pre-announced release comes first");
    assert!(announced.contains("Security release 1.9.8"), "{home}");
    assert!(
        announced.contains("2027-03-09 16:00 PST (2027-03-10 00:00 UTC)"),
        "{home}"
    );
    assert!(
        home.find("Pre-announced security release") < home.find("Coming Patch Tuesdays"),
        "pre-announced releases are shown first"
    );
    // March carries a release, so no month is said to have none; April is the next open one,
    // now in summer time.
    assert!(
        !home.contains("There is no scheduled security release"),
        "{home}"
    );
    assert!(
        home.contains("2027-04-13 16:00 PDT (2027-04-13 23:00 UTC)"),
        "{home}"
    );

    // The ready-to-paste announcement, the public page and the command line keep the local day.
    let page = squash(
        &browser
            .get(&format!("/releases/{id}"))
            .await
            .text()
            .await
            .expect("release page"),
    );
    assert!(
        page.contains("planned for Tuesday 9 March 2027"),
        "the announcement heading shifted a day: {page}"
    );
    assert!(
        page.contains("on Tuesday 9 March 2027 at 16:00 PST (2027-03-10 00:00 UTC)"),
        "{page}"
    );
    let list = s.app.edl_with(
        &[("EDL_TIMEZONE", "America/Los_Angeles")],
        &["release", "list"],
        "",
    );
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{out}");
    assert!(
        out.contains("2027-03-09 16:00 PST (2027-03-10 00:00 UTC)"),
        "{out}"
    );
    s.app.outbox_idle().await;
}
