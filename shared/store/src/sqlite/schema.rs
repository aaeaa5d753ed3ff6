//! The embedded store's tables, and how a file of an earlier version reaches the current one.
//! One file; versioned with `PRAGMA user_version`.

use cashout_core::cashout::CashoutRequest;
use cashout_core::ports::StoreError;
use cashout_core::webhook::DeliveryAttempt;
use rusqlite::{Connection, params};

use super::rows::RequestRow;
use super::sql_error;
use crate::codec::{from_json, to_ns};
use crate::work::is_dead_letter;

/// The current schema version.
pub(super) const VERSION: i64 = 6;

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

/// Version 3: routing rules (at most `MAX_RULES`) and one health per provider, each written
/// conditionally on its version.
pub(super) const V3: &str = "
CREATE TABLE routing_rules (
    id      TEXT PRIMARY KEY,       -- rr_<uuid>
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE provider_health (
    provider TEXT PRIMARY KEY,      -- its wire name (d24, onspot, ...)
    version  INTEGER NOT NULL,
    body     TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 4: the requests that changed in a time range (an index of events by time: a listing
/// walks it in order, no sort), reconciliation runs (written conditionally on their version)
/// and the differences they found (one per run and `Difference::key`).
pub(super) const V4: &str = "
CREATE INDEX events_by_time ON events (occurred_at, request_id, sequence);

CREATE TABLE reconciliations (
    id      TEXT PRIMARY KEY,       -- recon_<uuid>
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE differences (
    reconciliation_id TEXT NOT NULL,
    key               TEXT NOT NULL, -- Difference::key: {provider}|{reference}|{kind}
    body              TEXT NOT NULL,
    PRIMARY KEY (reconciliation_id, key)
) WITHOUT ROWID;
";

/// Version 5: the operators' work lists (requests by `request_date` while under review, in
/// processor error, or flagged for attention: columns kept by every write of the request, each
/// list a partial index), the dead letters of webhook delivery (a partial index of given-up
/// attempts), operators and approval policies (written conditionally on their version), each
/// merchant's day usage per currency, the beneficiaries paid before, and browser sessions.
pub(super) const V5: &str = "
ALTER TABLE requests ADD COLUMN request_date INTEGER;   -- Unix ns (filled for older rows)
ALTER TABLE requests ADD COLUMN work_list TEXT;         -- 'review' | 'processor_error' | NULL
ALTER TABLE requests ADD COLUMN attention INTEGER;      -- 1 while flagged, else NULL
CREATE INDEX requests_work ON requests (work_list, request_date, id) WHERE work_list IS NOT NULL;
CREATE INDEX requests_attention ON requests (request_date, id) WHERE attention IS NOT NULL;

ALTER TABLE attempts ADD COLUMN dead INTEGER;           -- 1 once given up, else NULL
CREATE INDEX attempts_dead ON attempts (attempted_at, event_id, endpoint_id, attempt) WHERE dead IS NOT NULL;

CREATE TABLE operators (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE policies (
    scope   TEXT PRIMARY KEY,       -- PolicyScope::key: 'default' or the merchant id
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE day_usage (
    merchant_id TEXT NOT NULL,
    day         INTEGER NOT NULL,   -- Julian day number of the UTC day
    currency    TEXT NOT NULL,
    count       INTEGER NOT NULL,   -- requests in this currency (the day's count sums them)
    amount      INTEGER NOT NULL,   -- minor units
    PRIMARY KEY (merchant_id, day, currency)
) WITHOUT ROWID;

CREATE TABLE beneficiaries (
    merchant_id   TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    first_paid_at INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, fingerprint)
) WITHOUT ROWID;

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    body       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expiry ON sessions (expires_at);
";

/// Version 6: a merchant's events across its requests, newest first (`GET /v1/events`): each
/// event row keeps its merchant and type (filled from what is stored), indexed by merchant and
/// time.
pub(super) const V6: &str = "
ALTER TABLE events ADD COLUMN merchant_id TEXT;
ALTER TABLE events ADD COLUMN event_type TEXT;
UPDATE events SET
    merchant_id = (SELECT r.merchant_id FROM requests r WHERE r.id = events.request_id),
    event_type = json_extract(body, '$.payload.event');
CREATE INDEX events_by_merchant ON events (merchant_id, occurred_at, request_id, sequence);
";

/// Brings the file to [`VERSION`]: a new file gets every table at once, an older one each step
/// after its version in turn, each step in its own transaction (a step that fails leaves the
/// file at the version before it). A file of a later version is refused.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error)?;
    match version {
        0 => step(conn, &format!("{V1} {V2} {V3} {V4} {V5} {V6}"), VERSION, |_| Ok(())),
        1..VERSION => (version..VERSION).try_for_each(|from| upgrade(conn, from)),
        VERSION => Ok(()),
        other => Err(StoreError::invalid(format!(
            "the store file has schema version {other}; this build knows {VERSION}"
        ))),
    }
}

/// The step from version `from` to the next.
fn upgrade(conn: &Connection, from: i64) -> Result<(), StoreError> {
    match from {
        1 => step(conn, V2, 2, claim_invoices),
        2 => step(conn, V3, 3, |_| Ok(())),
        3 => step(conn, V4, 4, |_| Ok(())),
        4 => step(conn, V5, 5, fill_work_lists),
        5 => step(conn, V6, 6, |_| Ok(())),
        other => Err(StoreError::invalid(format!("no step from schema version {other}"))),
    }
}

/// Runs `ddl`, then `fill`, then sets the version to `to`, in one transaction.
fn step(
    conn: &Connection,
    ddl: &str,
    to: i64,
    fill: impl FnOnce(&Connection) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE;").map_err(sql_error)?;
    let result = conn
        .execute_batch(ddl)
        .map_err(sql_error)
        .and_then(|()| fill(conn))
        .and_then(|()| {
            conn.execute_batch(&format!("PRAGMA user_version = {to};"))
                .map_err(sql_error)
        });
    match result {
        Ok(()) => conn.execute_batch("COMMIT;").map_err(sql_error),
        Err(e) => {
            let _rolled_back = conn.execute_batch("ROLLBACK;");
            Err(e)
        }
    }
}

/// Version 2 fills the invoice claims: each request of a version-1 file claims its invoices (the
/// first request in id order wins an invoice two of them share; a later create reads the holder
/// and takes the claim over if the holder lets it go).
fn claim_invoices(conn: &Connection) -> Result<(), StoreError> {
    let mut read = conn
        .prepare("SELECT body FROM requests ORDER BY id")
        .map_err(sql_error)?;
    let mut insert = conn
        .prepare("INSERT OR IGNORE INTO invoice_claims (key, holder, claimed_at) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    let mut rows = read.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let body: String = row.get(0).map_err(sql_error)?;
        let request: CashoutRequest = from_json(&body, "cashout request")?;
        let at = to_ns(request.updated_at())?;
        for key in request.invoice_keys() {
            insert
                .execute(params![key.storage_key(), request.id().to_string(), at])
                .map_err(sql_error)?;
        }
    }
    Ok(())
}

/// Version 5 fills the new columns from what is stored: each request's `request_date` and the
/// work lists it is in, each attempt's dead-letter mark.
fn fill_work_lists(conn: &Connection) -> Result<(), StoreError> {
    let mut read = conn.prepare("SELECT body FROM requests").map_err(sql_error)?;
    let mut write = conn
        .prepare("UPDATE requests SET request_date = ?2, work_list = ?3, attention = ?4 WHERE id = ?1")
        .map_err(sql_error)?;
    let mut rows = read.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let body: String = row.get(0).map_err(sql_error)?;
        let request: CashoutRequest = from_json(&body, "cashout request")?;
        let r = RequestRow::of(&request)?;
        write
            .execute(params![r.id, r.request_date, r.work_list, r.attention])
            .map_err(sql_error)?;
    }
    let mut read = conn
        .prepare("SELECT event_id, endpoint_id, attempt, body FROM attempts")
        .map_err(sql_error)?;
    let mut mark = conn
        .prepare("UPDATE attempts SET dead = 1 WHERE event_id = ?1 AND endpoint_id = ?2 AND attempt = ?3")
        .map_err(sql_error)?;
    let mut rows = read.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let body: String = row.get(3).map_err(sql_error)?;
        let attempt: DeliveryAttempt = from_json(&body, "delivery attempt")?;
        if is_dead_letter(&attempt) {
            let (event, endpoint, number): (String, String, i64) = (
                row.get(0).map_err(sql_error)?,
                row.get(1).map_err(sql_error)?,
                row.get(2).map_err(sql_error)?,
            );
            mark.execute(params![event, endpoint, number]).map_err(sql_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use cashout_core::auth::{ApiKeyHash, ApiKeyRecord, Principal};
    use cashout_core::health::ProviderHealth;
    use cashout_core::ports::{ApiKeyStore, ManualClock, ReconciliationStore, RoutingStore};
    use cashout_core::provider::ProviderName;
    use time::OffsetDateTime;

    use super::*;
    use crate::sqlite::SqliteStore;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_435_200).unwrap()
    }

    fn api_key() -> ApiKeyRecord {
        ApiKeyRecord {
            hash: ApiKeyHash::from_hex("ab12"),
            principal: Principal::admin("operator"),
            label: None,
            created_at: t0(),
        }
    }

    /// A file as a build of schema `version` left it, holding one API key.
    fn file_at(path: &Path, version: i64) {
        let conn = Connection::open(path).unwrap();
        let ddl = [V1, V2, V3, V4, V5, V6][..usize::try_from(version).unwrap()].concat();
        conn.execute_batch(&format!("{ddl} PRAGMA user_version = {version};"))
            .unwrap();
        conn.execute(
            "INSERT INTO api_keys (hash, body) VALUES (?1, ?2)",
            [api_key().hash.as_str(), &serde_json::to_string(&api_key()).unwrap()],
        )
        .unwrap();
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn files_of_every_earlier_version_open_keep_their_data_and_gain_the_later_tables() {
        let now = t0();
        for version in 1..VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cashout.sqlite3");
            file_at(&path, version);
            let store = SqliteStore::open(&path, Arc::new(ManualClock::new(now))).unwrap();
            assert_eq!(user_version(&path), VERSION, "from version {version}");
            let kept = store.get_api_key(&api_key().hash).await.unwrap();
            assert_eq!(kept, Some(api_key()), "from version {version}");
            let mut health = ProviderHealth::new(ProviderName::D24, now);
            health.version = 1;
            store.put_provider_health(&health, 0).await.unwrap();
            assert_eq!(store.list_provider_health().await.unwrap(), [health]);
            assert!(store.list_routing_rules().await.unwrap().is_empty());
            // Version 4: reconciliations and their differences.
            let day = now.date();
            let period = cashout_core::reconcile::Period::new(day, day).unwrap();
            let id = cashout_core::ids::ReconciliationId::from_uuid(uuid::Uuid::now_v7());
            let mut run = cashout_core::reconcile::Reconciliation::start(
                id,
                period,
                cashout_core::reconcile::ReconciliationTrigger::Operator,
                now,
            );
            run.version = 1;
            store.put_reconciliation(&run, 0).await.unwrap();
            assert_eq!(store.get_reconciliation(id).await.unwrap(), Some(run));
            assert!(store.list_differences(id, 10, None).await.unwrap().items.is_empty());
            drop(store);
            SqliteStore::open(&path, Arc::new(ManualClock::new(now))).unwrap();
            assert_eq!(user_version(&path), VERSION, "reopened at the current version");
        }
    }

    #[test]
    fn a_file_of_a_later_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cashout.sqlite3");
        file_at(&path, VERSION);
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {};", VERSION + 1))
            .unwrap();
        let err = SqliteStore::open(&path, Arc::new(ManualClock::new(t0()))).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }
}
