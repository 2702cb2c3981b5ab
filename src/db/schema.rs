// The tables of both migration trees. The SQLite and PostgreSQL migrations create the same
// columns with portable types, so one schema serves both backends.

diesel::table! {
    accounts (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        disabled -> Bool,
        last_login_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        must_change_password -> Bool,
    }
}

diesel::table! {
    account_roles (account_id, role) {
        account_id -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    applications (id) {
        id -> BigInt,
        status -> Text,
        org_name -> Text,
        org_domains -> Text,
        website -> Text,
        security_alias -> Text,
        category -> Text,
        product_name -> Text,
        product_url -> Text,
        redistribution -> Text,
        user_base -> Text,
        user_base_size -> Text,
        track_record -> Text,
        community_links -> Text,
        contributor_handles -> Text,
        rep_name -> Text,
        rep_email -> Text,
        rep_chat -> Text,
        voucher_alias -> Nullable<Text>,
        days_to_fix -> Integer,
        pgp_key -> Nullable<Text>,
        policy_version -> Integer,
        attests_stage_privately -> Bool,
        attests_contribute_back -> Bool,
        status_token_hash -> Text,
        alias_confirmed_at -> Nullable<Timestamp>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        primary_domain -> Text,
        recommended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    confirmation_tokens (id) {
        id -> BigInt,
        application_id -> BigInt,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    criteria_results (id) {
        id -> BigInt,
        application_id -> BigInt,
        check_key -> Text,
        outcome -> Text,
        reason -> Text,
        checked_at -> Timestamp,
        title -> Text,
        required -> Bool,
    }
}

diesel::table! {
    votes (id) {
        id -> BigInt,
        application_id -> BigInt,
        account_id -> BigInt,
        vote -> Text,
        reason -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    comments (id) {
        id -> BigInt,
        application_id -> BigInt,
        account_id -> BigInt,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    members (id) {
        id -> BigInt,
        application_id -> Nullable<BigInt>,
        org_name -> Text,
        org_domain -> Text,
        security_alias -> Text,
        pgp_key -> Nullable<Text>,
        policy_version -> Integer,
        status -> Text,
        status_reason -> Nullable<Text>,
        joined_at -> Timestamp,
        last_reviewed_at -> Timestamp,
        next_review_due -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        pgp_fingerprint -> Nullable<Text>,
        pgp_expires_at -> Nullable<Timestamp>,
        key_reminder_for -> Nullable<Text>,
        rep_name -> Text,
        rep_email -> Text,
    }
}

diesel::table! {
    breaches (id) {
        id -> BigInt,
        member_id -> BigInt,
        what_leaked -> Text,
        leaked_to -> Text,
        occurred_at -> Timestamp,
        follow_up -> Text,
        recorded_by -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    upstreams (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        policy_url -> Text,
        may_redistribute -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    releases (id) {
        id -> BigInt,
        kind -> Text,
        title -> Text,
        revision -> Integer,
        release_at -> Timestamp,
        disclosure_at -> Nullable<Timestamp>,
        announce_at -> Nullable<Timestamp>,
        upstream_id -> Nullable<BigInt>,
        release_lines -> Text,
        members_may_deploy -> Bool,
        notes -> Text,
        created_by -> BigInt,
        disclosed_at -> Nullable<Timestamp>,
        announced_at -> Nullable<Timestamp>,
        published_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        notice_hours -> Integer,
        non_security_exception -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamp>,
        cancel_reason -> Nullable<Text>,
    }
}

diesel::table! {
    advisories (id) {
        id -> BigInt,
        release_id -> BigInt,
        cve_id -> Text,
        severity -> Text,
        cvss_vector -> Text,
        summary -> Text,
        affected_versions -> Text,
        fixed_versions -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    patches (id) {
        id -> BigInt,
        release_id -> BigInt,
        filename -> Text,
        content -> Binary,
        sha256 -> Text,
        release_line -> Text,
        upstream_id -> Nullable<BigInt>,
        is_security_fix -> Bool,
        looks_like_upstream -> Bool,
        reclassified_reason -> Nullable<Text>,
        uploaded_by -> BigInt,
        created_at -> Timestamp,
        upstream_signals -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        template -> Text,
        recipient -> Text,
        subject -> Text,
        dedupe_key -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        leased_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        held_reason -> Nullable<Text>,
        message_id -> Text,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        release_id -> Nullable<BigInt>,
        member_id -> Nullable<BigInt>,
        revision -> Nullable<Integer>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    member_key_changes (id) {
        id -> BigInt,
        member_id -> BigInt,
        pgp_key -> Text,
        fingerprint -> Text,
        code_sha256 -> Text,
        attempts -> Integer,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    member_alias_changes (id) {
        id -> BigInt,
        member_id -> BigInt,
        old_alias -> Text,
        new_alias -> Text,
        token_hash -> Text,
        requested_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox_bodies (outbox_id) {
        outbox_id -> BigInt,
        body_text -> Text,
        body_html -> Text,
    }
}

diesel::table! {
    outbox_attachments (outbox_id, patch_id) {
        outbox_id -> BigInt,
        patch_id -> BigInt,
    }
}

diesel::table! {
    release_revisions (release_id, revision) {
        release_id -> BigInt,
        revision -> Integer,
        created_at -> Timestamp,
        approved_by -> Nullable<BigInt>,
        approved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    release_changes (id) {
        id -> BigInt,
        release_id -> BigInt,
        revision -> Integer,
        changed_by -> BigInt,
        changed_at -> Timestamp,
        change -> Text,
    }
}

diesel::table! {
    release_receipts (release_id, member_id, revision) {
        release_id -> BigInt,
        member_id -> BigInt,
        revision -> Integer,
        acknowledged_at -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoint (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
        verified_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        seq -> BigInt,
        occurred_at -> Timestamp,
        actor -> Text,
        action -> Text,
        subject -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        account_id -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        second_factor_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    totp_factors (account_id) {
        account_id -> BigInt,
        secret -> Text,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        account_id -> BigInt,
        name -> Text,
        credential_id -> Text,
        passkey -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkey_ceremonies (session_id) {
        session_id -> BigInt,
        purpose -> Text,
        state -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        account_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_throttle (email_key) {
        email_key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    upstream_files (upstream_id, path) {
        upstream_id -> BigInt,
        path -> Text,
    }
}

diesel::table! {
    project_paths (id) {
        id -> BigInt,
        prefix -> Text,
        reason -> Text,
        added_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    patch_files (patch_id, path) {
        patch_id -> BigInt,
        path -> Text,
        added -> Integer,
        removed -> Integer,
    }
}

diesel::table! {
    patch_hunks (patch_id, hunk_sha256) {
        patch_id -> BigInt,
        hunk_sha256 -> Text,
    }
}

diesel::table! {
    patch_reclassifications (id) {
        id -> BigInt,
        patch_id -> BigInt,
        from_upstream_id -> Nullable<BigInt>,
        to_upstream_id -> Nullable<BigInt>,
        was_flagged -> Bool,
        reason -> Text,
        changed_by -> BigInt,
        changed_at -> Timestamp,
        revision -> Integer,
    }
}

diesel::joinable!(account_roles -> accounts (account_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(totp_factors -> accounts (account_id));
diesel::joinable!(recovery_codes -> accounts (account_id));
diesel::joinable!(passkeys -> accounts (account_id));
diesel::joinable!(passkey_ceremonies -> sessions (session_id));
diesel::joinable!(confirmation_tokens -> applications (application_id));
diesel::joinable!(criteria_results -> applications (application_id));
diesel::joinable!(votes -> applications (application_id));
diesel::joinable!(votes -> accounts (account_id));
diesel::joinable!(comments -> applications (application_id));
diesel::joinable!(comments -> accounts (account_id));
diesel::joinable!(members -> applications (application_id));
diesel::joinable!(breaches -> members (member_id));
diesel::joinable!(releases -> upstreams (upstream_id));
diesel::joinable!(advisories -> releases (release_id));
diesel::joinable!(patches -> releases (release_id));
diesel::joinable!(patches -> upstreams (upstream_id));
diesel::joinable!(outbox -> releases (release_id));
diesel::joinable!(outbox -> members (member_id));
diesel::joinable!(release_receipts -> releases (release_id));
diesel::joinable!(release_receipts -> members (member_id));
diesel::joinable!(outbox_attachments -> outbox (outbox_id));
diesel::joinable!(outbox_bodies -> outbox (outbox_id));
diesel::joinable!(outbox_attachments -> patches (patch_id));
diesel::joinable!(release_revisions -> releases (release_id));
diesel::joinable!(release_changes -> accounts (changed_by));
diesel::joinable!(upstream_files -> upstreams (upstream_id));
diesel::joinable!(patch_files -> patches (patch_id));
diesel::joinable!(patch_hunks -> patches (patch_id));
diesel::joinable!(patch_reclassifications -> patches (patch_id));
diesel::joinable!(patch_reclassifications -> accounts (changed_by));
diesel::joinable!(member_key_changes -> members (member_id));
diesel::joinable!(member_alias_changes -> members (member_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    member_key_changes,
    account_roles,
    applications,
    confirmation_tokens,
    criteria_results,
    votes,
    comments,
    members,
    breaches,
    upstreams,
    releases,
    advisories,
    patches,
    outbox,
    audit_log,
    audit_checkpoint,
    sessions,
    totp_factors,
    recovery_codes,
    passkeys,
    passkey_ceremonies,
    login_throttle,
    release_receipts,
    outbox_attachments,
    outbox_bodies,
    release_revisions,
    release_changes,
    upstream_files,
    project_paths,
    patch_files,
    patch_hunks,
    patch_reclassifications,
    member_alias_changes,
);

// Members' own page: sign-in links and member sessions (kept apart from staff sessions).
diesel::table! {
    member_sign_in_links (id) {
        id -> BigInt,
        address_hash -> Text,
        member_id -> Nullable<BigInt>,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    member_sessions (id) {
        id -> BigInt,
        member_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(member_sign_in_links -> members (member_id));
diesel::joinable!(member_sessions -> members (member_id));
diesel::allow_tables_to_appear_in_same_query!(members, member_sign_in_links, member_sessions);

// Tokens for the JSON API: only their SHA-256 is stored.
diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        account_id -> BigInt,
        name -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(api_tokens -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(accounts, api_tokens);
