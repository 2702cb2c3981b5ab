//! How fast does an embargoed release reach every member, beside a plain lettre send of the
//! same mail to the same SMTP sink, and how much memory does it take as the list grows?
//!
//! For each list size (1,000, 10,000 and 50,000 members by default) and backend, a child
//! process prepares that many active members, each with a key of its own, and one approved
//! release (one advisory, one small patch), then times the product's whole fan-out: the
//! scheduler's tick that queues one outbox row per member, then delivery of every row by the
//! outbox workers, over SMTP, to a sink on loopback that counts what it receives and keeps
//! nothing. In the same process it then times two references over as many kept-open
//! connections as there are workers: lettre alone sending each member a message with the same
//! text, HTML and patch (built with lettre's builder, neither signed nor encrypted), and lettre
//! sending the same sealed messages the members get (each member's key read and judged, the
//! message built, signed and encrypted by the product's builder). Each child reports its
//! figures and its peak resident memory (`VmHWM`, reset after the set-up); the parent prints a
//! table of all runs. The mode is the product's default, signed and encrypted to each member
//! (`--mode off`: signed only).
//!
//! Run: `cargo bench --bench fanout` (options: `-- --members 1000,10000,50000 --workers W
//! --batch B --mode required|off --postgres postgres://USER@HOST/DB`; with `--postgres`, every
//! size runs on PostgreSQL too, each in a database created from that URL and dropped after).

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use pgp::composed::{
    ArmorOptions, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use rand_core06::OsRng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use edl::accounts::{self, AccountEmail, Role};
use edl::app::Context;
use edl::clock::Clock;
use edl::config::{Encryption, Settings};
use edl::db::schema::{members, outbox};
use edl::db::{self, DbConnection, DbError, DbPool};
use edl::domain::{OutboxStatus, ReleaseKind};
use edl::mail::outbox::OutboxRow;
use edl::mail::transport::{build_message, Attachment, Envelope, Seal};
use edl::mail::Mailer;
use edl::openpgp::member_key;
use edl::releases::approval;
use edl::releases::distribution::{self, EMBARGOED, ENCRYPTED_SUBJECT};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Upload};

#[path = "support/mod.rs"]
mod support;

const PATCH: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@project.example>
Date: Tue, 10 Nov 2026 10:00:00 +0000
Subject: [PATCH] Normalize paths before authorization

Signed-off-by: Pat Maintainer <pat@project.example>
---
 pilot/pkg/security/authz/path.go | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/pilot/pkg/security/authz/path.go b/pilot/pkg/security/authz/path.go
index 1111111..2222222 100644
--- a/pilot/pkg/security/authz/path.go
+++ b/pilot/pkg/security/authz/path.go
@@ -1,3 +1,3 @@
 package authz
-func normalize(p string) string { return p }
+func normalize(p string) string { return path.Clean(p) }
";

const PASSWORD: &str = "tangerine-kettle-orbit-42";

struct Args {
    sizes: Vec<usize>,
    workers: u32,
    batch: u32,
    mode: String,
    postgres: Option<String>,
    reference_samples: usize,
    /// Set in a child: run this one backend.
    child: Option<Backend>,
}

fn args() -> Args {
    let mut out = Args {
        sizes: vec![1_000, 10_000, 50_000],
        workers: 4,
        batch: 50,
        mode: "required".to_owned(),
        postgres: None,
        reference_samples: 300,
        child: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1);
        let number = value.and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), number) {
            ("--workers", Some(v)) => out.workers = v as u32,
            ("--batch", Some(v)) => out.batch = v as u32,
            ("--reference-samples", Some(v)) => out.reference_samples = v as usize,
            _ => {}
        }
        match (argv[i].as_str(), value) {
            ("--postgres", Some(v)) => out.postgres = Some(v.clone()),
            ("--mode", Some(v)) => out.mode = v.clone(),
            ("--members", Some(v)) => {
                out.sizes = v
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .expect("--members takes sizes like 1000,10000")
                    })
                    .collect();
            }
            ("--child", Some(v)) => {
                out.child = Some(if v == "postgres" {
                    Backend::Postgres
                } else {
                    Backend::Sqlite
                });
            }
            _ => {}
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Memory, as the kernel counts it for this process

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sets the peak (`VmHWM`) back to the current RSS, so that the next reading is the peak of
/// what follows, not of the set-up. Linux 4.0 and later; false where it is not allowed.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Samples `VmRSS` every 20 ms until stopped; returns the largest reading, in KiB.
fn sample_rss(stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !*stop.borrow() {
            peak = peak.max(proc_kib("VmRSS").unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.max(proc_kib("VmRSS").unwrap_or(0))
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink: accepts every message, counts it and its bytes, keeps nothing

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    bytes: AtomicU64,
}

async fn start_sink() -> (u16, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the SMTP sink");
    let port = listener.local_addr().expect("sink address").port();
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(sink_session(stream, shared.clone()));
        }
    });
    (port, counts)
}

async fn sink_session(stream: TcpStream, counts: Arc<Counts>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::with_capacity(1024);
    macro_rules! reply {
        ($text:expr) => {
            if write.write_all($text).await.is_err() {
                return;
            }
        };
    }
    reply!(b"220 sink.bench ESMTP ready\r\n");
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.to_ascii_uppercase();
        if command.starts_with(b"EHLO") {
            reply!(b"250-sink.bench\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        } else if command.starts_with(b"HELO") {
            reply!(b"250 sink.bench\r\n");
        } else if command.starts_with(b"MAIL FROM:") || command.starts_with(b"RCPT TO:") {
            reply!(b"250 2.1.0 OK\r\n");
        } else if command.starts_with(b"DATA") {
            reply!(b"354 End data with <CR><LF>.<CR><LF>\r\n");
            let mut bytes = 0u64;
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                bytes += line.len() as u64;
            }
            counts.bytes.fetch_add(bytes, Ordering::Relaxed);
            counts.messages.fetch_add(1, Ordering::Release);
            reply!(b"250 2.0.0 queued\r\n");
        } else if command.starts_with(b"RSET") || command.starts_with(b"NOOP") {
            reply!(b"250 2.0.0 OK\r\n");
        } else if command.starts_with(b"QUIT") {
            reply!(b"221 2.0.0 bye\r\n");
            return;
        } else {
            reply!(b"502 5.5.2 command not recognised\r\n");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Members' keys: one real key pair per member, made once, outside every timed section

fn domain_of(i: usize) -> String {
    format!("org{i:06}.example")
}

/// An Ed25519 key with a Curve25519 encryption subkey whose user ID names `alias`, armored.
fn member_key(alias: &str) -> String {
    let mut encryption = SubkeyParamsBuilder::default();
    encryption
        .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_encrypt(EncryptionCaps::All);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("Security team <{alias}>"))
        .subkeys(vec![encryption.build().expect("subkey params")]);
    params
        .build()
        .expect("key params")
        .generate(OsRng)
        .expect("a key")
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .expect("armor")
}

/// The public keys of members `0..n`, made on every core.
fn member_keys(n: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunk = n.div_ceil(threads).max(1);
    let starts: Vec<usize> = (0..n).step_by(chunk).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = starts
            .iter()
            .map(|&start| {
                scope.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|i| member_key(&format!("security@{}", domain_of(i))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("key generation"))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// One mode on one backend

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one mode and is removed after it.
struct BenchDb {
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl BenchDb {
    fn create(backend: Backend, admin_url: Option<&str>, mode: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        match (backend, admin_url) {
            (Backend::Postgres, Some(admin_url)) => {
                let mut admin = diesel::PgConnection::establish(admin_url)
                    .expect("PostgreSQL at --postgres is reachable");
                let name = format!("edl_bench_{}_{mode}", std::process::id());
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create the benchmark database");
                let mut url = url::Url::parse(admin_url).expect("--postgres is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some((admin_url.to_owned(), name)),
                }
            }
            _ => Self {
                url: format!("sqlite://{}", dir.path().join("bench.sqlite3").display()),
                dir,
                postgres: None,
            },
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// What one run measured.
struct Figures {
    members: usize,
    queue_time: Duration,
    delivery_time: Duration,
    bytes: u64,
    rss_before_kib: u64,
    /// Peak resident memory over queueing and delivery (`VmHWM` when it could be reset, the
    /// sampled `VmRSS` otherwise).
    peak_kib: u64,
    /// One message built on one thread: (guard's key check, build), per message.
    one_message: (Duration, Duration),
    reference_time: Duration,
    reference_bytes: u64,
    reference_peak_kib: u64,
    /// lettre sending the very messages the members get: each sealed as the product seals it.
    sealed_time: Duration,
}

async fn on_db<T, F>(pool: &DbPool, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
{
    db::run(pool, work).await.expect("database work succeeds")
}

async fn add_account(pool: &DbPool, email: &str, name: &str) -> Actor {
    let hash = accounts::password::hash(PASSWORD).expect("hash");
    let address = AccountEmail::parse(email).expect("email");
    let name = name.to_owned();
    let id = db::run(pool, move |conn| {
        accounts::create(
            conn,
            "bench",
            &address,
            &name,
            &hash,
            &[Role::ReleaseManager],
            false,
        )
    })
    .await
    .expect("account created");
    Actor {
        account_id: id,
        email: email.to_owned(),
    }
}

/// N active members on the current policy version, each with its key, in one transaction.
async fn add_members(pool: &DbPool, keys: Arc<Vec<String>>, policy_version: i32) {
    on_db(pool, move |conn| {
        db::write_transaction(conn, |conn| {
            let now = db::now();
            for (i, key) in keys.iter().enumerate() {
                let id = support::insert_member(conn, i, &domain_of(i), policy_version, now)?;
                edl::membership::members::set_key(conn, id, Some(key))?;
            }
            Ok::<_, DbError>(())
        })
    })
    .await;
}

/// Plans, fills and approves one Patch Tuesday release; returns its id and early-disclosure
/// time.
async fn approved_release(
    pool: &DbPool,
    settings: &Settings,
    now: DateTime<Utc>,
) -> (i64, DateTime<Utc>) {
    let planner = add_account(pool, "rm1@project.example", "Rel One").await;
    let approver = add_account(pool, "rm2@project.example", "Rel Two").await;
    let calendar = settings.calendar();
    let failed = |e: release::ReleaseError| DbError::Task(e.to_string());
    on_db(pool, move |c| {
        let plan = Plan {
            kind: ReleaseKind::PatchTuesday,
            title: "Security release 1.9.5".into(),
            release_lines: vec!["1.9.5".into()],
            patch_tuesday: None,
            release_at: None,
            upstream_id: None,
            notice_hours: 0,
            members_may_deploy: false,
            notes: String::new(),
        };
        let id = release::plan(c, &calendar, &plan, &planner, now).map_err(failed)?;
        let advisory = AdvisoryForm {
            cve_id: "CVE-2026-31337".into(),
            severity: "high".into(),
            cvss_vector: String::new(),
            summary: "Authorization policy bypass with crafted paths.".into(),
            affected_versions: "1.9.0 to 1.9.4".into(),
            fixed_versions: "1.9.5".into(),
        }
        .parse()
        .map_err(|e| DbError::Task(format!("{e:?}")))?;
        release::add_advisory(c, id, &advisory, &planner).map_err(failed)?;
        let upload = Upload {
            filename: "0001-normalize-paths.patch".into(),
            bytes: PATCH.as_bytes().to_vec(),
            release_line: "1.9.5".into(),
            upstream_id: None,
            is_security_fix: true,
        };
        release::add_patch(c, id, &upload, &planner).map_err(failed)?;
        approval::approve(c, id, &approver).map_err(failed)?;
        let disclosure = release::find(c, id)?
            .and_then(|r| r.disclosure_at)
            .expect("a Patch Tuesday release has an early-disclosure time");
        Ok((id, disclosure.and_utc()))
    })
    .await
}

/// What building one queued row's message costs on one thread: the send guard's key check
/// (parse and judge the member's key; encrypted mode only) and the message itself.
fn reference(
    ctx: &Context,
    row: &OutboxRow,
    key: &str,
    encryption: Encryption,
    samples: usize,
) -> (Duration, Duration) {
    let samples = samples.max(1);
    let now = Utc::now();
    let started = Instant::now();
    let mut seal = Seal::Signed;
    if encryption != Encryption::Off {
        for _ in 0..samples {
            let usable = member_key::usable(key, &row.recipient, now).expect("a usable key");
            seal = Seal::Encrypted {
                to: Box::new(usable),
                outer_subject: ENCRYPTED_SUBJECT.to_owned(),
            };
        }
    }
    let check = started.elapsed() / samples as u32;
    let envelope = Envelope {
        message_id: row.message_id.clone(),
        recipient: row.recipient.clone(),
        subject: row.subject.clone(),
        text: row.body_text.clone(),
        html: row.body_html.clone(),
        attachments: vec![Attachment {
            filename: "0001-normalize-paths.patch".into(),
            content: PATCH.as_bytes().to_vec(),
        }],
        seal,
    };
    let started = Instant::now();
    for _ in 0..samples {
        let message = build_message(&ctx.mailer.from, &envelope, &ctx.mailer.signer)
            .expect("the message builds");
        std::hint::black_box(message.formatted());
    }
    (check, started.elapsed() / samples as u32)
}

async fn count_sent(pool: &DbPool) -> (i64, i64) {
    on_db(pool, |c| {
        let sent: i64 = outbox::table
            .filter(outbox::template.eq(EMBARGOED))
            .filter(outbox::status.eq(OutboxStatus::Sent))
            .count()
            .get_result(c)?;
        let done_otherwise: i64 = outbox::table
            .filter(outbox::template.eq(EMBARGOED))
            .filter(
                outbox::status
                    .eq(OutboxStatus::Failed)
                    .or(outbox::status.eq(OutboxStatus::Held)),
            )
            .count()
            .get_result(c)?;
        Ok((sent, done_otherwise))
    })
    .await
}

/// The product's fan-out to `keys.len()` members, then the lettre reference to as many.
async fn run_mode(
    args: &Args,
    backend: Backend,
    encryption: &str,
    keys: Vec<String>,
    sink: (u16, Arc<Counts>),
) -> Figures {
    let n = keys.len();
    let first_key = keys[0].clone();
    let database = BenchDb::create(backend, args.postgres.as_deref(), encryption);
    let data = database.dir.path().display().to_string();
    let smtp = format!("smtp://127.0.0.1:{}", sink.0);
    let (workers, batch) = (args.workers.to_string(), args.batch.to_string());
    let pool_size = (args.workers + 4).to_string();
    let settings = Settings::from_vars([
        ("EDL_DATABASE_URL", database.url.as_str()),
        ("EDL_DATA_DIR", data.as_str()),
        ("EDL_SMTP_URL", smtp.as_str()),
        ("EDL_ENCRYPTION", encryption),
        ("EDL_OUTBOX_WORKERS", workers.as_str()),
        ("EDL_OUTBOX_BATCH_SIZE", batch.as_str()),
        ("EDL_DATABASE_POOL_SIZE", pool_size.as_str()),
        ("EDL_SCHEDULER_INTERVAL", "24h"),
        ("EDL_SMTP_TIMEOUT", "30s"),
    ])
    .expect("settings");
    let pool = edl::startup::prepare_database(&settings)
        .await
        .expect("the database is ready");
    let transport =
        edl::mail::transport::Transport::from_settings(&settings).expect("the SMTP transport");
    let mailer = Mailer::new(&settings).expect("the list key");
    let link_key: Vec<u8> = (0u8..32).collect();
    let ctx = Context::new(
        Arc::new(settings.clone()),
        mailer,
        link_key,
        Clock::system(),
    )
    .expect("the context");

    add_members(&pool, Arc::new(keys), ctx.policy.version).await;
    let (release_id, disclosure) = approved_release(&pool, &settings, Utc::now()).await;
    // The service ticks at the early-disclosure moment and its workers send just after it:
    // the clock moves there for the tick and the workers alike.
    let at = disclosure.max(Utc::now()) + chrono::Duration::minutes(1);
    ctx.clock.advance(at - Utc::now());

    // (a) The tick that queues one row per member, then (b) delivery by the workers, which
    // start with the tick, as in the service.
    let counts = sink.1;
    let (messages_before, bytes_before) = (
        counts.messages.load(Ordering::Acquire),
        counts.bytes.load(Ordering::Relaxed),
    );
    let rss_before_kib = proc_kib("VmRSS").unwrap_or(0);
    let peak_reset = reset_peak();
    let (stop_sampler, sampler_stopped) = watch::channel(false);
    let sampler = sample_rss(sampler_stopped);
    let delivery = edl::startup::delivery(&ctx, &pool, &transport);
    let (stop_workers, stopped) = watch::channel(false);
    let started = Instant::now();
    let handles = edl::startup::spawn_workers(&settings, &delivery, &stopped, "bench");
    let tick_ctx = ctx.clone();
    let tick = on_db(&pool, move |c| {
        let now = tick_ctx.clock.now();
        distribution::distribute(c, &tick_ctx, now).map_err(|e| DbError::Task(e.to_string()))
    })
    .await;
    ctx.mailer.wake_workers();
    let queue_time = started.elapsed();
    assert_eq!(tick.mailed, n, "one embargoed row per member");
    let goal = n as u64;
    let mut last = (0, Instant::now());
    loop {
        let received = counts.messages.load(Ordering::Acquire) - messages_before;
        if received >= goal {
            break;
        }
        if received != last.0 {
            last = (received, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            let (sent, other) = count_sent(&pool).await;
            panic!(
                "delivery stalled at {received} of {goal} received ({sent} sent, {other} failed or held)"
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The sink has every message; the last outcomes are being recorded.
    loop {
        let (sent, other) = count_sent(&pool).await;
        assert_eq!(other, 0, "no embargoed row failed or was held");
        if sent as u64 >= goal {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivery_time = started.elapsed();
    let hwm_kib = peak_reset.then(|| proc_kib("VmHWM")).flatten();
    let _ = stop_sampler.send(true);
    let sampled_peak_kib = sampler.await.expect("the memory sampler");
    edl::startup::stop_workers(&stop_workers, handles).await;
    let bytes = counts.bytes.load(Ordering::Relaxed) - bytes_before;
    assert_eq!(
        counts.messages.load(Ordering::Acquire) - messages_before,
        goal,
        "each member got one message"
    );

    let sample: OutboxRow = on_db(&pool, move |c| {
        Ok(outbox::table
            .inner_join(edl::db::schema::outbox_bodies::table)
            .filter(outbox::release_id.eq(release_id))
            .filter(outbox::template.eq(EMBARGOED))
            .order(outbox::id)
            .select(OutboxRow::as_select())
            .first(c)?)
    })
    .await;
    let one_message = reference(
        &ctx,
        &sample,
        &first_key,
        settings.encryption,
        args.reference_samples,
    );
    // The members' keys, read back for the sealed reference only (the product's run above did
    // not hold them in memory).
    let member_keys: Vec<(String, String)> = on_db(&pool, |c| {
        Ok(members::table
            .order(members::id)
            .select((members::security_alias, members::pgp_key.assume_not_null()))
            .load(c)?)
    })
    .await;
    drop(delivery);
    drop(pool);

    // (c) The reference: lettre alone, the same mail to as many members, as many connections.
    let (messages_before, bytes_before) = (
        counts.messages.load(Ordering::Acquire),
        counts.bytes.load(Ordering::Relaxed),
    );
    let reference_reset = reset_peak();
    let started = Instant::now();
    lettre_alone(&sample, n, args.workers as usize, sink.0).await;
    let reference_time = started.elapsed();
    let reference_peak_kib = if reference_reset {
        proc_kib("VmHWM").unwrap_or(0)
    } else {
        0
    };
    assert_eq!(
        counts.messages.load(Ordering::Acquire) - messages_before,
        goal,
        "the reference sent every message"
    );
    let reference_bytes = counts.bytes.load(Ordering::Relaxed) - bytes_before;

    // (d) lettre sending the same sealed messages: each member's key read and judged, the
    // message built, signed and encrypted by the product's own builder, then sent.
    let messages_before = counts.messages.load(Ordering::Acquire);
    let started = Instant::now();
    lettre_sealed(
        &ctx,
        &sample,
        Arc::new(member_keys),
        settings.encryption,
        args.workers as usize,
        sink.0,
    )
    .await;
    let sealed_time = started.elapsed();
    assert_eq!(
        counts.messages.load(Ordering::Acquire) - messages_before,
        goal,
        "the sealed reference sent every message"
    );
    Figures {
        members: n,
        queue_time,
        delivery_time,
        bytes,
        rss_before_kib,
        peak_kib: hwm_kib.unwrap_or(sampled_peak_kib),
        one_message,
        reference_time,
        reference_bytes,
        reference_peak_kib,
        sealed_time,
    }
}

/// A connection of the references: lettre's SMTP connection on a socket with `TCP_NODELAY`.
async fn reference_connection(port: u16) -> lettre::transport::smtp::client::AsyncSmtpConnection {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the sink");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    lettre::transport::smtp::client::AsyncSmtpConnection::connect_with_transport(
        Box::new(tcp),
        &lettre::transport::smtp::extension::ClientId::Domain("reference.example".into()),
    )
    .await
    .expect("an SMTP connection")
}

/// lettre alone: `n` messages with the sample's text, HTML and the patch, each to a member of
/// its own, built with lettre's builder just before it is sent, over `connections` connections
/// kept open (lettre's SMTP connection on sockets with `TCP_NODELAY`, as the product opens
/// them; lettre's pooled transport leaves Nagle's algorithm on and would measure the 40 ms
/// delayed acknowledgement instead of lettre).
async fn lettre_alone(sample: &OutboxRow, n: usize, connections: usize, port: u16) {
    use lettre::message::{header, Mailbox, MultiPart, SinglePart};
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (next, sample) = (next.clone(), sample.clone());
        tasks.spawn(async move {
            let mut conn = reference_connection(port).await;
            let from: Mailbox = "Security list <edl@project.example>".parse().expect("from");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let to: Mailbox = format!("security@{}", domain_of(i)).parse().expect("to");
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(sample.subject.clone())
                    .multipart(
                        MultiPart::mixed()
                            .multipart(MultiPart::alternative_plain_html(
                                sample.body_text.clone(),
                                sample.body_html.clone(),
                            ))
                            .singlepart(
                                SinglePart::builder()
                                    .header(
                                        header::ContentType::parse("text/x-diff; charset=utf-8")
                                            .expect("type"),
                                    )
                                    .header(header::ContentDisposition::attachment(
                                        "0001-normalize-paths.patch",
                                    ))
                                    .body(PATCH.to_owned()),
                            ),
                    )
                    .expect("a message");
                conn.send(message.envelope(), &message.formatted())
                    .await
                    .expect("the sink takes it");
            }
            let _ = conn.quit().await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a reference connection");
    }
}

/// lettre sending each member the message the product sends it, built and sealed by the
/// product's own builder (the member's key read and judged, the message signed and, unless
/// encryption is off, encrypted), over `connections` kept-open connections: the work no list
/// manager can skip, without the product's queue, checks and records.
async fn lettre_sealed(
    ctx: &Context,
    sample: &OutboxRow,
    keys: Arc<Vec<(String, String)>>,
    encryption: Encryption,
    connections: usize,
    port: u16,
) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (next, sample, keys) = (next.clone(), sample.clone(), keys.clone());
        let (from, signer) = (ctx.mailer.from.clone(), ctx.mailer.signer.clone());
        tasks.spawn(async move {
            let mut conn = reference_connection(port).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some((alias, key)) = keys.get(i).cloned() else {
                    break;
                };
                let (from, signer, sample) = (from.clone(), signer.clone(), sample.clone());
                let message = tokio::task::spawn_blocking(move || {
                    let seal = if encryption == Encryption::Off {
                        Seal::Signed
                    } else {
                        Seal::Encrypted {
                            to: Box::new(
                                member_key::usable(&key, &alias, Utc::now()).expect("a usable key"),
                            ),
                            outer_subject: ENCRYPTED_SUBJECT.to_owned(),
                        }
                    };
                    let envelope = Envelope {
                        message_id: sample.message_id.clone(),
                        recipient: alias,
                        subject: sample.subject.clone(),
                        text: sample.body_text.clone(),
                        html: sample.body_html.clone(),
                        attachments: vec![Attachment {
                            filename: "0001-normalize-paths.patch".into(),
                            content: PATCH.as_bytes().to_vec(),
                        }],
                        seal,
                    };
                    build_message(&from, &envelope, &signer).expect("the message builds")
                })
                .await
                .expect("building");
                conn.send(message.envelope(), &message.formatted())
                    .await
                    .expect("the sink takes it");
            }
            let _ = conn.quit().await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a reference connection");
    }
}

fn per_second(count: u64, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64().max(1e-9)
}

fn report(backend: Backend, mode: &str, f: &Figures) {
    let n = f.members as u64;
    println!("{backend:?}, {} members, {mode}", f.members);
    println!(
        "  edl       : queued in {:.2} s, all delivered {:.2} s after the tick started = {:.0} msg/s ({:.1} KiB each)",
        f.queue_time.as_secs_f64(),
        f.delivery_time.as_secs_f64(),
        per_second(n, f.delivery_time),
        f.bytes as f64 / 1024.0 / n.max(1) as f64
    );
    println!(
        "  lettre    : {:.2} s = {:.0} msg/s ({:.1} KiB each)",
        f.reference_time.as_secs_f64(),
        per_second(n, f.reference_time),
        f.reference_bytes as f64 / 1024.0 / n.max(1) as f64
    );
    println!(
        "  sealed    : lettre sending the same sealed messages: {:.2} s = {:.0} msg/s",
        f.sealed_time.as_secs_f64(),
        per_second(n, f.sealed_time)
    );
    println!(
        "  ratio     : edl at {:.2}x lettre's rate, {:.2}x lettre's rate with the same sealed messages",
        f.reference_time.as_secs_f64() / f.delivery_time.as_secs_f64().max(1e-9),
        f.sealed_time.as_secs_f64() / f.delivery_time.as_secs_f64().max(1e-9)
    );
    println!(
        "  memory    : RSS {:.0} MiB before the tick, peak {:.0} MiB through delivery; lettre alone peaks at {:.0} MiB",
        mib(f.rss_before_kib),
        mib(f.peak_kib),
        mib(f.reference_peak_kib)
    );
    let (check, build) = f.one_message;
    println!("  one message on one thread: key check {check:?}, build {build:?}");
    // One line for the parent to collect.
    println!(
        "RESULT {backend:?} {} {:.3} {:.3} {:.3} {} {} {:.3}",
        f.members,
        f.queue_time.as_secs_f64(),
        f.delivery_time.as_secs_f64(),
        f.reference_time.as_secs_f64(),
        f.peak_kib,
        f.reference_peak_kib,
        f.sealed_time.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    if let Some(backend) = args.child {
        let n = args.sizes[0];
        let started = Instant::now();
        let keys = tokio::task::spawn_blocking(move || member_keys(n))
            .await
            .expect("member keys");
        println!(
            "  ({} member keys generated in {:.1} s, not timed)",
            keys.len(),
            started.elapsed().as_secs_f64()
        );
        let sink = start_sink().await;
        let figures = run_mode(&args, backend, &args.mode, keys, sink).await;
        report(backend, &args.mode, &figures);
        return;
    }
    println!(
        "sizes: {:?}, outbox workers and lettre connections: {}, batch: {}, mode: {}, cores: {}",
        args.sizes,
        args.workers,
        args.batch,
        args.mode,
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    let mut backends = vec![("sqlite", Backend::Sqlite)];
    if args.postgres.is_some() {
        backends.push(("postgres", Backend::Postgres));
    }
    let mut table = Vec::new();
    for (name, _) in &backends {
        for n in &args.sizes {
            // A process per run, so each starts with the memory of a fresh service.
            let mut command = std::process::Command::new(std::env::current_exe().expect("self"));
            command.args([
                "--child",
                name,
                "--members",
                &n.to_string(),
                "--workers",
                &args.workers.to_string(),
                "--batch",
                &args.batch.to_string(),
                "--mode",
                &args.mode,
                "--reference-samples",
                &args.reference_samples.to_string(),
            ]);
            if let Some(url) = &args.postgres {
                command.args(["--postgres", url]);
            }
            let output = command.output().expect("run a child");
            let text = String::from_utf8_lossy(&output.stdout);
            print!("{text}");
            assert!(
                output.status.success(),
                "the {name} run at {n} members failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) {
                table.push(line.to_owned());
            }
        }
    }
    println!();
    println!("| backend | members | edl: queued / all delivered | edl msg/s | lettre, plain | msg/s | edl / plain | lettre, same sealed mail | msg/s | edl / sealed | peak RSS edl / plain lettre |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for line in table {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n: f64 = f[1].parse().expect("members");
        let (queue, all, reference): (f64, f64, f64) = (
            f[2].parse().expect("queue"),
            f[3].parse().expect("delivery"),
            f[4].parse().expect("reference"),
        );
        let (peak, reference_peak): (u64, u64) =
            (f[5].parse().expect("peak"), f[6].parse().expect("peak"));
        let sealed: f64 = f[7].parse().expect("sealed");
        println!(
            "| {} | {} | {queue:.2} s / {all:.2} s | {:.0} | {reference:.2} s | {:.0} | {:.2} | {sealed:.2} s | {:.0} | {:.2} | {:.0} / {:.0} MiB |",
            f[0],
            f[1],
            n / all,
            n / reference,
            reference / all,
            n / sealed,
            sealed / all,
            mib(peak),
            mib(reference_peak)
        );
    }
}
