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

mod over_http {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::http::{api_router, finish};

    async fn call(
        h: &Harness,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = finish(api_router(h.app.clone())).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn operators_and_policies_are_managed_over_the_api_and_approvals_name_their_operator() {
        let (h, ..) = with_operators().await;
        // An admin makes a reviewer; the key it answers works once, here only.
        let (code, made) = call(
            &h,
            "POST",
            "/v1/operators",
            "sk_root",
            Some(json!({"name": "carol", "role": "reviewer"})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{made}");
        let carol = made["api_key"].as_str().unwrap().to_owned();
        assert_eq!(made["operator"]["role"], "reviewer");
        let (code, problem) = call(
            &h,
            "POST",
            "/v1/operators",
            "sk_root",
            Some(json!({"name": "Carol!", "role": "reviewer"})),
        )
        .await;
        assert_eq!(
            (code, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
        );
        // A reviewer cannot manage operators or policies.
        let (code, problem) = call(&h, "GET", "/v1/operators", &carol, None).await;
        assert_eq!(
            (code, problem["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let four_eyes = json!({"rules": [{"kind": "amount_limit", "other_currencies": "1000", "approvers": 2}]});
        let (code, _) = call(
            &h,
            "PUT",
            "/v1/approval-policies/default",
            &carol,
            Some(four_eyes.clone()),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let (code, policy) = call(&h, "PUT", "/v1/approval-policies/default", "sk_root", Some(four_eyes)).await;
        assert_eq!(code, StatusCode::OK, "{policy}");
        assert_eq!(
            (policy["version"].as_u64(), policy["updated_by"]["id"].as_str()),
            (Some(1), Some("root"))
        );
        let (code, problem) = call(
            &h,
            "PUT",
            "/v1/approval-policies/default",
            "sk_root",
            Some(json!({"rules": [{"kind": "invoice_count", "max": 1, "approvers": 3}]})),
        )
        .await;
        assert_eq!(
            (code, problem["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
        );
        let (code, list) = call(&h, "GET", "/v1/approval-policies", &carol, None).await;
        assert_eq!(
            (code, list["data"][0]["scope"].as_str()),
            (StatusCode::OK, Some("default"))
        );

        // Four eyes over HTTP: carol, carol again (409), then alice moves it.
        let id = create_id(&h, "k1", "5000.00").await;
        let approve = format!("/v1/cashout-requests/{id}/approve");
        let (code, first) = call(&h, "POST", &approve, &carol, None).await;
        assert_eq!((code, first["status"].as_str()), (StatusCode::OK, Some("UNDER_REVIEW")));
        assert_eq!(first["review"]["required_approvals"], 2);
        assert_eq!(first["review"]["approvals"][0]["operator"], "carol");
        let (code, problem) = call(&h, "POST", &approve, &carol, None).await;
        assert_eq!(
            (code, problem["code"].as_str()),
            (StatusCode::CONFLICT, Some("already_approved"))
        );
        let (code, second) = call(&h, "POST", &approve, "sk_alice", None).await;
        assert_eq!((code, second["status"].as_str()), (StatusCode::OK, Some("APPROVED")));
        assert_eq!(second["status_actor"], json!({"type": "operator", "id": "alice"}));
        let (_, events) = call(&h, "GET", &format!("/v1/cashout-requests/{id}/events"), "sk_m1", None).await;
        let last = events["data"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["actor"], json!({"type": "operator", "id": "alice"}));
        assert_eq!(last["data"]["actor"], json!({"type": "operator", "id": "alice"}));

        // Bulk approval answers each request; revoking carol stops her key at once.
        let a = create_id(&h, "k2", "5000.00").await;
        let (code, bulk) = call(
            &h,
            "POST",
            "/v1/cashout-requests/bulk-approve",
            &carol,
            Some(json!({"ids": [a, id]})),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{bulk}");
        assert_eq!(bulk["data"][0]["outcome"], "approval_recorded");
        assert_eq!(bulk["data"][1]["outcome"], "refused");
        assert_eq!(bulk["data"][1]["problem"]["code"], "invalid_transition");
        let (code, _) = call(&h, "POST", "/v1/operators/carol/revoke", "sk_root", None).await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = call(&h, "GET", "/v1/approval-policies", &carol, None).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
}
