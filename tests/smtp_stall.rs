//! A mail server that stalls: one that accepts the connection and never greets, and one that
//! takes the whole message and never answers it. Each attempt ends at the SMTP deadline
//! (`EDL_SMTP_TIMEOUT`) as a temporary failure, nothing is delivered twice, and every message
//! goes out once the server answers again. Also how connections are kept: one carries many
//! messages, and one the server closed meanwhile is replaced without a retry.

use std::collections::HashMap;
use std::time::Duration;

use edl::domain::OutboxStatus;
use edl::mail::transport::Transport;

use crate::helpers::smtp::{Silence, SmtpServer};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// The deadline the tests set, and how long an attempt may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(1);
const HUNG: Duration = Duration::from_secs(20);

on_both_backends!(
    a_server_that_never_greets,
    a_server_that_never_answers_the_data,
    while_the_server_is_down_the_workers_wait_together,
    sigterm_stops_the_service_within_the_smtp_deadline,
    a_stalled_send_does_not_hold_back_the_record_of_the_mail_before_it,
    messages_share_a_connection,
    a_connection_the_server_closed_while_idle_is_replaced,
);

async fn a_server_that_never_greets(backend: Backend) {
    stalls_then_recovers(backend, Silence::Greeting).await;
}

async fn a_server_that_never_answers_the_data(backend: Backend) {
    stalls_then_recovers(backend, Silence::EndOfData).await;
}

async fn stalls_then_recovers(backend: Backend, silence: Silence) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    // No background workers: the test runs each pass itself, so it sees every attempt end.
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("EDL_SMTP_URL", url.as_str()),
            ("EDL_SMTP_TIMEOUT", "1s"),
            ("EDL_OUTBOX_WORKERS", "0"),
        ],
        None,
    )
    .await
    else {
        return;
    };
    smtp.go_silent(Some(silence));
    let ids = app
        .enqueue_test_mail(&["security@vendor.example", "psirt@other.example"])
        .await;
    let transport =
        Transport::smtp(&edl::config::Secret::new(url.clone()), DEADLINE).expect("transport");
    let worker = app.worker("stalled", transport);

    for round in 0..2 {
        let pass = tokio::time::timeout(HUNG, worker.pass(None))
            .await
            .unwrap_or_else(|_| panic!("{silence:?}: an attempt hung past the SMTP deadline"))
            .expect("pass");
        // The first message ends at the deadline as a temporary failure; the server counts as
        // gone, so the rest of the batch goes back to the queue untried.
        assert_eq!(
            (
                pass.claimed,
                pass.sent,
                pass.retried,
                pass.failed,
                pass.released
            ),
            (2, 0, 1, 0, 1),
            "{silence:?}, round {round}"
        );
        let rows = app.outbox_rows().await;
        assert!(
            rows.iter().all(|r| r.status == OutboxStatus::Queued),
            "{silence:?}"
        );
        let tried: Vec<_> = rows.iter().filter(|r| r.last_error.is_some()).collect();
        assert!(!tried.is_empty(), "{silence:?}");
        for row in tried {
            let reason = row.last_error.clone().unwrap_or_default();
            assert!(
                reason.contains("did not finish the exchange within 1s"),
                "{silence:?}: {reason}"
            );
        }
        assert!(smtp.received().is_empty(), "{silence:?}: nothing was taken");
        // Past the retry backoff, the next pass tries again.
        app.advance(chrono::Duration::minutes(30));
    }

    smtp.go_silent(None);
    let pass = tokio::time::timeout(HUNG, worker.pass(None))
        .await
        .expect("a pass against a server that answers")
        .expect("pass");
    assert_eq!((pass.claimed, pass.sent), (2, 2), "{silence:?}");
    let rows = app.outbox_rows().await;
    assert!(
        rows.iter().all(|r| r.status == OutboxStatus::Sent),
        "{silence:?}"
    );
    assert_eq!(rows.len(), ids.len());
    each_received_once(&smtp, 2);
}

/// A mail server that is gone (connections refused): one message finds out, the workers pause
/// together with a growing backoff, and nobody hammers the server message by message. When it
/// is back, everything leaves once.
async fn while_the_server_is_down_the_workers_wait_together(backend: Backend) {
    let mut smtp = SmtpServer::start().await;
    let url = smtp.url();
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("EDL_SMTP_URL", url.as_str()),
            ("EDL_SMTP_TIMEOUT", "1s"),
            ("EDL_OUTBOX_WORKERS", "0"),
            ("EDL_OUTBOX_RETRY_BASE", "10s"),
            ("EDL_OUTBOX_RETRY_MAX", "1m"),
        ],
        None,
    )
    .await
    else {
        return;
    };
    smtp.stop().await;
    let ids = app
        .enqueue_test_mail(&[
            "a@one.example",
            "b@two.example",
            "c@three.example",
            "d@four.example",
            "e@five.example",
        ])
        .await;
    let transport =
        Transport::smtp(&edl::config::Secret::new(url.clone()), DEADLINE).expect("transport");
    let first = app.worker("first", transport.clone());
    let second = app.worker("second", transport);

    let pass = first.pass(None).await.expect("pass");
    assert_eq!(
        (pass.claimed, pass.retried, pass.released),
        (5, 1, 4),
        "one message finds the server gone; the rest go back untried"
    );
    let attempts: i32 = app.outbox_rows().await.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts, 1, "only one attempt was made and counted");
    // Every worker of the process waits: the second claims nothing during the pause.
    assert_eq!(second.pass(None).await.expect("pass"), Default::default());

    // Still down after the pause (10 seconds at most, with jitter): again one attempt, and
    // every worker pauses again at once.
    app.advance(chrono::Duration::seconds(11));
    let pass = second.pass(None).await.expect("pass");
    assert_eq!((pass.retried, pass.released), (1, 4));
    assert_eq!(
        first.pass(None).await.expect("pass"),
        Default::default(),
        "paused again"
    );
    let attempts: i32 = app.outbox_rows().await.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts, 2, "two attempts in all, one per pause");

    smtp.restart().await;
    app.advance(chrono::Duration::minutes(2));
    let mut sent = 0;
    for _ in 0..3 {
        sent += first.pass(None).await.expect("pass").sent;
    }
    assert_eq!(sent, ids.len());
    assert!(app
        .outbox_rows()
        .await
        .iter()
        .all(|r| r.status == OutboxStatus::Sent));
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.received() {
        *copies
            .entry(message.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(copies.len(), ids.len(), "{copies:?}");
    assert!(copies.values().all(|n| *n == 1), "{copies:?}");
}

/// `edl serve` whose worker is waiting on a server that never answers the end of the data:
/// SIGTERM stops it within the SMTP deadline (and a little), and the message is still queued,
/// not lost and not marked sent.
async fn sigterm_stops_the_service_within_the_smtp_deadline(backend: Backend) {
    use std::process::Stdio;
    let Some(db) = crate::helpers::TestDb::create(backend) else {
        return;
    };
    let smtp = SmtpServer::start().await;
    smtp.go_silent(Some(Silence::EndOfData));
    let url = smtp.url();
    let dir = db.folder();
    let database = db.url.clone();
    let bind = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let vars = [
        ("EDL_DATABASE_URL", database.as_str()),
        ("EDL_SMTP_URL", url.as_str()),
        ("EDL_SMTP_TIMEOUT", "3s"),
        ("EDL_OUTBOX_RETRY_BASE", "100ms"),
        ("EDL_OUTBOX_RETRY_MAX", "200ms"),
        ("EDL_BIND", bind.as_str()),
    ];
    // A message in the queue: `edl mail test` queues it and, the server stalling, leaves it
    // queued for a retry.
    let queued = crate::helpers::run_edl(
        &dir,
        &vars,
        &["mail", "test", "--to", "psirt@vendor.example"],
        "",
    );
    assert!(!queued.status.success(), "the stalled send is reported");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edl"))
        .current_dir(&dir)
        .env_clear()
        .envs(vars.iter().copied())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("edl serve starts");
    // Wait until the service's worker is inside the stalled exchange.
    crate::helpers::eventually(HUNG, "the worker to wait on the server", || async {
        (smtp.stalled_sessions() >= 2).then_some(())
    })
    .await;
    let pid = child.id().expect("pid").to_string();
    let asked = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::time::timeout(HUNG, child.wait_with_output())
        .await
        .expect("edl serve stops after SIGTERM")
        .expect("exit status");
    let took = asked.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {log}", output.status);
    // The deadline is 3 seconds; shutting the rest down takes well under the remaining slack.
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(7),
        "SIGTERM took {took:?}: {log}"
    );
    assert!(smtp.received().is_empty());
    let status = crate::helpers::run_edl(&dir, &vars, &["mail", "status"], "");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.starts_with("queued 1  sending 0  sent 0"), "{text}");
}

/// A worker's messages go over a connection it keeps open, not one connection each.
async fn messages_share_a_connection(backend: Backend) {
    let Some((smtp, app)) = without_workers(backend).await else {
        return;
    };
    let url = smtp.url();
    let recipients: Vec<String> = (0..12)
        .map(|i| format!("psirt{i}@vendor.example"))
        .collect();
    let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
    app.enqueue_test_mail(&recipients).await;
    let transport =
        Transport::smtp(&edl::config::Secret::new(url.clone()), DEADLINE).expect("transport");
    let worker = app.worker("pooled", transport);
    let pass = worker.pass(None).await.expect("pass");
    assert_eq!((pass.claimed, pass.sent), (12, 12));
    assert_eq!(smtp.received().len(), 12);
    assert_eq!(smtp.sessions(), 1, "one connection carried every message");
}

/// A server that closes a kept connection between messages (an idle timeout, a limit of
/// messages per connection) costs nothing: the next message goes on a new connection, once,
/// without a retry or a pause.
async fn a_connection_the_server_closed_while_idle_is_replaced(backend: Backend) {
    let Some((smtp, app)) = without_workers(backend).await else {
        return;
    };
    let url = smtp.url();
    smtp.hang_up_after_each_message(true);
    app.enqueue_test_mail(&["a@vendor.example", "b@vendor.example", "c@vendor.example"])
        .await;
    let transport =
        Transport::smtp(&edl::config::Secret::new(url.clone()), DEADLINE).expect("transport");
    let worker = app.worker("reconnecting", transport);
    let pass = worker.pass(None).await.expect("pass");
    assert_eq!(
        (pass.claimed, pass.sent, pass.retried, pass.released),
        (3, 3, 0, 0)
    );
    let rows = app.outbox_rows().await;
    assert!(rows
        .iter()
        .all(|r| r.status == OutboxStatus::Sent && r.attempts == 1 && r.last_error.is_none()));
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.received() {
        *copies
            .entry(message.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(copies.len(), 3, "{copies:?}");
    assert!(copies.values().all(|n| *n == 1), "{copies:?}");
    assert_eq!(smtp.sessions(), 3);
}

/// A mail server and an app that sends only when a test runs a worker's pass itself.
/// Deliveries are recorded several at a time; a message that left just before the server
/// stalled is recorded while the next one waits, not when that wait ends: a crash during the
/// wait must not send it again.
async fn a_stalled_send_does_not_hold_back_the_record_of_the_mail_before_it(backend: Backend) {
    let Some((smtp, app)) = without_workers(backend).await else {
        return;
    };
    let ids = app
        .enqueue_test_mail(&["security@vendor.example", "psirt@other.example"])
        .await;
    let deadline = Duration::from_secs(5);
    let transport =
        Transport::smtp(&edl::config::Secret::new(smtp.url()), deadline).expect("transport");
    let worker = app.worker("slow", transport);
    smtp.stall_data_after(Some(1));
    let started = std::time::Instant::now();
    let stalled = worker.clone();
    let pass = tokio::spawn(async move { stalled.pass(None).await });

    crate::helpers::eventually(HUNG, "the second message to stall", || async {
        (smtp.stalled_sessions() == 1).then_some(())
    })
    .await;
    let first = crate::helpers::eventually(
        Duration::from_secs(2),
        "the first delivery to be recorded while the second waits",
        || async {
            let rows = app.outbox_rows().await;
            rows.into_iter()
                .find(|r| r.id == ids[0] && r.status == OutboxStatus::Sent)
        },
    )
    .await;
    assert!(
        started.elapsed() < deadline && !pass.is_finished(),
        "the first delivery was recorded only when the stalled send ended"
    );
    assert!(first.sent_at.is_some());
    assert_eq!(smtp.received().len(), 1);

    let pass = tokio::time::timeout(HUNG, pass)
        .await
        .expect("the pass ends at the deadline")
        .expect("the pass task")
        .expect("pass");
    assert_eq!((pass.claimed, pass.sent, pass.retried), (2, 1, 1));
    let second = app
        .outbox_rows()
        .await
        .into_iter()
        .find(|r| r.id == ids[1])
        .expect("the second row");
    assert_eq!(second.status, OutboxStatus::Queued);

    // Once the server answers again, only the second message goes out.
    smtp.stall_data_after(None);
    app.advance(chrono::Duration::minutes(30));
    let pass = tokio::time::timeout(HUNG, worker.pass(None))
        .await
        .expect("a pass against a server that answers")
        .expect("pass");
    assert_eq!((pass.claimed, pass.sent), (1, 1));
    each_received_once(&smtp, 2);
}

/// The server took `messages` messages, one copy of each.
fn each_received_once(smtp: &SmtpServer, messages: usize) {
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.received() {
        *copies
            .entry(message.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(copies.len(), messages, "{copies:?}");
    assert!(copies.values().all(|n| *n == 1), "{copies:?}");
}

async fn without_workers(backend: Backend) -> Option<(SmtpServer, TestApp)> {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(
        backend,
        &[("EDL_SMTP_URL", url.as_str()), ("EDL_OUTBOX_WORKERS", "0")],
        None,
    )
    .await?;
    Some((smtp, app))
}
