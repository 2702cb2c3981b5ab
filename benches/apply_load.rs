//! How many applications per second does `POST /apply` take, and how fast does it answer?
//!
//! Starts the service in this process (SQLite by default, PostgreSQL with `--postgres`), then,
//! as a reference measured in the same run, has N clients ask `GET /healthz` as fast as they
//! can for S seconds; then the same N clients each fetch the form once (for its CSRF token) and
//! post complete applications, each for a domain of its own, for S seconds. With `--prefill
//! K`, K applications are posted first and left unconfirmed, as bots would leave them; with
//! `--members M`, M active members are stored before the run, so the checks have a list to
//! look at. Prints
//! requests per second, p50 and p99 latency and the answers by status for both, and the ratio.
//! The clients post as fast as they are answered, so that phase finds the most the service
//! takes, and its latency is mostly waiting in line at that rate. A last phase then offers a
//! steady R applications a second (`--rate R`, 500 by default, the target; 0 skips it): each
//! client posts on a fixed schedule, and a request's latency counts from the moment it was
//! due, so an answer late enough to delay the next request is counted against the service
//! too. Targets (issue 13): at least 500 applications/s, p99 under 100 ms, no 5xx, and no
//! slower with 20,000 unconfirmed applications stored.
//!
//! Run: `cargo bench --bench apply_load` (options: `-- --clients N --seconds S --prefill K
//! --members M --rate R --pool P --postgres postgres://USER@HOST/DB`; `--pool` is the number
//! of connections, 16 by default; with `--postgres`, the run uses a database created from that
//! URL and dropped after).

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};

use edl::config::Settings;
use edl::startup::{Application, Options};

#[path = "support/mod.rs"]
mod support;

struct Args {
    clients: usize,
    seconds: u64,
    prefill: usize,
    members: usize,
    rate: u64,
    pool: u64,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        clients: 64,
        seconds: 30,
        prefill: 0,
        members: 0,
        rate: 500,
        pool: 16,
        postgres: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1);
        let number = value.and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), number) {
            ("--clients", Some(v)) => out.clients = v as usize,
            ("--seconds", Some(v)) => out.seconds = v,
            ("--prefill", Some(v)) => out.prefill = v as usize,
            ("--members", Some(v)) => out.members = v as usize,
            ("--rate", Some(v)) => out.rate = v,
            ("--pool", Some(v)) => out.pool = v,
            ("--postgres", _) => out.postgres = value.cloned(),
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

/// A complete application for an organisation on `domain`, as the form sends it.
fn application(csrf: &str, domain: &str) -> Vec<(String, String)> {
    [
        ("csrf_token", csrf.to_owned()),
        ("org_name", format!("Bench {domain}")),
        ("org_domains", domain.to_owned()),
        ("website", format!("https://{domain}/")),
        ("security_alias", format!("security@{domain}")),
        ("category", "distributor".to_owned()),
        ("product_name", "Bench Mesh".to_owned()),
        ("product_url", format!("https://{domain}/mesh")),
        (
            "redistribution",
            "We build and ship the project in our distribution.".to_owned(),
        ),
        (
            "user_base",
            "Several thousand companies run our distribution.".to_owned(),
        ),
        ("user_base_size", "about 3000 companies".to_owned()),
        (
            "track_record",
            format!("https://{domain}/security/advisories"),
        ),
        (
            "community_links",
            "https://github.com/project/project/pull/1234".to_owned(),
        ),
        ("rep_name", "Robin Rep".to_owned()),
        ("rep_email", format!("robin@{domain}")),
        ("days_to_fix", "10".to_owned()),
        ("accept_policy", "1".to_owned()),
        ("stage_privately", "yes".to_owned()),
        ("contribute_back", "yes".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What one load phase saw.
#[derive(Default)]
struct Phase {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, u64>,
}

impl Phase {
    fn merge(&mut self, other: Phase) {
        self.latencies.extend(other.latencies);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }

    fn report(&mut self, label: &str, seconds: f64) -> f64 {
        self.latencies.sort();
        let rate = self.latencies.len() as f64 / seconds;
        let server_errors: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum();
        println!(
            "{label:<28}: {:>7} requests, {rate:>8.1}/s, p50 {:>9.2?}, p99 {:>9.2?}, 5xx {server_errors}, by status {:?}",
            self.latencies.len(),
            percentile(&self.latencies, 50.0),
            percentile(&self.latencies, 99.0),
            self.statuses
        );
        rate
    }
}

/// Runs `clients` tasks for `seconds`; each gets a client with cookies and a CSRF token from
/// the form, then calls `request` in a loop with its number and a counter: as soon as the last
/// one was answered, or, with a `pace` of R requests a second in all, each at its turn on a
/// fixed schedule, its latency counted from that turn.
async fn load<F, Fut>(
    base: &str,
    clients: usize,
    until: Until,
    pace: Option<f64>,
    request: F,
) -> Phase
where
    F: Fn(reqwest::Client, String, String, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send,
{
    let request = Arc::new(request);
    let mut tasks = Vec::new();
    // The schedule starts once every client has had time to fetch its form.
    let schedule_start = Instant::now() + Duration::from_millis(500);
    for client_no in 0..clients {
        let (base, request, until) = (base.to_owned(), request.clone(), until.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let form = client
                .get(format!("{base}/apply"))
                .send()
                .await
                .expect("the form");
            let csrf = csrf_token_in(&form.text().await.expect("html")).expect("a CSRF token");
            let mut phase = Phase::default();
            let mut n = 0u64;
            while until.more(n) {
                let start = match pace {
                    Some(rate) => {
                        let turn = (n as f64 * clients as f64 + client_no as f64) / rate;
                        let due = schedule_start + Duration::from_secs_f64(turn);
                        if !until.before(due) {
                            break;
                        }
                        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                        due
                    }
                    None => Instant::now(),
                };
                let status =
                    match request(client.clone(), base.clone(), csrf.clone(), client_no, n).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                phase.latencies.push(start.elapsed());
                *phase.statuses.entry(status).or_default() += 1;
                n += 1;
            }
            phase
        }));
    }
    let mut all = Phase::default();
    for task in tasks {
        all.merge(task.await.expect("client"));
    }
    all
}

/// Stores `n` active members, each on a domain and with an alias of its own, in one
/// transaction.
fn store_members(settings: &Settings, n: usize) {
    let pool = edl::db::connect(settings).expect("the database");
    let mut conn = pool
        .get_timeout(Duration::from_secs(10))
        .expect("a connection");
    let now = edl::db::now();
    edl::db::write_transaction(&mut conn, |c| {
        for i in 0..n {
            support::insert_member(c, i, &format!("member{i}.list.example"), 1, now)?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .expect("members stored");
}

/// When a client stops: at a moment, or after a number of requests.
#[derive(Clone)]
enum Until {
    Time(Instant),
    Count(u64),
}

impl Until {
    fn more(&self, done: u64) -> bool {
        match self {
            Self::Time(at) => Instant::now() < *at,
            Self::Count(n) => done < *n,
        }
    }

    /// Whether a request due at `due` is still inside the phase.
    fn before(&self, due: Instant) -> bool {
        match self {
            Self::Time(at) => due < *at,
            Self::Count(_) => true,
        }
    }
}

async fn post_application(
    client: reqwest::Client,
    base: String,
    csrf: String,
    client_no: usize,
    n: u64,
    prefix: &'static str,
) -> reqwest::Result<reqwest::Response> {
    let domain = format!("{prefix}{client_no}-{n}.bench.example");
    client
        .post(format!("{base}/apply"))
        .form(&application(&csrf, &domain))
        .send()
        .await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temporary folder");
    let (database_url, scratch) = match &args.postgres {
        Some(admin_url) => {
            let name = format!("edl_bench_apply_{}", std::process::id());
            let mut admin = diesel::PgConnection::establish(admin_url).expect("PostgreSQL");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create the benchmark database");
            let mut url = url::Url::parse(admin_url).expect("a URL");
            url.set_path(&name);
            (url.to_string(), Some((admin_url.clone(), name)))
        }
        None => (
            format!("sqlite://{}", dir.path().join("bench.sqlite3").display()),
            None,
        ),
    };
    let data = dir.path().display().to_string();
    let mail = dir.path().join("mail").display().to_string();
    let pool = args.pool.to_string();
    let settings = Settings::from_vars([
        ("EDL_DATABASE_URL", database_url.as_str()),
        ("EDL_DATA_DIR", data.as_str()),
        ("EDL_MAIL_DIR", mail.as_str()),
        ("EDL_BIND", "127.0.0.1:0"),
        ("EDL_PUBLIC_POST_RATE_LIMIT", "100000000/1m"),
        ("EDL_DATABASE_POOL_SIZE", pool.as_str()),
        // The confirmation mail is queued with each application; sending it is not measured.
        ("EDL_OUTBOX_WORKERS", "0"),
    ])
    .expect("settings");
    let app = Application::build(
        settings.clone(),
        Options {
            handle_signals: false,
            ..Options::default()
        },
    )
    .await
    .expect("the service starts");
    if args.members > 0 {
        store_members(&settings, args.members);
    }
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let backend = if scratch.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}, {} clients, {} s per phase, {} unconfirmed applications stored first, {} members",
        args.clients, args.seconds, args.prefill, args.members
    );

    // The reference: the cheapest route of the same server, under the same clients.
    let until = Until::Time(Instant::now() + Duration::from_secs(args.seconds));
    let mut healthz = load(
        &base,
        args.clients,
        until,
        None,
        |client, base, _, _, _| async move { client.get(format!("{base}/healthz")).send().await },
    )
    .await;
    let reference = healthz.report("GET /healthz (reference)", args.seconds as f64);

    if args.prefill > 0 {
        let started = Instant::now();
        let per_client = (args.prefill / args.clients.max(1)).max(1) as u64;
        let mut prefill = load(
            &base,
            args.clients,
            Until::Count(per_client),
            None,
            |client, base, csrf, no, n| post_application(client, base, csrf, no, n, "pre"),
        )
        .await;
        prefill.report("POST /apply (prefill)", started.elapsed().as_secs_f64());
    }

    let until = Until::Time(Instant::now() + Duration::from_secs(args.seconds));
    let mut apply = load(
        &base,
        args.clients,
        until,
        None,
        |client, base, csrf, no, n| post_application(client, base, csrf, no, n, "a"),
    )
    .await;
    let rate = apply.report("POST /apply", args.seconds as f64);
    println!(
        "applications / healthz     : {:.4} (targets: >= 500/s, p99 < 100 ms, no 5xx)",
        rate / reference.max(1e-9)
    );

    if args.rate > 0 {
        // The same load, offered at a steady rate instead of as fast as answered.
        let start = Instant::now() + Duration::from_millis(500);
        let until = Until::Time(start + Duration::from_secs(args.seconds));
        let mut paced = load(
            &base,
            args.clients,
            until,
            Some(args.rate as f64),
            |client, base, csrf, no, n| post_application(client, base, csrf, no, n, "r"),
        )
        .await;
        paced.report(
            &format!("POST /apply, {}/s offered", args.rate),
            args.seconds as f64,
        );
    }

    handle.stop(true).await;
    if let Some((admin_url, name)) = scratch {
        // Give the pool a moment to close before the database goes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut admin = diesel::PgConnection::establish(&admin_url).expect("PostgreSQL");
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin);
    }
}
