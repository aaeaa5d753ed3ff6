//! The conformance suite on DynamoDB Local (store) and moto (SQS queues; KMS for the signing
//! secrets), as `./scripts/test`
//! starts them. Each test gets its own table or queues, created from `infra/template.yaml`.
//! Without the emulators' URLs these tests fail: they never skip.
#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;

use cashout_core::ports::{Clock, ManualClock, SystemClock};
use cashout_store::dynamo::DynamoStore;
use cashout_store::resources::{self, Definition};
use cashout_store::sealing::{Kms, Sealer};
use cashout_store::sqs::SqsQueue;
use conformance::fixtures::t0;
use conformance::{QueueEnv, QueueTime, StoreEnv};

const DYNAMODB_URL: &str = "CASHOUT_TEST_DYNAMODB_URL";
const SQS_URL: &str = "CASHOUT_TEST_SQS_URL";

fn emulator(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with ./scripts/test, which starts DynamoDB Local and moto")
    })
}

/// A name no other test uses (tables and queues live as long as the emulator).
fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::now_v7().simple())
}

async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&resources::emulator_config(&emulator(DYNAMODB_URL)).await)
}

/// A client and a new table of its own (every test gets one: tests run concurrently).
async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = dynamo_client().await;
    let table = resources::create_table(&client, Definition::embedded().unwrap(), &unique_prefix())
        .await
        .unwrap();
    (client, table)
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&resources::emulator_config(&emulator(SQS_URL)).await)
}

async fn store_env() -> StoreEnv<DynamoStore> {
    let (client, table) = fresh_table().await;
    let clock = Arc::new(ManualClock::new(t0()));
    StoreEnv {
        store: DynamoStore::new(client, table, clock.clone() as Arc<dyn Clock>).with_sealer(kms_sealer().await),
        clock,
        dir: None,
    }
}

async fn kms_client() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&resources::emulator_config(&emulator(SQS_URL)).await)
}

/// A KMS key of its own in moto (which serves KMS beside SQS), as the functions use one.
async fn kms_key() -> String {
    let created = kms_client().await.create_key().send().await.unwrap();
    created.key_metadata.unwrap().key_id
}

/// A sealer of a new key in moto.
async fn kms_sealer() -> Sealer {
    Sealer::from(Kms::new(&kms_client().await, kms_key().await))
}

async fn queue_env() -> QueueEnv<SqsQueue> {
    let client = sqs_client().await;
    let urls = resources::create_queues(&client, Definition::embedded().unwrap(), &unique_prefix())
        .await
        .unwrap();
    QueueEnv {
        queue: SqsQueue::new(client, urls, Arc::new(SystemClock)),
        time: QueueTime::Real,
        dir: None,
    }
}

mod dynamodb {
    use super::*;
    store_suite!(store_env);
}

mod sqs {
    use super::*;
    queue_suite!(queue_env);
}

mod aws_only {
    use cashout_core::ports::{CashoutStore, QueueName, TaskQueue};
    use cashout_store::QueueInspect;
    use conformance::fixtures::{Fixtures, merchant};

    use super::*;

    #[tokio::test]
    async fn creating_the_resources_twice_is_harmless_and_gives_the_same_names() {
        let (dynamodb, sqs) = (dynamo_client().await, sqs_client().await);
        let prefix = unique_prefix();
        let first = resources::create_all(&dynamodb, &sqs, &prefix).await.unwrap();
        let second = resources::create_all(&dynamodb, &sqs, &prefix).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first.table_name, format!("{prefix}-cashout"));
        let described = dynamodb
            .describe_table()
            .table_name(&first.table_name)
            .send()
            .await
            .unwrap();
        let table = described.table().unwrap();
        let mut indexes: Vec<_> = table
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        indexes.sort_unstable();
        assert_eq!(
            indexes,
            [
                "attention",
                "by-day",
                "by-owner",
                "by-status",
                "dead-letters",
                "due",
                "outbox",
                "work"
            ]
        );
        let ttl = dynamodb
            .describe_time_to_live()
            .table_name(&first.table_name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ttl.time_to_live_description().and_then(|t| t.attribute_name()),
            Some("ttl")
        );
        for q in QueueName::ALL {
            let url = first.queue_urls.url(q).unwrap();
            assert!(url.ends_with(&format!("{prefix}-{q}")), "{url}");
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap();
            let redrive = &attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy];
            assert!(redrive.contains(&format!("{prefix}-{q}-dlq")), "{redrive}");
            assert_eq!(attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout], "180");
        }
    }

    #[tokio::test]
    async fn every_call_reports_its_consumed_capacity() {
        let env = store_env().await;
        let fx = Fixtures::new(env.clock.clone());
        let before = env.store.consumed();
        let change = fx.create(&merchant("clinic"), 1);
        let idem = fx.idempotency(&change, "k", "h");
        env.store.create_request(&change, &idem, &[]).await.unwrap();
        let created = env.store.consumed().since(&before);
        assert_eq!(created.write_calls, 1);
        assert!(created.write_units > rust_decimal::Decimal::ZERO, "{created:?}");
        let read = env.store.consumed();
        env.store.get_request(change.request.id()).await.unwrap().unwrap();
        let got = env.store.consumed().since(&read);
        assert_eq!(got.read_calls, 1);
        assert!(got.read_units > rust_decimal::Decimal::ZERO, "{got:?}");
    }

    /// A page of changed requests reads a bounded amount whatever the range holds: at most 128
    /// index queries reading at most 8 entries per request asked for, their bodies and, for
    /// requests created before the range, their events.
    #[tokio::test]
    async fn aws_a_page_of_changed_requests_reads_a_bounded_amount() {
        use cashout_core::ports::ChangedQuery;
        use time::Duration;

        let env = store_env().await;
        let fx = Fixtures::new(env.clock.clone());
        let m = merchant("clinic");
        let mut created = Vec::new();
        for _ in 0..30 {
            let change = fx.create(&m, 1);
            let idem = fx.idempotency(&change, &change.request.id().to_string(), "h");
            env.store.create_request(&change, &idem, &[]).await.unwrap();
            created.push(change.request);
        }
        env.clock.advance(Duration::days(1));
        for r in &created {
            env.store
                .apply_change(
                    &r.approve(&cashout_core::auth::OperatorName::new("alice").unwrap(), None, fx.now())
                        .unwrap(),
                )
                .await
                .unwrap();
        }
        // Days 1 and 2 (each request met twice), and a year with 364 empty days.
        for (from, to) in [
            (t0(), t0() + Duration::days(2)),
            (t0() - Duration::days(200), t0() + Duration::days(165)),
        ] {
            let mut query = ChangedQuery {
                from,
                to,
                merchant_id: None,
                limit: 1,
                cursor: None,
            };
            let mut listed = std::collections::BTreeSet::new();
            let mut pages = 0;
            loop {
                let before = env.store.consumed();
                let page = env.store.list_changed_requests(&query).await.unwrap();
                let spent = env.store.consumed().since(&before);
                pages += 1;
                // 128 queries; a batch read per query that found entries and an event history
                // per request read, each at most 8 (the entries a page of 1 reads).
                assert!(spent.read_calls <= 128 + 8 + 8, "{spent:?}");
                assert_eq!(spent.write_calls, 0);
                for r in page.items {
                    assert!(listed.insert(r.id()), "listed twice");
                }
                match page.next_cursor {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
                assert!(pages < 1000, "the listing ends");
            }
            assert_eq!(listed.len(), 30);
        }
    }

    /// A table written before the `by-day` index: its events lack the entry, so no statement
    /// lists their requests until `backfill_day_index` gives them one (once: a second run finds
    /// nothing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aws_the_backfill_gives_requests_written_before_the_work_indexes_their_entries() {
        use aws_sdk_dynamodb::types::AttributeValue;
        use cashout_core::auth::OperatorName;
        use cashout_core::cashout::AttentionReason;
        use cashout_core::ports::{WorkList, WorkStore};
        use cashout_core::review::{ApprovalPolicy, PolicyScope, ReviewFacts};

        let (client, table) = fresh_table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>);
        let fx = Fixtures::new(clock.clone());
        let mut made = Vec::new();
        for i in 0..3 {
            let change = fx.create(&merchant("clinic"), 1);
            let idem = fx.idempotency(&change, &format!("k{i}"), "h");
            store.create_request(&change, &idem, &[]).await.unwrap();
            made.push(change.request);
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
        // Make them as an older version wrote them: no work-list attributes.
        for r in &made {
            client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(format!("CR#{}", r.id())))
                .key("sk", AttributeValue::S("META".into()))
                .update_expression("REMOVE work_pk, work_sk, attn_pk, attn_sk")
                .send()
                .await
                .unwrap();
        }
        let listed = |list| {
            let store = store.clone();
            async move {
                let page = store.list_work(list, 10, None).await.unwrap();
                page.items.iter().map(|r| r.id()).collect::<Vec<_>>()
            }
        };
        assert!(
            listed(WorkList::Review).await.is_empty(),
            "invisible before the backfill"
        );
        assert!(
            listed(WorkList::Attention).await.is_empty(),
            "invisible before the backfill"
        );
        let report = store.backfill_work_index(2, |_| {}).await.unwrap();
        assert_eq!((report.found, report.updated), (2, 2), "{report:?}");
        assert_eq!(listed(WorkList::Review).await, [made[0].id()]);
        assert_eq!(listed(WorkList::Attention).await, [made[1].id()]);
        let again = store.backfill_work_index(100, |_| {}).await.unwrap();
        assert_eq!((again.found, again.updated), (0, 0), "idempotent: {again:?}");
    }

    /// A fresh table holding three requests of merchant `clinic` whose first events lack
    /// `attributes` (as a version before their index wrote them): the store, the merchant and
    /// the request ids.
    async fn requests_whose_first_events_lack(
        attributes: &str,
    ) -> (
        DynamoStore,
        cashout_core::ids::MerchantId,
        Vec<cashout_core::ids::CashoutRequestId>,
    ) {
        use aws_sdk_dynamodb::types::AttributeValue;

        let (client, table) = fresh_table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>);
        let fx = Fixtures::new(clock);
        let m = merchant("clinic");
        let mut ids = Vec::new();
        for i in 0..3 {
            let change = fx.create(&m, 1);
            let idem = fx.idempotency(&change, &format!("k{i}"), "h");
            store.create_request(&change, &idem, &[]).await.unwrap();
            ids.push(change.request.id());
        }
        for id in &ids {
            client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(format!("CR#{id}")))
                .key("sk", AttributeValue::S("EVT#0000000001".into()))
                .update_expression(format!("REMOVE {attributes}"))
                .send()
                .await
                .unwrap();
        }
        (store, m, ids)
    }

    #[tokio::test]
    async fn aws_the_backfill_gives_events_written_before_the_by_day_index_their_entry() {
        use cashout_core::ports::ChangedQuery;
        use time::Duration;

        // As an older version wrote them: no `by-day` attributes on the events.
        let (store, _, mut ids) = requests_whose_first_events_lack("day_pk, day_sk").await;
        let query = ChangedQuery {
            from: t0() - Duration::days(1),
            to: t0() + Duration::days(1),
            merchant_id: None,
            limit: 100,
            cursor: None,
        };
        let listed = |store: DynamoStore| {
            let query = query.clone();
            async move {
                let mut all = Vec::new();
                let mut q = query;
                loop {
                    let page = store.list_changed_requests(&q).await.unwrap();
                    all.extend(page.items.iter().map(|r| r.id()));
                    match page.next_cursor {
                        Some(c) => q.cursor = Some(c),
                        None => return all,
                    }
                }
            }
        };
        assert!(listed(store.clone()).await.is_empty(), "invisible before the backfill");
        let mut pages_seen = 0;
        let report = store.backfill_day_index(2, |_| pages_seen += 1).await.unwrap();
        assert_eq!((report.found, report.updated), (3, 3), "{report:?}");
        assert!(pages_seen >= 2, "paged: {report:?}");
        let mut got = listed(store.clone()).await;
        got.sort();
        ids.sort();
        assert_eq!(got, ids);
        let again = store.backfill_day_index(100, |_| {}).await.unwrap();
        assert_eq!((again.found, again.updated), (0, 0));
    }

    #[tokio::test]
    async fn aws_the_backfill_gives_events_written_before_the_merchant_listing_their_entry() {
        use cashout_core::ports::EventQuery;

        // As an older version wrote them: no `by-owner` attributes on the events.
        let (store, m, mut ids) = requests_whose_first_events_lack("gsi1pk, gsi1sk").await;
        let query = EventQuery {
            types: Vec::new(),
            cashout_request_id: None,
            since: None,
            until: None,
            limit: 100,
            cursor: None,
        };
        assert!(
            store.list_merchant_events(&m, &query).await.unwrap().items.is_empty(),
            "invisible before the backfill"
        );
        let report = store.backfill_event_owner_index(2, |_| {}).await.unwrap();
        assert_eq!((report.found, report.updated), (3, 3), "{report:?}");
        let mut got: Vec<_> = store
            .list_merchant_events(&m, &query)
            .await
            .unwrap()
            .items
            .iter()
            .map(|e| e.cashout_request_id)
            .collect();
        got.sort();
        ids.sort();
        assert_eq!(got, ids);
        let again = store.backfill_event_owner_index(100, |_| {}).await.unwrap();
        assert_eq!((again.found, again.updated), (0, 0));
    }

    /// Merchants whose endpoints were written before the count item (and before versions): the
    /// first creation or deletion counts them, and the cap holds from there, under concurrency.
    #[tokio::test]
    async fn aws_endpoints_written_before_the_count_are_counted_when_first_needed() {
        use aws_sdk_dynamodb::types::AttributeValue;
        use cashout_core::ports::WebhookStore;
        use cashout_core::webhook::{EndpointCreated, WebhookEndpoint};

        let (client, table) = fresh_table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        // Older items hold their secrets in clear (read as they are); new ones are sealed.
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>)
            .with_sealer(Sealer::in_memory());
        let fx = Fixtures::new(clock.clone());
        let (clinic, pharmacy) = (merchant("clinic"), merchant("pharmacy"));
        // As the older version wrote them: a plain put, no `v`, no version in the body, no count.
        let write_old = |e: WebhookEndpoint| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                let mut body = serde_json::to_value(&e).unwrap();
                body.as_object_mut().unwrap().remove("version");
                client
                    .put_item()
                    .table_name(&table)
                    .item("pk", AttributeValue::S(format!("M#{}", e.merchant_id)))
                    .item("sk", AttributeValue::S(format!("EP#{}", e.id)))
                    .item(
                        "created_at",
                        AttributeValue::N(e.created_at.unix_timestamp_nanos().to_string()),
                    )
                    .item("body", AttributeValue::S(body.to_string()))
                    .send()
                    .await
                    .unwrap();
                WebhookEndpoint { version: 0, ..e }
            }
        };
        let mut old = Vec::new();
        for i in 0..19 {
            old.push(write_old(fx.endpoint(&clinic, &format!("https://{i}.example/hook"))).await);
        }
        let contenders: Vec<WebhookEndpoint> = (0..3)
            .map(|i| fx.endpoint(&clinic, &format!("https://new{i}.example/hook")))
            .collect();
        let outcomes = futures::future::join_all(contenders.iter().map(|e| store.create_endpoint(e, 20))).await;
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(EndpointCreated::Created)))
            .count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(EndpointCreated::LimitReached)))
            .count();
        assert_eq!((created, refused), (1, 2), "{outcomes:?}");
        assert_eq!(store.list_endpoints(&clinic).await.unwrap().len(), 20);
        assert_eq!(
            store.list_endpoints(&clinic).await.unwrap()[0],
            old[0],
            "an old endpoint reads at version 0"
        );
        let rotated = old[0].rotate(cashout_core::signing::WebhookSecret::from_key_bytes(&[7; 32]), t0());
        store.replace_endpoint(&rotated, 0).await.unwrap();
        let err = store.replace_endpoint(&rotated, 0).await.unwrap_err();
        assert!(
            matches!(err, cashout_core::ports::StoreError::Conflict { expected: 0 }),
            "{err:?}"
        );

        let two = [
            write_old(fx.endpoint(&pharmacy, "https://a.example/hook")).await,
            write_old(fx.endpoint(&pharmacy, "https://b.example/hook")).await,
        ];
        assert!(
            store.delete_endpoint(&pharmacy, two[0].id).await.unwrap(),
            "a deletion first"
        );
        for i in 0..19 {
            let e = fx.endpoint(&pharmacy, &format!("https://{i}.example/hook"));
            assert_eq!(
                store.create_endpoint(&e, 20).await.unwrap(),
                EndpointCreated::Created,
                "{i}"
            );
        }
        let late = fx.endpoint(&pharmacy, "https://late.example/hook");
        assert_eq!(
            store.create_endpoint(&late, 20).await.unwrap(),
            EndpointCreated::LimitReached
        );
        assert_eq!(store.list_endpoints(&pharmacy).await.unwrap().len(), 20);
    }

    #[tokio::test]
    async fn a_task_due_after_fifteen_minutes_is_sent_with_the_longest_sqs_delay() {
        let env = queue_env().await;
        let task = cashout_core::ports::Task::Poll {
            cashout_request_id: cashout_core::ids::CashoutRequestId::from_uuid(uuid::Uuid::now_v7()),
            due_at: None,
        };
        let far = cashout_core::ports::TaskEnvelope::new(
            task,
            time::OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(3600),
        );
        env.queue.send(&far).await.unwrap();
        let depth = env.queue.depth(QueueName::Poll).await.unwrap();
        assert_eq!(depth.delayed, 1, "{depth:?}");
        assert_eq!(env.queue.requests().send, 1);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_after_bounded_retries_with_its_source() {
        use cashout_core::ports::{Classify, ErrorClass, StoreError, TaskSource};
        // A port nothing listens on: every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dead = format!("http://127.0.0.1:{port}");
        let config = resources::emulator_config(&dead).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "t", Arc::new(SystemClock));
        let started = std::time::Instant::now();
        let err = store
            .get_request(cashout_core::ids::CashoutRequestId::from_uuid(uuid::Uuid::nil()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert!(
            std::error::Error::source(&err).is_some(),
            "the SDK error is kept as the source"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "bounded: {:?}",
            started.elapsed()
        );

        let mut urls = cashout_store::sqs::QueueUrls::default();
        urls.insert(
            QueueName::Poll,
            format!("{dead}/000000000000/q"),
            format!("{dead}/000000000000/d"),
        );
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&config), urls, Arc::new(SystemClock));
        let err = queue
            .receive(QueueName::Poll, 1, std::time::Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[tokio::test]
    async fn a_missing_table_is_a_permanent_error() {
        use cashout_core::ports::{Classify, ErrorClass, StoreError};
        let store = DynamoStore::new(dynamo_client().await, unique_prefix(), Arc::new(SystemClock));
        let err = store
            .get_request(cashout_core::ids::CashoutRequestId::from_uuid(uuid::Uuid::nil()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    /// The figures of `docs/cost-model.md`: every routing read and write is one call; a health
    /// item and a rule (~0.3 and ~0.5 KB) each fit one write unit, eight rules one read unit.
    #[tokio::test]
    async fn routing_reads_and_writes_are_one_call_each_at_the_cost_model_s_units() {
        use cashout_core::health::CallOutcome;
        use cashout_core::ports::RoutingStore;
        use cashout_core::provider::ProviderName;
        use cashout_store::dynamo::ConsumedCapacity;
        use rust_decimal::Decimal;

        let env = store_env().await;
        let (fx, store) = (Fixtures::new(env.clock.clone()), &env.store);
        let cost = |before: ConsumedCapacity| {
            let spent = store.consumed().since(&before);
            (
                spent.read_calls + spent.write_calls,
                spent.read_units,
                spent.write_units,
            )
        };
        let (zero, one) = (Decimal::ZERO, Decimal::ONE);

        let health = fx.health(ProviderName::D24);
        let before = store.consumed();
        store.put_provider_health(&health, 0).await.unwrap();
        assert_eq!(cost(before), (1, zero, one), "first health write");
        let before = store.consumed();
        store.get_provider_health(ProviderName::D24).await.unwrap().unwrap();
        assert_eq!(cost(before), (1, one, zero), "health read");
        let before = store.consumed();
        let next = fx.recorded(&health, CallOutcome::Timeout);
        store.put_provider_health(&next, 1).await.unwrap();
        assert_eq!(cost(before), (1, zero, one), "health update");
        let before = store.consumed();
        store.list_provider_health().await.unwrap();
        assert_eq!(cost(before), (1, one, zero), "health list");

        let rules: Vec<_> = (0..8).map(|i| fx.rule(Some(&merchant("clinic")), i)).collect();
        for r in &rules {
            let before = store.consumed();
            store.put_routing_rule(r, 0).await.unwrap();
            assert_eq!(cost(before).0, 1, "a creation is one transaction");
        }
        let before = store.consumed();
        store
            .put_routing_rule(&fx.reprioritised(&rules[0], 9), 1)
            .await
            .unwrap();
        assert_eq!(cost(before), (1, zero, one), "rule replacement");
        let before = store.consumed();
        assert_eq!(store.list_routing_rules().await.unwrap().len(), 8);
        assert_eq!(cost(before), (1, one, zero), "a list of 8 rules");
    }
}

/// Signing secrets at rest in DynamoDB: sealed with a KMS data key, bound to their endpoint,
/// opened from the cache after the first `Decrypt`, and never written in clear.
mod secrets_at_rest {
    use cashout_core::ports::{StoreError, WebhookStore};
    use cashout_core::webhook::WebhookEndpoint;
    use conformance::fixtures::{Fixtures, merchant};

    use super::*;

    async fn table() -> (aws_sdk_dynamodb::Client, String) {
        let (client, table) = fresh_table().await;
        (client, table)
    }

    /// Every item of the table, as text.
    async fn raw_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items().iter().map(|i| format!("{i:?}")));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }

    fn secret_keys(endpoints: &[&WebhookEndpoint]) -> Vec<String> {
        endpoints
            .iter()
            .flat_map(|e| e.secrets.iter())
            .map(|s| s.secret.expose()["whsec_".len()..].to_owned())
            .collect()
    }

    #[tokio::test]
    async fn aws_the_table_holds_no_secret_after_endpoints_are_created_and_rotated() {
        let (client, table) = table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>)
            .with_sealer(kms_sealer().await);
        let f = Fixtures::new(clock);
        let m = merchant("m1");
        let (a, b) = (f.endpoint(&m, "https://a.example"), f.endpoint(&m, "https://b.example"));
        let _ = store.create_endpoint(&a, 20).await.unwrap();
        let _ = store.create_endpoint(&b, 20).await.unwrap();
        let rotated = a.rotate(f.endpoint(&m, "https://x").secrets[0].secret.clone(), f.now());
        store.replace_endpoint(&rotated, a.version).await.unwrap();
        assert_eq!(store.get_endpoint(&m, a.id).await.unwrap(), Some(rotated.clone()));
        assert_eq!(store.list_endpoints(&m).await.unwrap(), [rotated.clone(), b.clone()]);

        let items = raw_items(&client, &table).await;
        assert!(items.iter().any(|i| i.contains("v1.kms.")), "sealed secrets are stored");
        for item in &items {
            assert!(!item.contains("whsec_"), "a `whsec_` text is stored: {item}");
            for key in secret_keys(&[&a, &b, &rotated]) {
                assert!(!item.contains(&key), "a secret's key is stored");
            }
        }
    }

    #[tokio::test]
    async fn aws_secrets_stored_in_clear_before_sealing_are_sealed_by_the_backfill() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let (client, table) = table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>)
            .with_sealer(kms_sealer().await);
        let f = Fixtures::new(clock);
        let m = merchant("m1");
        let old = f.endpoint(&m, "https://old.example");
        // As a version before sealing wrote it: the endpoint's JSON, secrets in clear.
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("M#{m}")))
            .item("sk", AttributeValue::S(format!("EP#{}", old.id)))
            .item("created_at", AttributeValue::N("0".into()))
            .item("v", AttributeValue::N(old.version.to_string()))
            .item("body", AttributeValue::S(serde_json::to_string(&old).unwrap()))
            .send()
            .await
            .unwrap();
        let fresh = f.endpoint(&m, "https://new.example");
        let _ = store.create_endpoint(&fresh, 20).await.unwrap();
        assert_eq!(
            store.get_endpoint(&m, old.id).await.unwrap(),
            Some(old.clone()),
            "clear secrets still read"
        );
        assert!(raw_items(&client, &table).await.iter().any(|i| i.contains("whsec_")));

        let report = store.seal_clear_secrets(1, |_| {}).await.unwrap();
        assert_eq!((report.found, report.updated), (1, 1), "{report:?}");
        for item in raw_items(&client, &table).await {
            assert!(!item.contains("whsec_"), "a `whsec_` text is stored: {item}");
        }
        let sealed = store.get_endpoint(&m, old.id).await.unwrap().unwrap();
        assert_eq!(sealed.secrets, old.secrets, "the same secrets, now sealed");
        assert_eq!(sealed.version, old.version + 1);
        let again = store.seal_clear_secrets(100, |_| {}).await.unwrap();
        assert_eq!(again.found, 0, "idempotent");
    }

    #[tokio::test]
    async fn aws_a_warm_store_calls_kms_once_per_secret_not_once_per_read() {
        let (client, table) = table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let key = kms_key().await;
        let kms = kms_client().await;
        let writer = Sealer::from(Kms::new(&kms, key.clone()));
        let store = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>)
            .with_sealer(writer.clone());
        let f = Fixtures::new(clock.clone());
        let m = merchant("m1");
        let endpoint = f.endpoint(&m, "https://a.example");
        let _ = store.create_endpoint(&endpoint, 20).await.unwrap();
        assert_eq!(writer.kms_requests(), 1, "one GenerateDataKey");
        store.get_endpoint(&m, endpoint.id).await.unwrap();
        assert_eq!(writer.kms_requests(), 1, "the writer keeps the data key it generated");

        // Another function (the callbacks): one Decrypt, then the cache.
        let reader = Sealer::from(Kms::new(&kms, key));
        let other = DynamoStore::new(client, table, clock as Arc<dyn Clock>).with_sealer(reader.clone());
        for _ in 0..5 {
            assert_eq!(
                other.get_endpoint(&m, endpoint.id).await.unwrap(),
                Some(endpoint.clone())
            );
        }
        assert_eq!(reader.kms_requests(), 1, "one Decrypt for five reads");
    }

    #[tokio::test]
    async fn aws_a_store_without_a_sealer_refuses_to_write_or_read_secrets() {
        let (client, table) = table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let bare = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>);
        let f = Fixtures::new(clock.clone());
        let m = merchant("m1");
        let endpoint = f.endpoint(&m, "https://a.example");
        assert!(matches!(
            bare.create_endpoint(&endpoint, 20).await,
            Err(StoreError::Invalid { .. })
        ));
        assert!(raw_items(&client, &table).await.is_empty(), "nothing was written");
        let sealed = DynamoStore::new(client, table, clock as Arc<dyn Clock>).with_sealer(kms_sealer().await);
        let _ = sealed.create_endpoint(&endpoint, 20).await.unwrap();
        assert!(matches!(
            bare.get_endpoint(&m, endpoint.id).await,
            Err(StoreError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn aws_a_secret_sealed_with_another_kms_key_does_not_open() {
        let (client, table) = table().await;
        let clock = Arc::new(ManualClock::new(t0()));
        let one = DynamoStore::new(client.clone(), table.clone(), clock.clone() as Arc<dyn Clock>)
            .with_sealer(kms_sealer().await);
        let f = Fixtures::new(clock.clone());
        let m = merchant("m1");
        let endpoint = f.endpoint(&m, "https://a.example");
        let _ = one.create_endpoint(&endpoint, 20).await.unwrap();
        // Sealed under KMS: a key file cannot open it.
        let other = DynamoStore::new(client, table, clock as Arc<dyn Clock>).with_sealer(Sealer::in_memory());
        assert!(matches!(
            other.get_endpoint(&m, endpoint.id).await,
            Err(StoreError::Corrupt { .. })
        ));
    }
}
