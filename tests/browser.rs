//! The whole path in a real browser: headless Chromium driven through chromedriver. A vendor
//! applies (first with a mistake), confirms the alias from the mail, two reviewers vote, an
//! approver approves; a release manager plans a release with a project patch and an Envoy
//! patch, a second approves it, and the member's mail carries only the project's patch.
//! Every page is photographed at laptop and phone width into target/browser-screenshots.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use edl::accounts::Role;
use edl::domain::OutboxStatus;
use edl::releases::release;

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{eventually, Backend, TestApp};

const PASSWORD: &str = "tangerine-kettle-orbit-42";

const PROJECT_PATCH: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@project.example>
Subject: [PATCH] Normalize paths before authorization

---
diff --git a/pilot/pkg/security/authz/path.go b/pilot/pkg/security/authz/path.go
--- a/pilot/pkg/security/authz/path.go
+++ b/pilot/pkg/security/authz/path.go
@@ -1,2 +1,2 @@
 package authz
-func normalize(p string) string { return p }
+func normalize(p string) string { return path.Clean(p) }
";

const ENVOY_PATCH: &str = "From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001
From: Envoy Maintainer <maintainer@envoyproxy.io>
Subject: [PATCH] jwt_authn: reject malformed tokens

---
diff --git a/source/extensions/filters/http/jwt_authn/filter.cc b/source/extensions/filters/http/jwt_authn/filter.cc
--- a/source/extensions/filters/http/jwt_authn/filter.cc
+++ b/source/extensions/filters/http/jwt_authn/filter.cc
@@ -1,2 +1,2 @@
 namespace Envoy {
-  bool ok = true;
+  bool ok = validate(token);
";

/// chromedriver on a port of its own, stopped when dropped.
/// Set to run the suite without a browser: the browser test is then skipped with a note
/// instead of failing.
const SKIP_BROWSER: &str = "EDL_TEST_SKIP_BROWSER";

struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn start_driver() -> Option<Driver> {
    let found = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = found else {
        if std::env::var_os(SKIP_BROWSER).is_some() {
            eprintln!(
                "skipping the browser test ({SKIP_BROWSER} is set): chromedriver is not installed"
            );
            return None;
        }
        panic!(
            "chromedriver is not installed: install Debian's chromium and chromium-driver \
             (apt-get install chromium chromium-driver), or set {SKIP_BROWSER}=1 to skip the \
             browser test"
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = tokio::process::Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    eventually(
        Duration::from_secs(20),
        "chromedriver to listen",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        },
    )
    .await;
    Some(Driver { _child: child, url })
}

/// A fresh browser (its own profile and cookies).
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

struct Camera {
    folder: PathBuf,
    count: usize,
}

/// The narrowest phone screen every page must fit.
const PHONE_WIDTH: u32 = 360;

/// Measures the page at the phone's width: the document must be no wider than the screen, and
/// nothing may stick out of it unless it is inside a box that scrolls on its own.
const MEASURE_OVERFLOW: &str = r#"
const root = document.documentElement;
const viewport = root.clientWidth;
const insideScroller = (e) => {
  for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
  }
  return false;
};
const over = [];
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width > 0 && r.height > 0 && r.right > viewport + 0.5 && !insideScroller(e)) {
    over.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' +
      Math.round(r.right) + 'px: ' + (e.textContent || '').trim().slice(0, 50));
  }
}
return { viewport: viewport, width: root.scrollWidth, over: over.slice(0, 8) };
"#;

/// Fails, naming what sticks out, if the current page is wider than a 360 px phone screen.
async fn fits_a_phone(client: &Client, what: &str) {
    client
        .set_window_size(PHONE_WIDTH, 780)
        .await
        .expect("resize");
    let measured = client
        .execute(MEASURE_OVERFLOW, Vec::new())
        .await
        .expect("measure the page");
    let viewport = measured["viewport"].as_u64().unwrap_or(0);
    assert!(
        viewport > 0 && viewport <= u64::from(PHONE_WIDTH),
        "{what}: the browser did not narrow to a phone's width ({measured})"
    );
    let width = measured["width"].as_u64().unwrap_or(u64::MAX);
    assert!(
        width <= viewport && measured["over"].as_array().is_some_and(Vec::is_empty),
        "{what} is wider than a {PHONE_WIDTH} px phone screen: {measured}"
    );
    client.set_window_size(1280, 900).await.expect("resize");
}

impl Camera {
    /// Checks that the current page fits a phone, and photographs it at laptop and phone
    /// width.
    async fn shoot(&mut self, client: &Client, name: &str) {
        self.count += 1;
        fits_a_phone(client, name).await;
        for (label, width, height) in [("laptop", 1280, 900), ("phone", PHONE_WIDTH, 780)] {
            client.set_window_size(width, height).await.expect("resize");
            let png = client.screenshot().await.expect("screenshot");
            std::fs::write(
                self.folder
                    .join(format!("{:02}-{name}-{label}.png", self.count)),
                png,
            )
            .expect("write png");
        }
        client.set_window_size(1280, 900).await.expect("resize");
    }
}

async fn page_text(client: &Client) -> String {
    client.source().await.expect("page source")
}

/// Waits for the page to show `text` (a click returns before the next page has loaded) and
/// returns the page; fails naming what the page said instead.
async fn expect_text(client: &Client, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = page_text(client).await;
        if page.contains(text) {
            return page;
        }
        if tokio::time::Instant::now() > deadline {
            let alert = page
                .split("role=\"alert\">")
                .nth(1)
                .unwrap_or("")
                .split('<')
                .next()
                .unwrap_or("");
            let title = page
                .split("<title>")
                .nth(1)
                .unwrap_or("")
                .split('<')
                .next()
                .unwrap_or("");
            panic!("the page never showed {text:?}; it is {title:?} and says {alert:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(client: &Client, name: &str, value: &str) {
    let field = client
        .find(Locator::Css(&format!("[name=\"{name}\"]")))
        .await
        .unwrap_or_else(|_| panic!("a field named {name}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css} on the page"))
        .click()
        .await
        .expect("click");
}

async fn sign_in(client: &Client, base: &str, email: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    fits_a_phone(client, "the sign-in page").await;
    type_into(client, "email", email).await;
    type_into(client, "password", PASSWORD).await;
    click(client, "main form button[type=submit]").await;
    expect_text(client, "Sign out").await;
}

async fn sign_out(client: &Client) {
    click(client, "header form button[type=submit]").await;
    expect_text(client, "href=\"/login\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("EDL_SMTP_URL", smtp_url.as_str()),
            ("EDL_SCHEDULER_INTERVAL", "1h"),
            ("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m"),
        ],
        None,
    )
    .await
    else {
        return;
    };
    for (email, name, role) in [
        ("rita@wg.example", "Rita Reviewer", Role::Reviewer),
        ("raj@wg.example", "Raj Reviewer", Role::Reviewer),
        ("ada@wg.example", "Ada Approver", Role::Approver),
        ("rel1@wg.example", "Rel One", Role::ReleaseManager),
        ("rel2@wg.example", "Rel Two", Role::ReleaseManager),
        ("root@wg.example", "Ada Admin", Role::Admin),
    ] {
        app.add_account(email, name, &[role], PASSWORD).await;
    }
    let base = app.address.clone();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let mut camera = Camera {
        folder: shots,
        count: 0,
    };
    let profiles = tempfile::tempdir().expect("profiles");

    // The vendor applies, first with a mistake in the alias.
    let vendor = browser(&driver, &profiles.path().join("vendor")).await;
    vendor.goto(&format!("{base}/")).await.expect("home");
    expect_text(&vendor, "Coming Patch Tuesdays").await;
    camera.shoot(&vendor, "home").await;
    click(&vendor, "a.button[href='/apply']").await;
    for (name, value) in [
        ("org_name", "Northwind Systems"),
        ("org_domains", "northwind.example"),
        ("website", "https://northwind.example/"),
        ("security_alias", "psirt at northwind"),
        ("product_name", "Northwind Mesh"),
        ("product_url", "https://northwind.example/mesh"),
        (
            "redistribution",
            "We build the project into Northwind Mesh and ship it to customers.",
        ),
        (
            "user_base",
            "About 900 companies run Northwind Mesh in production.",
        ),
        ("user_base_size", "900 companies"),
        (
            "track_record",
            "https://northwind.example/security/advisories",
        ),
        (
            "community_links",
            "https://github.com/project/project/pull/1234",
        ),
        ("rep_name", "Nia North"),
        ("rep_email", "nia@northwind.example"),
        ("days_to_fix", "10"),
    ] {
        type_into(&vendor, name, value).await;
    }
    for css in [
        "input[name=category][value=distributor]",
        "input[name=accept_policy]",
        "input[name=stage_privately]",
        "input[name=contribute_back]",
    ] {
        click(&vendor, css).await;
    }
    click(&vendor, "main form button[type=submit]").await;
    expect_text(&vendor, "Enter the security alias as an email address").await;
    let kept = vendor
        .find(Locator::Css("[name=org_name]"))
        .await
        .expect("field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        kept.as_deref(),
        Some("Northwind Systems"),
        "what was typed is kept"
    );
    camera.shoot(&vendor, "apply-with-a-mistake").await;
    type_into(&vendor, "security_alias", "psirt@northwind.example").await;
    // Embargoed mail goes out only encrypted: the vendor hands in the alias's key.
    type_into(
        &vendor,
        "pgp_key",
        &crate::helpers::keys::public("psirt@northwind.example"),
    )
    .await;
    click(&vendor, "main form button[type=submit]").await;
    expect_text(&vendor, "Waiting for the alias to be confirmed").await;
    camera.shoot(&vendor, "application-status").await;

    // The alias owner follows the link from the mail.
    let mail = smtp
        .wait_for("psirt@northwind.example", "Confirm the security alias")
        .await;
    let link = mail.link("/apply/confirm/").expect("a confirmation link");
    vendor
        .goto(&format!("{base}{link}"))
        .await
        .expect("confirm page");
    camera.shoot(&vendor, "confirm-alias").await;
    click(&vendor, "main form button[type=submit]").await;
    expect_text(&vendor, "Alias confirmed").await;
    camera.shoot(&vendor, "alias-confirmed").await;
    vendor.close().await.expect("close");

    // Two reviewers vote, an approver approves.
    let wg = browser(&driver, &profiles.path().join("wg")).await;
    for reviewer in ["rita@wg.example", "raj@wg.example"] {
        sign_in(&wg, &base, reviewer).await;
        wg.goto(&format!("{base}/review/applications"))
            .await
            .expect("queue");
        if reviewer.starts_with("rita") {
            camera.shoot(&wg, "review-queue").await;
        }
        wg.find(Locator::LinkText("Northwind Systems"))
            .await
            .expect("the application in the queue")
            .click()
            .await
            .expect("open");
        click(&wg, "input[name=vote][value=approve]").await;
        type_into(&wg, "reason", "Evidence checked; they ship the project.").await;
        click(&wg, "form[action$='/vote'] button[type=submit]").await;
        expect_text(&wg, "Your vote was recorded.").await;
        if reviewer.starts_with("raj") {
            camera.shoot(&wg, "review-detail-after-votes").await;
        }
        sign_out(&wg).await;
    }
    sign_in(&wg, &base, "ada@wg.example").await;
    wg.goto(&format!("{base}/review/applications?status=recommended"))
        .await
        .expect("queue");
    wg.find(Locator::LinkText("Northwind Systems"))
        .await
        .expect("recommended")
        .click()
        .await
        .expect("open");
    click(&wg, "form[action$='/approve'] button[type=submit]").await;
    expect_text(&wg, "the organisation is now a member").await;
    camera.shoot(&wg, "approved").await;
    sign_out(&wg).await;
    smtp.wait_for("psirt@northwind.example", "Welcome").await;

    // A release manager plans a release with a project patch and an Envoy patch.
    let dir = tempfile::tempdir().expect("patch folder");
    let project = dir.path().join("0001-normalize-paths.patch");
    let envoy = dir.path().join("0002-envoy-jwt.patch");
    std::fs::write(&project, PROJECT_PATCH).expect("write");
    std::fs::write(&envoy, ENVOY_PATCH).expect("write");
    sign_in(&wg, &base, "rel1@wg.example").await;
    wg.goto(&format!("{base}/manage/releases"))
        .await
        .expect("releases");
    type_into(&wg, "title", "Security release 1.9.5").await;
    type_into(&wg, "release_lines", "1.9.5").await;
    click(&wg, "form[action='/manage/releases'] button[type=submit]").await;
    expect_text(&wg, "not approved").await;
    let detail = wg.current_url().await.expect("url").to_string();
    wg.find(Locator::Css("details summary"))
        .await
        .expect("advisory form")
        .click()
        .await
        .expect("open");
    for (name, value) in [
        ("cve_id", "CVE-2026-31337"),
        ("summary", "Authorization policy bypass with crafted paths."),
        ("affected_versions", "1.9.0 to 1.9.4"),
        ("fixed_versions", "1.9.5"),
    ] {
        type_into(&wg, name, value).await;
    }
    click(&wg, "form[action$='/advisories'] button[type=submit]").await;
    expect_text(&wg, "The advisory was added.").await;
    for (file, origin) in [(&project, ""), (&envoy, "envoy")] {
        let input = wg
            .find(Locator::Css("input[type=file]"))
            .await
            .expect("file input");
        input
            .send_keys(&file.display().to_string())
            .await
            .expect("choose file");
        type_into(&wg, "release_line", "1.9.5").await;
        let select = wg
            .find(Locator::Css("select[name=origin]#u-origin"))
            .await
            .expect("origin");
        if origin == "envoy" {
            select
                .select_by_label("Envoy (never redistributed)")
                .await
                .expect("choose Envoy");
        }
        click(&wg, "form.upload button[type=submit]").await;
        expect_text(&wg, "The patch was stored").await;
    }
    expect_text(&wg, "withheld from mail").await;
    camera.shoot(&wg, "release-planned").await;
    sign_out(&wg).await;

    // A second release manager approves.
    sign_in(&wg, &base, "rel2@wg.example").await;
    wg.goto(&detail).await.expect("release");
    click(&wg, "form[action$='/approve'] button[type=submit]").await;
    expect_text(&wg, "This revision is approved.").await;
    camera.shoot(&wg, "release-approved").await;

    // At the early-disclosure time the member's mail carries only the project's patch.
    let id: i64 = detail
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("release id");
    let found = app
        .with_db(move |c| Ok(release::find(c, id)?.expect("release")))
        .await;
    let at = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(
        found.disclosure_at.expect("time"),
        chrono::Utc,
    ) + chrono::Duration::minutes(1);
    let env = app.state.ctx.clone();
    app.with_db(move |c| {
        edl::releases::distribution::distribute(c, &env, at)
            .map_err(|e| edl::db::DbError::Task(e.to_string()))
    })
    .await;
    app.state.mailer.wake_workers();
    let embargoed = smtp
        .wait_for("psirt@northwind.example", "[EMBARGOED]")
        .await;
    assert!(
        embargoed.encrypted,
        "embargoed mail is encrypted to the member's key"
    );
    assert!(!embargoed
        .wire_decoded()
        .contains("0001-normalize-paths.patch"));
    let raw = embargoed.decoded();
    assert!(raw.contains("0001-normalize-paths.patch") && !raw.contains("0002-envoy-jwt.patch"));
    assert!(
        !raw.contains("validate(token)"),
        "Envoy's patch content never leaves"
    );
    assert!(embargoed
        .text()
        .contains("https://github.com/envoyproxy/envoy/security/policy"));
    eventually(
        Duration::from_secs(20),
        "the ledger to show the delivery",
        || async {
            wg.goto(&detail).await.ok()?;
            page_text(&wg)
                .await
                .contains("Northwind Systems")
                .then_some(())
        },
    )
    .await;
    camera.shoot(&wg, "delivery-ledger").await;

    // A message the mail server refuses shows on the outbox page with its reason; a release
    // manager sends it again.
    smtp.refuse_recipient("ops@bounce.example", "550 5.1.1 no such mailbox");
    app.enqueue_test_mail(&["ops@bounce.example"]).await;
    eventually(
        Duration::from_secs(20),
        "the refused message to fail",
        || async {
            app.outbox_rows()
                .await
                .iter()
                .any(|r| r.recipient == "ops@bounce.example" && r.status == OutboxStatus::Failed)
                .then_some(())
        },
    )
    .await;
    wg.goto(&format!("{base}/admin/outbox"))
        .await
        .expect("outbox");
    expect_text(&wg, "no such mailbox").await;
    camera.shoot(&wg, "outbox").await;
    click(&wg, "form[action$='/resend'] button[type=submit]").await;
    expect_text(&wg, "is queued again").await;
    camera.shoot(&wg, "outbox-sent-again").await;
    // Cancelling asks first, on a page of its own; the release manager keeps the release.
    wg.goto(&format!("{detail}/cancel"))
        .await
        .expect("cancel page");
    expect_text(&wg, "1 member already mailed about it").await;
    camera.shoot(&wg, "cancel-release").await;
    sign_out(&wg).await;

    // An admin's day: the roster searched, a member edited, its alias moved by link, and the
    // pages that ask before an account or a member is touched.
    sign_in(&wg, &base, "root@wg.example").await;
    wg.goto(&format!("{base}/admin")).await.expect("admin");
    camera.shoot(&wg, "admin").await;
    wg.goto(&format!("{base}/admin/members?q=northwind"))
        .await
        .expect("members");
    expect_text(&wg, "Northwind Systems").await;
    camera.shoot(&wg, "admin-members-search").await;
    wg.find(Locator::LinkText("Edit"))
        .await
        .expect("the member's edit link")
        .click()
        .await
        .expect("open");
    expect_text(&wg, "Edit Northwind Systems").await;
    let edit = wg.current_url().await.expect("url").to_string();
    type_into(&wg, "rep_name", "Nia North-West").await;
    type_into(&wg, "security_alias", "sirt@northwind.example").await;
    click(&wg, "form[action$='/edit'] button[type=submit]").await;
    expect_text(&wg, "Alias change waiting").await;
    camera.shoot(&wg, "member-edit").await;
    let mail = smtp
        .wait_for("sirt@northwind.example", "Confirm sirt@northwind.example")
        .await;
    let link = mail.link("/members/alias/").expect("a confirmation link");
    let alias_owner = browser(&driver, &profiles.path().join("alias-owner")).await;
    alias_owner
        .goto(&format!("{base}{link}"))
        .await
        .expect("alias page");
    expect_text(&alias_owner, "Confirm the new security alias").await;
    camera.shoot(&alias_owner, "alias-change-confirm").await;
    click(&alias_owner, "main form button[type=submit]").await;
    expect_text(&alias_owner, "Security alias changed").await;
    camera.shoot(&alias_owner, "alias-changed").await;
    // The member's own page, from the new alias: a link by mail, the release it was sent,
    // and its receipt acknowledged.
    alias_owner
        .goto(&format!("{base}/member/sign-in"))
        .await
        .expect("member sign-in");
    type_into(&alias_owner, "alias", "sirt@northwind.example").await;
    click(&alias_owner, "main form button[type=submit]").await;
    expect_text(&alias_owner, "a sign-in link is on its way").await;
    camera.shoot(&alias_owner, "member-sign-in").await;
    let mail = smtp
        .wait_for("sirt@northwind.example", "sign-in link")
        .await;
    let link = mail.link("/member/sign-in/").expect("a sign-in link");
    alias_owner
        .goto(&format!("{base}{link}"))
        .await
        .expect("link page");
    click(&alias_owner, "main form button[type=submit]").await;
    expect_text(&alias_owner, "Releases mailed to you").await;
    click(&alias_owner, "form[action='/member/acknowledge'] button").await;
    expect_text(&alias_owner, "Acknowledged").await;
    camera.shoot(&alias_owner, "member-page").await;
    alias_owner.close().await.expect("close");
    wg.goto(&edit.replace("/edit", "/remove"))
        .await
        .expect("remove page");
    camera.shoot(&wg, "remove-member-confirm").await;
    wg.goto(&format!("{base}/admin/users?q=rita"))
        .await
        .expect("users");
    expect_text(&wg, "Rita Reviewer").await;
    camera.shoot(&wg, "admin-users-search").await;
    click(&wg, "a[href$='/disable']").await;
    expect_text(&wg, "Rita Reviewer").await;
    camera.shoot(&wg, "disable-account-confirm").await;
    for (path, name) in [
        ("/admin/audit", "audit-log"),
        ("/admin/upstreams", "upstreams"),
        ("/account", "account"),
        ("/releases", "public-releases"),
        ("/members", "public-roster"),
        ("/criteria", "criteria"),
        ("/embargo-policy", "embargo-policy"),
    ] {
        wg.goto(&format!("{base}{path}")).await.expect(path);
        camera.shoot(&wg, name).await;
    }

    // A token for a dashboard, made from the account page, then used as a program would.
    wg.goto(&format!("{base}/account")).await.expect("account");
    click(&wg, "a[href='/account/tokens']").await;
    expect_text(&wg, "Make a token").await;
    type_into(&wg, "name", "Roster dashboard").await;
    click(&wg, "input[name='scopes'][value='members:read']").await;
    click(&wg, "form[action='/account/tokens'] button[type=submit]").await;
    let made = expect_text(&wg, "id=\"new-token\"").await;
    camera.shoot(&wg, "api-tokens").await;
    let token = made
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the token is shown");
    let members: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/members"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(members["items"][0]["org_name"], "Northwind Systems");
    wg.goto(&format!("{base}/api/v1/docs"))
        .await
        .expect("API page");
    expect_text(&wg, "problem-token-expired").await;
    camera.shoot(&wg, "api-docs").await;

    // An admin adds an authenticator app: the secret read off the page as a person types it
    // into an app, the code computed from it; then signing in asks for the next code.
    wg.goto(&format!("{base}/account/second-factor"))
        .await
        .expect("second factor page");
    click(&wg, "form[action='/account/second-factor/totp'] button").await;
    let setup = expect_text(&wg, "id=\"totp-secret\"").await;
    camera.shoot(&wg, "second-factor-setup").await;
    let shown = setup
        .split("id=\"totp-secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the secret");
    let secret = data_encoding::BASE32_NOPAD
        .decode(shown.replace(' ', "").as_bytes())
        .expect("base32");
    let code_now = |secret: &[u8]| {
        totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, secret.to_vec())
            .generate(u64::try_from(app.clock.now().timestamp()).expect("after 1970"))
    };
    type_into(&wg, "code", &code_now(&secret)).await;
    click(&wg, "form[action$='/totp/confirm'] button").await;
    expect_text(&wg, "id=\"recovery-codes\"").await;
    camera.shoot(&wg, "second-factor-recovery-codes").await;
    sign_out(&wg).await;
    wg.goto(&format!("{base}/login")).await.expect("login page");
    type_into(&wg, "email", "root@wg.example").await;
    type_into(&wg, "password", PASSWORD).await;
    click(&wg, "main form button[type=submit]").await;
    expect_text(&wg, "Your password was right").await;
    camera.shoot(&wg, "second-factor-code").await;
    app.advance(chrono::Duration::seconds(30));
    type_into(&wg, "code", &code_now(&secret)).await;
    click(&wg, "main form button[type=submit]").await;
    expect_text(&wg, "Your account").await;

    // The HTML part of every mail reads on a phone too: each template's preview, opened as
    // a mail client would show it.
    let templates = edl::mail::Mailer::templates(&app.settings, "ABCD 0123 4567 89AB CDEF");
    let previews = tempfile::tempdir().expect("mail previews");
    for name in templates.names() {
        let mail = templates.preview(&name).expect("every template previews");
        let file = previews.path().join(format!("{name}.html"));
        std::fs::write(&file, mail.html).expect("write preview");
        wg.goto(&format!("file://{}", file.display()))
            .await
            .expect("open the preview");
        fits_a_phone(&wg, &format!("the HTML part of the {name} mail")).await;
    }
    wg.close().await.expect("close");
    assert!(camera.count >= 10);
}
