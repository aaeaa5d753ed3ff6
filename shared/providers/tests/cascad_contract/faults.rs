//! Lost answers, timeouts and throttling, and seed 003's directives table.

use super::*;

#[tokio::test]
async fn a_second_create_with_the_same_reference_adopts_the_existing_invoice() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let first = env.providers.create_payout(&o).await.unwrap();
    let second = env.providers.create_payout(&o).await.unwrap();
    assert_eq!(first.payout_id, second.payout_id);
    let ledger = env.sim.ledger();
    let r = ledger.reference(common::sim(CASCAD), &o.reference.to_string()).unwrap();
    assert_eq!((r.create_attempts, r.payouts), (2, 1));
}

#[tokio::test]
async fn a_lost_create_answer_is_ambiguous_and_the_lookup_processes_the_invoice() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_after: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let e = env.providers.create_payout(&o).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Ambiguous);
    env.sim.set_faults(common::sim(CASCAD), FaultConfig::default());
    // The invoice exists but was never processed: the lookup adopts it and processes it.
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap().unwrap();
    assert_eq!(found.reference, Some(o.reference));
    env.advance(ms(1500));
    let s = env
        .providers
        .payout_status(CASCAD, &found.payout_id, o.reference)
        .await
        .unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
    assert_eq!(env.sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn timeouts_and_dropped_connections_on_create_are_ambiguous() {
    for fault in [
        FaultConfig {
            timeout: 100,
            hang_ms: 3_000,
            ..FaultConfig::default()
        },
        FaultConfig {
            drop: 100,
            ..FaultConfig::default()
        },
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    ] {
        let env = Env::start().await;
        env.sim.set_faults(common::sim(CASCAD), fault.clone());
        let o = order(CASCAD, "1234567890", &env.receiver.url);
        let e = env.providers.create_payout(&o).await.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Ambiguous, "{fault:?}");
    }
}

#[tokio::test]
async fn an_invoice_left_created_is_processed_by_the_next_status_check() {
    let env = Env::start().await;
    let reference = common::new_reference();
    // Created straight at the provider, as if our process call had been lost.
    let (account, key, _, _) = cashout_providers::simulator::CASCAD;
    let body = format!(
        r#"{{"data":{{"type":"payout-invoice","attributes":{{"reference_id":"{reference}","service":"test_usd","currency":"USD","amount":12.5,"fields":{{"account":"1234567890"}}}}}}}}"#
    );
    let created = reqwest::Client::new()
        .post(format!("{}/cascad/payout-invoices", env.sim.url()))
        .basic_auth(account, Some(key))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let id: serde_json::Value = created.json().await.unwrap();
    let id = ProviderPayoutId::new(id["data"]["id"].as_str().unwrap()).unwrap();
    env.advance(ms(1500));
    let s = env.providers.payout_status(CASCAD, &id, reference).await.unwrap();
    assert_eq!(s.provider_status, "created", "nothing happens without a process call");
    env.advance(ms(1500));
    let s = env.providers.payout_status(CASCAD, &id, reference).await.unwrap();
    assert!(matches!(s.state, PayoutState::Paid { .. }), "{s:?}");
}

#[tokio::test]
async fn throttled_reads_are_retried_until_they_pass() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    env.providers.create_payout(&o).await.unwrap();
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    );
    let e = env.providers.find_payout(CASCAD, o.reference).await.unwrap_err();
    assert!(matches!(e.kind, ProviderErrorKind::Retryable { .. }), "{e}");
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            error_before: 50,
            ..FaultConfig::default()
        },
    );
    // With half the reads failing and two retries, a few lookups are enough.
    let mut found = None;
    for _ in 0..20 {
        if let Ok(Some(p)) = env.providers.find_payout(CASCAD, o.reference).await {
            found = Some(p);
            break;
        }
    }
    assert!(found.is_some());
}

// Seed 003's directives table, one test per row the adapter once got wrong (issue 11).

#[tokio::test]
async fn a_400_on_create_is_not_final_the_reference_is_looked_up_and_the_invoice_adopted() {
    let env = Env::start().await;
    // The invoice is made, then Cascad answers 400: "Request the transaction status".
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            bad_request_after: 100,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let result = env.providers.create_payout(&o).await;
    env.sim.set_faults(common::sim(CASCAD), FaultConfig::default());
    // Whatever the create answered, it must not be a refusal while Cascad holds the invoice.
    if let Err(e) = &result {
        assert_ne!(e.kind, ProviderErrorKind::Declined, "{e:?}");
    }
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap();
    let found = found.expect("the 400 create made an invoice");
    if let Ok(p) = result {
        assert_eq!(p.payout_id, found.payout_id);
    }
    assert_eq!(env.sim.ledger().payouts.len(), 1);
}

#[tokio::test]
async fn a_404_on_the_reference_lookup_means_no_invoice_and_the_create_goes_ahead() {
    let env = Env::start().await;
    env.sim.set_faults(
        common::sim(CASCAD),
        FaultConfig {
            not_found_on_empty_filter: true,
            ..FaultConfig::default()
        },
    );
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    assert_eq!(env.providers.find_payout(CASCAD, o.reference).await.unwrap(), None);
    let p = env.providers.create_payout(&o).await.unwrap();
    let found = env.providers.find_payout(CASCAD, o.reference).await.unwrap().unwrap();
    assert_eq!(found.payout_id, p.payout_id);
}

#[tokio::test]
async fn processed_with_a_resolution_other_than_ok_is_not_paid() {
    let env = Env::start().await;
    // Account ending in 08: the simulator's unclear outcome, `processed` with a non-ok resolution.
    let o = order(CASCAD, "1234567808", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let mut last = None;
    for _ in 0..20 {
        env.advance(ms(1000));
        let s = env
            .providers
            .payout_status(CASCAD, &p.payout_id, o.reference)
            .await
            .unwrap();
        if s.provider_status.starts_with("processed") {
            last = Some(s);
            break;
        }
    }
    let s = last.expect("the invoice reaches processed");
    assert_ne!(
        s.provider_status, "processed",
        "the simulator gives a resolution other than ok"
    );
    assert!(matches!(s.state, PayoutState::NeedsAttention { .. }), "{s:?}");
}

/// A proxy in front of the simulator's Cascad API that records each call (`POST /payout-invoices/…/process`,
/// `GET /payout-invoices/…`) and answers the first `process` with a 502, either before the
/// simulator sees it (nothing processed) or after (processed, answer lost).
#[derive(Clone)]
struct Recorder {
    upstream: String,
    calls: Arc<Mutex<Vec<String>>>,
    fail_process: Arc<Mutex<Option<bool>>>,
}

async fn record(
    axum::extract::State(r): axum::extract::State<Recorder>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path().trim_start_matches("/cascad").to_owned();
    let call = format!("{method} {path}");
    r.calls.lock().unwrap().push(call);
    let fail = if path.ends_with("/process") {
        r.fail_process.lock().unwrap().take()
    } else {
        None
    };
    if fail == Some(false) {
        return (axum::http::StatusCode::BAD_GATEWAY, "upstream down").into_response();
    }
    let mut forward = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{}", r.upstream, uri.path_and_query().map_or("", |p| p.as_str())),
    );
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = forward.body(body.to_vec()).send().await.unwrap();
    if fail == Some(true) {
        return (axum::http::StatusCode::BAD_GATEWAY, "answer lost").into_response();
    }
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    (status, answer.bytes().await.unwrap().to_vec()).into_response()
}

/// Seed 003: after a 5xx, "request the transaction status" before the operation is repeated.
/// A `process` answered 502 is followed by a read of the invoice, and a second `process` comes
/// only after a read shows the invoice still `created`; when the failed call did process it, no
/// second `process` is ever sent.
#[tokio::test]
async fn a_5xx_on_process_is_followed_by_a_lookup_before_any_retried_process() {
    for processed_before_failing in [false, true] {
        let env = Env::start().await;
        let recorder = Recorder {
            upstream: env.sim.url(),
            calls: Arc::default(),
            fail_process: Arc::new(Mutex::new(Some(processed_before_failing))),
        };
        let app = axum::Router::new().fallback(record).with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut pc = ProvidersConfig::for_simulator(&env.sim.url());
        pc.http = common::test_http();
        pc.cascad.as_mut().unwrap().base_url = format!("{proxy}/cascad");
        let providers = Providers::new(pc).unwrap();

        let o = order(CASCAD, "1234567890", &env.receiver.url);
        let created = providers.create_payout(&o).await.unwrap();
        let id = created.payout_id.clone();
        let after_create = recorder.calls.lock().unwrap().clone();
        let process = format!("POST /payout-invoices/{id}/process");
        let read = format!("GET /payout-invoices/{id}");
        let at = after_create
            .iter()
            .position(|c| *c == process)
            .expect("one process call");
        assert_eq!(
            &after_create[at + 1..],
            std::slice::from_ref(&read),
            "the failed process is followed by a read and nothing else ({processed_before_failing}): {after_create:?}"
        );
        // Later status checks until the payout ends: a second process only when a read showed
        // the invoice still `created`.
        for _ in 0..3 {
            env.advance(ms(1000));
            providers.payout_status(CASCAD, &id, o.reference).await.unwrap();
        }
        let last = providers.payout_status(CASCAD, &id, o.reference).await.unwrap();
        assert!(matches!(last.state, PayoutState::Paid { .. }), "{last:?}");
        let calls = recorder.calls.lock().unwrap().clone();
        let processes: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == process)
            .map(|(i, _)| i)
            .collect();
        if processed_before_failing {
            assert_eq!(processes.len(), 1, "processed already: never again: {calls:?}");
        } else {
            assert_eq!(
                processes.len(),
                2,
                "processed once it was seen still created: {calls:?}"
            );
            assert!(
                calls[processes[0] + 1..processes[1]].contains(&read),
                "a read between the two process calls: {calls:?}"
            );
        }
        assert_eq!(env.sim.ledger().payouts.len(), 1);
    }
}
