//! Statements and the reconciler over the embedded store and the scripted provider.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cashout_core::cashout::AttentionReason;
use cashout_core::event::{EventType, StatusReason};
use cashout_core::ports::ReconciliationStore;
use cashout_core::reconcile::{DifferenceKind, Period, Reconciliation, ReconciliationStatus};
use rust_decimal::Decimal;
use tower::ServiceExt;

use super::support::*;
use crate::http::{api_router, finish};

async fn harness() -> Harness {
    let h = Harness::with(|c| {
        c.reconcile.calls_per_second = 0;
        c.reconcile.lag = Duration::from_secs(600);
        c.reconcile.daily_at = time::Time::from_hms(2, 0, 0).ok();
    })
    .await;
    h.app
        .register_api_key(&ApiKey::new("sk_op"), Principal::admin("ops"), None)
        .await
        .unwrap();
    h.app
        .register_api_key(&ApiKey::new("sk_m2"), merchant("m2"), None)
        .await
        .unwrap();
    h
}

async fn get(h: &Harness, path: &str, key: &str, accept: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .unwrap();
    let response = finish(api_router(h.app.clone())).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn today(h: &Harness) -> String {
    h.now().date().to_string()
}

/// Three requests sent to the provider: one paid, one paid then reversed, one still pending.
/// Each requests 80 % of its first invoice plus 50 % of a 100.00 one: 58.00, 66.40 and 74.20.
async fn three_requests(h: &Harness) -> [CashoutRequestId; 3] {
    let a = create_id(h, "a", "10.00").await;
    let b = create_id(h, "b", "20.50").await;
    let c = create_id(h, "c", "30.25").await;
    h.run_due().await;
    let paid = PayoutState::Paid {
        paid_at: None,
        amount: None,
    };
    h.app.provider.set_state(a, paid.clone());
    h.app.provider.set_state(b, paid);
    h.app.poll(a, None).await.unwrap();
    h.app.poll(b, None).await.unwrap();
    h.app.provider.set_state(
        b,
        PayoutState::Rejected {
            code: Some("826".into()),
            reason: Some("WITHDRAWAL_REVERSED".into()),
        },
    );
    h.app.poll(b, None).await.unwrap();
    assert_eq!(request(h, a).await.status(), CashoutStatus::Paid);
    assert!(matches!(
        request(h, b).await.status_reason(),
        Some(StatusReason::ProviderReversed { .. })
    ));
    assert_eq!(request(h, c).await.status(), CashoutStatus::PendingPayment);
    [a, b, c]
}

#[tokio::test]
async fn a_statement_adds_up_to_the_cent_per_currency_and_status() {
    let h = harness().await;
    let [a, b, c] = three_requests(&h).await;
    let day = today(&h);
    let (status, text) = get(
        &h,
        &format!("/v1/statements?from={day}&to={day}"),
        "sk_op",
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let lines = v["lines"].as_array().unwrap();
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|l| l["cashout_request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = [a.to_string(), b.to_string(), c.to_string()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let brl = &v["totals"]["BRL"];
    assert_eq!(brl["count"], 3);
    assert_eq!(brl["requested"], "198.60");
    assert_eq!(brl["paid"], "58.00");
    assert_eq!(brl["reversed"], "66.40");
    assert_eq!(brl["pending"], "74.20");
    assert_eq!(brl["by_status"]["PAID"]["count"], 1);
    assert_eq!(brl["by_status"]["REJECTED"]["requested"], "66.40");
    let line_b = lines
        .iter()
        .find(|l| l["cashout_request_id"] == b.to_string().as_str())
        .unwrap();
    assert_eq!(line_b["reversed_amount"], "66.40");
    assert_eq!(line_b["paid_amount"], Value::Null);
    assert_eq!(line_b["reference"], b.to_string().as_str());

    // The day before holds nothing.
    let before = h.now().date().previous_day().unwrap();
    let (_, text) = get(&h, &format!("/v1/statements?from={before}&to={before}"), "sk_op", "*/*").await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["lines"], json!([]));
    assert_eq!(v["totals"], json!({}));
}

#[tokio::test]
async fn a_statement_is_csv_on_request_and_pages_with_a_cursor() {
    let h = harness().await;
    three_requests(&h).await;
    let day = today(&h);
    let (status, csv) = get(&h, &format!("/v1/statements?from={day}&to={day}"), "sk_m1", "text/csv").await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[0].starts_with("cashout_request_id,merchant_id,provider,"));
    let total: Decimal = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(5).unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(total, Decimal::new(19860, 2));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/statements?from={day}&to={day}&limit=1"),
            Some(c) => format!("/v1/statements?from={day}&to={day}&limit=1&cursor={c}"),
        };
        let (status, text) = get(&h, &path, "sk_m1", "application/json").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        for l in v["lines"].as_array().unwrap() {
            seen.push(l["cashout_request_id"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 3, "paging never ends");
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each line exactly once");
}

#[tokio::test]
async fn a_merchant_reads_only_its_own_statement() {
    let h = harness().await;
    three_requests(&h).await;
    let day = today(&h);
    let (status, text) = get(&h, &format!("/v1/statements?from={day}&to={day}"), "sk_m2", "*/*").await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["lines"], json!([]), "m2 has no requests");
    let (status, text) = get(
        &h,
        &format!("/v1/statements?from={day}&to={day}&merchant_id=m1"),
        "sk_m2",
        "*/*",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    // Days at the ends of what the stores can hold answer, and never with a server error.
    for far in ["0001-01-01", "1000-06-01", "9999-12-31"] {
        for mode in ["", "&limit=10"] {
            let (status, text) = get(&h, &format!("/v1/statements?from={far}&to={far}{mode}"), "sk_op", "*/*").await;
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{far}{mode}: {status} {text}"
            );
        }
    }
    for bad in [
        format!("/v1/statements?from={day}&to=2020-01-01"),
        "/v1/statements?from=2024-01-01&to=2026-01-01".to_owned(),
        format!("/v1/statements?from=yesterday&to={day}"),
        format!("/v1/statements?from={day}&to={day}&currency=XXX"),
        format!("/v1/statements?from={day}&to={day}&limit=1&cursor=nonsense"),
    ] {
        let (status, text) = get(&h, &bad, "sk_op", "*/*").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {text}");
        assert!(text.contains("invalid_parameter"), "{text}");
    }
}

async fn reconcile(h: &Harness) -> (Reconciliation, Vec<cashout_core::reconcile::Difference>) {
    let day = h.now().date();
    let run = h
        .app
        .start_reconciliation(&Principal::admin("ops"), Period::new(day, day).unwrap())
        .await
        .unwrap();
    h.run_due().await;
    let (run, page) = h
        .app
        .get_reconciliation(&Principal::admin("ops"), run.id, 100, None)
        .await
        .unwrap();
    (run, page.items)
}

#[tokio::test]
async fn the_reconciler_reports_exactly_the_requests_that_differ_and_flags_them() {
    let h = harness().await;
    let [a, b, c] = three_requests(&h).await;
    let d = create_id(&h, "d", "40.00").await;
    let e = create_id(&h, "e", "50.00").await;
    h.run_due().await;
    // a: the provider reversed it behind our back (no notification).
    h.app.provider.set_state(
        a,
        PayoutState::Rejected {
            code: Some("826".into()),
            reason: Some("WITHDRAWAL_REVERSED".into()),
        },
    );
    // d: the provider lost it.
    h.app.provider.0.lock().unwrap().payouts.remove(&d.into());
    // e: the provider paid it 20 minutes ago; we never heard.
    h.app.provider.set_state(
        e,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    // Our scheduled polls fail meanwhile (the status endpoint is down; lookups by reference
    // still answer), so only the reconciler can see it.
    h.app.provider.0.lock().unwrap().status_down = true;
    h.clock.advance(time::Duration::minutes(20));

    assert_eq!(request(&h, e).await.status(), CashoutStatus::PendingPayment, "before");
    let (run, differences) = reconcile(&h).await;
    assert_eq!(run.status, ReconciliationStatus::Completed, "{run:?}");
    assert_eq!(run.requests_checked, 5);
    let mut found: Vec<(CashoutRequestId, DifferenceKind)> = differences
        .iter()
        .map(|d| (d.cashout_request_id.unwrap(), d.kind))
        .collect();
    found.sort();
    let mut want = vec![
        (a, DifferenceKind::StatusMismatch),
        (d, DifferenceKind::MissingAtProvider),
        (e, DifferenceKind::StatusLag),
    ];
    want.sort();
    assert_eq!(found, want, "{differences:#?}");
    assert_eq!(run.differences, 3);

    // The reversal and the lag went through the normal status path, with their events.
    let ra = request(&h, a).await;
    assert_eq!(ra.status(), CashoutStatus::Rejected);
    assert!(matches!(
        ra.status_reason(),
        Some(StatusReason::ProviderReversed { .. })
    ));
    assert_eq!(request(&h, e).await.status(), CashoutStatus::Paid);
    let last = h.app.store.list_events(a).await.unwrap().pop().unwrap();
    assert_eq!(last.event_type(), EventType::StatusUpdate);
    for id in [a, d, e] {
        let r = request(&h, id).await;
        assert!(
            r.attention().iter().any(|n| matches!(
                &n.reason,
                AttentionReason::ReconciliationDifference { reconciliation_id, .. } if *reconciliation_id == run.id
            )),
            "{id} is flagged"
        );
    }
    for id in [b, c] {
        assert!(!request(&h, id).await.needs_attention(), "{id} is not flagged");
    }

    // Run again: the applied ones now agree; only the lost payout remains.
    let (_, differences) = reconcile(&h).await;
    let kinds: Vec<_> = differences
        .iter()
        .map(|x| (x.cashout_request_id.unwrap(), x.kind))
        .collect();
    assert_eq!(kinds, [(d, DifferenceKind::MissingAtProvider)]);
}

#[tokio::test]
async fn a_provider_briefly_ahead_of_us_is_not_a_difference() {
    let h = harness().await;
    let id = create_id(&h, "a", "10.00").await;
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    let (run, differences) = reconcile(&h).await;
    assert_eq!(run.status, ReconciliationStatus::Completed);
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(
        request(&h, id).await.status(),
        CashoutStatus::PendingPayment,
        "unchanged"
    );
}

#[tokio::test]
async fn an_unavailable_provider_pauses_the_run_which_resumes_where_it_stood() {
    let h = harness().await;
    let [a, _, _] = three_requests(&h).await;
    h.app.provider.0.lock().unwrap().payouts.remove(&a.into());
    h.app.provider.fail_lookups(1);
    let day = h.now().date();
    let run = h
        .app
        .start_reconciliation(&Principal::admin("ops"), Period::new(day, day).unwrap())
        .await
        .unwrap();
    let first = h.drain(QueueName::Poll).await;
    assert_eq!(first.len(), 1);
    assert_eq!(h.app.handle_task(first[0].clone()).await.unwrap(), TaskOutcome::Done);
    let stored = h.app.store.get_reconciliation(run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ReconciliationStatus::Running);
    assert_eq!(stored.differences, 0, "nothing half-recorded");
    h.clock.advance(time::Duration::seconds(5));
    let next = h.drain(QueueName::Poll).await;
    assert_eq!(
        next.len(),
        1,
        "the next step is queued 5 s later, for the run's next version"
    );
    // The first task delivered again (its acknowledgement was lost) is stale: it does nothing
    // and queues nothing, so copies never multiply.
    assert_eq!(h.app.handle_task(first[0].clone()).await.unwrap(), TaskOutcome::Done);
    assert!(h.drain(QueueName::Poll).await.is_empty());
    assert_eq!(h.app.handle_task(next[0].clone()).await.unwrap(), TaskOutcome::Done);
    let (run, page) = h
        .app
        .get_reconciliation(&Principal::admin("ops"), run.id, 100, None)
        .await
        .unwrap();
    assert_eq!(run.status, ReconciliationStatus::Completed);
    assert_eq!(run.requests_checked, 3);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].kind, DifferenceKind::MissingAtProvider);
}

#[tokio::test]
async fn the_sweep_starts_the_day_befores_reconciliation_once_a_day() {
    let h = harness().await;
    let day = h.now().date();
    h.clock.set(day.with_hms(1, 0, 0).unwrap().assume_utc());
    assert_eq!(h.app.sweep().await.unwrap().reconciliations, 0, "before 02:00");
    h.clock.set(day.with_hms(3, 0, 0).unwrap().assume_utc());
    assert_eq!(h.app.sweep().await.unwrap().reconciliations, 1);
    assert_eq!(h.app.sweep().await.unwrap().reconciliations, 0, "once");
    let id = Reconciliation::scheduled_id(day.previous_day().unwrap());
    let run = h.app.store.get_reconciliation(id).await.unwrap().unwrap();
    assert_eq!(run.period.from, day.previous_day().unwrap());
    // Another process (a fresh memo) does not start it twice either.
    let other = App::new(
        h.app.store.clone(),
        h.app.queue.clone(),
        h.app.provider.clone(),
        h.app.sender.clone(),
        h.clock.clone(),
        Arc::new(SequentialIds::default()),
        (*h.app.config).clone(),
    );
    assert_eq!(other.sweep().await.unwrap().reconciliations, 0);
    h.run_due().await;
    let run = h.app.store.get_reconciliation(id).await.unwrap().unwrap();
    assert_eq!(run.status, ReconciliationStatus::Completed);
}

#[tokio::test]
async fn only_operators_reconcile() {
    let h = harness().await;
    let day = h.now().date();
    let err = h
        .app
        .start_reconciliation(&merchant("m1"), Period::new(day, day).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
    let (status, _) = get(
        &h,
        "/v1/reconciliations/recon_0190a0a0a0a07000800000000000000",
        "sk_m1",
        "*/*",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
