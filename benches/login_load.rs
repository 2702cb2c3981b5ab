//! Does a sign-in flood slow the site down for everyone else?
//!
//! Starts the service in-process on SQLite, measures the latency of `GET /` alone, then again
//! while 32 clients post wrong passwords to `/login` as fast as they can, and prints both p99s
//! and their ratio. The target is a loaded p99 within 5x the idle p99. Per-IP limits and the
//! per-address lockout are raised out of the way (each attempt uses a new address), so every
//! attempt pays for a full argon2id verification: this measures hashing isolation, not the
//! rate limiter.
//!
//! Run: `cargo bench --bench login_load` (options: `-- --clients N --seconds S`).

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::time::{Duration, Instant};

use edl::config::Settings;
use edl::startup::{Application, Options};

struct Args {
    clients: usize,
    seconds: u64,
    idle_samples: usize,
}

fn args() -> Args {
    let mut out = Args {
        clients: 32,
        seconds: 15,
        idle_samples: 2000,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), value) {
            ("--clients", Some(v)) => out.clients = v as usize,
            ("--seconds", Some(v)) => out.seconds = v,
            ("--idle-samples", Some(v)) => out.idle_samples = v as usize,
            _ => {}
        }
        i += 1;
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

async fn measure_home(
    client: &reqwest::Client,
    url: &str,
    until: impl Fn(usize) -> bool,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    while !until(samples.len()) {
        let start = Instant::now();
        let response = client.get(url).send().await.expect("GET /");
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await.expect("body");
        samples.push(start.elapsed());
    }
    samples.sort();
    samples
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let data = dir.path().display().to_string();
    let settings = Settings::from_vars([
        ("EDL_DATABASE_URL", db.as_str()),
        ("EDL_DATA_DIR", data.as_str()),
        ("EDL_BIND", "127.0.0.1:0"),
        ("EDL_LOGIN_RATE_LIMIT", "1000000/1m"),
        ("EDL_OUTBOX_WORKERS", "0"),
    ])
    .expect("settings");
    let app = Application::build(
        settings,
        Options {
            handle_signals: false,
            ..Options::default()
        },
    )
    .await
    .expect("the service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let home = format!("{base}/");
    let probe = reqwest::Client::new();

    // Warm up, then the idle baseline.
    measure_home(&probe, &home, |n| n >= 200).await;
    let idle = measure_home(&probe, &home, |n| n >= args.idle_samples).await;

    let stop_at = Instant::now() + Duration::from_secs(args.seconds);
    let mut attackers = Vec::new();
    for client_no in 0..args.clients {
        let base = base.clone();
        attackers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client");
            let page = client
                .get(format!("{base}/login"))
                .send()
                .await
                .expect("login page");
            let csrf = csrf_token_in(&page.text().await.expect("html")).expect("csrf token");
            let mut attempts = 0u64;
            while Instant::now() < stop_at {
                let email = format!("guess{client_no}-{attempts}@example.org");
                let response = client
                    .post(format!("{base}/login"))
                    .form(&[
                        ("csrf_token", csrf.as_str()),
                        ("email", &email),
                        ("password", "wrong-password-guess"),
                    ])
                    .send()
                    .await
                    .expect("POST /login");
                assert_eq!(
                    response.status(),
                    401,
                    "every attempt is a real, failed verification"
                );
                attempts += 1;
            }
            attempts
        }));
    }
    // Let the flood build up before sampling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = measure_home(&probe, &home, |_| Instant::now() >= stop_at).await;
    let mut attempts = 0;
    for attacker in attackers {
        attempts += attacker.await.expect("attacker");
    }

    let (idle_p50, idle_p99) = (percentile(&idle, 50.0), percentile(&idle, 99.0));
    let (loaded_p50, loaded_p99) = (percentile(&loaded, 50.0), percentile(&loaded, 99.0));
    let ratio = loaded_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9);
    println!("clients attacking /login : {}", args.clients);
    println!(
        "failed sign-ins          : {attempts} in {} s ({:.1}/s)",
        args.seconds,
        attempts as f64 / args.seconds as f64
    );
    println!(
        "GET / idle               : n={} p50={:?} p99={:?}",
        idle.len(),
        idle_p50,
        idle_p99
    );
    println!(
        "GET / under the flood    : n={} p50={:?} p99={:?}",
        loaded.len(),
        loaded_p50,
        loaded_p99
    );
    println!("loaded p99 / idle p99    : {ratio:.2} (target: at most 5)");
    println!(
        "{}",
        if ratio <= 5.0 {
            "within target"
        } else {
            "OVER TARGET"
        }
    );
}
