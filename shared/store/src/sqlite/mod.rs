//! The embedded store and queue: one SQLite file (WAL) holding the requests, their events,
//! idempotency records, endpoints, attempts, API keys, routing rules, provider health, and a
//! durable task queue with delays, visibility timeouts, receive counts and a dead-letter table.
//!
//! Durability: WAL with `synchronous=FULL`, so a transaction is on disk (WAL fsynced) before
//! the call returns: neither a `kill -9` nor a power cut loses a committed change or an enqueued
//! task. (`NORMAL` would survive `kill -9` too, but not a power cut; money is worth the fsync.)
//!
//! Concurrency: one writer thread owns the writer connection (SQLite has one writer at a time
//! anyway) and commits in groups: it takes every write waiting, runs each in its own savepoint
//! inside one transaction (a failing write rolls back alone), commits once, and only then answers
//! each caller. Concurrent writers share one fsync instead of queueing for one each. Reads use a
//! few read-only connections on Tokio's blocking pool (WAL lets them run beside the writer). A
//! second process on the same file waits up to the busy timeout, then gets `Unavailable`.

mod api_keys;
mod creation;
mod deliveries;
mod limits;
mod people;
mod queue;
mod reconcile;
mod requests;
mod routing;
mod rows;
mod schema;
mod secrets;
mod webhooks;
mod work;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use cashout_core::ports::{Clock, QueueError, QueueName, StoreError};
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use crate::resources::Definition;
use crate::sealing::Sealer;

/// How long a call waits for another process's lock on the file before `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections.
const READERS: usize = 4;
/// The most writes committed together.
const MAX_GROUP: usize = 128;

/// What [`SqliteStore::writer_durability`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    /// `PRAGMA journal_mode`, lowercase (`wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 0 `OFF`, 1 `NORMAL`, 2 `FULL`, 3 `EXTRA`.
    pub synchronous: i64,
}

/// The embedded store and queue. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: std::path::PathBuf,
    /// To the writer thread; the thread ends when the last clone of the store is dropped.
    writer: mpsc::Sender<Job>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    shared: Arc<Shared>,
    /// Seals endpoint secrets with the key file beside the database.
    sealer: Sealer,
    /// Rate-limit buckets (`limits.rs`).
    limits: cashout_core::limit::Buckets<cashout_core::limit::LimitKey>,
}

/// What write jobs may read besides the connection.
pub(crate) struct Shared {
    clock: Arc<dyn Clock>,
    /// Receives after which a message is dead-lettered, per queue (from `infra/template.yaml`).
    max_receives: BTreeMap<QueueName, u32>,
}

/// Called once the group a write belongs to is committed (`None`) or failed to commit.
type Completer = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A write: runs in its savepoint (or learns that the group could not begin) and answers its
/// caller at once on failure, or hands back what to answer once the group is committed.
type Job = Box<dyn FnOnce(Result<(&Connection, &Shared), &StoreError>) -> Option<Completer> + Send>;

/// The writer thread: group commit.
fn writer_loop(conn: Connection, shared: Arc<Shared>, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error) {
            for job in group {
                let _ = job(Err(&e));
            }
            continue;
        }
        let mut done = Vec::with_capacity(group.len());
        for job in group {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok((&conn, &shared)))));
            match ran {
                Ok(Some(complete)) => done.push(complete),
                Ok(None) => {}
                // Undo what it wrote; its caller sees the answer channel closed: `Unavailable`.
                Err(_) => {
                    rollback_savepoint(&conn);
                    tracing::error!("a store write panicked; it was rolled back");
                }
            }
        }
        match conn.execute_batch("COMMIT").map_err(sql_error) {
            Ok(()) => done.into_iter().for_each(|complete| complete(None)),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                tracing::error!(error = %e, writes = done.len(), "a group commit failed");
                done.into_iter().for_each(|complete| complete(Some(&e)));
            }
        }
    }
}

/// Runs `f` in a savepoint: released on success, rolled back on failure (so a failed write
/// leaves nothing in the group's transaction).
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    // Cached statements: parsing the two statements anew for every write showed in the profile.
    let run = |sql: &str| -> Result<(), StoreError> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(sql_error)
    };
    run("SAVEPOINT write")?;
    let result = f().and_then(|value| run("RELEASE write").map(|()| value));
    if result.is_err() {
        rollback_savepoint(conn);
    }
    result
}

/// Undoes the innermost open `write` savepoint, if any.
fn rollback_savepoint(conn: &Connection) {
    if let Err(e) = conn.execute_batch("ROLLBACK TO write; RELEASE write") {
        tracing::error!(error = %e, "could not roll a write back to its savepoint");
    }
}

impl SqliteStore {
    /// The file name [`SqliteStore::open_in`] uses.
    pub const FILE_NAME: &'static str = "cashout.sqlite3";

    /// Opens (creating if needed) the store at `path`, applying the schema, loading (or, on
    /// first start, creating) the key file of signing secrets beside it and sealing the secrets
    /// stored in clear (see `secrets.rs`: a missing key file where sealed secrets are stored is
    /// an error, never a new key).
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::unavailable(format!("cannot create {}", dir.display()), e))?;
        }
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error)?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::invalid(format!(
                "{} cannot use WAL (journal mode {mode})",
                path.display()
            )));
        }
        writer.pragma_update(None, "synchronous", "FULL").map_err(sql_error)?;
        schema::migrate(&writer)?;
        let sealer = secrets::prepare(&writer, &secrets::key_path(path))?;

        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql_error)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let definition = Definition::embedded().map_err(|e| StoreError::Invalid {
            message: "the queue definition".into(),
            source: Some(e.into()),
        })?;
        let shared = Arc::new(Shared {
            clock,
            max_receives: definition
                .queues
                .iter()
                .map(|(q, spec)| (*q, spec.max_receive_count))
                .collect(),
        });
        let (sender, jobs) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("cashout-sqlite-writer".into())
            .spawn(move || writer_loop(writer, thread_shared, jobs))
            .map_err(|e| StoreError::unavailable("cannot start the writer thread", e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: sender,
                readers,
                next_reader: AtomicUsize::new(0),
                shared,
                sealer,
                limits: cashout_core::limit::Buckets::new(cashout_core::limit::KEPT_BUCKETS),
            }),
        })
    }

    /// Opens the store file [`Self::FILE_NAME`] in `dir` (a data directory, or a test's temp
    /// dir).
    pub fn open_in(dir: &Path, clock: Arc<dyn Clock>) -> Result<SqliteStore, StoreError> {
        Self::open(&dir.join(Self::FILE_NAME), clock)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The key file that seals the endpoints' signing secrets (back it up with the database).
    pub fn key_path(&self) -> PathBuf {
        secrets::key_path(&self.inner.path)
    }

    fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// The durability settings of the connection every write goes through, as SQLite reports
    /// them. A test of durability needs them: a `kill -9` alone cannot tell `synchronous=FULL`
    /// from `OFF`, since the killed process's writes survive in the operating system's page
    /// cache; only a power cut would show the difference.
    pub async fn writer_durability(&self) -> Result<Durability, StoreError> {
        self.write(|conn, _| {
            let journal_mode = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(sql_error)?;
            let synchronous = conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .map_err(sql_error)?;
            Ok(Durability {
                journal_mode,
                synchronous,
            })
        })
        .await
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.shared.clock.now()
    }

    /// Runs `f` on the writer connection, in its own savepoint of the next group commit, and
    /// answers once that group is durable.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |ready| {
            let ran = match ready {
                Ok((conn, shared)) => in_savepoint(conn, || f(conn, shared)),
                Err(e) => Err(StoreError::unavailable(
                    "cannot begin a write transaction",
                    e.to_string(),
                )),
            };
            match ran {
                Ok(value) => Some(Box::new(move |failed: Option<&StoreError>| {
                    let _ = answer.send(match failed {
                        None => Ok(value),
                        Some(e) => Err(StoreError::unavailable("the write was not committed", e.to_string())),
                    });
                })),
                Err(e) => {
                    let _ = answer.send(Err(e));
                    None
                }
            }
        });
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::unavailable("the writer thread", WriterGone))?;
        answered
            .await
            .map_err(|_| StoreError::unavailable("the write was abandoned", WriterGone))?
    }

    /// Runs `f` on one of the read-only connections, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let n = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[n]
                .lock()
                .map_err(|_| StoreError::unavailable("a reader connection", Poisoned))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::unavailable("the store task did not finish", e))?
    }
}

/// The writer thread stopped, or dropped a write (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the store's writer stopped or dropped the write")]
struct WriterGone;

/// A connection's lock was poisoned by a panic while it was held.
#[derive(Debug, thiserror::Error)]
#[error("a panic happened while the connection was in use")]
struct Poisoned;

/// SQLite's error as the port's: lock contention and I/O are retryable, a damaged file is
/// corrupt, a refused statement is invalid.
pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::corrupt("the SQLite file is damaged", e)
        }
        Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig) => StoreError::Invalid {
            message: "SQLite refused the write".into(),
            source: Some(e.into()),
        },
        Some(_) => StoreError::unavailable("SQLite failed", e),
        None => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::corrupt("a stored value has the wrong type", e),
            other => StoreError::unavailable("SQLite failed", other),
        },
    }
}

/// A store error where a queue error is expected.
pub(crate) fn queue_error(e: StoreError) -> QueueError {
    QueueError::unavailable("the embedded queue failed", e)
}
