//! Rate-limit buckets: a burst at once, then the rate; refilled by time; one bucket per key; and
//! atomic under concurrent takes (the DynamoDB store's two conditional writes).

use std::time::Duration as StdDuration;

use cashout_core::auth::OperatorName;
use cashout_core::limit::{Decision, LimitKey, RateLimit};
use cashout_core::ports::{Clock, Store};
use time::Duration;

use crate::conformance::StoreEnv;
use crate::conformance::fixtures::merchant;

fn key(name: &str) -> LimitKey {
    LimitKey::Merchant(merchant(name))
}

async fn takes<S: Store>(env: &StoreEnv<S>, key: &LimitKey, limit: RateLimit, n: usize) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for _ in 0..n {
        decisions.push(env.store.take_token(key, env.clock.now(), limit).await.unwrap());
    }
    decisions
}

fn allowed(decisions: &[Decision]) -> usize {
    decisions.iter().filter(|d| **d == Decision::Allowed).count()
}

pub async fn a_bucket_allows_its_burst_then_refills_at_its_rate<S: Store>(env: StoreEnv<S>) {
    let limit = RateLimit::new(10, 5).unwrap();
    let m = key("m1");
    assert_eq!(allowed(&takes(&env, &m, limit, 8).await), 5, "the burst, at once");
    assert_eq!(
        env.store.take_token(&m, env.clock.now(), limit).await.unwrap(),
        Decision::Limited {
            retry_after: StdDuration::from_millis(100)
        },
        "the next token in one interval"
    );
    env.clock.advance(Duration::milliseconds(250));
    assert_eq!(
        allowed(&takes(&env, &m, limit, 5).await),
        2,
        "two intervals refill two tokens"
    );
    match env.store.take_token(&m, env.clock.now(), limit).await.unwrap() {
        Decision::Limited { retry_after } => assert_eq!(retry_after, StdDuration::from_millis(50)),
        Decision::Allowed => panic!("the bucket is empty"),
    }
    env.clock.advance(Duration::hours(1));
    assert_eq!(
        allowed(&takes(&env, &m, limit, 8).await),
        5,
        "an idle bucket is full again, and holds no more than its burst"
    );
}

pub async fn each_merchant_and_operator_has_a_bucket_of_its_own<S: Store>(env: StoreEnv<S>) {
    let limit = RateLimit::new(1, 2).unwrap();
    let operator = LimitKey::Operator(OperatorName::new("m1").unwrap());
    assert_eq!(allowed(&takes(&env, &key("m1"), limit, 4).await), 2);
    assert_eq!(allowed(&takes(&env, &key("m2"), limit, 4).await), 2, "another merchant");
    assert_eq!(
        allowed(&takes(&env, &operator, limit, 4).await),
        2,
        "an operator of the same name"
    );
    let wider = RateLimit::new(1, 4).unwrap();
    assert_eq!(
        allowed(&takes(&env, &key("m1"), wider, 4).await),
        2,
        "a raised limit applies to what the bucket holds already"
    );
}

pub async fn sixty_four_concurrent_takes_from_a_bucket_of_ten_allow_exactly_ten<S: Store>(env: StoreEnv<S>) {
    let limit = RateLimit::new(5, 10).unwrap();
    let m = key("m1");
    let now = env.clock.now();
    let decisions: Vec<Decision> = futures::future::join_all((0..64).map(|_| env.store.take_token(&m, now, limit)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(allowed(&decisions), 10);
    for d in decisions.iter().filter(|d| **d != Decision::Allowed) {
        let Decision::Limited { retry_after } = d else {
            unreachable!()
        };
        assert_eq!(*retry_after, StdDuration::from_millis(200), "one interval");
    }
}
