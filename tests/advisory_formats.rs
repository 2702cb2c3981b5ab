//! A published release's OSV and CSAF 2.0 documents, fetched over HTTP and checked by validators
//! that share no code with the service (tests/validators/check_advisories.py: the official OSV
//! and CSAF schemas with jsonschema, and the BSI's CSAF mandatory tests under Node), and read back
//! as a consumer would. Before the release time the documents do not exist: every route answers
//! exactly as for a release that was never planned, whatever state the release is in.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use edl::accounts::Role;
use edl::domain::ReleaseKind;
use edl::releases::approval;
use edl::releases::distribution::{self, Tick};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Release, Upload};
use serde_json::Value;

use crate::helpers::{err, utc, validators, Backend, Browser, TestApp, PATCH};
use crate::on_both_backends;

on_both_backends!(
    published_documents_pass_independent_validators,
    no_document_exists_before_publication_nor_for_another_releases_cve,
);

/// The virtualenv's Python with the OSV and CSAF validators; `None` to skip.
fn validator_python() -> Option<PathBuf> {
    let node = validators::venv().join("node");
    let node = node.display();
    validators::python_for(
        "check_advisories.py",
        "OSV and CSAF validators (the CSAF mandatory tests need Node and npm)",
        &format!(
            " && mkdir -p {node} && cp tests/validators/package.json \
             tests/validators/package-lock.json {node}/ && npm ci --prefix {node} --omit=dev"
        ),
    )
}

/// Runs the validator of `kind` (`osv` or `csaf`) on `body`; returns its JSON summary of what it
/// read, or fails the test with every problem it found.
fn validate(python: &Path, kind: &str, body: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("temporary folder");
    let file = dir.path().join(format!("{kind}.json"));
    std::fs::write(&file, body).expect("write the document");
    let out = Command::new(python)
        .arg(validators::scripts().join("check_advisories.py"))
        .arg(kind)
        .arg(&file)
        .output()
        .expect("run the validator");
    assert!(
        out.status.success(),
        "the {kind} validator refused the document (exit {:?}):\n{}\n--- document ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
    serde_json::from_slice(&out.stdout).expect("the validator's summary is JSON")
}

const PASSWORD: &str = "tangerine-kettle-orbit-42";

const LIST_NAME: &str = "Mesh security early-disclosure list";
const PROJECT_NAME: &str = "Mesh";

/// One advisory as the release manager types it.
struct Typed {
    cve: &'static str,
    severity: &'static str,
    cvss: &'static str,
    summary: &'static str,
    affected: &'static str,
    fixed: &'static str,
}

fn typed(cve: &'static str) -> Typed {
    Typed {
        cve,
        severity: "medium",
        cvss: "",
        summary: "Header smuggling in the HTTP/2 codec.",
        affected: "1.9.0 to 1.9.4",
        fixed: "1.9.5",
    }
}

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    utc(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

struct Setup {
    app: TestApp,
    planner: Actor,
    approver: Actor,
}

async fn setup(backend: Backend) -> Option<Setup> {
    let app = TestApp::spawn_with_smtp(
        backend,
        &[
            ("EDL_SCHEDULER_INTERVAL", "1h"),
            ("EDL_LIST_NAME", LIST_NAME),
            ("EDL_PROJECT_NAME", PROJECT_NAME),
        ],
    )
    .await?;
    let mut actors = Vec::new();
    for (email, name) in [
        ("rm1@project.example", "Rel One"),
        ("rm2@project.example", "Rel Two"),
    ] {
        let account_id = app
            .add_account(email, name, &[Role::ReleaseManager], PASSWORD)
            .await;
        actors.push(Actor {
            account_id,
            email: email.into(),
        });
    }
    let approver = actors.pop().expect("two actors");
    let planner = actors.pop().expect("two actors");
    Some(Setup {
        app,
        planner,
        approver,
    })
}

/// Plans the Patch Tuesday release due after the app's now with these advisories and a patch,
/// and has the second release manager approve it when `approve` is set.
async fn release_with(
    s: &Setup,
    title: &str,
    lines: &[&str],
    advisories: Vec<Typed>,
    approve: bool,
) -> Release {
    let calendar = s.app.settings.calendar();
    let now = s.app.state.ctx.clock.now();
    let (planner, approver) = (s.planner.clone(), s.approver.clone());
    let title = title.to_owned();
    let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    s.app
        .with_db(move |c| {
            let plan = Plan {
                kind: ReleaseKind::PatchTuesday,
                title,
                release_lines: lines.clone(),
                patch_tuesday: None,
                release_at: None,
                upstream_id: None,
                notice_hours: 0,
                members_may_deploy: false,
                notes: "Internal notes, never public.".into(),
            };
            let id = release::plan(c, &calendar, &plan, &planner, now).map_err(err)?;
            for a in &advisories {
                let advisory = AdvisoryForm {
                    cve_id: a.cve.into(),
                    severity: a.severity.into(),
                    cvss_vector: a.cvss.into(),
                    summary: a.summary.into(),
                    affected_versions: a.affected.into(),
                    fixed_versions: a.fixed.into(),
                }
                .parse()
                .expect("a valid advisory");
                release::add_advisory(c, id, &advisory, &planner).map_err(err)?;
            }
            let upload = Upload {
                filename: "0001-normalize-paths.patch".into(),
                bytes: PATCH.as_bytes().to_vec(),
                release_line: lines[0].clone(),
                upstream_id: None,
                is_security_fix: true,
            };
            release::add_patch(c, id, &upload, &planner).map_err(err)?;
            if approve {
                approval::approve(c, id, &approver).map_err(err)?;
            }
            Ok(release::find(c, id)?.expect("release"))
        })
        .await
}

async fn find(s: &Setup, id: i64) -> Release {
    s.app
        .with_db(move |c| Ok(release::find(c, id)?.expect("release")))
        .await
}

/// Moves the app's clock to `at` and runs the scheduler's distribution then, as its next tick
/// would.
async fn pass_time_to(s: &Setup, at: DateTime<Utc>) -> Tick {
    s.app.move_to(at);
    let ctx = s.app.state.ctx.clone();
    let tick = s
        .app
        .with_db(move |c| distribution::distribute(c, &ctx, at).map_err(err))
        .await;
    s.app.state.mailer.wake_workers();
    tick
}

/// Announces and then publishes `r` by moving the clock past its early-disclosure moment and
/// then its release time.
async fn publish(s: &Setup, r: &Release) -> Release {
    let disclosure = utc(r.disclosure_at.expect("disclosure time"));
    assert_eq!(
        pass_time_to(s, disclosure + Duration::minutes(1))
            .await
            .announced,
        1
    );
    assert_eq!(
        pass_time_to(s, utc(r.release_at) + Duration::minutes(1))
            .await
            .published,
        1
    );
    find(s, r.id).await
}

/// The body and content type of a successful JSON answer.
async fn json_document(browser: &Browser, path: &str) -> Vec<u8> {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "GET {path}"
    );
    response.bytes().await.expect("body").to_vec()
}

async fn published_documents_pass_independent_validators(backend: Backend) {
    let Some(python) = validator_python() else {
        return;
    };
    let Some(s) = setup(backend).await else {
        return;
    };
    let planned = release_with(
        &s,
        "Security release 1.9.5, 1.8.6",
        &["1.9.5", "1.8.6"],
        vec![
            Typed {
                severity: "high",
                cvss: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                summary: "Authorization policy bypass with <crafted> paths & *more*.\n\n\
                          Requests with doubled slashes skip the policy.",
                affected: "1.9.0 to 1.9.4",
                fixed: "1.9.5",
                ..typed("CVE-2026-41001")
            },
            Typed {
                severity: "medium",
                cvss: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
                affected: "< 1.8.6",
                fixed: "1.8.6",
                ..typed("CVE-2026-41002")
            },
        ],
        true,
    )
    .await;
    let r = publish(&s, &planned).await;
    let published_at = rfc3339(r.published_at.expect("published"));
    let page = format!(
        "{}/releases/{}",
        s.app.settings.base_url.as_str().trim_end_matches('/'),
        r.id
    );
    let browser = Browser::open(&s.app).await;

    // OSV: every advisory of the release, in one array.
    let body = json_document(&browser, &format!("/releases/{}/osv.json", r.id)).await;
    let osv = validate(&python, "osv", &body);
    let documents = osv["documents"].as_array().expect("documents");
    let ids: Vec<&str> = documents
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["CVE-2026-41001", "CVE-2026-41002"]);
    for d in documents {
        // Published and modified at the release's publication, in UTC.
        assert_eq!(d["published"], published_at.as_str(), "{d}");
        assert_eq!(d["modified"], published_at.as_str(), "{d}");
        assert!(d["references"]
            .as_array()
            .expect("references")
            .iter()
            .any(|r| r["type"] == "ADVISORY" && r["url"] == page.as_str()));
    }
    assert_eq!(
        documents[0]["summary"],
        "Authorization policy bypass with <crafted> paths & *more*."
    );
    assert_eq!(documents[0]["severity"][0]["type"], "CVSS_V3");
    assert_eq!(documents[1]["severity"][0]["type"], "CVSS_V4");
    assert_eq!(
        documents[0]["affected"][0]["database_specific"]["fixed_versions"],
        "1.9.5"
    );
    assert_eq!(
        documents[1]["affected"][0]["database_specific"]["affected_versions"],
        "< 1.8.6"
    );

    // One advisory alone is the same document.
    let body = json_document(
        &browser,
        &format!("/releases/{}/osv/CVE-2026-41002.json", r.id),
    )
    .await;
    let one = validate(&python, "osv", &body);
    assert_eq!(one["documents"][0], documents[1]);

    // CSAF: the whole release as one security advisory.
    let body = json_document(&browser, &format!("/releases/{}/csaf.json", r.id)).await;
    let csaf = validate(&python, "csaf", &body);
    let csaf = &csaf["documents"][0];
    assert!(
        csaf["library_tests_run"].as_u64().expect("tests run") > 30,
        "{csaf}"
    );
    assert_eq!(csaf["category"], "csaf_security_advisory");
    assert_eq!(csaf["title"], "Security release 1.9.5, 1.8.6");
    assert_eq!(csaf["publisher"]["name"], PROJECT_NAME);
    assert_eq!(csaf["tracking"]["status"], "final");
    assert_eq!(
        csaf["tracking"]["initial_release_date"],
        published_at.as_str()
    );
    assert_eq!(
        csaf["tracking"]["current_release_date"],
        published_at.as_str()
    );
    assert!(csaf["references"]
        .as_array()
        .expect("references")
        .iter()
        .any(|r| r["category"] == "external" && r["url"] == page.as_str()));
    // What a consumer does with it: for each CVE, which versions of the product fix it.
    let mut names = std::collections::BTreeMap::new();
    fn collect(branches: &Value, names: &mut std::collections::BTreeMap<String, String>) {
        for b in branches.as_array().into_iter().flatten() {
            if let Some(id) = b["product"]["product_id"].as_str() {
                names.insert(id.to_owned(), b["name"].as_str().expect("name").to_owned());
            }
            collect(&b["branches"], names);
        }
    }
    collect(&csaf["product_tree"]["branches"], &mut names);
    let fixed_in = |v: &Value| -> Vec<String> {
        v["product_status"]["fixed"]
            .as_array()
            .expect("fixed")
            .iter()
            .map(|id| names[id.as_str().expect("id")].clone())
            .collect()
    };
    let vulnerabilities = csaf["vulnerabilities"].as_array().expect("vulnerabilities");
    let cves: Vec<&str> = vulnerabilities
        .iter()
        .map(|v| v["cve"].as_str().expect("cve"))
        .collect();
    assert_eq!(cves, ["CVE-2026-41001", "CVE-2026-41002"]);
    assert_eq!(fixed_in(&vulnerabilities[0]), ["1.9.5"]);
    assert_eq!(fixed_in(&vulnerabilities[1]), ["1.8.6"]);
    assert_eq!(vulnerabilities[0]["remediations"][0]["url"], page.as_str());
    assert_eq!(vulnerabilities[0]["scores"][0]["cvss_v3"]["baseScore"], 7.5);
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("Internal notes") && !text.contains("normalize-paths"),
        "no notes and no patch in a public document"
    );

    // The feed's publication entry links both, and the links lead to the documents.
    let feed = browser.get("/feed.atom").await.text().await.expect("feed");
    for (rel, path, title) in [
        ("alternate", "csaf.json", "CSAF 2.0 security advisory"),
        ("related", "osv.json", "OSV advisories"),
    ] {
        let href = format!("{page}/{path}");
        let link = format!(
            "<link href=\"{href}\" rel=\"{rel}\" type=\"application/json\" title=\"{title}\"/>"
        );
        assert!(feed.contains(&link), "{link} missing from\n{feed}");
        let path = href.trim_start_matches(s.app.settings.base_url.as_str().trim_end_matches('/'));
        json_document(&browser, path).await;
    }
}

/// The three routes of a release, the CVE route naming `cve`.
fn routes(id: i64, cve: &str) -> [String; 3] {
    [
        format!("/releases/{id}/osv.json"),
        format!("/releases/{id}/osv/{cve}.json"),
        format!("/releases/{id}/csaf.json"),
    ]
}

/// What a release that was never planned answers on the same route.
const NO_SUCH_RELEASE: i64 = 987_654_321;

/// `path` answers exactly as the same route of a release that does not exist: the same status,
/// content type and body, so nothing tells a prober that the release or the CVE exists.
async fn answers_as_nonexistent(browser: &Browser, path: &str, nonexistent: &str) {
    let mut seen = Vec::new();
    for p in [path, nonexistent] {
        let response = browser.get(p).await;
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").cloned();
        let body = response.text().await.expect("body");
        seen.push((status, content_type, body));
    }
    assert_eq!(seen[0].0, 404, "GET {path}: {}", seen[0].2);
    assert_eq!(
        seen[0], seen[1],
        "GET {path} differs from GET {nonexistent}"
    );
}

async fn no_document_exists_before_publication_nor_for_another_releases_cve(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let browser = Browser::open(&s.app).await;
    let check = |id: i64, cve: &'static str| {
        let browser = &browser;
        async move {
            for (path, nonexistent) in routes(id, cve).iter().zip(routes(NO_SUCH_RELEASE, cve)) {
                answers_as_nonexistent(browser, path, &nonexistent).await;
            }
        }
    };

    // Published on the first Patch Tuesday.
    let published = release_with(
        &s,
        "Security release 1.9.5",
        &["1.9.5"],
        vec![typed("CVE-2026-42001")],
        true,
    )
    .await;
    // Approved but not yet announced: embargoed; nothing at all is public.
    check(published.id, "CVE-2026-42001").await;
    let published = publish(&s, &published).await;
    assert_eq!(
        browser
            .get(&format!(
                "/releases/{}/osv/CVE-2026-42001.json",
                published.id
            ))
            .await
            .status(),
        200
    );

    // Two releases for the next Patch Tuesday, pre-announced; one is then cancelled.
    let announced = release_with(
        &s,
        "Security release 1.9.6",
        &["1.9.6"],
        vec![typed("CVE-2026-42002")],
        true,
    )
    .await;
    let cancelled = release_with(
        &s,
        "Security release 1.9.7",
        &["1.9.7"],
        vec![typed("CVE-2026-42003")],
        true,
    )
    .await;
    let disclosure = utc(announced.disclosure_at.expect("disclosure time"));
    assert_eq!(
        pass_time_to(&s, disclosure + Duration::minutes(1))
            .await
            .announced,
        2
    );
    let (ctx, planner, id) = (s.app.state.ctx.clone(), s.planner.clone(), cancelled.id);
    s.app
        .with_db(move |c| release::cancel(c, &ctx, id, "Fixed differently.", &planner).map_err(err))
        .await;
    // And for the Patch Tuesday after that: one approved (embargoed), one only planned.
    let embargoed = release_with(
        &s,
        "Security release 1.9.8",
        &["1.9.8"],
        vec![typed("CVE-2026-42004")],
        true,
    )
    .await;
    let planned = release_with(
        &s,
        "Security release 1.9.9",
        &["1.9.9"],
        vec![typed("CVE-2026-42005")],
        false,
    )
    .await;
    assert!(embargoed
        .disclosure_at
        .is_some_and(|d| utc(d) > s.app.state.ctx.clock.now()));

    // The announced release has a public page, but no document until the release time.
    assert_eq!(
        browser
            .get(&format!("/releases/{}", announced.id))
            .await
            .status(),
        200
    );
    check(announced.id, "CVE-2026-42002").await;
    check(cancelled.id, "CVE-2026-42003").await;
    check(embargoed.id, "CVE-2026-42004").await;
    check(planned.id, "CVE-2026-42005").await;

    // The published release's id with another release's CVE: the same 404, so the id of a
    // published release cannot be used to learn whether an embargoed CVE exists anywhere.
    for cve in [
        "CVE-2026-42002",
        "CVE-2026-42003",
        "CVE-2026-42004",
        "CVE-2026-42005",
        "CVE-2026-49999",
    ] {
        answers_as_nonexistent(
            &browser,
            &format!("/releases/{}/osv/{cve}.json", published.id),
            &format!("/releases/{NO_SUCH_RELEASE}/osv/{cve}.json"),
        )
        .await;
    }
    // An id that is no number, and a CVE route with no CVE, are as absent.
    answers_as_nonexistent(
        &browser,
        "/releases/abc/csaf.json",
        &format!("/releases/{NO_SUCH_RELEASE}/csaf.json"),
    )
    .await;
    answers_as_nonexistent(
        &browser,
        &format!("/releases/{}/osv/.json", published.id),
        &format!("/releases/{NO_SUCH_RELEASE}/osv/.json"),
    )
    .await;

    // Once published, the announced release's documents appear; the cancelled one's never.
    let at = utc(announced.release_at) + Duration::minutes(1);
    assert_eq!(pass_time_to(&s, at).await.published, 1);
    assert_eq!(
        browser
            .get(&format!("/releases/{}/csaf.json", announced.id))
            .await
            .status(),
        200
    );
    check(cancelled.id, "CVE-2026-42003").await;
}
