//! Membership as vendors and the working group live it: applying through the form, proving
//! the alias by mail, reviewers voting, an approver deciding, and members kept after.

use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{applications, audit_log, confirmation_tokens, members};

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    a_vendor_applies_confirms_and_is_approved_by_two_reviewers_and_an_approver,
    a_reviewer_from_the_applicants_organisation_is_recused,
    quorum_edges_move_the_application_both_ways,
    without_final_approval_the_quorum_makes_the_member,
    one_open_application_per_domain_and_none_for_members,
    confirmation_links_work_once_and_expire,
    unconfirmed_applications_are_deleted_after_their_retention,
    the_scorecard_tells_the_applicant_what_to_fix_and_blocks_approval,
    admins_suspend_remove_review_and_record_breaches,
    members_on_an_older_policy_are_asked_once_and_accept_by_signed_link,
    reviewers_are_reminded_of_applications_that_wait,
    the_honeypot_keeps_bots_out,
    a_refused_security_token_keeps_the_application_form,
    an_application_meets_only_the_members_on_its_domains_and_its_voucher,
    applications_for_one_domain_at_the_same_moment_keep_one,
);

/// A complete, valid application for an organisation on `domain`.
pub(crate) fn application(org: &str, domain: &str) -> Vec<(String, String)> {
    [
        ("org_name", org.to_owned()),
        ("org_domains", domain.to_owned()),
        ("website", format!("https://{domain}/")),
        ("security_alias", format!("security@{domain}")),
        ("category", "distributor".to_owned()),
        ("product_name", format!("{org} Mesh")),
        ("product_url", format!("https://{domain}/mesh")),
        (
            "redistribution",
            "We build and ship the project in our distribution.".to_owned(),
        ),
        (
            "user_base",
            "Several thousand companies run our distribution in production.".to_owned(),
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
        ("contributor_handles", "@maintainer".to_owned()),
        ("rep_name", "Robin Rep".to_owned()),
        ("rep_email", format!("robin@{domain}")),
        ("rep_chat", "@robin".to_owned()),
        ("days_to_fix", "10".to_owned()),
        ("accept_policy", "1".to_owned()),
        ("stage_privately", "yes".to_owned()),
        ("contribute_back", "yes".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut fields: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != key);
    fields.push((key.to_owned(), value.to_owned()));
    fields
}

async fn post_fields(
    browser: &Browser,
    path: &str,
    fields: &[(String, String)],
) -> reqwest::Response {
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(path, &refs).await
}

/// Applies and returns the private status path.
async fn apply(browser: &Browser, fields: &[(String, String)]) -> String {
    let response = post_fields(browser, "/apply", fields).await;
    assert_eq!(response.status(), 303, "the application was not accepted");
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    location.split('?').next().expect("path").to_owned()
}

/// Follows the newest confirmation link mailed to `alias` (its `nth` such mail): the page,
/// then its button.
async fn confirm_nth(
    smtp: &SmtpServer,
    browser: &Browser,
    alias: &str,
    nth: usize,
) -> reqwest::Response {
    let mail = smtp
        .wait_for_nth(alias, "Confirm the security alias", nth)
        .await;
    let link = mail.link("/apply/confirm/").expect("a confirmation link");
    let path = link.clone();
    let page = browser.get(&path).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains(alias));
    browser.post(&path, &[]).await
}

async fn confirm_alias(
    _app: &TestApp,
    smtp: &SmtpServer,
    browser: &Browser,
    alias: &str,
) -> reqwest::Response {
    confirm_nth(smtp, browser, alias, 1).await
}

async fn application_id(app: &TestApp, domain: &str) -> i64 {
    let domain = domain.to_owned();
    app.with_db(move |c| {
        Ok(applications::table
            .filter(applications::primary_domain.eq(domain))
            .order(applications::id.desc())
            .select(applications::id)
            .first(c)?)
    })
    .await
}

async fn status_of(app: &TestApp, id: i64) -> String {
    app.with_db(move |c| {
        Ok(applications::table
            .find(id)
            .select(applications::status)
            .first(c)?)
    })
    .await
}

async fn signed_in(app: &TestApp, email: &str, name: &str, roles: &[Role]) -> Browser {
    app.add_account(email, name, roles, PASSWORD).await;
    let browser = Browser::open(app).await;
    browser.sign_in(email, PASSWORD).await;
    browser
}

async fn vote(browser: &Browser, id: i64, choice: &str) -> reqwest::Response {
    browser
        .post(
            &format!("/review/applications/{id}/vote"),
            &[("vote", choice), ("reason", "Checked the evidence.")],
        )
        .await
}

async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut vars = vec![("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m")];
    vars.extend_from_slice(extra);
    TestApp::spawn_with_smtp(backend, &vars).await
}

async fn a_vendor_applies_confirms_and_is_approved_by_two_reviewers_and_an_approver(
    backend: Backend,
) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let first = signed_in(&app, "rita@wg.example", "Rita Reviewer", &[Role::Reviewer]).await;
    let second = signed_in(&app, "raj@wg.example", "Raj Reviewer", &[Role::Reviewer]).await;
    let approver = signed_in(&app, "ada@wg.example", "Ada Approver", &[Role::Approver]).await;

    // The vendor finds the form from the start page.
    let vendor = Browser::open(&app).await;
    let home = vendor.get("/").await.text().await.expect("home");
    assert!(
        home.contains("href=\"/apply\"")
            && home.contains("href=\"/criteria\"")
            && home.contains("href=\"/members\"")
    );
    let form = vendor.get("/apply").await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.expect("form");
    assert!(
        form.contains("name=\"security_alias\"")
            && form.contains("version 1 of the embargo policy")
    );

    // First with mistakes: every value comes back, each mistake is named beside its field.
    let mistaken = with(
        with(
            application("Vendor Inc", "vendor.example"),
            "security_alias",
            "security at vendor",
        ),
        "days_to_fix",
        "",
    );
    let response = post_fields(&vendor, "/apply", &mistaken).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    assert!(
        page.contains("value=\"Vendor Inc\""),
        "the organisation name was lost"
    );
    assert!(
        page.contains("value=\"security at vendor\""),
        "the mistaken alias was lost"
    );
    assert!(
        page.contains("We build and ship the project in our distribution."),
        "a textarea was lost"
    );
    assert!(page.contains("Enter the security alias as an email address"));
    assert!(page.contains("Enter the number of days you need to ship a fix"));
    assert!(page.contains("Please correct 2 fields"));

    // Then right.
    let status_path = apply(&vendor, &application("Vendor Inc", "vendor.example")).await;
    assert!(status_path.starts_with("/apply/status/"));
    let status = vendor
        .get(&status_path)
        .await
        .text()
        .await
        .expect("status page");
    assert!(status.contains("Waiting for the alias to be confirmed"));
    let id = application_id(&app, "vendor.example").await;
    // Not in the review queue until the alias is proven.
    let queue = first
        .get("/review/applications")
        .await
        .text()
        .await
        .expect("queue");
    assert!(!queue.contains("Vendor Inc"));
    smtp.wait_for("robin@vendor.example", "Application received")
        .await;

    let confirmed = confirm_alias(&app, smtp, &vendor, "security@vendor.example").await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed
        .text()
        .await
        .expect("page")
        .contains("Alias confirmed"));
    assert_eq!(status_of(&app, id).await, "in-review");
    smtp.wait_for("rita@wg.example", "New application to review")
        .await;

    let queue = first
        .get("/review/applications")
        .await
        .text()
        .await
        .expect("queue");
    assert!(queue.contains("Vendor Inc"));
    let detail = first
        .get(&format!("/review/applications/{id}"))
        .await
        .text()
        .await
        .expect("detail");
    assert!(detail.contains("Automatic checks") && detail.contains("security@vendor.example"));

    assert_eq!(vote(&first, id, "approve").await.status(), 303);
    assert_eq!(status_of(&app, id).await, "in-review");
    assert_eq!(vote(&second, id, "approve").await.status(), 303);
    assert_eq!(status_of(&app, id).await, "recommended");

    let approved = approver
        .post(&format!("/review/applications/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), 303);
    assert_eq!(status_of(&app, id).await, "approved");

    let welcome = smtp.wait_for("security@vendor.example", "Welcome").await;
    let text = welcome.text();
    assert!(
        text.contains("https://github.com/envoyproxy/envoy/security/policy"),
        "{text}"
    );
    assert!(text.contains("/embargo-policy"), "{text}");
    let roster = vendor.get("/members").await.text().await.expect("roster");
    assert!(roster.contains("Vendor Inc"));
    let status = vendor
        .get(&status_path)
        .await
        .text()
        .await
        .expect("status page");
    assert!(status.contains("is a member"));

    let actions: Vec<String> = app
        .with_db(move |c| {
            Ok(audit_log::table
                .filter(audit_log::subject.eq(format!("application:{id}")))
                .order(audit_log::seq)
                .select(audit_log::action)
                .load(c)?)
        })
        .await;
    assert_eq!(
        actions,
        vec![
            "application.submitted",
            "application.alias-confirmed",
            "application.vote",
            "application.vote",
            "application.recommended",
            "application.approved"
        ]
    );
}

async fn a_reviewer_from_the_applicants_organisation_is_recused(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let insider = signed_in(&app, "ian@vendor.example", "Ian Insider", &[Role::Reviewer]).await;
    let vendor = Browser::open(&app).await;
    apply(&vendor, &application("Vendor Inc", "vendor.example")).await;
    confirm_alias(&app, smtp, &vendor, "security@vendor.example").await;
    let id = application_id(&app, "vendor.example").await;
    let page = insider
        .get(&format!("/review/applications/{id}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("You are recused"));
    assert!(!page.contains("Record vote"));
    let refused = vote(&insider, id, "approve").await;
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.expect("page").contains("recused"));
    let votes: i64 = app
        .with_db(|c| Ok(edl::db::schema::votes::table.count().get_result(c)?))
        .await;
    assert_eq!(votes, 0);
    // Nor is the insider told about it by mail.
    assert!(smtp.to("ian@vendor.example").is_empty());
}

async fn quorum_edges_move_the_application_both_ways(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let a = signed_in(&app, "a@wg.example", "A", &[Role::Reviewer]).await;
    let b = signed_in(&app, "b@wg.example", "B", &[Role::Reviewer]).await;
    let c = signed_in(&app, "c@wg.example", "C", &[Role::Reviewer]).await;
    let approver = signed_in(&app, "d@wg.example", "D", &[Role::Approver]).await;
    let vendor = Browser::open(&app).await;
    apply(&vendor, &application("Edge Co", "edge.example")).await;
    confirm_alias(&app, smtp, &vendor, "security@edge.example").await;
    let id = application_id(&app, "edge.example").await;

    // A reason is required.
    let bare = a
        .post(
            &format!("/review/applications/{id}/vote"),
            &[("vote", "approve"), ("reason", " ")],
        )
        .await;
    assert_eq!(bare.status(), 422);
    // The message stands beside the reason field, inside the vote form, with the vote kept.
    let page = bare.text().await.expect("page");
    let form = page
        .split(&format!("action=\"/review/applications/{id}/vote\""))
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .expect("the vote form is shown again");
    assert!(
        form.contains("id=\"vote-reason-error\">Give a reason for your vote"),
        "{form}"
    );
    assert!(form.contains("value=\"approve\" checked"), "{form}");

    vote(&a, id, "approve").await;
    vote(&b, id, "abstain").await;
    assert_eq!(
        status_of(&app, id).await,
        "in-review",
        "an abstention is not an approval"
    );
    let early = approver
        .post(&format!("/review/applications/{id}/approve"), &[])
        .await;
    assert_eq!(early.status(), 409, "no final approval before the quorum");
    vote(&b, id, "approve").await;
    assert_eq!(
        status_of(&app, id).await,
        "recommended",
        "exactly the required approvals"
    );
    vote(&b, id, "reject").await;
    assert_eq!(
        status_of(&app, id).await,
        "in-review",
        "a changed vote takes the recommendation back"
    );
    vote(&c, id, "reject").await;
    assert_eq!(
        status_of(&app, id).await,
        "rejected",
        "two rejections reject"
    );
    let mail = smtp.wait_for("security@edge.example", "not approved").await;
    assert!(
        mail.text().contains("Checked the evidence."),
        "the reasons are sent: {}",
        mail.text()
    );
    // Decided: no more votes.
    assert_eq!(vote(&a, id, "approve").await.status(), 409);
}

async fn without_final_approval_the_quorum_makes_the_member(backend: Backend) {
    let Some(app) = spawn(
        backend,
        &[
            ("EDL_FINAL_APPROVAL", "false"),
            ("EDL_APPROVALS_REQUIRED", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let smtp = app.smtp();
    let a = signed_in(&app, "a@wg.example", "A", &[Role::Reviewer]).await;
    let vendor = Browser::open(&app).await;
    apply(&vendor, &application("Quick Co", "quick.example")).await;
    confirm_alias(&app, smtp, &vendor, "security@quick.example").await;
    let id = application_id(&app, "quick.example").await;
    vote(&a, id, "approve").await;
    assert_eq!(status_of(&app, id).await, "approved");
    smtp.wait_for("security@quick.example", "Welcome").await;
}

async fn one_open_application_per_domain_and_none_for_members(backend: Backend) {
    let Some(app) = spawn(
        backend,
        &[
            ("EDL_FINAL_APPROVAL", "false"),
            ("EDL_APPROVALS_REQUIRED", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let smtp = app.smtp();
    let vendor = Browser::open(&app).await;
    let status_path = apply(&vendor, &application("Twice Inc", "twice.example")).await;
    let again = post_fields(
        &vendor,
        "/apply",
        &application("Twice Inc", "twice.example"),
    )
    .await;
    assert_eq!(again.status(), 409);
    let page = again.text().await.expect("page");
    assert!(
        page.contains("An application for twice.example is already open"),
        "{page}"
    );
    assert!(page.contains("value=\"Twice Inc\""));
    // Withdrawn, the domain may apply again.
    assert_eq!(
        vendor
            .post(&format!("{status_path}/withdraw"), &[])
            .await
            .status(),
        303
    );
    let second_path = apply(&vendor, &application("Twice Inc", "twice.example")).await;
    // Once a member, it is told so.
    let reviewer = signed_in(&app, "r@wg.example", "R", &[Role::Reviewer]).await;
    // The withdrawn application's link no longer applies; the new one's does.
    let first_mail = smtp
        .wait_for_nth("security@twice.example", "Confirm the security alias", 1)
        .await;
    let stale_link = first_mail.link("/apply/confirm/").expect("link");
    assert_eq!(vendor.get(&stale_link).await.status(), 410);
    let stale = vendor.post(&stale_link, &[]).await;
    assert_eq!(stale.status(), 410);
    assert!(stale.text().await.expect("page").contains("withdrawn"));
    assert_eq!(
        confirm_nth(smtp, &vendor, "security@twice.example", 2)
            .await
            .status(),
        200
    );
    let id = application_id(&app, "twice.example").await;
    vote(&reviewer, id, "approve").await;
    assert_eq!(status_of(&app, id).await, "approved");
    let member_again = post_fields(
        &vendor,
        "/apply",
        &application("Twice Inc", "twice.example"),
    )
    .await;
    assert_eq!(member_again.status(), 409);
    assert!(member_again
        .text()
        .await
        .expect("page")
        .contains("twice.example is already a member"));
    // A decided application can no longer be edited or withdrawn.
    assert_eq!(
        vendor.get(&format!("{second_path}/edit")).await.status(),
        409
    );
    assert_eq!(
        vendor
            .post(&format!("{second_path}/withdraw"), &[])
            .await
            .status(),
        409
    );
}

async fn confirmation_links_work_once_and_expire(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let vendor = Browser::open(&app).await;
    let status_path = apply(&vendor, &application("Link Co", "link.example")).await;
    let mail = smtp
        .wait_for("security@link.example", "Confirm the security alias")
        .await;
    let first_link = mail.link("/apply/confirm/").expect("link");
    let first_path = first_link.to_owned();

    // A new link makes the earlier one stop working.
    assert_eq!(
        vendor
            .post(&format!("{status_path}/resend"), &[])
            .await
            .status(),
        303
    );
    let mails = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "a second confirmation mail",
        || async {
            let mails = smtp.to("security@link.example");
            let confirms: Vec<_> = mails
                .into_iter()
                .filter(|m| m.header("Subject").is_some_and(|s| s.contains("Confirm")))
                .collect();
            (confirms.len() == 2).then_some(confirms)
        },
    )
    .await;
    let second_path = mails
        .iter()
        .filter_map(|m| m.link("/apply/confirm/"))
        .find(|l| *l != first_link)
        .expect("a new link")
        .to_owned();
    let old = vendor.get(&first_path).await;
    assert_eq!(old.status(), 410);
    assert!(old.text().await.expect("page").contains("expired"));

    // The stored token is a hash, not the link itself.
    let secret = second_path.rsplit('/').next().expect("token").to_owned();
    let stored: Vec<String> = app
        .with_db(|c| {
            Ok(confirmation_tokens::table
                .select(confirmation_tokens::token_hash)
                .load(c)?)
        })
        .await;
    assert!(!stored.contains(&secret));

    assert_eq!(vendor.post(&second_path, &[]).await.status(), 200);
    let reused = vendor.post(&second_path, &[]).await;
    assert_eq!(reused.status(), 410);
    assert!(reused.text().await.expect("page").contains("already used"));
    assert_eq!(
        vendor.get("/apply/confirm/not-a-real-token").await.status(),
        404
    );

    // A link that ran out of time.
    let vendor2 = Browser::open(&app).await;
    apply(&vendor2, &application("Late Co", "late.example")).await;
    let mail = smtp
        .wait_for("security@late.example", "Confirm the security alias")
        .await;
    let late = mail.link("/apply/confirm/").expect("link");
    app.with_db(|c| {
        diesel::update(confirmation_tokens::table.filter(confirmation_tokens::used_at.is_null()))
            .set(confirmation_tokens::expires_at.eq(edl::db::now() - chrono::Duration::minutes(1)))
            .execute(c)?;
        Ok(())
    })
    .await;
    let expired = vendor2.post(&late, &[]).await;
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.expect("page").contains("expired"));
    let id = application_id(&app, "late.example").await;
    assert_eq!(status_of(&app, id).await, "awaiting-confirmation");

    // With every link of it run out, the unconfirmed application no longer holds its domain:
    // a new application takes it, and the stale one is closed.
    let vendor3 = Browser::open(&app).await;
    apply(&vendor3, &application("Late Co", "late.example")).await;
    assert_eq!(status_of(&app, id).await, "withdrawn");
    let ids = app
        .with_db(|c| {
            use edl::db::schema::applications;
            Ok(applications::table
                .filter(applications::primary_domain.eq("late.example"))
                .select(applications::id)
                .load::<i64>(c)?)
        })
        .await;
    assert_eq!(
        ids.len(),
        2,
        "the new application was stored beside the closed one"
    );
}

async fn the_scorecard_tells_the_applicant_what_to_fix_and_blocks_approval(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let vendor = Browser::open(&app).await;
    // A free-mail alias: a required check fails, and the applicant is told.
    let fields = with(
        application("Freemail Ltd", "freemail-ltd.example"),
        "security_alias",
        "freemail.ltd.security@gmail.com",
    );
    let status_path = apply(&vendor, &fields).await;
    let status = vendor.get(&status_path).await.text().await.expect("status");
    assert!(
        status.contains("Alias is not on a free-mail domain") || status.contains("free-mail"),
        "{status}"
    );
    assert!(
        status.contains("result fail"),
        "a failing check is shown as such"
    );
    let receipt = smtp
        .wait_for("robin@freemail-ltd.example", "Application received")
        .await;
    assert!(receipt.text().contains("free-mail"), "{}", receipt.text());

    // The edit form keeps what was attested: all three boxes stay ticked.
    let edit = vendor
        .get(&format!("{status_path}/edit"))
        .await
        .text()
        .await
        .expect("edit form");
    for ticked in [
        "name=\"accept_policy\" value=\"1\" checked",
        "name=\"stage_privately\" value=\"yes\" checked",
        "name=\"contribute_back\" value=\"yes\" checked",
    ] {
        assert!(edit.contains(ticked), "{ticked} missing from the edit form");
    }
    // A refused edit shows every value typed again, the boxes included.
    let broken = with(fields.clone(), "website", "not a website");
    let refused = post_fields(&vendor, &format!("{status_path}/edit"), &broken).await;
    assert_eq!(refused.status(), 422);
    let refused = refused.text().await.expect("page");
    assert!(refused.contains("value=\"not a website\""));
    assert!(refused.contains("name=\"stage_privately\" value=\"yes\" checked"));

    // Fixed by editing: the checks run again.
    let fixed = with(
        fields.clone(),
        "security_alias",
        "security@freemail-ltd.example",
    );
    let saved = post_fields(&vendor, &format!("{status_path}/edit"), &fixed).await;
    assert_eq!(saved.status(), 303);
    let status = vendor
        .get(&format!("{status_path}?notice=edited"))
        .await
        .text()
        .await
        .expect("status");
    assert!(status.contains("checks ran again"));
    assert!(!status.contains("gmail.com"));
    // The changed alias needs its own confirmation.
    smtp.wait_for(
        "security@freemail-ltd.example",
        "Confirm the security alias",
    )
    .await;

    // Another applicant whose alias is on someone else's domain is blocked at final approval.
    let a = signed_in(&app, "a@wg.example", "A", &[Role::Reviewer]).await;
    let b = signed_in(&app, "b@wg.example", "B", &[Role::Reviewer]).await;
    let approver = signed_in(&app, "p@wg.example", "P", &[Role::Approver]).await;
    let other = Browser::open(&app).await;
    let fields = with(
        application("Elsewhere Co", "elsewhere.example"),
        "security_alias",
        "psirt@another.example",
    );
    apply(&other, &fields).await;
    confirm_alias(&app, smtp, &other, "psirt@another.example").await;
    let id = application_id(&app, "elsewhere.example").await;
    vote(&a, id, "approve").await;
    vote(&b, id, "approve").await;
    assert_eq!(status_of(&app, id).await, "recommended");
    let blocked = approver
        .post(&format!("/review/applications/{id}/approve"), &[])
        .await;
    assert_eq!(blocked.status(), 409);
    assert!(blocked
        .text()
        .await
        .expect("page")
        .contains("Required checks fail"));
    assert_eq!(status_of(&app, id).await, "recommended");
    // An approver may still decline, with a reason that reaches the applicant.
    let declined = approver
        .post(
            &format!("/review/applications/{id}/decline"),
            &[("reason", "The alias is not on your own domain.")],
        )
        .await;
    assert_eq!(declined.status(), 303);
    let mail = smtp.wait_for("psirt@another.example", "not approved").await;
    assert!(mail.text().contains("The alias is not on your own domain."));
}

async fn admins_suspend_remove_review_and_record_breaches(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let admin = signed_in(&app, "root@wg.example", "Root", &[Role::Admin]).await;
    let id = app
        .add_member("Member Co", "member.example", "active", 1)
        .await;
    let page = admin
        .get("/admin/members")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Member Co") && page.contains("yearly review is due"));

    let no_reason = admin
        .post(&format!("/admin/members/{id}/suspend"), &[("reason", "")])
        .await;
    assert_eq!(no_reason.status(), 422);
    let suspended = admin
        .post(
            &format!("/admin/members/{id}/suspend"),
            &[("reason", "Missed the yearly review.")],
        )
        .await;
    assert_eq!(suspended.status(), 303);
    let mail = smtp.wait_for("security@member.example", "suspended").await;
    assert!(mail.text().contains("Missed the yearly review."));
    assert!(
        !admin
            .get("/members")
            .await
            .text()
            .await
            .expect("roster")
            .contains("Member Co"),
        "suspended members are not listed"
    );

    assert_eq!(
        admin
            .post(
                &format!("/admin/members/{id}/reinstate"),
                &[("reason", "Review done.")]
            )
            .await
            .status(),
        303
    );
    assert_eq!(
        admin
            .post(&format!("/admin/members/{id}/reviewed"), &[])
            .await
            .status(),
        303
    );
    let page = admin
        .get("/admin/members")
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("yearly review is due"));

    let breach = admin
        .post(
            &format!("/admin/members/{id}/breach"),
            &[
                ("what_leaked", "Patch for CVE-2026-0001"),
                ("leaked_to", "a public fork"),
                ("occurred_on", "2026-11-20"),
                ("follow_up", "Retrospective held."),
            ],
        )
        .await;
    assert_eq!(breach.status(), 303);
    let page = admin
        .get("/admin/members")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Patch for CVE-2026-0001") && page.contains("a public fork"));
    let bad_date = admin
        .post(
            &format!("/admin/members/{id}/breach"),
            &[
                ("what_leaked", "x"),
                ("leaked_to", "y"),
                ("occurred_on", "last week"),
            ],
        )
        .await;
    assert_eq!(bad_date.status(), 422);

    assert_eq!(
        admin
            .post(
                &format!("/admin/members/{id}/remove"),
                &[("reason", "Repeated leaks."), ("confirm", "yes")]
            )
            .await
            .status(),
        303
    );
    smtp.wait_for("security@member.example", "removed").await;
    let again = admin
        .post(&format!("/admin/members/{id}/suspend"), &[("reason", "x")])
        .await;
    assert_eq!(again.status(), 409);
    let actions: Vec<String> = app
        .with_db(move |c| {
            Ok(audit_log::table
                .filter(audit_log::subject.eq(format!("member:{id}")))
                .order(audit_log::seq)
                .select(audit_log::action)
                .load(c)?)
        })
        .await;
    assert_eq!(
        actions,
        vec![
            "member.suspended",
            "member.reinstated",
            "member.reviewed",
            "member.breach-recorded",
            "member.removed"
        ]
    );
}

async fn members_on_an_older_policy_are_asked_once_and_accept_by_signed_link(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let policy = dir.path().join("policy.md");
    std::fs::write(
        &policy,
        "Version: 2\n\n## Terms\n\nKeep it secret until the public date.\n",
    )
    .expect("write");
    let policy_path = policy.display().to_string();
    let Some(app) = spawn(backend, &[("EDL_POLICY_FILE", &policy_path)]).await else {
        return;
    };
    let smtp = app.smtp();
    let id = app
        .add_member("Old Terms Co", "oldterms.example", "active", 1)
        .await;
    let current = app
        .add_member("New Terms Co", "newterms.example", "active", 2)
        .await;

    let env = app.state.ctx.clone();
    let first = app
        .with_db({
            let env = env.clone();
            move |c| {
                edl::membership::run_jobs(c, &env, edl::db::now())
                    .map_err(|e| edl::db::DbError::Task(e.to_string()))
            }
        })
        .await;
    // The service's own scheduler may have got there first; either way, one request exists.
    assert!(first.policy_requests <= 1);
    let second = app
        .with_db(move |c| {
            edl::membership::run_jobs(c, &env, edl::db::now())
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
        .await;
    assert_eq!(second.policy_requests, 0, "asked once per version");
    let requests: Vec<String> = app
        .outbox_rows()
        .await
        .into_iter()
        .filter(|r| r.template == "policy_changed")
        .map(|r| r.recipient)
        .collect();
    assert_eq!(requests, vec!["security@oldterms.example"]);
    app.state.mailer.wake_workers();

    let mail = smtp
        .wait_for("security@oldterms.example", "please accept")
        .await;
    assert!(smtp.to("security@newterms.example").is_empty());
    let link = mail
        .link("/members/accept-policy/")
        .expect("an acceptance link");
    let path = link.clone();
    let browser = Browser::open(&app).await;
    let page = browser.get(&path).await;
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("Keep it secret until the public date."));
    // A forged link is refused.
    let forged = path.replacen(&format!("policy.{id}."), &format!("policy.{current}."), 1);
    assert_ne!(forged, path);
    assert_eq!(browser.get(&forged).await.status(), 410);

    assert_eq!(browser.post(&path, &[]).await.status(), 200);
    let version: i32 = app
        .with_db(move |c| {
            Ok(members::table
                .find(id)
                .select(members::policy_version)
                .first(c)?)
        })
        .await;
    assert_eq!(version, 2);
}

async fn reviewers_are_reminded_of_applications_that_wait(backend: Backend) {
    let Some(app) = spawn(backend, &[("EDL_REVIEW_REMINDER_DAYS", "7")]).await else {
        return;
    };
    let smtp = app.smtp();
    let voted = signed_in(&app, "v@wg.example", "Voted", &[Role::Reviewer]).await;
    app.add_account("slow@wg.example", "Slow", &[Role::Reviewer], PASSWORD)
        .await;
    let vendor = Browser::open(&app).await;
    apply(&vendor, &application("Patient Co", "patient.example")).await;
    confirm_alias(&app, smtp, &vendor, "security@patient.example").await;
    let id = application_id(&app, "patient.example").await;
    vote(&voted, id, "approve").await;

    let env = app.state.ctx.clone();
    let run = |days: i64| {
        let env = env.clone();
        move |c: &mut edl::db::DbConnection| {
            edl::membership::run_jobs(c, &env, edl::db::now() + chrono::Duration::days(days))
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        }
    };
    assert_eq!(
        app.with_db(run(3)).await.reminders,
        0,
        "not yet waiting long"
    );
    assert_eq!(
        app.with_db(run(8)).await.reminders,
        1,
        "only the reviewer who has not voted"
    );
    assert_eq!(app.with_db(run(9)).await.reminders, 0, "once per period");
    assert_eq!(
        app.with_db(run(15)).await.reminders,
        1,
        "and again a period later"
    );
    app.state.mailer.wake_workers();
    let reminder = smtp
        .wait_for("slow@wg.example", "waiting for your vote")
        .await;
    assert!(reminder
        .text()
        .contains(&format!("/review/applications/{id}")));
    assert!(smtp
        .to("v@wg.example")
        .iter()
        .all(|m| !m.header("Subject").unwrap_or_default().contains("Reminder")));
}

async fn the_honeypot_keeps_bots_out(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let bot = Browser::open(&app).await;
    let fields = with(
        application("Bot Co", "bot.example"),
        "homepage",
        "https://spam.example",
    );
    let response = post_fields(&bot, "/apply", &fields).await;
    assert_eq!(response.status(), 200);
    let stored: i64 = app
        .with_db(|c| Ok(applications::table.count().get_result(c)?))
        .await;
    assert_eq!(stored, 0);
    assert!(response.text().await.expect("page").contains("Thank you"));
}

async fn a_refused_security_token_keeps_the_application_form(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let vendor = Browser::open(&app).await;
    let fields = application("Kept Co", "kept.example");
    let mut sent: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sent.push((
        "csrf_token",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    let refused = vendor.post_raw("/apply", &sent).await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("Your answers are kept below, but they were not sent"),
        "{page}"
    );
    assert!(
        page.contains("value=\"Kept Co\"")
            && page.contains("We build and ship the project in our distribution.")
    );
    let stored: i64 = app
        .with_db(|c| Ok(applications::table.count().get_result(c)?))
        .await;
    assert_eq!(stored, 0, "nothing is stored without a valid token");
    // Sent again from the re-rendered page, with its token, it goes through.
    let token = crate::helpers::csrf_token_in(&page).expect("a token in the page");
    let mut again: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    again.push(("csrf_token", token.as_str()));
    assert_eq!(vendor.post_raw("/apply", &again).await.status(), 303);
}

/// An application whose alias was never confirmed closes when its links run out, and is deleted
/// once it has been closed for `EDL_UNCONFIRMED_RETENTION`; confirmed ones are never touched.
async fn unconfirmed_applications_are_deleted_after_their_retention(backend: Backend) {
    let Some(app) = spawn(backend, &[("EDL_UNCONFIRMED_RETENTION", "10d")]).await else {
        return;
    };
    let smtp = app.smtp();
    let bot = Browser::open(&app).await;
    let stale_status = apply(&bot, &application("Stale Co", "stale.example")).await;
    let vendor = Browser::open(&app).await;
    apply(&vendor, &application("Kept Co", "kept.example")).await;
    confirm_alias(&app, smtp, &vendor, "security@kept.example").await;
    let (stale, kept) = (
        application_id(&app, "stale.example").await,
        application_id(&app, "kept.example").await,
    );
    app.with_db(move |c| {
        diesel::update(
            confirmation_tokens::table.filter(confirmation_tokens::application_id.eq(stale)),
        )
        .set(confirmation_tokens::expires_at.eq(edl::db::now() - chrono::Duration::minutes(1)))
        .execute(c)?;
        Ok(())
    })
    .await;
    let run = |days: i64| {
        let ctx = app.state.ctx.clone();
        let at = edl::db::now() + chrono::Duration::days(days);
        app.with_db(move |c| {
            edl::membership::run_jobs(c, &ctx, at)
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
    };
    assert_eq!(run(0).await.purged, 0);
    assert_eq!(status_of(&app, stale).await, "withdrawn");
    assert_eq!(run(9).await.purged, 0, "kept for the retention period");
    assert_eq!(run(11).await.purged, 1);
    let (left, links) = app
        .with_db(move |c| {
            Ok((
                applications::table
                    .select(applications::id)
                    .load::<i64>(c)?,
                confirmation_tokens::table
                    .filter(confirmation_tokens::application_id.eq(stale))
                    .count()
                    .get_result::<i64>(c)?,
            ))
        })
        .await;
    assert_eq!(left, vec![kept], "the confirmed application stays");
    assert_eq!(links, 0);
    assert_eq!(bot.get(&stale_status).await.status(), 404);
    let purged = app
        .with_db(|c| {
            use edl::db::schema::audit_log;
            Ok(audit_log::table
                .filter(audit_log::action.eq("application.purged"))
                .count()
                .get_result::<i64>(c)?)
        })
        .await;
    assert_eq!(purged, 1);
}

/// The checks of an application look only at the members on its domains (the same domain, a
/// parent of one, a subdomain of one) and at its voucher, not at the whole list; near misses
/// (a longer name ending in the same letters, a removed member) are not clashes.
async fn an_application_meets_only_the_members_on_its_domains_and_its_voucher(backend: Backend) {
    use edl::domain::{MemberStatus, OrgDomain, SecurityAlias};
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    for (org, domain, status) in [
        ("Member", "member.example", "active"),
        ("Near miss", "xmember.example", "active"),
        ("Deep", "deep.parent.example", "active"),
        ("Not a child", "notparent.example", "active"),
        ("Gone", "gone.parent.example", "removed"),
        ("Paused", "paused.example", "suspended"),
        ("Voucher", "voucher.example", "active"),
    ] {
        app.add_member(org, domain, status, 1).await;
    }
    for i in 0..40 {
        app.add_member(
            &format!("Other {i}"),
            &format!("other{i}.example"),
            "active",
            1,
        )
        .await;
    }
    let found = |domains: &[&str], voucher: Option<&str>| {
        let domains: Vec<OrgDomain> = domains
            .iter()
            .map(|d| OrgDomain::parse(d).expect("domain"))
            .collect();
        let voucher = voucher.map(|v| SecurityAlias::parse(v).expect("alias"));
        let app = &app;
        async move {
            let mut rows = app
                .with_db(move |c| {
                    edl::membership::members::on_domains_or_alias(c, &domains, voucher.as_ref())
                })
                .await
                .into_iter()
                .map(|(domain, _, status)| (domain.as_str().to_owned(), status))
                .collect::<Vec<_>>();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        }
    };
    assert_eq!(
        found(
            &["sub.member.example", "parent.example", "fresh.example"],
            Some("security@voucher.example")
        )
        .await,
        vec![
            ("deep.parent.example".to_owned(), MemberStatus::Active),
            ("member.example".to_owned(), MemberStatus::Active),
            ("voucher.example".to_owned(), MemberStatus::Active),
        ]
    );
    assert_eq!(
        found(&["fresh.example"], Some("security@gone.parent.example")).await,
        vec![],
        "a removed member neither holds its domain nor vouches"
    );
    assert_eq!(
        found(&["paused.example"], None).await,
        vec![("paused.example".to_owned(), MemberStatus::Suspended)],
        "a suspended member still holds its domain"
    );

    // Through the form: a subdomain of a member is refused outright; a parent of one is taken,
    // and its scorecard names the member it overlaps; a suspended member does not vouch.
    let vendor = Browser::open(&app).await;
    let refused = post_fields(&vendor, "/apply", &application("Sub", "sub.member.example")).await;
    assert_eq!(refused.status(), 409);
    let mut parent = application("Parent", "parent.example");
    parent.push((
        "voucher_alias".to_owned(),
        "security@paused.example".to_owned(),
    ));
    apply(&vendor, &parent).await;
    let mut vouched = application("Fresh", "fresh.example");
    vouched.push((
        "voucher_alias".to_owned(),
        "security@voucher.example".to_owned(),
    ));
    apply(&vendor, &vouched).await;
    let reasons = |domain: &'static str| {
        let app = &app;
        async move {
            app.with_db(move |c| {
                use edl::db::schema::criteria_results;
                Ok(criteria_results::table
                    .inner_join(applications::table)
                    .filter(applications::primary_domain.eq(domain))
                    .select((criteria_results::check_key, criteria_results::reason))
                    .load::<(String, String)>(c)?)
            })
            .await
        }
    };
    let parent_checks = reasons("parent.example").await;
    let reason = |checks: &[(String, String)], key: &str| {
        checks
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no {key} check in {checks:?}"))
    };
    let overlap = reason(&parent_checks, "not-already-member");
    assert!(
        overlap.contains("overlaps the member domain deep.parent.example")
            && !overlap.contains("notparent")
            && !overlap.contains("gone.parent"),
        "{overlap}"
    );
    assert!(
        reason(&parent_checks, "voucher").contains("is not the alias of a current member"),
        "{parent_checks:?}"
    );
    let fresh_checks = reasons("fresh.example").await;
    assert!(
        reason(&fresh_checks, "not-already-member").starts_with("None of the organisation"),
        "{fresh_checks:?}"
    );
    assert!(
        reason(&fresh_checks, "voucher").contains("Vouched for by security@voucher.example"),
        "{fresh_checks:?}"
    );
}

/// Eight vendors submit for one domain at the same moment: one application is kept, every
/// other submission is told one is already open (by the check before the write, or by the
/// index when two pass it together), and none fails with a server error.
async fn applications_for_one_domain_at_the_same_moment_keep_one(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    let fields = application("Race Inc", "race.example");
    let mut vendors = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    for _ in 0..8 {
        let browser = Browser::open(&app).await;
        let (fields, start) = (fields.clone(), start.clone());
        vendors.spawn(async move {
            start.wait().await;
            let answer = post_fields(&browser, "/apply", &fields).await;
            let status = answer.status().as_u16();
            (status, answer.text().await.expect("page"))
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = vendors.join_next().await {
        let (status, page) = done.expect("a vendor");
        if status == 409 {
            assert!(
                page.contains("An application for race.example is already open"),
                "{page}"
            );
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 409, 409, 409, 409, 409, 409, 409]);
    let stored = app
        .with_db(|c| {
            Ok(applications::table
                .filter(applications::primary_domain.eq("race.example"))
                .count()
                .get_result::<i64>(c)?)
        })
        .await;
    assert_eq!(stored, 1);
}
