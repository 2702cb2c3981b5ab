-- The whole domain of the early-disclosure list: working-group accounts, membership
-- applications and their review, members, releases with advisories and patches, upstreams,
-- the mail outbox and the hash-chained audit log. Timestamps are UTC without a zone.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    last_login_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE account_roles (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'approver', 'release-manager', 'admin')),
    PRIMARY KEY (account_id, role)
);

CREATE TABLE applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,
    org_name TEXT NOT NULL,
    org_domains TEXT NOT NULL,
    website TEXT NOT NULL,
    security_alias TEXT NOT NULL,
    category TEXT NOT NULL,
    product_name TEXT NOT NULL,
    product_url TEXT NOT NULL,
    redistribution TEXT NOT NULL,
    user_base TEXT NOT NULL,
    user_base_size TEXT NOT NULL,
    track_record TEXT NOT NULL,
    community_links TEXT NOT NULL,
    contributor_handles TEXT NOT NULL,
    rep_name TEXT NOT NULL,
    rep_email TEXT NOT NULL,
    rep_chat TEXT NOT NULL,
    voucher_alias TEXT,
    days_to_fix INTEGER NOT NULL,
    pgp_key TEXT,
    policy_version INTEGER NOT NULL,
    attests_stage_privately BOOLEAN NOT NULL,
    attests_contribute_back BOOLEAN NOT NULL,
    status_token_hash TEXT NOT NULL UNIQUE,
    alias_confirmed_at TIMESTAMP,
    decided_at TIMESTAMP,
    decision_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX applications_status_idx ON applications (status, created_at);

CREATE TABLE confirmation_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE criteria_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    check_key TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'needs-review')),
    reason TEXT NOT NULL,
    checked_at TIMESTAMP NOT NULL,
    UNIQUE (application_id, check_key)
);

CREATE TABLE votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    vote TEXT NOT NULL CHECK (vote IN ('approve', 'reject', 'abstain')),
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (application_id, account_id)
);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id BIGINT REFERENCES applications (id),
    org_name TEXT NOT NULL,
    org_domain TEXT NOT NULL UNIQUE,
    security_alias TEXT NOT NULL UNIQUE,
    pgp_key TEXT,
    policy_version INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'removed')),
    status_reason TEXT,
    joined_at TIMESTAMP NOT NULL,
    last_reviewed_at TIMESTAMP NOT NULL,
    next_review_due TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE breaches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id),
    what_leaked TEXT NOT NULL,
    leaked_to TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    follow_up TEXT NOT NULL,
    recorded_by BIGINT NOT NULL REFERENCES accounts (id),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE upstreams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    policy_url TEXT NOT NULL,
    may_redistribute BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO upstreams (slug, name, policy_url, may_redistribute, created_at)
VALUES ('envoy', 'Envoy', 'https://github.com/envoyproxy/envoy/security/policy', FALSE, strftime('%Y-%m-%d %H:%M:%f', 'now'));

CREATE TABLE releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('patch-tuesday', 'zero-day', 'third-party')),
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    release_at TIMESTAMP NOT NULL,
    disclosure_at TIMESTAMP,
    announce_at TIMESTAMP,
    upstream_id BIGINT REFERENCES upstreams (id),
    release_lines TEXT NOT NULL,
    members_may_deploy BOOLEAN NOT NULL DEFAULT FALSE,
    notes TEXT NOT NULL DEFAULT '',
    created_by BIGINT NOT NULL REFERENCES accounts (id),
    approved_by BIGINT REFERENCES accounts (id),
    approved_at TIMESTAMP,
    disclosed_at TIMESTAMP,
    announced_at TIMESTAMP,
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX releases_release_at_idx ON releases (release_at);

CREATE TABLE advisories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    cve_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    cvss_vector TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL,
    affected_versions TEXT NOT NULL,
    fixed_versions TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE patches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    content BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    release_line TEXT NOT NULL,
    upstream_id BIGINT REFERENCES upstreams (id),
    is_security_fix BOOLEAN NOT NULL,
    looks_like_upstream BOOLEAN NOT NULL DEFAULT FALSE,
    reclassified_reason TEXT,
    uploaded_by BIGINT NOT NULL REFERENCES accounts (id),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    leased_by TEXT,
    last_error TEXT,
    message_id TEXT NOT NULL UNIQUE,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq BIGINT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
