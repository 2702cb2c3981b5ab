//! Mail delivery through the outbox, over real SMTP to a server on loopback.

use std::collections::HashMap;
use std::time::Duration;

use diesel::Connection;
use edl::db;
use edl::domain::OutboxStatus::{
    Failed as FAILED, Queued as QUEUED, Sending as SENDING, Sent as SENT,
};
use edl::mail::outbox;
use edl::mail::transport::Transport;
use edl::mail::worker::Worker;

use pgp::composed::Deserializable;

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{eventually, Backend, TestApp};
use crate::on_both_backends;

const WAIT: Duration = Duration::from_secs(20);

on_both_backends!(
    queued_mail_is_delivered_over_smtp,
    an_smtp_outage_delays_but_loses_nothing,
    a_row_whose_worker_died_is_sent_after_its_lease_expires,
    smtp_451_is_retried_and_550_is_failed_with_its_reason,
    a_server_that_keeps_deferring_is_given_up_after_max_attempts,
    concurrent_workers_send_each_message_exactly_once,
    a_long_batch_is_sent_once_and_every_delivery_recorded,
    one_requests_inserts_are_kept_prepared,
    mail_enqueued_in_a_rolled_back_transaction_is_never_sent,
    a_dedupe_key_makes_the_second_enqueue_a_no_op,
    without_smtp_mail_is_written_as_eml_files,
);

async fn app_with_smtp(
    backend: Backend,
    smtp: &SmtpServer,
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let url = smtp.url();
    let mut vars = vec![("EDL_SMTP_URL", url.as_str())];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(backend, &vars, None).await
}

/// One test message to each of `n` members' aliases.
async fn enqueue_for_members(app: &TestApp, n: usize) {
    let recipients: Vec<String> = (0..n)
        .map(|i| format!("security@member{i}.example"))
        .collect();
    let refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    app.enqueue_test_mail(&refs).await;
}

/// An SMTP transport to the test server, with a 5 s deadline.
fn transport_to(smtp: &SmtpServer) -> Transport {
    Transport::smtp(
        &edl::config::Secret::new(smtp.url()),
        Duration::from_secs(5),
    )
    .expect("transport")
}

async fn queued_mail_is_delivered_over_smtp(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let Some(app) = app_with_smtp(backend, &smtp, &[]).await else {
        return;
    };
    let ids = app
        .enqueue_test_mail(&["security@vendor-a.example", "psirt@vendor-b.example"])
        .await;

    let received = eventually(WAIT, "two messages at the SMTP server", || async {
        let r = smtp.received();
        (r.len() == 2).then_some(r)
    })
    .await;
    let rows = eventually(WAIT, "both rows marked sent", || async {
        let rows = app.outbox_rows().await;
        rows.iter().all(|r| r.status == SENT).then_some(rows)
    })
    .await;
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), ids);

    let mut recipients: Vec<_> = received.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        vec!["psirt@vendor-b.example", "security@vendor-a.example"]
    );
    for message in &received {
        assert_eq!(message.mail_from, "edl@localhost");
        let subject = message.header("Subject").expect("a subject");
        assert!(subject.contains("Test message"), "{subject}");
        // The Message-ID the row recorded is the one the recipient sees.
        let message_id = message.header("Message-ID").expect("a Message-ID");
        let row = rows
            .iter()
            .find(|r| r.message_id == message_id)
            .expect("the row of this message");
        assert!(message.rcpt_to.contains(&row.recipient));
        assert_eq!(row.attempts, 1);
        assert!(row.sent_at.is_some());
        // Signed by the list: the first part is the alternative, the second the signature.
        let parsed = message.parsed();
        assert_eq!(parsed.ctype.mimetype, "multipart/signed");
        assert!(!message.encrypted, "only embargoed mail is encrypted");
        let (signed, signature) = crate::helpers::signed_content(&message.data);
        let (signature, _) =
            pgp::composed::DetachedSignature::from_string(&signature).expect("a signature");
        signature
            .verify(app.state.mailer.signer.public_key(), &signed)
            .expect("the list's signature verifies");
        // Both parts arrive, the text one readable as text.
        let alternative = &parsed.subparts[0];
        let text = alternative
            .subparts
            .iter()
            .find(|p| p.ctype.mimetype == "text/plain")
            .expect("text part");
        assert!(text
            .get_body()
            .expect("body")
            .contains("requested by the test suite"));
        assert!(alternative
            .subparts
            .iter()
            .any(|p| p.ctype.mimetype == "text/html"));
    }
}

async fn an_smtp_outage_delays_but_loses_nothing(backend: Backend) {
    let mut smtp = SmtpServer::start().await;
    smtp.stop().await;
    let Some(app) = app_with_smtp(backend, &smtp, &[]).await else {
        return;
    };
    let recipients: Vec<String> = (0..5)
        .map(|i| format!("security@vendor{i}.example"))
        .collect();
    let refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    app.enqueue_test_mail(&refs).await;

    // While the server is down the outage is found and recorded, and every row waits in the
    // queue (the workers pause together rather than each row trying on its own).
    let reason = eventually(WAIT, "the outage noticed", || async {
        let rows = app.outbox_rows().await;
        let waiting = rows.iter().all(|r| r.status == QUEUED);
        rows.iter()
            .find_map(|r| r.last_error.clone())
            .filter(|_| waiting)
    })
    .await;
    assert!(smtp.received().is_empty());
    assert!(!reason.is_empty());

    smtp.restart().await;
    eventually(
        WAIT,
        "every row sent after the server came back",
        || async {
            app.outbox_rows()
                .await
                .iter()
                .all(|r| r.status == SENT)
                .then_some(())
        },
    )
    .await;
    // Exactly one copy of each message: no loss, no duplicate.
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for message in smtp.received() {
        *per_id
            .entry(message.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 5, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
}

async fn a_row_whose_worker_died_is_sent_after_its_lease_expires(backend: Backend) {
    let smtp = SmtpServer::start().await;
    // No background workers: this test plays each worker itself.
    let Some(app) = app_with_smtp(backend, &smtp, &[("EDL_OUTBOX_WORKERS", "0")]).await else {
        return;
    };
    let ids = app.enqueue_test_mail(&["security@vendor.example"]).await;

    // A worker claims the row with a short lease, then dies without sending or recording.
    let now = app.clock.now_naive();
    let claimed = app
        .with_db(move |conn| {
            outbox::claim(conn, "dead-worker", 10, Duration::from_millis(1500), now)
        })
        .await;
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(claimed[0].status, SENDING);

    let transport = transport_to(&smtp);
    let survivor = app.worker("survivor", transport);
    // While the lease holds, nobody else may take the row.
    let pass = survivor.pass(None).await.expect("pass");
    assert_eq!(pass.claimed, 0);
    assert!(smtp.received().is_empty());

    app.advance(chrono::Duration::milliseconds(1600));
    let pass = survivor.pass(None).await.expect("pass");
    assert_eq!((pass.claimed, pass.sent), (1, 1));
    assert_eq!(smtp.received().len(), 1);
    let row = &app.outbox_rows().await[0];
    assert_eq!(row.status, SENT);
    assert_eq!(row.leased_by.as_deref(), Some("survivor"));
    assert_eq!(
        row.attempts, 2,
        "the dead worker's claim counts as an attempt"
    );

    let id = ids[0];
    // The dead worker cannot renew a lease it lost, nor overwrite the outcome when it wakes up.
    let now = app.clock.now_naive();
    let renewed = app
        .with_db(move |conn| {
            outbox::renew(conn, &[id], "dead-worker", Duration::from_secs(60), now)
        })
        .await;
    assert!(renewed.is_empty());
    let recorded = app
        .with_db(move |conn| outbox::mark_failed(conn, ids[0], "dead-worker", "late", now))
        .await;
    assert!(!recorded);
    assert_eq!(app.outbox_rows().await[0].status, SENT);
}

async fn smtp_451_is_retried_and_550_is_failed_with_its_reason(backend: Backend) {
    let smtp = SmtpServer::start().await;
    smtp.reply_to_next_data(&["451 4.3.0 try again later"]);
    smtp.refuse_recipient("gone@vendor.example", "550 5.1.1 no such mailbox");
    let Some(app) = app_with_smtp(backend, &smtp, &[("EDL_OUTBOX_WORKERS", "1")]).await else {
        return;
    };
    let deferred = app.enqueue_test_mail(&["security@vendor.example"]).await[0];

    let rows = eventually(WAIT, "the deferred message sent on retry", || async {
        let rows = app.outbox_rows().await;
        (rows[0].status == SENT).then_some(rows)
    })
    .await;
    assert_eq!(rows[0].id, deferred);
    assert_eq!(rows[0].attempts, 2, "one 451, then success");
    assert_eq!(smtp.received().len(), 1);

    let refused = app.enqueue_test_mail(&["gone@vendor.example"]).await[0];
    let row = eventually(WAIT, "the refused message marked failed", || async {
        app.outbox_rows()
            .await
            .into_iter()
            .find(|r| r.id == refused && r.status == FAILED)
    })
    .await;
    assert_eq!(row.attempts, 1, "a permanent refusal is not retried");
    let reason = row.last_error.expect("a reason");
    assert!(
        reason.contains("550") || reason.contains("no such mailbox"),
        "{reason}"
    );
    app.outbox_idle().await;
    assert_eq!(
        app.outbox_rows()
            .await
            .iter()
            .find(|r| r.id == refused)
            .map(|r| r.attempts),
        Some(1)
    );
    assert_eq!(smtp.received().len(), 1);
}

async fn a_server_that_keeps_deferring_is_given_up_after_max_attempts(backend: Backend) {
    let smtp = SmtpServer::start().await;
    smtp.reply_to_every_data(Some("421 4.7.0 too busy"));
    let Some(app) = app_with_smtp(backend, &smtp, &[("EDL_OUTBOX_MAX_ATTEMPTS", "3")]).await else {
        return;
    };
    app.enqueue_test_mail(&["security@vendor.example"]).await;
    let row = eventually(WAIT, "the row marked failed", || async {
        app.outbox_rows()
            .await
            .into_iter()
            .find(|r| r.status == FAILED)
    })
    .await;
    assert_eq!(row.attempts, 3);
    let reason = row.last_error.expect("reason");
    assert!(reason.starts_with("gave up after 3 attempts"), "{reason}");
    assert!(smtp.received().is_empty());
}

async fn concurrent_workers_send_each_message_exactly_once(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let Some(app) = app_with_smtp(
        backend,
        &smtp,
        &[("EDL_OUTBOX_WORKERS", "0"), ("EDL_OUTBOX_BATCH_SIZE", "5")],
    )
    .await
    else {
        return;
    };
    enqueue_for_members(&app, 40).await;

    let transport = transport_to(&smtp);
    let workers: Vec<Worker> = (0..4)
        .map(|i| app.worker(&format!("worker-{i}"), transport.clone()))
        .collect();
    // Four workers race over the same rows until nothing is left.
    let mut handles = Vec::new();
    for worker in workers {
        handles.push(tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let pass = worker.pass(None).await.expect("pass");
                if pass.claimed == 0 {
                    return sent;
                }
                sent += pass.sent;
            }
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await.expect("worker task");
    }
    assert_eq!(total, 40);
    let received = smtp.received();
    assert_eq!(received.len(), 40);
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").expect("id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "a message was sent twice");
    assert!(app
        .outbox_rows()
        .await
        .iter()
        .all(|r| r.status == SENT && r.attempts == 1));
}

/// Deliveries are recorded several to a statement, during the batch and at its end: none may
/// be left unrecorded (and sent again later) or recorded twice.
/// On PostgreSQL the inserts every request makes are kept prepared: the mail of one request
/// and an audit entry are one prepared statement each, however often they run, and what each
/// call stores is its own. A mailing's larger chunk is not kept: its statement would be one
/// more per row count. (SQLite lists no statements; there the same calls must store what they
/// are given.)
async fn one_requests_inserts_are_kept_prepared(backend: Backend) {
    use diesel::prelude::*;
    use edl::db::schema::{audit_log, outbox as outbox_table, outbox_bodies};
    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mailer = app.state.mailer.clone();
    let (prepared, bodies) = app
        .with_db(move |c| {
            let mails = |round: usize, n: usize| -> Vec<outbox::NewMail> {
                (0..n)
                    .map(|i| {
                        mailer
                            .render(
                                "test_message",
                                &format!("r{round}m{i}@vendor.example"),
                                serde_json::json!({ "requested_by": format!("round {round}") }),
                            )
                            .expect("the test message renders")
                    })
                    .collect()
            };
            for round in 0..3 {
                let added = mailer.enqueue_many(c, &mails(round, 2)).expect("queued");
                assert_eq!(added, 2);
                edl::audit::record(
                    c,
                    "t@example.org",
                    "test.kept",
                    &format!("round:{round}"),
                    serde_json::json!({}),
                )?;
            }
            assert_eq!(mailer.enqueue_many(c, &mails(9, 9)).expect("queued"), 9);
            let prepared = match c {
                db::DbConnection::Postgresql(pg) => Some(
                    diesel::sql_query("SELECT statement FROM pg_prepared_statements")
                        .load::<Prepared>(pg)?
                        .into_iter()
                        .map(|p| p.statement)
                        .collect::<Vec<_>>(),
                ),
                db::DbConnection::Sqlite(_) => None,
            };
            let bodies: Vec<(String, String)> = outbox_table::table
                .inner_join(outbox_bodies::table)
                .order(outbox_table::id)
                .select((outbox_table::recipient, outbox_bodies::body_text))
                .load(c)?;
            let audited: i64 = audit_log::table
                .filter(audit_log::action.eq("test.kept"))
                .count()
                .get_result(c)?;
            assert_eq!(audited, 3);
            Ok((prepared, bodies))
        })
        .await;
    // Each row has its own body: a kept statement binds each call's values.
    assert_eq!(bodies.len(), 15);
    for (recipient, body) in &bodies {
        let round = &recipient[1..2];
        assert!(
            body.contains(&format!("round {round}")),
            "{recipient}: {body}"
        );
    }
    let Some(prepared) = prepared else {
        return;
    };
    let kept = |start: &str| -> Vec<&String> {
        prepared.iter().filter(|s| s.starts_with(start)).collect()
    };
    assert_eq!(kept("INSERT INTO audit_log").len(), 1, "{prepared:#?}");
    let rows = |statement: &str| statement.matches("), (").count() + 1;
    let outbox_rows: Vec<usize> = kept("INSERT INTO \"outbox\"")
        .iter()
        .map(|s| rows(s))
        .collect();
    assert_eq!(outbox_rows, [2], "{prepared:#?}");
    let body_rows: Vec<usize> = kept("INSERT INTO \"outbox_bodies\"")
        .iter()
        .map(|s| rows(s))
        .collect();
    assert_eq!(body_rows, [2], "{prepared:#?}");
}

async fn a_long_batch_is_sent_once_and_every_delivery_recorded(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let Some(app) = app_with_smtp(
        backend,
        &smtp,
        &[
            ("EDL_OUTBOX_WORKERS", "0"),
            ("EDL_OUTBOX_BATCH_SIZE", "100"),
        ],
    )
    .await
    else {
        return;
    };
    enqueue_for_members(&app, 45).await;
    let transport = transport_to(&smtp);
    let worker = app.worker("worker-long", transport);

    let pass = worker.pass(None).await.expect("pass");
    assert_eq!((pass.claimed, pass.sent), (45, 45));
    let rows = app.outbox_rows().await;
    assert_eq!(rows.len(), 45);
    for row in &rows {
        assert_eq!(row.status, SENT, "row {} left unrecorded", row.id);
        assert_eq!(row.attempts, 1);
        assert!(row.sent_at.is_some() && row.lease_until.is_none());
    }
    // Nothing is left for a second pass, so nothing is sent twice.
    assert_eq!(worker.pass(None).await.expect("pass").claimed, 0);
    let mut to: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m.header("To").expect("to"))
        .collect();
    to.sort();
    to.dedup();
    assert_eq!((smtp.received().len(), to.len()), (45, 45));
}

async fn mail_enqueued_in_a_rolled_back_transaction_is_never_sent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mailer = app.state.mailer.clone();
    let result = db::run(&app.pool, move |conn| {
        conn.transaction(|conn| {
            mailer.enqueue(
                conn,
                "test_message",
                "security@vendor.example",
                serde_json::json!({"requested_by": "x"}),
                None,
            )?;
            // The change that caused the mail fails after it was enqueued.
            Err::<(), _>(edl::mail::MailError::Db(db::DbError::Task(
                "the change failed".into(),
            )))
        })
    })
    .await;
    assert!(result.is_err());
    assert!(app.outbox_rows().await.is_empty());
}

async fn a_dedupe_key_makes_the_second_enqueue_a_no_op(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_OUTBOX_WORKERS", "0")], None).await else {
        return;
    };
    app.expect_undone_mail("no worker runs: the test counts rows, it does not send them");
    let mailer = app.state.mailer.clone();
    let (first, second) = db::run(&app.pool, move |conn| {
        let context = serde_json::json!({"requested_by": "x"});
        let key = Some("release:1:rev:1:member:7".to_owned());
        let first = mailer.enqueue(
            conn,
            "test_message",
            "security@vendor.example",
            &context,
            key.clone(),
        )?;
        let second = conn.transaction(|conn| {
            mailer.enqueue(
                conn,
                "test_message",
                "security@vendor.example",
                &context,
                key,
            )
        })?;
        Ok::<_, edl::mail::MailError>((first, second))
    })
    .await
    .expect("enqueue");
    assert!(first.is_some());
    assert_eq!(second, None);
    assert_eq!(app.outbox_rows().await.len(), 1);
}

async fn without_smtp_mail_is_written_as_eml_files(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.enqueue_test_mail(&["security@vendor.example"]).await;
    let row = eventually(WAIT, "the row sent", || async {
        app.outbox_rows()
            .await
            .into_iter()
            .find(|r| r.status == SENT)
    })
    .await;
    let files: Vec<_> = std::fs::read_dir(&app.mail_dir)
        .expect("the mail folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(&files[0]).expect("read .eml");
    let parsed = mailparse::parse_mail(&raw).expect("an .eml file is a message");
    use mailparse::MailHeaderMap;
    assert_eq!(
        parsed.headers.get_first_value("Message-ID"),
        Some(row.message_id)
    );
    assert_eq!(
        parsed.headers.get_first_value("To").as_deref(),
        Some("security@vendor.example")
    );
}
