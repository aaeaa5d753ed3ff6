//! The embedded store's tables. One file; versioned with `PRAGMA user_version`.

/// The current schema version.
pub(super) const VERSION: i64 = 2;

/// Version 1. Times are Unix nanoseconds (`INTEGER`), documents are the domain types' JSON.
pub(super) const V1: &str = "
CREATE TABLE requests (
    id            TEXT PRIMARY KEY,     -- hyphenated UUID v7: text order is creation order
    merchant_id   TEXT NOT NULL,
    status        TEXT NOT NULL,
    version       INTEGER NOT NULL,
    next_check_at INTEGER,              -- NULL: nothing due (always NULL once final)
    body          TEXT NOT NULL
);
CREATE INDEX requests_by_merchant ON requests (merchant_id, id);
CREATE INDEX requests_by_status ON requests (merchant_id, status, id);
CREATE INDEX requests_due ON requests (next_check_at, id) WHERE next_check_at IS NOT NULL;

CREATE TABLE events (
    request_id  TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    published   INTEGER NOT NULL DEFAULT 0,
    body        TEXT NOT NULL,
    PRIMARY KEY (request_id, sequence)
) WITHOUT ROWID;
CREATE INDEX events_outbox ON events (occurred_at, request_id, sequence) WHERE published = 0;

CREATE TABLE idempotency (
    merchant_id     TEXT NOT NULL,
    key             TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    until           INTEGER,            -- in progress: when the writer's claim lapses
    response_status INTEGER,            -- completed: the response to replay
    response_body   TEXT,
    expires_at      INTEGER NOT NULL,   -- after this the record counts as absent
    PRIMARY KEY (merchant_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

CREATE TABLE provider_refs (
    provider   TEXT NOT NULL,
    payout_id  TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (provider, payout_id)
) WITHOUT ROWID;

CREATE TABLE endpoints (
    merchant_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (merchant_id, id)
) WITHOUT ROWID;

CREATE TABLE attempts (
    event_id     TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    merchant_id  TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id, attempt)
) WITHOUT ROWID;
CREATE INDEX attempts_by_endpoint ON attempts (merchant_id, endpoint_id, attempted_at, event_id, attempt);

CREATE TABLE api_keys (
    hash TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;

-- The durable queue: a row per message until it is acknowledged or dead-lettered.
CREATE TABLE queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_ready ON queue (queue, visible_at, id);

CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at       INTEGER NOT NULL
);
CREATE INDEX dead_letters_by_queue ON dead_letters (queue, id);
";

/// Version 2: invoice claims (one request at a time advances an invoice), by
/// `InvoiceKey::storage_key`.
pub(super) const V2: &str = "
CREATE TABLE invoice_claims (
    key         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    claimed_at  INTEGER NOT NULL
) WITHOUT ROWID;
";
