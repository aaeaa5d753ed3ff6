//! Named operators, approval policies and four-eyes review.

use cashout_core::auth::{ApiKey, OperatorName, OperatorRole, Principal};
use cashout_core::event::EventPayload;
use cashout_core::ports::WorkList;
use cashout_core::provider::PayoutState;
use cashout_core::review::PolicyScope;
use cashout_core::status::CashoutStatus;
use serde_json::json;

use super::support::*;
use crate::AppError;
use crate::policies::PolicyInput;

fn policy(rules: serde_json::Value) -> PolicyInput {
    serde_json::from_value(json!({ "rules": rules })).unwrap()
}

async fn with_operators() -> (Harness, Principal, Principal, Principal) {
    let h = Harness::new().await;
    let admin = Principal::admin("root");
    for (name, role, key) in [
        ("root", OperatorRole::Admin, "sk_root"),
        ("alice", OperatorRole::Reviewer, "sk_alice"),
        ("bob", OperatorRole::Reviewer, "sk_bob"),
    ] {
        h.app
            .ensure_operator(OperatorName::new(name).unwrap(), role, &ApiKey::new(key))
            .await
            .unwrap();
    }
    (h, admin, Principal::reviewer("alice"), Principal::reviewer("bob"))
}

#[tokio::test]
async fn two_distinct_operators_approve_when_the_policy_asks_for_four_eyes() {
    let (h, admin, alice, bob) = with_operators().await;
    h.app
        .put_policy(
            &admin,
            PolicyScope::Default,
            policy(json!([{"kind": "amount_limit", "other_currencies": "1000", "approvers": 2}])),
        )
        .await
        .unwrap();
    let id = create_id(&h, "k1", "5000.00").await;
    let r = request(&h, id).await;
    assert_eq!(r.status(), CashoutStatus::UnderReview);
    let review = r.review_state().unwrap();
    assert_eq!(review.decision.required_approvals, 2);
    assert_eq!(review.decision.fired[0].rule, "amount_limit");

    let first = h.app.approve(&alice, id).await.unwrap();
    assert_eq!(first.status, CashoutStatus::UnderReview);
    assert_eq!(first.review.as_ref().unwrap().approvals[0].operator, "alice");
    // The same operator again: 409 already_approved, nothing changes.
    let again = h.app.approve(&alice, id).await.unwrap_err();
    assert_eq!((again.status(), again.code()), (409, "already_approved"));
    assert_eq!(request(&h, id).await.version(), r.version() + 1);

    let second = h.app.approve(&bob, id).await.unwrap();
    assert_eq!(second.status, CashoutStatus::Approved);
    let actor = second.status_actor.unwrap();
    assert_eq!((actor.actor_type.as_str(), actor.id.as_str()), ("operator", "bob"));
    // The status event names the operator whose approval moved it.
    let events = h.app.store.list_events(id).await.unwrap();
    let approved = events.last().unwrap();
    assert!(matches!(
        &approved.payload,
        EventPayload::StatusUpdate { status: CashoutStatus::Approved, actor: Some(a), .. }
            if *a == Principal::reviewer("bob").actor()
    ));
    assert!(
        approved
            .webhook_body()
            .contains(r#""actor":{"type":"operator","id":"bob"}"#)
    );
}

#[tokio::test]
async fn a_rejection_by_any_approver_ends_the_request_and_names_them() {
    let (h, admin, alice, bob) = with_operators().await;
    h.app
        .put_policy(
            &admin,
            PolicyScope::Default,
            policy(json!([{"kind": "invoice_count", "max": 1, "approvers": 2}])),
        )
        .await
        .unwrap();
    let id = create_id(&h, "k1", "10.00").await;
    h.app.approve(&alice, id).await.unwrap();
    let rejected = h.app.reject(&bob, id, "documents missing".into()).await.unwrap();
    assert_eq!(rejected.status, CashoutStatus::Rejected);
    assert_eq!(rejected.status_actor.unwrap().id, "bob");
    assert!(h.app.approve(&admin, id).await.is_err());
}

#[tokio::test]
async fn a_merchant_policy_replaces_the_default_and_limits_are_per_currency() {
    let (h, admin, ..) = with_operators().await;
    h.app
        .put_policy(
            &admin,
            PolicyScope::Merchant("m1".parse().unwrap()),
            policy(json!([{"kind": "amount_limit", "limits": {"BRL": "50000"}, "approvers": 1}])),
        )
        .await
        .unwrap();
    // 20,000 BRL: over the configured default of 10,000, under m1's own 50,000.
    let id = create_id(&h, "k1", "20000.00").await;
    assert_eq!(request(&h, id).await.status(), CashoutStatus::Approved);
    let p = h
        .app
        .get_policy(&admin, &PolicyScope::Merchant("m1".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(p.version, 1);
    assert_eq!(p.updated_by, Some(admin.actor()));
    // A stale expected_version is refused.
    let stale = h
        .app
        .put_policy(
            &admin,
            PolicyScope::Merchant("m1".parse().unwrap()),
            serde_json::from_value(json!({"rules": [], "expected_version": 0})).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), "conflict");
    h.app
        .delete_policy(&admin, &PolicyScope::Merchant("m1".parse().unwrap()))
        .await
        .unwrap();
    let id = create_id(&h, "k2", "20000.00").await;
    assert_eq!(request(&h, id).await.status(), CashoutStatus::UnderReview);
}

#[tokio::test]
async fn velocity_and_new_beneficiary_rules_read_the_store() {
    let (h, admin, ..) = with_operators().await;
    h.app
        .put_policy(
            &admin,
            PolicyScope::Default,
            policy(json!([{"kind": "daily_velocity", "max_count": 2, "approvers": 1}])),
        )
        .await
        .unwrap();
    let a = create_id(&h, "k1", "10.00").await;
    let b = create_id(&h, "k2", "10.00").await;
    let c = create_id(&h, "k3", "10.00").await;
    assert_eq!(request(&h, a).await.status(), CashoutStatus::Approved);
    assert_eq!(request(&h, b).await.status(), CashoutStatus::Approved);
    let third = request(&h, c).await;
    assert_eq!(third.status(), CashoutStatus::UnderReview);
    assert!(
        third.review_state().unwrap().decision.fired[0]
            .detail
            .contains("request 3 of the day")
    );

    h.app
        .put_policy(
            &admin,
            PolicyScope::Default,
            policy(json!([{"kind": "new_beneficiary", "approvers": 1}])),
        )
        .await
        .unwrap();
    let first = create_id(&h, "k4", "10.00").await;
    assert_eq!(request(&h, first).await.status(), CashoutStatus::UnderReview);
    // Once a payout to the account is paid, the next one to it is approved at once.
    h.app.approve(&admin, first).await.unwrap();
    h.run_due().await;
    h.app.provider.set_state(
        first,
        PayoutState::Paid {
            paid_at: None,
            amount: None,
        },
    );
    h.clock.advance(time::Duration::minutes(5));
    h.run_due().await;
    assert_eq!(request(&h, first).await.status(), CashoutStatus::Paid);
    let next = create_id(&h, "k5", "10.00").await;
    assert_eq!(request(&h, next).await.status(), CashoutStatus::Approved);
}

#[tokio::test]
async fn reviewers_review_admins_manage_and_revoked_operators_are_refused() {
    let (h, admin, alice, _) = with_operators().await;
    let refused = h
        .app
        .put_policy(&alice, PolicyScope::Default, policy(json!([])))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 403);
    assert_eq!(h.app.list_operators(&alice).await.unwrap_err().status(), 403);
    assert!(matches!(
        h.app
            .create_operator(&merchant("m1"), "eve".parse().unwrap(), OperatorRole::Admin)
            .await,
        Err(AppError::Forbidden(_))
    ));

    let made = h
        .app
        .create_operator(&admin, "carol".parse().unwrap(), OperatorRole::Reviewer)
        .await
        .unwrap();
    assert!(made.api_key.starts_with("sk_op_"));
    assert_eq!(
        h.app.authenticate(&made.api_key).await.unwrap(),
        Principal::reviewer("carol")
    );
    let dup = h
        .app
        .create_operator(&admin, "carol".parse().unwrap(), OperatorRole::Admin)
        .await
        .unwrap_err();
    assert_eq!(dup.code(), "conflict");
    assert_eq!(h.app.authenticate("sk_alice").await.unwrap(), alice);

    let revoked = h.app.revoke_operator(&admin, &"alice".parse().unwrap()).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        h.app.authenticate("sk_alice").await,
        Err(AppError::Unauthorized)
    ));
    assert_eq!(
        h.app
            .revoke_operator(&admin, &"root".parse().unwrap())
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    let names: Vec<_> = h
        .app
        .list_operators(&admin)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "root"]);
}

#[tokio::test]
async fn bulk_approval_answers_each_request_and_the_queue_lists_the_oldest_first() {
    let (h, _, alice, _) = with_operators().await;
    let a = create_id(&h, "k1", "20000.00").await;
    h.clock.advance(time::Duration::seconds(1));
    let b = create_id(&h, "k2", "20000.00").await;
    h.clock.advance(time::Duration::seconds(1));
    let c = create_id(&h, "k3", "20000.00").await;
    let queue = h.app.work_list(&alice, WorkList::Review, None, None).await.unwrap();
    let ids: Vec<_> = queue.items.iter().map(|v| v.id.clone()).collect();
    assert_eq!(ids, [a.to_string(), b.to_string(), c.to_string()]);
    h.app.reject(&alice, c, "no".into()).await.unwrap();
    let results = h.app.bulk_approve(&alice, &[a, b, c, a]).await.unwrap();
    assert_eq!(results.len(), 3, "one per distinct id");
    assert_eq!(results[0].result.as_ref().unwrap().status, CashoutStatus::Approved);
    assert_eq!(results[1].result.as_ref().unwrap().status, CashoutStatus::Approved);
    assert_eq!(results[2].result.as_ref().unwrap_err().status(), 409);
    assert!(
        h.app
            .work_list(&alice, WorkList::Review, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        h.app
            .work_list(&merchant("m1"), WorkList::Review, None, None)
            .await
            .unwrap_err()
            .status(),
        403
    );
}
