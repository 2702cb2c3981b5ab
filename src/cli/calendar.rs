//! `edl calendar`: upcoming Patch Tuesdays with their early-disclosure dates.

use chrono::Datelike;

use crate::config::Settings;
use crate::releases::calendar::{parse_year_month, Moment, PatchTuesday};

#[derive(clap::Args)]
pub struct Args {
    /// First month, as YYYY-MM (default: the current month in the list's time zone).
    #[arg(long)]
    from: Option<String>,
    /// How many months to print.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=600))]
    months: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(settings: &Settings, args: Args) -> Result<(), String> {
    let calendar = settings.calendar();
    let (year, month) = match args.from.as_deref() {
        Some(value) => parse_year_month(value)?,
        None => {
            let today = chrono::Utc::now().with_timezone(&settings.timezone);
            (today.year(), today.month())
        }
    };
    let entries: Vec<PatchTuesday> = calendar.months_from(year, month, args.months);
    if args.json {
        let text = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    let tz = settings.timezone;
    println!(
        "{:<14} {:<18} {:<46} Disclosure mailing",
        "Patch Tuesday", "Early disclosure", "Release"
    );
    for pt in entries {
        println!(
            "{:<14} {:<18} {:<46} {}",
            pt.patch_tuesday.to_string(),
            pt.early_disclosure.to_string(),
            Moment::new(pt.release_at, tz).text(),
            Moment::new(pt.early_disclosure_at, tz).text()
        );
    }
    Ok(())
}
