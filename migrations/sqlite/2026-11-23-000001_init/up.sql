-- Portable schema: ids as TEXT (uuid form), UTC timestamps without zone,
-- lists as space-separated TEXT, JSON objects as TEXT.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    api_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    environment TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_secret_expires_at TIMESTAMP,
    allowed_ips TEXT NOT NULL,
    rate_limit_per_minute BIGINT,
    audiences TEXT NOT NULL,
    token_ttl_seconds BIGINT,
    claims TEXT NOT NULL,
    metadata TEXT NOT NULL,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);
CREATE INDEX api_keys_subject ON api_keys (subject);
CREATE INDEX api_keys_revoked ON api_keys (revoked_at);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    api_key_id TEXT,
    ip TEXT,
    request_id TEXT,
    details TEXT
);
CREATE INDEX audit_events_time ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_key ON audit_events (api_key_id, occurred_at DESC);
