//! A mail server that stalls: one that accepts the connection and never greets, and one that
//! takes the whole message and never answers it. Each attempt ends at the SMTP deadline
//! (`EDL_SMTP_TIMEOUT`) as a temporary failure, nothing is delivered twice, and every message
//! goes out once the server answers again.

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
    // Exactly one copy of each message.
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in smtp.received() {
        *copies
            .entry(message.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.values().all(|n| *n == 1), "{copies:?}");
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

    // Still down after the pause: again one attempt, and a longer pause.
    app.advance(chrono::Duration::seconds(11));
    let pass = second.pass(None).await.expect("pass");
    assert_eq!((pass.retried, pass.released), (1, 4));
    app.advance(chrono::Duration::seconds(11));
    assert_eq!(
        first.pass(None).await.expect("pass"),
        Default::default(),
        "the pause doubled to 20 seconds"
    );

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
