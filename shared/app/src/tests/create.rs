//! Creating requests: review, idempotency, bad input, visibility, invoice claims.

#![allow(clippy::unwrap_used)]

use super::support::*;

#[tokio::test]
async fn a_request_is_created_approved_dispatched_and_paid() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("1000.00")).await.unwrap();
    assert_eq!(created["status"], "APPROVED");
    assert_eq!(created["requested_amount"], "850.00");
    assert_eq!(created["beneficiary"]["bank_account"], "******5678");
    assert_eq!(
        created["beneficiary"]["document_id"], "*******8909",
        "a tax id is masked like an account number"
    );
    let id = created["id"].as_str().unwrap().to_owned();

    h.run_due().await;
    assert_eq!(h.status(&id).await, CashoutStatus::PendingPayment);
    assert_eq!(h.app.provider.creates(), 1);

    h.app.provider.set_state(
        id.parse().unwrap(),
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let r = h.app.store.get_request(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(r.status(), CashoutStatus::Paid);
    assert_eq!(r.paid_amount().unwrap().to_string(), "850.00");
    assert_eq!(r.payment_reference(), Some("P1"));
    let events = h.app.list_events(&merchant("m1"), r.id()).await.unwrap();
    let statuses: Vec<_> = events
        .data
        .iter()
        .map(|e| e.data["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["REQUESTED", "APPROVED", "PENDING_PAYMENT", "PAID"]);
}

#[tokio::test]
async fn the_same_key_and_body_replays_and_another_body_is_refused() {
    let h = Harness::new().await;
    let first = h
        .app
        .create_cashout(
            &MerchantId::new("m1").unwrap(),
            Some("k1"),
            body("1000.00").to_string().as_bytes(),
        )
        .await
        .unwrap();
    // Same body, other key order and whitespace.
    let again = serde_json::to_string_pretty(&body("1000.00")).unwrap();
    let replay = h
        .app
        .create_cashout(&MerchantId::new("m1").unwrap(), Some("k1"), again.as_bytes())
        .await
        .unwrap();
    assert!(replay.replayed() && !first.replayed());
    assert_eq!(replay.id(), first.id());
    assert_eq!(replay.answer(), first.answer(), "the stored answer, byte for byte");
    let other = h.create("k1", &body("999.00")).await;
    assert!(matches!(other, Err(AppError::IdempotencyMismatch)));
    assert_eq!(h.drain(QueueName::Dispatch).await.len(), 1, "one request, one dispatch");
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let h = Harness::new().await;
    let m = MerchantId::new("m1").unwrap();
    assert!(matches!(
        h.app.create_cashout(&m, None, b"{}").await,
        Err(AppError::BadHeader(_))
    ));
    assert!(matches!(
        h.app.create_cashout(&m, Some("k"), b"{nope").await,
        Err(AppError::InvalidJson(_))
    ));
    let mut unknown = body("1.00");
    unknown["colour"] = json!("red");
    assert!(matches!(h.create("k", &unknown).await, Err(AppError::InvalidBody(_))));
    let err = h.create("k", &body("10.001")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (422, "validation_failed"));
    let page = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert!(page.data.is_empty());
    assert!(h.drain(QueueName::Callbacks).await.is_empty());
}

#[tokio::test]
async fn large_requests_wait_for_an_operator_who_may_exclude_invoices() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("20000.00")).await.unwrap();
    assert_eq!(created["status"], "UNDER_REVIEW");
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    let inv = "INV-2".parse().unwrap();
    assert!(matches!(
        h.app.exclude_invoice(&merchant("m1"), id, &inv).await,
        Err(AppError::Forbidden(_))
    ));
    let view = h.app.exclude_invoice(&Principal::admin("ops"), id, &inv).await.unwrap();
    assert_eq!(view.invoices[1].status, cashout_core::status::InvoiceStatus::Excluded);
    h.app.approve(&Principal::admin("ops"), id).await.unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        id,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::seconds(61));
    h.run_due().await;
    let r = h.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(r.status(), CashoutStatus::Paid);
    assert_eq!(r.requested_amount().to_string(), "16050.00");
    assert_eq!(r.paid_amount().unwrap().to_string(), "16000.00");
    assert_eq!((r.paid_invoice_count(), r.requested_invoice_count()), (1, 2));
}

#[tokio::test]
async fn another_merchants_request_is_not_found() {
    let h = Harness::new().await;
    let created = h.create("k1", &body("10.00")).await.unwrap();
    let id: CashoutRequestId = created["id"].as_str().unwrap().parse().unwrap();
    assert!(matches!(
        h.app.get_cashout(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        h.app.cancel(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        h.app.list_events(&merchant("m2"), id).await,
        Err(AppError::NotFound)
    ));
    assert!(h.app.get_cashout(&Principal::admin("ops"), id).await.is_ok());
}

#[tokio::test]
async fn a_create_left_in_progress_is_resumed_not_duplicated() {
    let h = Harness::new().await;
    let text = body("10.00").to_string();
    let value: Value = serde_json::from_str(&text).unwrap();
    let draft = serde_json::from_value::<cashout_core::input::CashoutInput>(value.clone())
        .unwrap()
        .validate(&h.app.config.coverage)
        .unwrap();
    let now = h.now();
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let change = cashout_core::cashout::CashoutRequest::create(id, MerchantId::new("m1").unwrap(), draft, now);
    let record = cashout_core::ports::IdempotencyRecord::begin(
        MerchantId::new("m1").unwrap(),
        "k1".parse().unwrap(),
        crate::create::canonical_hash(&value),
        id,
        now,
    );
    h.app.store.create_request(&change, &record, &[]).await.unwrap();
    assert!(matches!(
        h.create_as_is("k1", &value).await,
        Err(AppError::IdempotencyInProgress)
    ));
    h.clock.advance(time::Duration::seconds(61));
    let resumed = h.create_as_is("k1", &value).await.unwrap();
    assert_eq!(resumed["id"], id.to_string());
    assert_eq!(resumed["status"], "APPROVED");
    let page = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
}

#[tokio::test]
async fn unknown_keys_are_unauthorized() {
    let h = Harness::new().await;
    assert!(matches!(
        h.app.authenticate("sk_nope").await,
        Err(AppError::Unauthorized)
    ));
    assert_eq!(h.app.authenticate("sk_m1").await.unwrap(), merchant("m1"));
}

#[tokio::test]
async fn an_invoice_is_advanced_by_one_request_at_a_time() {
    let h = Harness::new().await;
    let id_of = |v: &Value| -> CashoutRequestId { v["id"].as_str().unwrap().parse().unwrap() };
    // A waits for review with INV-1 and INV-2.
    let a = h.create_as_is("a", &body("20000.00")).await.unwrap();
    assert_eq!(a["status"], "UNDER_REVIEW");
    let a = id_of(&a);
    // B names the same invoices: refused, naming A, and nothing of B exists.
    let err = h.create_as_is("b", &body("10.00")).await.unwrap_err();
    assert!(
        matches!(&err, AppError::InvoiceInUse { holder, invoice_id, .. } if *holder == a && invoice_id.as_str() == "INV-1"),
        "{err:?}"
    );
    assert_eq!((err.status(), err.code()), (409, "invoice_in_use"));
    let all = h
        .app
        .list_cashouts(&merchant("m1"), None, None, None, None)
        .await
        .unwrap();
    assert_eq!(all.data.len(), 1, "the refused create wrote nothing");
    // A excludes INV-2: INV-2 alone is free again, INV-1 is not.
    h.app
        .exclude_invoice(&Principal::admin("ops"), a, &"INV-2".parse().unwrap())
        .await
        .unwrap();
    let only = |invoice: &str| {
        let mut b = body("10.00");
        b["invoices"] = json!([b["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["invoice_id"] == invoice)
            .unwrap()]);
        b
    };
    let c = id_of(&h.create_as_is("c", &only("INV-2")).await.unwrap());
    assert!(matches!(
        h.create_as_is("d", &only("INV-1")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == a
    ));
    // C is at the provider: INV-2 stays taken.
    h.run_due().await;
    assert_eq!(h.status(&c.to_string()).await, CashoutStatus::PendingPayment);
    assert!(matches!(
        h.create_as_is("e", &only("INV-2")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == c
    ));
    // A is cancelled: INV-1 is free, once; the next one meets its new holder.
    h.app.cancel(&merchant("m1"), a).await.unwrap();
    let f = id_of(&h.create_as_is("f", &only("INV-1")).await.unwrap());
    assert!(matches!(
        h.create_as_is("g", &only("INV-1")).await,
        Err(AppError::InvoiceInUse { holder, .. }) if holder == f
    ));
    // A replay of a create is still its first answer, never a conflict with itself.
    let replay = h.create_as_is("f", &only("INV-1")).await.unwrap();
    assert_eq!(id_of(&replay), f);
}
