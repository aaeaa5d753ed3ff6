//! The conformance suite on the embedded SQLite store and queue, plus what only SQLite promises
//! (durability across a reopen, receipts tied to one receive).
#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;

use cashout_core::ports::{Clock, ManualClock};
use cashout_store::sqlite::SqliteStore;
use conformance::fixtures::t0;
use conformance::{QueueEnv, QueueTime, StoreEnv};

/// A fresh store in its own temp dir, and the dir's guard (the env holds it for the test).
fn open(clock: Arc<ManualClock>) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open_in(dir.path(), clock as Arc<dyn Clock>).unwrap(), dir)
}

async fn store_env() -> StoreEnv<SqliteStore> {
    let clock = Arc::new(ManualClock::new(t0()));
    let (store, dir) = open(clock.clone());
    StoreEnv {
        store,
        clock,
        dir: Some(dir),
    }
}

async fn queue_env() -> QueueEnv<SqliteStore> {
    let clock = Arc::new(ManualClock::new(t0()));
    let (queue, dir) = open(clock.clone());
    QueueEnv {
        queue,
        time: QueueTime::Manual(clock),
        dir: Some(dir),
    }
}

store_suite!(store_env);
queue_suite!(queue_env);

mod embedded_only {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use cashout_core::ids::CashoutRequestId;
    use cashout_core::ports::{
        CashoutStore, QueueName, Receipt, SystemClock, Task, TaskEnvelope, TaskQueue, TaskSource,
    };
    use cashout_store::QueueInspect;

    use super::*;
    use crate::conformance::fixtures::{Fixtures, merchant};

    const CHILD_DIR: &str = "CASHOUT_TEST_KILL9_DIR";

    /// The writer the test kills: first prints the durability settings its store's writer
    /// connection runs with, then creates requests and enqueues a task for each, printing every id
    /// once the store has answered `Ok`, until it is killed.
    async fn child_writer(dir: &str) -> ! {
        let clock = Arc::new(ManualClock::new(t0()));
        let store = SqliteStore::open_in(std::path::Path::new(dir), clock.clone()).unwrap();
        let fx = Fixtures::new(clock);
        let mut out = std::io::stdout().lock();
        let durability = store.writer_durability().await.unwrap();
        writeln!(out, "durability {} {}", durability.journal_mode, durability.synchronous).unwrap();
        loop {
            let change = fx.create(&merchant("clinic"), 3);
            let id = change.request.id();
            let idem = fx.idempotency(&change, &id.to_string(), "h");
            store.create_request(&change, &idem, &[]).await.unwrap();
            let task = Task::Dispatch { cashout_request_id: id };
            store
                .send(&TaskEnvelope::new(task, t0(), Duration::ZERO))
                .await
                .unwrap();
            writeln!(out, "ok {id}").unwrap();
            out.flush().unwrap();
        }
    }

    /// Runs this same test binary as the writer (the environment variable selects the role), kills it
    /// with SIGKILL after 40 acknowledged writes, and reopens the store.
    ///
    /// A killed process's writes survive in the OS page cache even when they were never synced,
    /// so the kill alone would pass with `synchronous=OFF`: the writer also reports the settings
    /// its connection runs with, and they must be WAL with `synchronous=FULL` (each commit fsynced
    /// before it is acknowledged, which is what survives a power cut too).
    #[tokio::test]
    async fn kill_9_loses_no_acknowledged_write() {
        if let Ok(dir) = std::env::var(CHILD_DIR) {
            child_writer(&dir).await;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "embedded_only::kill_9_loses_no_acknowledged_write",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acknowledged = Vec::new();
        let mut durability = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(settings) = line.strip_prefix("durability ") {
                durability = Some(settings.to_owned());
            }
            if let Some(id) = line.strip_prefix("ok ") {
                acknowledged.push(id.parse::<CashoutRequestId>().unwrap());
                if acknowledged.len() == 40 {
                    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no checkpoint
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(
            durability.as_deref(),
            Some("wal 2"),
            "the writer's connection must run in WAL mode with synchronous=FULL (2)"
        );
        assert_eq!(acknowledged.len(), 40, "the child wrote before it was killed");

        let store = SqliteStore::open_in(dir.path(), Arc::new(SystemClock)).unwrap();
        for id in &acknowledged {
            assert!(store.get_request(*id).await.unwrap().is_some(), "request {id} was lost");
            assert_eq!(store.list_events(*id).await.unwrap().len(), 1);
        }
        let depth = store.depth(QueueName::Dispatch).await.unwrap();
        assert!(depth.total() >= 40, "enqueued tasks were lost: {depth:?}");
    }

    #[tokio::test]
    async fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let fx = Fixtures::new(clock.clone());
        let change = fx.create(&merchant("clinic"), 1);
        {
            let store = SqliteStore::open_in(dir.path(), clock.clone()).unwrap();
            let idem = fx.idempotency(&change, "k", "h");
            store.create_request(&change, &idem, &[]).await.unwrap();
            let task = Task::Dispatch {
                cashout_request_id: change.request.id(),
            };
            store
                .send(&TaskEnvelope::new(task, t0(), Duration::ZERO))
                .await
                .unwrap();
        }
        let store = SqliteStore::open_in(dir.path(), clock).unwrap();
        assert_eq!(
            store.get_request(change.request.id()).await.unwrap(),
            Some(change.request)
        );
        let got = store
            .receive(QueueName::Dispatch, 10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_receipt_is_valid_only_for_the_receive_that_issued_it() {
        let env = queue_env().await;
        let QueueTime::Manual(clock) = &env.time else {
            unreachable!()
        };
        let task = Task::Dispatch {
            cashout_request_id: CashoutRequestId::from_uuid(uuid::Uuid::from_u128(1)),
        };
        env.queue
            .send(&TaskEnvelope::new(task, t0(), Duration::ZERO))
            .await
            .unwrap();
        let q = QueueName::Dispatch;
        let first = env.queue.receive(q, 1, Duration::from_secs(1)).await.unwrap().remove(0);
        clock.advance(time::Duration::seconds(1));
        let second = env
            .queue
            .receive(q, 1, Duration::from_secs(30))
            .await
            .unwrap()
            .remove(0);
        // The slow first consumer cannot delete what the second one now holds.
        assert!(env.queue.ack(q, &first.receipt).await.is_err());
        assert!(env.queue.release(q, &first.receipt, Duration::ZERO).await.is_err());
        assert!(
            env.queue.ack(QueueName::Poll, &second.receipt).await.is_err(),
            "another queue's"
        );
        env.queue.ack(q, &second.receipt).await.unwrap();
        assert!(env.queue.ack(q, &second.receipt).await.is_err(), "already acknowledged");
        assert!(env.queue.ack(q, &Receipt("x.y".into())).await.is_err());
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_store_is_refused_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cashout.sqlite3");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap_err();
        assert!(
            matches!(err, cashout_core::ports::StoreError::Corrupt { .. }),
            "{err:?}"
        );
    }

    /// A file of schema version 4 holding requests and attempts gains the work lists and the dead
    /// letters from them when opened (the version 5 step fills its columns from the bodies).
    #[tokio::test]
    async fn a_version_4_file_lists_its_waiting_requests_and_dead_letters_once_opened() {
        use cashout_core::auth::OperatorName;
        use cashout_core::cashout::AttentionReason;
        use cashout_core::ports::{WebhookStore, WorkList, WorkStore};
        use cashout_core::review::{ApprovalPolicy, PolicyScope, ReviewFacts};
        use cashout_core::webhook::AttemptOutcome;

        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let fx = Fixtures::new(clock.clone());
        let store = SqliteStore::open_in(dir.path(), clock.clone()).unwrap();
        let mut made = Vec::new();
        for _ in 0..3 {
            let change = fx.create(&merchant("clinic"), 1);
            let idem = fx.idempotency(&change, &change.request.id().to_string(), "h");
            store.create_request(&change, &idem, &[]).await.unwrap();
            made.push(change.request);
            clock.advance(time::Duration::minutes(1));
        }
        let policy = ApprovalPolicy::limit_only(PolicyScope::Default, rust_decimal::Decimal::ZERO);
        let review = made[0]
            .review(&policy, &ReviewFacts::default(), None, fx.now())
            .unwrap();
        store.apply_change(&review).await.unwrap();
        let approved = made[1]
            .approve(&OperatorName::new("alice").unwrap(), None, fx.now())
            .unwrap();
        store.apply_change(&approved).await.unwrap();
        let reason = AttentionReason::ProviderNeedsAttention {
            reason: "partly".into(),
        };
        let flagged = approved.request.flag_attention(reason, fx.now()).unwrap();
        store.apply_change(&flagged).await.unwrap();
        let endpoint = fx.endpoint(&merchant("clinic"), "https://example.com/hook");
        let event = cashout_core::ids::EventId::new(made[2].id(), 1);
        let mut dead = fx.attempt(&endpoint, event, 5);
        dead.outcome = AttemptOutcome::Exhausted;
        dead.next_attempt_at = None;
        store.record_attempt(&fx.attempt(&endpoint, event, 4)).await.unwrap();
        store.record_attempt(&dead).await.unwrap();
        drop(store);

        // Back to what a version 4 build left: no columns, indexes or tables of versions 5 and 6.
        let conn = rusqlite::Connection::open(dir.path().join(SqliteStore::FILE_NAME)).unwrap();
        conn.execute_batch(
            "DROP INDEX events_by_merchant; ALTER TABLE events DROP COLUMN merchant_id;
             ALTER TABLE events DROP COLUMN event_type; DROP INDEX requests_work; DROP INDEX requests_attention; DROP INDEX attempts_dead;
             ALTER TABLE requests DROP COLUMN request_date; ALTER TABLE requests DROP COLUMN work_list;
             ALTER TABLE requests DROP COLUMN attention; ALTER TABLE attempts DROP COLUMN dead;
             DROP TABLE operators; DROP TABLE policies; DROP TABLE day_usage; DROP TABLE beneficiaries;
             DROP TABLE sessions; PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open_in(dir.path(), clock).unwrap();
        // Version 6 filled each event's merchant from its request: the merchant's listing has them.
        let listed = store
            .list_merchant_events(
                made[0].merchant_id(),
                &cashout_core::ports::EventQuery {
                    types: vec![],
                    cashout_request_id: Some(made[0].id()),
                    since: None,
                    until: None,
                    limit: 100,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        assert!(
            !listed.items.is_empty(),
            "an upgraded file lists its events by merchant"
        );
        let ids = |page: cashout_core::ports::Page<cashout_core::cashout::CashoutRequest>| {
            page.items.iter().map(|r| r.id()).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store.list_work(WorkList::Review, 10, None).await.unwrap()),
            [made[0].id()]
        );
        assert_eq!(
            ids(store.list_work(WorkList::Attention, 10, None).await.unwrap()),
            [made[1].id()]
        );
        assert!(
            store
                .list_work(WorkList::ProcessorError, 10, None)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(store.list_dead_letters(10, None).await.unwrap().items, [dead]);
    }
}
