//! The upstream guard tried as an attacker would: every mislabelled Envoy upload of the corpus
//! in `tests/corpus/` is filed as the project's own through the release page, and must be
//! refused or flagged so that approval is refused; nothing of it may reach a member. Ordinary
//! project patches must go through unflagged. The test prints the catch rate and the number of
//! false positives, and fails unless every variant is caught and no project patch is flagged.

use std::path::{Path, PathBuf};

use chrono::Utc;
use edl::accounts::Role;
use edl::domain::ReleaseKind;
use edl::releases::release::{self, Actor, AdvisoryForm, Plan};
use edl::releases::{patch, upstream};

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_corpus_of_mislabelled_envoy_uploads_is_caught_and_project_patches_are_not,
    the_approver_sees_each_patchs_files_and_signals_and_a_refiled_patch_stays_marked,
    an_imported_tree_flags_open_patches_and_declared_paths_are_the_projects,
);

const PASSWORD: &str = "tangerine-kettle-orbit-42";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[derive(Debug, Clone)]
struct Case {
    file: String,
    class: String,
    expect: String,
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("the manifest");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            Case {
                file: cols.next().unwrap_or_default().to_owned(),
                class: cols.next().unwrap_or_default().to_owned(),
                expect: cols.next().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

struct Site {
    app: TestApp,
    planner: Browser,
    approver: Browser,
    planner_actor: Actor,
    envoy: i64,
}

/// Plans a release with one advisory, as the planner; returns its page's path.
async fn release(site: &Site, n: usize) -> (i64, String) {
    let calendar = site.app.settings.calendar();
    let planner = site.planner_actor.clone();
    let id = site
        .app
        .with_db(move |c| {
            let plan = Plan {
                kind: ReleaseKind::ZeroDay,
                title: format!("Security release 1.9.{n}"),
                release_lines: vec!["1.9.5".into()],
                patch_tuesday: None,
                release_at: Some(Utc::now() + chrono::Duration::days(3)),
                upstream_id: None,
                notice_hours: 24,
                members_may_deploy: false,
                notes: String::new(),
            };
            let err = |e: release::ReleaseError| edl::db::DbError::Task(e.to_string());
            let id = release::plan(c, &calendar, &plan, &planner, Utc::now()).map_err(err)?;
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-40000".into(),
                severity: "high".into(),
                summary: "A header validation bypass.".into(),
                fixed_versions: "1.9.5".into(),
                ..AdvisoryForm::default()
            }
            .parse()
            .expect("advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(err)?;
            Ok(id)
        })
        .await;
    (id, format!("/manage/releases/{id}"))
}

/// What became of one upload filed under `origin` ("" for the project's own).
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Refused(String),
    Flagged,
    Clean,
}

async fn upload(site: &Site, page: &str, id: i64, file: &str, origin: &str) -> Fate {
    let bytes = std::fs::read(corpus().join(file)).expect("a corpus file");
    let name = file.rsplit('/').next().unwrap_or(file);
    let response = site
        .planner
        .post_file(
            &format!("{page}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", origin),
                ("security_fix", "yes"),
            ],
            (name, &bytes),
        )
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match status {
        422 => Fate::Refused(text),
        303 => {
            let patches = site.app.with_db(move |c| release::patches_of(c, id)).await;
            let stored = patches.last().expect("the stored patch");
            if stored.blocks() {
                Fate::Flagged
            } else {
                Fate::Clean
            }
        }
        other => panic!("{file}: the upload answered {other}: {text}"),
    }
}

/// The message a re-rendered form shows beside `field`, whatever the form's id prefix.
fn field_error(html: &str, field: &str) -> Option<String> {
    let pattern = format!(r#"<p class="error" id="[a-z]+-{field}-error">([^<]*)</p>"#);
    let found = regex::Regex::new(&pattern).ok()?.captures(html)?;
    Some(found[1].to_owned())
}

/// Lines of a file's diff long enough to be recognisable: none may appear on a page.
fn recognisable_lines(bytes: &[u8]) -> Vec<String> {
    patch::analyse(bytes)
        .map(|a| {
            a.lines
                .into_iter()
                .filter(|l| {
                    matches!(
                        l.place,
                        patch::LinePlace::Added(_) | patch::LinePlace::Removed(_)
                    )
                })
                .map(|l| l.text.trim().to_owned())
                .filter(|t| t.len() >= 24)
                .collect()
        })
        .unwrap_or_default()
}

/// The service with two release managers (one plans, one approves) and one member.
async fn open_site(backend: Backend) -> Option<Site> {
    let app = TestApp::spawn_with_smtp(backend, &[("EDL_SCHEDULER_INTERVAL", "1h")]).await?;
    let planner_id = app
        .add_account(
            "rm1@project.example",
            "Rel One",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    app.add_account(
        "rm2@project.example",
        "Rel Two",
        &[Role::ReleaseManager],
        PASSWORD,
    )
    .await;
    app.add_member("Alpha", "alpha.example", "active", 1).await;
    let planner = Browser::open(&app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;
    let approver = Browser::open(&app).await;
    approver.sign_in("rm2@project.example", PASSWORD).await;
    let envoy = app
        .with_db(|c| {
            Ok(upstream::find_by_slug(c, upstream::ENVOY_SLUG)?
                .expect("envoy")
                .id)
        })
        .await;
    Some(Site {
        app,
        planner,
        approver,
        planner_actor: Actor {
            account_id: planner_id,
            email: "rm1@project.example".into(),
        },
        envoy,
    })
}

async fn the_corpus_of_mislabelled_envoy_uploads_is_caught_and_project_patches_are_not(
    backend: Backend,
) {
    let Some(site) = open_site(backend).await else {
        return;
    };
    let cases = manifest();

    // Before the operator declares them, the project's look-alike paths are flagged: Envoy's
    // layout is recognised whoever wrote the file.
    let mut prefixes: Vec<String> = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        if let Some(prefix) = case.expect.strip_prefix("clean-if-declared:") {
            let (id, page) = release(&site, 2000 + n).await;
            let fate = upload(&site, &page, id, &case.file, "").await;
            assert_eq!(
                fate,
                Fate::Flagged,
                "{} before its folder is declared",
                case.file
            );
            if !prefixes.iter().any(|p| p == prefix) {
                prefixes.push(prefix.to_owned());
            }
        }
    }
    // The operator declares them as the project's own; from then on they are not flagged.
    for prefix in prefixes {
        site.app
            .with_db(move |c| {
                upstream::add_project_path(c, &prefix, "The project's own proxy filters.", "test")
                    .map_err(|e| edl::db::DbError::Task(e.to_string()))
            })
            .await;
    }

    let mut missed = Vec::new();
    let mut caught = 0;
    let mut false_positives = Vec::new();
    let mut clean = 0;
    let mut leaked = Vec::new();
    let envoy_origin = site.envoy.to_string();
    for (n, case) in cases.iter().enumerate() {
        if case.class == "freetext" {
            continue;
        }
        let (id, page) = release(&site, n).await;
        // A variant that is caught only once its other half was filed as Envoy's.
        let first = case
            .expect
            .strip_prefix("caught-after:")
            .or_else(|| case.expect.strip_prefix("caught-with:"));
        if let Some(original) = first {
            let (other_id, other_page) = release(&site, 1000 + n).await;
            let filed = upload(&site, &other_page, other_id, original, &envoy_origin).await;
            assert!(
                !matches!(filed, Fate::Refused(_)) || original.contains(".gz"),
                "{original} filed as Envoy's: {filed:?}"
            );
        }
        let fate = upload(&site, &page, id, &case.file, "").await;
        let is_envoy = case.expect.starts_with("caught");
        match (&fate, is_envoy) {
            (Fate::Clean, true) => missed.push(case.file.clone()),
            (_, true) => caught += 1,
            (Fate::Clean, false) => clean += 1,
            (other, false) => false_positives.push(format!("{}: {other:?}", case.file)),
        }
        if fate == Fate::Flagged {
            // A flagged patch blocks approval, whoever approves.
            let refused = site.approver.post(&format!("{page}/approve"), &[]).await;
            assert_eq!(
                refused.status(),
                409,
                "{}: approved while flagged",
                case.file
            );
            // The approver sees files and signals, never the patch's lines.
            let html = site.approver.get(&page).await.text().await.expect("page");
            let bytes = std::fs::read(corpus().join(&case.file)).expect("file");
            for line in recognisable_lines(&bytes) {
                let shown = line
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;");
                if html.contains(&line) || html.contains(&shown) {
                    leaked.push(format!("{}: the page shows {line:?}", case.file));
                }
            }
        }
    }

    // Free text: each field refuses the pasted material and names the field.
    let mut free_caught = 0;
    let mut free_missed = Vec::new();
    for case in cases.iter().filter(|c| c.class == "freetext") {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(corpus().join(&case.file)).expect("json"),
        )
        .expect("a JSON case");
        let field = json["field"].as_str().expect("field").to_owned();
        let value = json["value"].as_str().expect("value").to_owned();
        let response = match field.as_str() {
            "title" | "notes" => {
                let mut fields = vec![
                    ("kind", "zero-day".to_owned()),
                    ("title", "Security release 1.9.5".to_owned()),
                    ("release_lines", "1.9.5".to_owned()),
                ];
                fields.retain(|(k, _)| *k != field.as_str());
                fields.push((
                    if field == "title" { "title" } else { "notes" },
                    value.clone(),
                ));
                let refs: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                site.planner.post("/manage/releases", &refs).await
            }
            _ => {
                let (_, page) = release(&site, 5000).await;
                let mut fields = vec![
                    ("cve_id", "CVE-2026-40001".to_owned()),
                    ("severity", "high".to_owned()),
                    ("summary", "A bypass.".to_owned()),
                    ("affected_versions", "1.9.4".to_owned()),
                    ("fixed_versions", "1.9.5".to_owned()),
                    ("cvss_vector", String::new()),
                ];
                fields.retain(|(k, _)| *k != field.as_str());
                let key: &str = match field.as_str() {
                    "summary" => "summary",
                    "affected_versions" => "affected_versions",
                    "fixed_versions" => "fixed_versions",
                    _ => "cvss_vector",
                };
                fields.push((key, value.clone()));
                let refs: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                site.planner
                    .post(&format!("{page}/advisories"), &refs)
                    .await
            }
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match field_error(&text, &field) {
            Some(message) if status == 422 => {
                eprintln!("{} ({field}): {message}", case.file);
                free_caught += 1;
            }
            _ => free_missed.push(format!("{} ({field}): {status}", case.file)),
        }
    }

    // Nothing of any of it reaches a member: no release could be approved, and the scheduler
    // mails nothing; the public pages, feed and calendar list nothing.
    let ctx = site.app.state.ctx.clone();
    let tick = site
        .app
        .with_db(move |c| {
            edl::releases::distribution::distribute(c, &ctx, Utc::now() + chrono::Duration::days(2))
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
        .await;
    assert_eq!(tick.mailed, 0);
    site.app.outbox_idle().await;
    assert!(site.app.smtp().to("security@alpha.example").is_empty());
    for path in ["/releases", "/feed.atom", "/calendar.ics"] {
        let body = site.app.get(path).await.text().await.expect("body");
        assert!(
            !body.contains("Security release 1.9."),
            "{path} lists a release"
        );
    }

    // Nor does any mail to anyone (sign-in notices, approvals, reminders) carry a line of it,
    // in any part, decoded.
    let envoy_lines: Vec<(String, String)> = cases
        .iter()
        .filter(|c| c.expect.starts_with("caught") && c.class != "freetext")
        .flat_map(|c| {
            let bytes = std::fs::read(corpus().join(&c.file)).expect("file");
            recognisable_lines(&bytes)
                .into_iter()
                .map(|line| (c.file.clone(), line))
                .collect::<Vec<_>>()
        })
        .collect();
    for message in site.app.smtp().received() {
        let decoded = message.decoded();
        let attached: Vec<String> = message
            .attachments()
            .into_iter()
            .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned())
            .collect();
        for (file, line) in &envoy_lines {
            assert!(
                !decoded.contains(line.as_str())
                    && !attached.iter().any(|a| a.contains(line.as_str())),
                "a mail carries {line:?} of {file}"
            );
        }
    }

    let total = cases
        .iter()
        .filter(|c| c.expect.starts_with("caught") && c.class != "freetext")
        .count();
    let free_total = cases.iter().filter(|c| c.class == "freetext").count();
    let projects = cases
        .iter()
        .filter(|c| !c.expect.starts_with("caught"))
        .count();
    eprintln!(
        "envoy guard ({backend:?}): caught {caught} of {total} mislabelled uploads and {free_caught} of {free_total} free-text variants; {} false positives among {projects} project patches",
        false_positives.len()
    );
    assert!(missed.is_empty(), "missed: {missed:#?}");
    assert!(
        free_missed.is_empty(),
        "free text let through: {free_missed:#?}"
    );
    assert!(
        false_positives.is_empty(),
        "project patches flagged or refused: {false_positives:#?}"
    );
    assert!(leaked.is_empty(), "patch content on a page: {leaked:#?}");
    assert_eq!(caught, total);
    assert_eq!(clean, projects);
}

/// The `<article>` of one patch on the release page.
fn patch_article<'a>(html: &'a str, filename: &str) -> &'a str {
    let heading = format!("<h3>{filename}");
    let start = html
        .find(&heading)
        .unwrap_or_else(|| panic!("{filename} is listed"));
    let end = html[start..]
        .find("</article>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

async fn the_approver_sees_each_patchs_files_and_signals_and_a_refiled_patch_stays_marked(
    backend: Backend,
) {
    let Some(site) = open_site(backend).await else {
        return;
    };
    let (id, page) = release(&site, 1).await;
    let flagged = "envoy/vendored-02-third-party-proxy.patch";
    let from_envoy = "envoy/depth-05-no-prefix.patch";
    let project = "project/project-03-ca-cap-ttl.patch";
    assert_eq!(upload(&site, &page, id, flagged, "").await, Fate::Flagged);
    let envoy_origin = site.envoy.to_string();
    assert_eq!(
        upload(&site, &page, id, from_envoy, &envoy_origin).await,
        Fate::Clean
    );
    assert_eq!(upload(&site, &page, id, project, "").await, Fate::Clean);

    // Each patch is listed with every file it touches and the lines it adds and removes.
    let html = site.approver.get(&page).await.text().await.expect("page");
    for file in [flagged, from_envoy, project] {
        let name = file.rsplit('/').next().expect("name");
        let article = patch_article(&html, name);
        let analysis = patch::analyse(&std::fs::read(corpus().join(file)).expect("file"))
            .expect("a readable patch");
        assert!(!analysis.changes.is_empty());
        for f in &analysis.changes {
            let shown = format!(
                "<code>{}</code> <span class=\"muted\">+{} −{}</span>",
                f.path, f.added, f.removed
            );
            assert!(article.contains(&shown), "{name} lists {shown}: {article}");
        }
    }
    // The flagged one says why, as an alert; the Envoy one is withheld from mail.
    let article = patch_article(&html, "vendored-02-third-party-proxy.patch");
    assert!(
        article.contains("Looks like an upstream&#39;s")
            || article.contains("Looks like an upstream's")
    );
    assert!(article.contains("<ul class=\"alert\"><li>"), "{article}");
    assert!(
        article.contains("jwt_authn"),
        "the signal names the path: {article}"
    );
    assert!(patch_article(&html, "depth-05-no-prefix.patch").contains("withheld from mail"));
    assert!(!html.contains("re-filed"), "nothing re-filed yet");
    let refused = site.approver.post(&format!("{page}/approve"), &[]).await;
    assert_eq!(refused.status(), 409);

    // A reclassification needs a reason.
    let patches = site.app.with_db(move |c| release::patches_of(c, id)).await;
    let patch_id = |name: &str| {
        patches
            .iter()
            .find(|p| p.filename == name)
            .expect("stored")
            .id
    };
    let (flagged_id, envoy_id) = (
        patch_id("vendored-02-third-party-proxy.patch"),
        patch_id("depth-05-no-prefix.patch"),
    );
    let no_reason = site
        .planner
        .post(
            &format!("{page}/patches/{flagged_id}/reclassify"),
            &[("origin", ""), ("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status(), 422);
    let reason = "Our fork's rewrite of the JWT check, reviewed by the security lead.";
    for patch in [flagged_id, envoy_id] {
        let done = site
            .planner
            .post(
                &format!("{page}/patches/{patch}/reclassify"),
                &[("origin", ""), ("reason", reason)],
            )
            .await;
        assert_eq!(done.status(), 303, "reclassified");
    }
    // A later revision (one more advisory) still marks both, with who, when and why.
    let advisory = site
        .planner
        .post(
            &format!("{page}/advisories"),
            &[
                ("cve_id", "CVE-2026-40002"),
                ("severity", "medium"),
                ("summary", "A second bypass."),
                ("fixed_versions", "1.9.5"),
            ],
        )
        .await;
    assert_eq!(advisory.status(), 303);
    let html = site.approver.get(&page).await.text().await.expect("page");
    for (name, from) in [
        ("vendored-02-third-party-proxy.patch", "project"),
        ("depth-05-no-prefix.patch", "Envoy"),
    ] {
        let article = patch_article(&html, name);
        assert!(
            article.contains("<span class=\"tag bad\">re-filed</span>"),
            "{article}"
        );
        assert!(article.contains(&format!("{from} → project")), "{article}");
        assert!(article.contains("by rm1@project.example"), "{article}");
        assert!(
            article.contains("Our fork&#39;s rewrite") || article.contains("Our fork's rewrite")
        );
    }
    assert!(
        patch_article(&html, "vendored-02-third-party-proxy.patch").contains("(it was flagged)")
    );
    assert!(!patch_article(&html, "project-03-ca-cap-ttl.patch").contains("re-filed"));

    // `edl release show` says the same.
    let shown = site.app.edl(&["release", "show", &id.to_string()], "");
    assert!(shown.status.success(), "{shown:?}");
    let out = String::from_utf8_lossy(&shown.stdout);
    for needle in [
        "vendored-02-third-party-proxy.patch",
        "RE-FILED",
        "  file            third_party/proxy/source/extensions/filters/http/jwt_authn/authenticator.cc +",
        "  looks like      ",
        "  origin changed  Envoy -> project by rm1@project.example",
        "(was flagged) by rm1@project.example",
        reason,
    ] {
        assert!(out.contains(needle), "`edl release show` lacks {needle:?}:\n{out}");
    }
    assert_eq!(out.matches("RE-FILED").count(), 2, "{out}");
}

/// A patch with no Envoy signal the layout knows, to a file Envoy's tree has.
const TOOLS_PATCH: &str = "diff --git a/mirror/tools/code_format/check_format.py b/mirror/tools/code_format/check_format.py
--- a/mirror/tools/code_format/check_format.py
+++ b/mirror/tools/code_format/check_format.py
@@ -10,3 +10,4 @@ def check(path):
     lines = read(path)
+    lines = [line.rstrip() for line in lines if not line.startswith('#!')]
     return lines
";

async fn an_imported_tree_flags_open_patches_and_declared_paths_are_the_projects(backend: Backend) {
    let Some(site) = open_site(backend).await else {
        return;
    };
    let (id, page) = release(&site, 1).await;
    let bytes = TOOLS_PATCH.as_bytes().to_vec();
    let response = site
        .planner
        .post_file(
            &format!("{page}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", ""),
                ("security_fix", "yes"),
            ],
            ("format.patch", &bytes),
        )
        .await;
    assert_eq!(response.status(), 303);
    let flagged = || async {
        site.app
            .with_db(move |c| release::patches_of(c, id))
            .await
            .iter()
            .any(|p| p.blocks())
    };
    assert!(!flagged().await, "the layout alone does not know tools/");

    // The operator imports Envoy's file list; the open release's patch is now flagged.
    let listing = site.app.db.folder().join("envoy-files.txt");
    std::fs::write(
        &listing,
        "README.md\n.github/workflows/ci.yml\ntools/code_format/check_format.py\nsource/common/http/utility.cc\n",
    )
    .expect("listing");
    let out = site.app.edl(
        &[
            "upstream",
            "import-tree",
            "envoy",
            listing.to_str().expect("path"),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Imported 4 paths of envoy's tree; 1 patch(es)"),
        "{said}"
    );
    assert!(flagged().await);
    let refused = site.approver.post(&format!("{page}/approve"), &[]).await;
    assert_eq!(refused.status(), 409);
    // A fix that adds a file to Envoy's tree is not in any list taken before it: the layout
    // still recognises it.
    let (id3, page3) = release(&site, 3).await;
    let new_file =
        "diff --git a/source/common/http/header_guard.cc b/source/common/http/header_guard.cc
new file mode 100644
--- /dev/null
+++ b/source/common/http/header_guard.cc
@@ -0,0 +1,2 @@
+// Rejects header blocks that exceed the configured count.
+bool guardHeaderCount(unsigned count, unsigned limit) { return count <= limit; }
";
    let response = site
        .planner
        .post_file(
            &format!("{page3}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", ""),
                ("security_fix", "yes"),
            ],
            ("guard.patch", new_file.as_bytes()),
        )
        .await;
    assert_eq!(response.status(), 303);
    let stored = site.app.with_db(move |c| release::patches_of(c, id3)).await;
    assert!(
        stored.iter().all(|p| p.blocks()),
        "a new file of Envoy's tree is flagged"
    );
    let listed = site.app.edl(&["upstream", "list"], "");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("4 files imported"),
        "{listed:?}"
    );
    // An empty list is refused and keeps the imported one.
    std::fs::write(&listing, "\n\n").expect("listing");
    let empty = site.app.edl(
        &[
            "upstream",
            "import-tree",
            "envoy",
            listing.to_str().expect("path"),
        ],
        "",
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("lists no paths"));

    // A declared project path: needs a reason and two folders, is listed, cannot be declared
    // twice, and lets the project's look-alike files through.
    let no_reason = site.app.edl(
        &[
            "upstream",
            "project-path",
            "add",
            "source/extensions/filters/http/istio_stats/",
            "--reason",
            " ",
        ],
        "",
    );
    assert!(!no_reason.status.success());
    let too_short = site.app.edl(
        &[
            "upstream",
            "project-path",
            "add",
            "source",
            "--reason",
            "Ours.",
        ],
        "",
    );
    assert!(!too_short.status.success());
    let prefix = "source/extensions/filters/http/istio_stats/";
    let add = |reason: &'static str| {
        site.app.edl(
            &[
                "upstream",
                "project-path",
                "add",
                prefix,
                "--reason",
                reason,
            ],
            "",
        )
    };
    assert!(add("The mesh's own stats filter.").status.success());
    let again = add("Twice.");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already"));
    let paths = site.app.edl(&["upstream", "project-path", "list"], "");
    let paths = String::from_utf8_lossy(&paths.stdout);
    assert!(
        paths.contains(prefix) && paths.contains("The mesh's own stats filter."),
        "{paths}"
    );
    let (id2, page2) = release(&site, 2).await;
    let fate = upload(
        &site,
        &page2,
        id2,
        "project/lookalike-01-istio-stats-label-cap.patch",
        "",
    )
    .await;
    assert_eq!(fate, Fate::Clean);
}
