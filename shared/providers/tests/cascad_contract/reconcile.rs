//! Reconciliation reads: the record of a reference (with the invoice's amount, currency and
//! creation time, read only) and the cursor list as records, against divergences the simulator
//! makes behind the client's back (`PUT`/`POST /_sim/payouts/cascad`).

use cashout_core::reconcile::ProviderRecord;
use serde_json::{Value, json};

use super::*;

/// A call to the simulator's control endpoint; the status and the answer.
pub(crate) async fn control(env: &Env, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}/_sim{path}", env.sim.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn record(env: &Env, reference: cashout_core::ids::PayoutReference) -> ProviderRecord {
    env.providers
        .payout_record(CASCAD, reference)
        .await
        .unwrap()
        .expect("a record")
}

#[tokio::test]
async fn a_record_carries_the_invoices_amount_currency_reference_and_creation_time() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    let r = record(&env, o.reference).await;
    assert_eq!(r.payout.payout_id, p.payout_id);
    assert_eq!(r.payout.reference, Some(o.reference));
    assert_eq!(r.payout.state, PayoutState::Pending);
    assert_eq!(r.amount, Some("1234.5".parse().unwrap()), "`amount`, read exactly");
    assert_eq!(r.currency.as_deref(), Some("USD"));
    assert_eq!(r.reference, Some(o.reference.to_string()));
    assert_eq!(r.created_at, Some(common::start_time()));
    let none = env
        .providers
        .payout_record(CASCAD, common::new_reference())
        .await
        .unwrap();
    assert_eq!(none, None);
}

#[tokio::test]
async fn a_status_and_amount_changed_behind_the_clients_back_are_seen_by_the_record() {
    let env = Env::start().await;
    let o = order(CASCAD, "1234567890", &env.receiver.url);
    let p = env.providers.create_payout(&o).await.unwrap();
    env.advance(ms(700));
    let (s, changed) = control(
        &env,
        "PUT",
        &format!("/payouts/cascad/{}", p.payout_id),
        &json!({"status": "terminated", "amount": "12.34", "currency": "EUR"}),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    let r = record(&env, o.reference).await;
    assert_eq!(r.payout.provider_status, "terminated");
    assert_eq!(r.amount, Some("12.34".parse().unwrap()));
    assert_eq!(r.currency.as_deref(), Some("EUR"));
    // The lifecycle no longer runs, and no callback told the client.
    env.advance(ms(5_000));
    assert_eq!(record(&env, o.reference).await.payout.provider_status, "terminated");
    let ledger = env.sim.ledger();
    assert!(
        ledger.deliveries.iter().all(|d| d.status != "terminated"),
        "{:?}",
        ledger.deliveries
    );
    // Processed behind our back with a resolution that is not `ok`: not paid.
    let (s, _) = control(
        &env,
        "PUT",
        &format!("/payouts/cascad/{}", p.payout_id),
        &json!({"status": "processed", "resolution": "error"}),
    )
    .await;
    assert_eq!(s, 200);
    let r = record(&env, o.reference).await;
    assert_eq!(r.payout.provider_status, "processed (error)");
    assert!(!matches!(r.payout.state, PayoutState::Paid { .. }), "{r:?}");
}

#[tokio::test]
async fn the_record_of_an_invoice_left_created_only_reads_it() {
    let env = Env::start().await;
    let reference = common::new_reference();
    // An invoice for our reference that nobody processed (as after a lost process answer).
    env.sim
        .add_payout(
            common::sim(CASCAD),
            &cashout_provider_sim::NewPayout {
                reference: reference.to_string(),
                amount: "25.00".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let r = record(&env, reference).await;
    assert_eq!(
        (r.payout.provider_status.as_str(), r.payout.reference),
        ("created", Some(reference))
    );
    assert_eq!(r.amount, Some("25".parse().unwrap()));
    env.advance(ms(3_000));
    assert_eq!(
        env.sim.ledger().payouts[0].status,
        "created",
        "the reconciliation read did not ask for processing"
    );
    // The operational lookup does process it (unchanged behaviour).
    env.providers.find_payout(CASCAD, reference).await.unwrap().unwrap();
    env.advance(ms(3_000));
    assert_eq!(env.sim.ledger().payouts[0].status, "processed");
}

#[tokio::test]
async fn the_list_pages_through_every_invoice_with_foreign_ones_kept_as_text() {
    let env = Env::start().await;
    let mut ours = Vec::new();
    for _ in 0..3 {
        let o = order(CASCAD, "1234567890", &env.receiver.url);
        ours.push((o.reference, env.providers.create_payout(&o).await.unwrap().payout_id));
    }
    env.advance(ms(1_000));
    let (s, theirs) = control(
        &env,
        "POST",
        "/payouts/cascad",
        &json!({"reference": "someone-else-7", "amount": "10.00", "currency": "USD", "status": "processed"}),
    )
    .await;
    assert_eq!(s, 201, "{theirs}");
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = env
            .providers
            .list_payouts(CASCAD, cursor.as_deref(), 2)
            .await
            .unwrap()
            .expect("Cascad has a list");
        assert!(page.records.len() <= 2);
        pages.push(page.records);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "the cursor must end");
    }
    assert_eq!(pages.len(), 2, "4 invoices, 2 a page");
    let all: Vec<&ProviderRecord> = pages.iter().flatten().collect();
    assert_eq!(all.len(), 4);
    // Newest first: the foreign invoice, then ours from the last made.
    let foreign = all[0];
    assert_eq!(foreign.payout.payout_id.as_str(), theirs["id"].as_str().unwrap());
    assert_eq!(foreign.reference.as_deref(), Some("someone-else-7"));
    assert_eq!(foreign.payout.reference, None, "not one of our references");
    assert_eq!(foreign.amount, Some("10".parse().unwrap()));
    assert_eq!(foreign.currency.as_deref(), Some("USD"));
    assert!(matches!(foreign.payout.state, PayoutState::Paid { .. }), "{foreign:?}");
    assert_eq!(
        foreign.created_at,
        Some(common::start_time() + time::Duration::seconds(1))
    );
    let listed: Vec<_> = all[1..]
        .iter()
        .map(|r| (r.payout.reference.unwrap(), r.payout.payout_id.clone()))
        .collect();
    let expected: Vec<_> = ours.iter().rev().cloned().collect();
    assert_eq!(listed, expected);
    assert!(
        all[1..]
            .iter()
            .all(|r| r.amount == Some("1234.5".parse().unwrap()) && r.currency.as_deref() == Some("USD"))
    );
    // An exact page ends without a cursor.
    let whole = env.providers.list_payouts(CASCAD, None, 4).await.unwrap().unwrap();
    assert_eq!((whole.records.len(), whole.next), (4, None));
}
