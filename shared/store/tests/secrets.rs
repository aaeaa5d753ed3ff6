//! Endpoint signing secrets at rest in the embedded store: sealed in the database's files, the
//! key file beside it created once and required thereafter, secrets stored before sealing
//! sealed on open, and a sealed secret bound to its endpoint.
#![allow(clippy::unwrap_used)]

// The suite's fixtures only (the suite itself runs per backend elsewhere); not all are used here.
#[allow(dead_code)]
#[path = "conformance/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::sync::Arc;

use cashout_core::ports::{Clock, ManualClock, StoreError, WebhookStore};
use cashout_core::webhook::{EndpointCreated, WebhookEndpoint};
use cashout_store::sqlite::SqliteStore;
use fixtures::{Fixtures, merchant, t0};
use rusqlite::Connection;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t0()))
}

fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open_in(dir, clock() as Arc<dyn Clock>)
}

/// Every byte of the database's files (the database, its write-ahead log, its shared memory),
/// not the key file.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            continue;
        }
        bytes.extend(std::fs::read(&path).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The secrets' texts, and their keys without the `whsec_` prefix.
fn secret_texts(endpoints: &[&WebhookEndpoint]) -> Vec<String> {
    endpoints
        .iter()
        .flat_map(|e| e.secrets.iter())
        .flat_map(|s| {
            let text = s.secret.expose().to_owned();
            [text.clone(), text["whsec_".len()..].to_owned()]
        })
        .collect()
}

fn assert_no_secret_in_files(dir: &Path, secrets: &[String]) {
    let bytes = database_bytes(dir);
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, "whsec_"),
        "a `whsec_` text is in the database's files"
    );
    for secret in secrets {
        assert!(!contains(&bytes, secret), "a secret's key is in the database's files");
    }
}

fn raw_body(dir: &Path, endpoint: &WebhookEndpoint) -> String {
    Connection::open(dir.join(SqliteStore::FILE_NAME))
        .unwrap()
        .query_row(
            "SELECT body FROM endpoints WHERE id = ?1",
            [endpoint.id.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn the_database_files_hold_no_secret_after_endpoints_are_created_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixtures::new(clock());
    let m = merchant("m1");
    let store = open(dir.path()).unwrap();
    let mut endpoints = Vec::new();
    for n in 0..3 {
        let endpoint = f.endpoint(&m, &format!("https://example.com/{n}"));
        assert_eq!(
            store.create_endpoint(&endpoint, 20).await.unwrap(),
            EndpointCreated::Created
        );
        endpoints.push(endpoint);
    }
    let mut rotated = endpoints[0].clone();
    for _ in 0..2 {
        let next = rotated.rotate(f.endpoint(&m, "https://x").secrets[0].secret.clone(), f.now());
        store.replace_endpoint(&next, rotated.version).await.unwrap();
        rotated = next;
    }
    assert!(
        rotated.secrets.len() >= 2,
        "the new secret and the previous one in its grace period"
    );
    assert_eq!(store.get_endpoint(&m, rotated.id).await.unwrap(), Some(rotated.clone()));
    assert_eq!(
        store.list_endpoints(&m).await.unwrap(),
        [rotated.clone(), endpoints[1].clone(), endpoints[2].clone()]
    );
    let all: Vec<&WebhookEndpoint> = endpoints.iter().chain([&rotated]).collect();
    drop(store);
    assert_no_secret_in_files(dir.path(), &secret_texts(&all));
    let key = std::fs::read(dir.path().join("cashout.key")).unwrap();
    assert_eq!(key.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("cashout.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Reopened with its key file, every secret reads back.
    let store = open(dir.path()).unwrap();
    assert_eq!(store.get_endpoint(&m, rotated.id).await.unwrap(), Some(rotated));
}

#[tokio::test]
async fn secrets_stored_in_clear_are_sealed_on_open_once_and_leave_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixtures::new(clock());
    let m = merchant("m1");
    drop(open(dir.path()).unwrap());
    // An endpoint as a build before sealing wrote it: its JSON with the `whsec_` text.
    let endpoint = f.endpoint(&m, "https://example.com/old");
    Connection::open(dir.path().join(SqliteStore::FILE_NAME))
        .unwrap()
        .execute(
            "INSERT INTO endpoints (merchant_id, id, created_at, body) VALUES (?1, ?2, 0, ?3)",
            [
                m.to_string(),
                endpoint.id.to_string(),
                serde_json::to_string(&endpoint).unwrap(),
            ],
        )
        .unwrap();
    assert!(raw_body(dir.path(), &endpoint).contains("whsec_"));

    let store = open(dir.path()).unwrap();
    assert_eq!(
        store.get_endpoint(&m, endpoint.id).await.unwrap(),
        Some(endpoint.clone())
    );
    drop(store);
    let sealed = raw_body(dir.path(), &endpoint);
    assert!(!sealed.contains("whsec_"), "{sealed}");
    assert_no_secret_in_files(dir.path(), &secret_texts(&[&endpoint]));

    // A second open finds nothing to seal: the stored body is left as it is.
    let store = open(dir.path()).unwrap();
    assert_eq!(raw_body(dir.path(), &endpoint), sealed);
    assert_eq!(store.get_endpoint(&m, endpoint.id).await.unwrap(), Some(endpoint));
}

/// A store holding one endpoint with a sealed secret, closed.
async fn with_a_sealed_secret(dir: &Path) {
    let f = Fixtures::new(clock());
    let store = open(dir).unwrap();
    let _ = store
        .create_endpoint(&f.endpoint(&merchant("m1"), "https://example.com"), 20)
        .await
        .unwrap();
}

fn refusal(result: Result<SqliteStore, StoreError>) -> String {
    match result {
        Err(e @ StoreError::Invalid { .. }) => format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("the store opened"),
    }
}

#[tokio::test]
async fn a_missing_key_file_where_sealed_secrets_are_stored_refuses_the_start_and_makes_no_new_key() {
    let dir = tempfile::tempdir().unwrap();
    with_a_sealed_secret(dir.path()).await;
    let key = dir.path().join("cashout.key");
    std::fs::remove_file(&key).unwrap();
    let refused = refusal(open(dir.path()));
    assert!(
        refused.contains("cashout.key is missing") && refused.contains("1 sealed signing secrets"),
        "{refused}"
    );
    assert!(!key.exists(), "no new key was made");
}

#[tokio::test]
async fn a_damaged_key_file_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    with_a_sealed_secret(dir.path()).await;
    let key = dir.path().join("cashout.key");
    std::fs::write(&key, b"short").unwrap();
    let refused = refusal(open(dir.path()));
    assert!(refused.contains("5 bytes, not a 32-byte key"), "{refused}");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        b"short",
        "the damaged file is left for inspection"
    );
}

#[tokio::test]
async fn another_key_file_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    with_a_sealed_secret(dir.path()).await;
    std::fs::write(dir.path().join("cashout.key"), [7u8; 32]).unwrap();
    let refused = refusal(open(dir.path()));
    assert!(refused.contains("the wrong key file"), "{refused}");
}

#[tokio::test]
async fn a_sealed_secret_copied_to_another_endpoint_does_not_open_there() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixtures::new(clock());
    let m = merchant("m1");
    let store = open(dir.path()).unwrap();
    let (a, b) = (f.endpoint(&m, "https://a.example"), f.endpoint(&m, "https://b.example"));
    let _ = store.create_endpoint(&a, 20).await.unwrap();
    let _ = store.create_endpoint(&b, 20).await.unwrap();
    let a_body: serde_json::Value = serde_json::from_str(&raw_body(dir.path(), &a)).unwrap();
    let mut b_body: serde_json::Value = serde_json::from_str(&raw_body(dir.path(), &b)).unwrap();
    b_body["secrets"] = a_body["secrets"].clone();
    Connection::open(dir.path().join(SqliteStore::FILE_NAME))
        .unwrap()
        .execute(
            "UPDATE endpoints SET body = ?1 WHERE id = ?2",
            [b_body.to_string(), b.id.to_string()],
        )
        .unwrap();
    assert!(matches!(
        store.get_endpoint(&m, b.id).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.get_endpoint(&m, a.id).await.unwrap(), Some(a));
}
