//! The Patch Tuesday calendar: the 2nd Tuesday of each month in the list's time zone, and the
//! early-disclosure mailing and public pre-announcement `lead_days` before it. Dates are
//! computed on the local calendar and times resolved in the zone, so a daylight-saving change
//! inside the lead window keeps the wall-clock times and shifts the UTC instants.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::Serialize;

/// The list's timing rules, from [`crate::config::Settings::calendar`].
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    pub timezone: Tz,
    pub lead_days: u32,
    pub disclosure_time: NaiveTime,
    pub release_time: NaiveTime,
}

/// One month's scheduled security release and the moments that lead up to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchTuesday {
    /// The local date of the release.
    pub patch_tuesday: NaiveDate,
    /// The local date of the early-disclosure mailing and the public pre-announcement.
    pub early_disclosure: NaiveDate,
    /// The release instant.
    pub release_at: DateTime<Utc>,
    /// The early-disclosure mailing and pre-announcement instant.
    pub early_disclosure_at: DateTime<Utc>,
    /// The zone the local dates and times are in.
    pub timezone: String,
    pub release_local: String,
    pub early_disclosure_local: String,
}

/// How long after its planned moment a mailing still counts as on time.
pub const LATE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The 2nd Tuesday of a month: the first Tuesday falls on day 1 to 7, so this is day 8 to 14.
pub fn second_tuesday(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Tue, 2)
}

/// A local wall-clock time as an instant. In a spring-forward gap the time does not exist, so
/// the first instant after the gap is used; in an autumn overlap the earlier instant is used, so
/// nothing is sent late.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps are at most a few hours in every zone's history; step forward a minute at a time.
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
            LocalResult::None => probe += chrono::Duration::minutes(1),
        }
    }
    // No zone has a day-long gap; treat the wall-clock time as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

impl Calendar {
    /// The Patch Tuesday of the given month, with its early-disclosure moment.
    pub fn month(&self, year: i32, month: u32) -> Option<PatchTuesday> {
        let patch_tuesday = second_tuesday(year, month)?;
        let early_disclosure =
            patch_tuesday.checked_sub_days(Days::new(u64::from(self.lead_days)))?;
        let release_at = resolve_local(self.timezone, patch_tuesday.and_time(self.release_time));
        let early_disclosure_at = resolve_local(
            self.timezone,
            early_disclosure.and_time(self.disclosure_time),
        );
        let local = |t: DateTime<Utc>| {
            t.with_timezone(&self.timezone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        Some(PatchTuesday {
            patch_tuesday,
            early_disclosure,
            release_local: local(release_at),
            early_disclosure_local: local(early_disclosure_at),
            release_at,
            early_disclosure_at,
            timezone: self.timezone.name().to_owned(),
        })
    }

    /// The usual early-disclosure moment for a release at `release_at`: on a Patch Tuesday,
    /// the calendar's own (so daylight-saving changes and the order of the two times of day
    /// are the calendar's, not a count of hours); for any other release, `lead_days` whole
    /// days before it.
    pub fn usual_disclosure(&self, release_at: DateTime<Utc>) -> DateTime<Utc> {
        let day = release_at.with_timezone(&self.timezone).date_naive();
        match self.on(day) {
            Some(pt) if pt.release_at == release_at => pt.early_disclosure_at,
            _ => release_at - chrono::Duration::days(i64::from(self.lead_days)),
        }
    }

    /// Whether mail queued at `queued_at` for a release at `release_at`, planned to go out at
    /// `planned` (the revision's early-disclosure moment), gives members less than the usual
    /// lead time: it was queued after its planned moment, or the plan itself was later than
    /// the usual moment (a 0-day, or an embargo that lifts sooner than the lead time). Up to
    /// [`LATE_AFTER`] after the moment counts as on time: the scheduler ticks, servers restart.
    pub fn is_short_notice(
        &self,
        release_at: DateTime<Utc>,
        planned: Option<DateTime<Utc>>,
        queued_at: DateTime<Utc>,
    ) -> bool {
        let usual = self.usual_disclosure(release_at);
        let planned = planned.unwrap_or(release_at);
        queued_at > planned + LATE_AFTER || planned > usual + LATE_AFTER
    }

    /// The Patch Tuesday on `day`, if `day` is one.
    pub fn on(&self, day: NaiveDate) -> Option<PatchTuesday> {
        self.month(day.year(), day.month())
            .filter(|pt| pt.patch_tuesday == day)
    }

    /// `count` consecutive months of Patch Tuesdays starting with the given month.
    pub fn months_from(&self, year: i32, month: u32, count: u32) -> Vec<PatchTuesday> {
        let mut out = Vec::with_capacity(count as usize);
        let (mut y, mut m) = (year, month);
        for _ in 0..count {
            if let Some(pt) = self.month(y, m) {
                out.push(pt);
            }
            (y, m) = next_month(y, m);
        }
        out
    }

    /// The Patch Tuesday whose release has not happened yet at `now`.
    pub fn next_release(&self, now: DateTime<Utc>) -> Option<PatchTuesday> {
        self.first_from(now, |pt| pt.release_at > now)
    }

    /// The next Patch Tuesday whose early-disclosure moment has not passed at `now`: the
    /// default target for a newly planned release, so members still get the full lead time.
    pub fn next_with_lead_time(&self, now: DateTime<Utc>) -> Option<PatchTuesday> {
        self.first_from(now, |pt| pt.early_disclosure_at > now)
    }

    fn first_from(
        &self,
        now: DateTime<Utc>,
        wanted: impl Fn(&PatchTuesday) -> bool,
    ) -> Option<PatchTuesday> {
        let local = now.with_timezone(&self.timezone);
        let (mut y, mut m) = (local.year(), local.month());
        // Start a month early: late in a month in a zone behind UTC, the local month may lag.
        (y, m) = previous_month(y, m);
        for _ in 0..4 {
            if let Some(pt) = self.month(y, m).filter(&wanted) {
                return Some(pt);
            }
            (y, m) = next_month(y, m);
        }
        None
    }
}

fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

fn previous_month(year: i32, month: u32) -> (i32, u32) {
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// Parse `YYYY-MM` as given to `edl calendar --from`.
pub fn parse_year_month(value: &str) -> Result<(i32, u32), String> {
    let bad = || format!("{value:?} is not a month as YYYY-MM, e.g. 2026-11");
    let (y, m) = value.trim().split_once('-').ok_or_else(bad)?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
        return Err(bad());
    }
    Ok((year, month))
}

/// An instant as it is shown to people: in UTC and in the list's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    pub timezone: Tz,
}

impl Moment {
    pub fn new(at: DateTime<Utc>, timezone: Tz) -> Self {
        Self { at, timezone }
    }

    /// "2026-12-08 16:00 UTC".
    pub fn utc_text(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    /// "2026-12-08 17:00 CET": the list's zone with its abbreviation.
    pub fn local_text(&self) -> String {
        self.at
            .with_timezone(&self.timezone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// How an instant is shown to a person everywhere: "2027-01-12 16:00 PST (2027-01-13
    /// 00:00 UTC)", the list's zone first so the local day is the one people read, and UTC
    /// beside it. A list that runs in UTC says it once.
    pub fn text(&self) -> String {
        if self.is_utc() {
            self.utc_text()
        } else {
            format!("{} ({})", self.local_text(), self.utc_text())
        }
    }

    /// "2027-01-12": the date in the list's zone, for dates without a time (a key's expiry,
    /// a deadline to accept the policy).
    pub fn local_date(&self) -> String {
        self.at
            .with_timezone(&self.timezone)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The local date with its weekday, "Tuesday 12 January 2027", for announcement prose.
    pub fn local_day(&self) -> String {
        self.at
            .with_timezone(&self.timezone)
            .format("%A %-d %B %Y")
            .to_string()
    }

    /// "Tuesday 12 January 2027 at 16:00 PST (2027-01-13 00:00 UTC)": for prose such as the
    /// announcement, where the local weekday is what people plan by.
    pub fn day_and_time(&self) -> String {
        let local = self.at.with_timezone(&self.timezone);
        if self.is_utc() {
            format!("{} at {}", self.local_day(), local.format("%H:%M UTC"))
        } else {
            format!(
                "{} at {} ({})",
                self.local_day(),
                local.format("%H:%M %Z"),
                self.utc_text()
            )
        }
    }

    /// The machine-readable form for `<time datetime>` and feeds: RFC 3339 in UTC.
    pub fn machine(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// UTC by any of its names (London in winter is at UTC's offset but is not UTC).
    fn is_utc(&self) -> bool {
        matches!(
            self.timezone.name(),
            "UTC"
                | "Etc/UTC"
                | "Etc/UCT"
                | "UCT"
                | "Etc/Universal"
                | "Universal"
                | "Etc/Zulu"
                | "Zulu"
        )
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// Reads an instant as templates and the database hand it over: RFC 3339 with an offset, or
/// a date and time without one, which the database stores in UTC.
pub fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
    .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn calendar(tz: Tz) -> Calendar {
        Calendar {
            timezone: tz,
            lead_days: 14,
            disclosure_time: NaiveTime::from_hms_opt(16, 0, 0).expect("time"),
            release_time: NaiveTime::from_hms_opt(16, 0, 0).expect("time"),
        }
    }

    /// An independent count: walk the month day by day and take the second Tuesday seen.
    fn second_tuesday_by_walking(year: i32, month: u32) -> NaiveDate {
        let mut day = NaiveDate::from_ymd_opt(year, month, 1).expect("first of month");
        let mut tuesdays = 0;
        loop {
            if day.weekday() == Weekday::Tue {
                tuesdays += 1;
                if tuesdays == 2 {
                    return day;
                }
            }
            day = day.succ_opt().expect("next day");
        }
    }

    #[test]
    fn every_month_2020_to_2040_is_the_second_tuesday() {
        let cal = calendar(chrono_tz::UTC);
        for year in 2020..=2040 {
            for month in 1..=12 {
                let pt = cal.month(year, month).expect("every month has one");
                assert_eq!(pt.patch_tuesday, second_tuesday_by_walking(year, month));
                assert_eq!(pt.patch_tuesday.weekday(), Weekday::Tue);
                assert!((8..=14).contains(&pt.patch_tuesday.day()), "{pt:?}");
                assert_eq!((pt.patch_tuesday - pt.early_disclosure).num_days(), 14);
                assert_eq!(pt.early_disclosure.weekday(), Weekday::Tue);
                assert_eq!(
                    pt.release_at - pt.early_disclosure_at,
                    chrono::Duration::days(14)
                );
            }
        }
    }

    #[test]
    fn known_patch_tuesdays() {
        let cal = calendar(chrono_tz::UTC);
        // The first Patch Tuesday of the announcement this product follows.
        assert_eq!(
            cal.month(2021, 5).expect("may").patch_tuesday,
            date("2021-05-11")
        );
        let three: Vec<_> = cal.months_from(2026, 11, 3);
        let days: Vec<_> = three
            .iter()
            .map(|p| (p.patch_tuesday, p.early_disclosure))
            .collect();
        assert_eq!(
            days,
            vec![
                (date("2026-11-10"), date("2026-10-27")),
                (date("2026-12-08"), date("2026-11-24")),
                (date("2027-01-12"), date("2026-12-29")),
            ]
        );
    }

    #[test]
    fn month_starting_on_tuesday_or_wednesday() {
        // December 2026 starts on a Tuesday: the 1st is the first Tuesday, the 8th the second.
        assert_eq!(date("2026-12-01").weekday(), Weekday::Tue);
        assert_eq!(second_tuesday(2026, 12), Some(date("2026-12-08")));
        // October 2025 starts on a Wednesday: the first Tuesday is the 7th, the second the 14th.
        assert_eq!(date("2025-10-01").weekday(), Weekday::Wed);
        assert_eq!(second_tuesday(2025, 10), Some(date("2025-10-14")));
    }

    #[test]
    fn leap_years_move_the_lead_window_across_february() {
        let cal = calendar(chrono_tz::UTC);
        // 2028 is a leap year: 14 days before Tuesday 14 March is 29 February.
        let march_2028 = cal.month(2028, 3).expect("march");
        assert_eq!(march_2028.patch_tuesday, date("2028-03-14"));
        assert_eq!(march_2028.early_disclosure, date("2028-02-29"));
        // 2023 is not: March also started on a Wednesday, and the window opens on 28 February.
        let march_2023 = cal.month(2023, 3).expect("march");
        assert_eq!(march_2023.patch_tuesday, date("2023-03-14"));
        assert_eq!(march_2023.early_disclosure, date("2023-02-28"));
        // February of a leap year itself.
        assert_eq!(
            cal.month(2024, 2).expect("feb").patch_tuesday,
            date("2024-02-13")
        );
        assert_eq!(
            cal.month(2024, 3).expect("mar").early_disclosure,
            date("2024-02-27")
        );
    }

    #[test]
    fn lead_window_crosses_the_year() {
        let pt = calendar(chrono_tz::UTC).month(2027, 1).expect("january");
        assert_eq!(pt.early_disclosure, date("2026-12-29"));
        assert_eq!(pt.early_disclosure_at, utc("2026-12-29T16:00:00Z"));
    }

    #[test]
    fn daylight_saving_start_inside_the_lead_window_new_york() {
        // US clocks go forward on Sunday 8 March 2026, between disclosure and release.
        let pt = calendar(chrono_tz::America::New_York)
            .month(2026, 3)
            .expect("march");
        assert_eq!(pt.patch_tuesday, date("2026-03-10"));
        assert_eq!(pt.early_disclosure_at, utc("2026-02-24T21:00:00Z")); // 16:00 EST
        assert_eq!(pt.release_at, utc("2026-03-10T20:00:00Z")); // 16:00 EDT
        assert_eq!(
            pt.release_at - pt.early_disclosure_at,
            chrono::Duration::hours(14 * 24 - 1)
        );
        assert_eq!(pt.release_local, "2026-03-10 16:00 EDT");
        assert_eq!(pt.early_disclosure_local, "2026-02-24 16:00 EST");
    }

    #[test]
    fn daylight_saving_start_inside_the_lead_window_berlin() {
        // April 2025 starts on a Tuesday; Europe moves its clocks on Sunday 30 March.
        let pt = calendar(chrono_tz::Europe::Berlin)
            .month(2025, 4)
            .expect("april");
        assert_eq!(pt.patch_tuesday, date("2025-04-08"));
        assert_eq!(pt.early_disclosure, date("2025-03-25"));
        assert_eq!(pt.early_disclosure_at, utc("2025-03-25T15:00:00Z")); // CET, UTC+1
        assert_eq!(pt.release_at, utc("2025-04-08T14:00:00Z")); // CEST, UTC+2
    }

    #[test]
    fn daylight_saving_end_inside_the_lead_window_sydney() {
        // Sydney leaves summer time on Sunday 5 April 2026, inside the window before 14 April.
        let pt = calendar(chrono_tz::Australia::Sydney)
            .month(2026, 4)
            .expect("april");
        assert_eq!(pt.patch_tuesday, date("2026-04-14"));
        assert_eq!(pt.early_disclosure_at, utc("2026-03-31T05:00:00Z")); // AEDT, UTC+11
        assert_eq!(pt.release_at, utc("2026-04-14T06:00:00Z")); // AEST, UTC+10
        assert_eq!(
            pt.release_at - pt.early_disclosure_at,
            chrono::Duration::hours(14 * 24 + 1)
        );
    }

    #[test]
    fn far_east_zone_releases_on_the_previous_utc_day() {
        let mut cal = calendar(chrono_tz::Pacific::Auckland);
        cal.release_time = NaiveTime::from_hms_opt(9, 0, 0).expect("time");
        let pt = cal.month(2026, 11).expect("november");
        // 09:00 NZDT (UTC+13) on Tuesday 10 November is 20:00 UTC on Monday 9 November.
        assert_eq!(pt.release_at, utc("2026-11-09T20:00:00Z"));
        assert_eq!(pt.release_at.weekday(), Weekday::Mon);
    }

    #[test]
    fn times_in_a_gap_move_past_it_and_overlaps_take_the_earlier() {
        let ny = chrono_tz::America::New_York;
        // 02:30 on 8 March 2026 does not exist in New York: the clock jumps from 02:00 to 03:00.
        let gap = date("2026-03-08").and_hms_opt(2, 30, 0).expect("time");
        let t = resolve_local(ny, gap);
        assert_eq!(t, utc("2026-03-08T07:00:00Z")); // 03:00 EDT
        assert_eq!(t.with_timezone(&ny).hour(), 3);
        // 01:30 on 1 November 2026 happens twice; the first (EDT) is taken.
        let overlap = date("2026-11-01").and_hms_opt(1, 30, 0).expect("time");
        assert_eq!(resolve_local(ny, overlap), utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn next_release_and_next_with_lead_time() {
        let cal = calendar(chrono_tz::UTC);
        // 26 November 2026: December's disclosure (24 November) has passed, its release not.
        let now = utc("2026-11-26T10:00:00Z");
        assert_eq!(
            cal.next_release(now).expect("next").patch_tuesday,
            date("2026-12-08")
        );
        assert_eq!(
            cal.next_with_lead_time(now).expect("next").patch_tuesday,
            date("2027-01-12")
        );
        // One minute before the disclosure moment still counts as in time.
        let just_before = utc("2026-11-24T15:59:00Z");
        assert_eq!(
            cal.next_with_lead_time(just_before)
                .expect("next")
                .patch_tuesday,
            date("2026-12-08")
        );
        // On release day after the release time, the next month is next.
        let after = utc("2026-12-08T16:00:01Z");
        assert_eq!(
            cal.next_release(after).expect("next").patch_tuesday,
            date("2027-01-12")
        );
    }

    #[test]
    fn next_release_in_a_zone_behind_utc_at_the_turn_of_the_month() {
        // 1 December 2026 02:00 UTC is still 30 November in Los Angeles.
        let cal = calendar(chrono_tz::America::Los_Angeles);
        let now = utc("2026-12-01T02:00:00Z");
        assert_eq!(
            cal.next_release(now).expect("next").patch_tuesday,
            date("2026-12-08")
        );
    }

    #[test]
    fn other_lead_times() {
        let mut cal = calendar(chrono_tz::UTC);
        cal.lead_days = 7;
        let pt = cal.month(2026, 11).expect("november");
        assert_eq!(pt.early_disclosure, date("2026-11-03"));
        cal.lead_days = 21;
        assert_eq!(
            cal.month(2026, 11).expect("november").early_disclosure,
            date("2026-10-20")
        );
    }

    #[test]
    fn moments_read_in_the_list_zone_with_utc_beside() {
        let la = chrono_tz::America::Los_Angeles;
        // The January 2027 Patch Tuesday at 16:00 in Los Angeles is already Wednesday in UTC.
        let pt = Calendar {
            timezone: la,
            ..calendar(la)
        }
        .month(2027, 1)
        .expect("january");
        let m = Moment::new(pt.release_at, la);
        assert_eq!(m.text(), "2027-01-12 16:00 PST (2027-01-13 00:00 UTC)");
        assert_eq!(m.local_day(), "Tuesday 12 January 2027");
        assert_eq!(
            m.day_and_time(),
            "Tuesday 12 January 2027 at 16:00 PST (2027-01-13 00:00 UTC)"
        );
        assert_eq!(m.machine(), "2027-01-13T00:00:00Z");
        // Summer time has its own abbreviation.
        let july = Moment::new(utc("2027-07-13T23:00:00Z"), la);
        assert_eq!(july.text(), "2027-07-13 16:00 PDT (2027-07-13 23:00 UTC)");
        // In UTC the time is said once.
        let m = Moment::new(utc("2027-01-12T16:00:00Z"), chrono_tz::UTC);
        assert_eq!(m.text(), "2027-01-12 16:00 UTC");
        assert_eq!(m.day_and_time(), "Tuesday 12 January 2027 at 16:00 UTC");
        assert_eq!(
            Moment::new(utc("2027-01-12T16:00:00Z"), chrono_tz::Etc::UTC).text(),
            "2027-01-12 16:00 UTC"
        );
        // London in winter is at UTC's offset but is not UTC: its name says so.
        assert_eq!(
            Moment::new(utc("2027-01-12T16:00:00Z"), chrono_tz::Europe::London).text(),
            "2027-01-12 16:00 GMT (2027-01-12 16:00 UTC)"
        );
    }

    #[test]
    fn instants_parse_from_either_form() {
        let t = utc("2027-01-13T00:00:00Z");
        assert_eq!(parse_instant("2027-01-13T00:00:00Z"), Some(t));
        assert_eq!(parse_instant("2027-01-12T16:00:00-08:00"), Some(t));
        assert_eq!(parse_instant("2027-01-13T00:00:00"), Some(t));
        assert_eq!(parse_instant("2027-01-13 00:00:00.000"), Some(t));
        assert_eq!(parse_instant("next tuesday"), None);
    }

    fn at(t: &str) -> NaiveTime {
        NaiveTime::parse_from_str(t, "%H:%M").expect("test time")
    }

    /// The zones the short-notice rule is tested in, each with both daylight-saving changes.
    fn zones() -> [Tz; 3] {
        [
            chrono_tz::America::Los_Angeles,
            chrono_tz::Europe::Berlin,
            chrono_tz::Pacific::Auckland,
        ]
    }

    #[test]
    fn a_mailing_on_its_planned_moment_is_never_short_notice() {
        // Every Patch Tuesday of 2026-2028, in three zones, with lead times of one to five weeks,
        // and the disclosure time of day before, equal to and after the release time of day.
        let orders = [("16:00", "09:00"), ("16:00", "16:00"), ("09:00", "18:00")];
        let mut old_rule_was_wrong = 0;
        let mut windows_across_a_change = std::collections::BTreeSet::new();
        for tz in zones() {
            for lead_days in [7, 14, 21, 35] {
                for (disclosure, release) in orders {
                    let cal = Calendar {
                        timezone: tz,
                        lead_days,
                        disclosure_time: at(disclosure),
                        release_time: at(release),
                    };
                    for pt in cal.months_from(2026, 1, 36) {
                        let planned = Some(pt.early_disclosure_at);
                        let on_time = pt.early_disclosure_at;
                        let case = format!("{tz} lead {lead_days} {disclosure}/{release} {pt:?}");
                        assert!(
                            !cal.is_short_notice(pt.release_at, planned, on_time),
                            "{case}"
                        );
                        assert!(
                            !cal.is_short_notice(
                                pt.release_at,
                                planned,
                                on_time + chrono::Duration::minutes(59)
                            ),
                            "{case}"
                        );
                        assert!(
                            cal.is_short_notice(
                                pt.release_at,
                                planned,
                                on_time + chrono::Duration::minutes(61)
                            ),
                            "{case}"
                        );
                        assert_eq!(cal.usual_disclosure(pt.release_at), pt.early_disclosure_at);
                        // The rule this replaces counted hours against the lead time.
                        let notice = pt.release_at - on_time;
                        let lead = chrono::Duration::days(i64::from(lead_days));
                        if notice < lead - chrono::Duration::hours(1) {
                            old_rule_was_wrong += 1;
                        }
                        let offset = |t: DateTime<Utc>| {
                            use chrono::Offset;
                            t.with_timezone(&tz).offset().fix().local_minus_utc()
                        };
                        let (before, after) =
                            (offset(pt.early_disclosure_at), offset(pt.release_at));
                        if before != after {
                            windows_across_a_change.insert((
                                tz.name(),
                                pt.patch_tuesday.year(),
                                if after > before { "forward" } else { "back" },
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            old_rule_was_wrong > 0,
            "the cases include ones the old rule got wrong"
        );
        // Both changes of every year in every zone fall inside some tested lead window.
        for tz in zones() {
            for year in 2026..=2028 {
                for way in ["forward", "back"] {
                    assert!(
                        windows_across_a_change.contains(&(tz.name(), year, way)),
                        "no window across {tz}'s {way} change of {year}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_real_notice_of_an_on_time_mailing_is_stated_not_assumed() {
        // A week's lead in Los Angeles, releasing at 09:00 and disclosing at 16:00: an on-time
        // mailing gives 6 days and 17 hours, and that is the usual lead time, not a short one.
        let cal = Calendar {
            timezone: chrono_tz::America::Los_Angeles,
            lead_days: 7,
            disclosure_time: at("16:00"),
            release_time: at("09:00"),
        };
        let pt = cal.month(2027, 1).expect("january");
        assert_eq!(pt.early_disclosure_local, "2027-01-05 16:00 PST");
        assert_eq!(pt.release_local, "2027-01-12 09:00 PST");
        assert_eq!(
            pt.release_at - pt.early_disclosure_at,
            chrono::Duration::hours(6 * 24 + 17)
        );
        assert!(!cal.is_short_notice(
            pt.release_at,
            Some(pt.early_disclosure_at),
            pt.early_disclosure_at
        ));
        // Across the autumn change in Berlin with the default fortnight, 16:00 to 16:00 is 14
        // days and an hour; across the spring change in Auckland, an hour more (New Zealand's
        // clocks go back in April).
        let berlin = calendar(chrono_tz::Europe::Berlin)
            .month(2027, 11)
            .expect("november");
        assert_eq!(
            berlin.release_at - berlin.early_disclosure_at,
            chrono::Duration::hours(14 * 24 + 1)
        );
        let auckland = calendar(chrono_tz::Pacific::Auckland)
            .month(2026, 4)
            .expect("april");
        assert_eq!(
            auckland.release_at - auckland.early_disclosure_at,
            chrono::Duration::hours(14 * 24 + 1)
        );
        let la = calendar(chrono_tz::America::Los_Angeles)
            .month(2028, 3)
            .expect("march");
        assert_eq!(
            la.release_at - la.early_disclosure_at,
            chrono::Duration::hours(14 * 24 - 1)
        );
        assert!(!calendar(chrono_tz::America::Los_Angeles).is_short_notice(
            la.release_at,
            Some(la.early_disclosure_at),
            la.early_disclosure_at
        ));
    }

    #[test]
    fn zero_days_and_early_lifts_are_short_notice_even_on_time() {
        let cal = calendar(chrono_tz::Europe::Berlin);
        // A 0-day on a Wednesday with three days' notice, mailed exactly as planned.
        let release_at = utc("2027-03-31T12:00:00Z");
        let planned = release_at - chrono::Duration::hours(72);
        assert!(cal.is_short_notice(release_at, Some(planned), planned));
        // A third-party lift planned with the full fortnight is not, across the spring change.
        let planned = release_at - chrono::Duration::days(14);
        assert!(!cal.is_short_notice(release_at, Some(planned), planned));
        // ...unless the mail goes out late.
        assert!(cal.is_short_notice(
            release_at,
            Some(planned),
            planned + chrono::Duration::hours(3)
        ));
        // A release with no disclosure moment (a 0-day without notice) is short notice.
        assert!(cal.is_short_notice(release_at, None, release_at));
    }

    #[test]
    fn year_month_arguments() {
        assert_eq!(parse_year_month("2026-11"), Ok((2026, 11)));
        assert!(parse_year_month("2026-13").is_err());
        assert!(parse_year_month("November").is_err());
    }
}
