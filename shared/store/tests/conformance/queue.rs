//! What every queue backend must do.

use std::time::Duration;

use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{QueueName, Receipt, ReceivedTask, Task, TaskEnvelope, TaskQueue, TaskSource};
use cashout_store::QueueInspect;
use cashout_store::resources::Definition;

use super::{QueueEnv, eventually};

/// Long enough for a real service to show a change; a manual clock needs no wait at all.
const DEADLINE: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(600);

pub trait Queue: TaskQueue + TaskSource + QueueInspect + Clone + 'static {}
impl<T: TaskQueue + TaskSource + QueueInspect + Clone + 'static> Queue for T {}

fn poll_task(n: u128) -> Task {
    Task::Poll {
        cashout_request_id: CashoutRequestId::from_uuid(uuid::Uuid::from_u128(n)),
        due_at: None,
    }
}

fn now<Q>(env: &QueueEnv<Q>) -> time::OffsetDateTime {
    match &env.time {
        super::QueueTime::Manual(c) => cashout_core::ports::Clock::now(c.as_ref()),
        super::QueueTime::Real => time::OffsetDateTime::now_utc(),
    }
}

fn envelope<Q>(env: &QueueEnv<Q>, task: Task, delay: Duration) -> TaskEnvelope {
    TaskEnvelope::new(task, now(env), delay)
}

async fn receive_one<Q: Queue>(q: &Q, queue: QueueName, visibility: Duration) -> Option<ReceivedTask> {
    let mut got = q.receive(queue, 1, visibility).await.unwrap();
    assert!(got.len() <= 1);
    got.pop()
}

pub async fn a_sent_task_is_received_once_and_gone_when_acknowledged<Q: Queue>(env: QueueEnv<Q>) {
    let sent = envelope(&env, poll_task(1), Duration::ZERO);
    env.queue.send(&sent).await.unwrap();
    let got = eventually("the task arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    assert_eq!(TaskEnvelope::from_json(&got.body).unwrap(), sent);
    assert_eq!(got.receive_count, 1);
    assert!(
        receive_one(&env.queue, QueueName::Poll, LONG).await.is_none(),
        "hidden while in flight"
    );
    env.queue.ack(QueueName::Poll, &got.receipt).await.unwrap();
    let depth = env.queue.depth(QueueName::Poll).await.unwrap();
    assert_eq!(depth.total(), 0, "acknowledged means deleted: {depth:?}");
    assert!(
        env.queue
            .ack(QueueName::Poll, &Receipt("not-a-receipt".into()))
            .await
            .is_err(),
        "a malformed receipt is refused"
    );
}

pub async fn tasks_travel_on_their_own_queue_and_receive_takes_at_most_max<Q: Queue>(env: QueueEnv<Q>) {
    let dispatch = Task::Dispatch {
        cashout_request_id: CashoutRequestId::from_uuid(uuid::Uuid::from_u128(9)),
    };
    env.queue
        .send(&envelope(&env, dispatch.clone(), Duration::ZERO))
        .await
        .unwrap();
    for n in 0..3 {
        env.queue
            .send(&envelope(&env, poll_task(n), Duration::ZERO))
            .await
            .unwrap();
    }
    let polls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    eventually("three polls arrive", DEADLINE, || {
        let (q, polls) = (env.queue.clone(), polls.clone());
        async move {
            let got = q.receive(QueueName::Poll, 2, LONG).await.unwrap();
            assert!(got.len() <= 2, "at most max per receive");
            let mut polls = polls.lock().unwrap();
            polls.extend(got);
            (polls.len() >= 3).then_some(())
        }
    })
    .await;
    let polls = polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 3);
    for p in &polls {
        let task = TaskEnvelope::from_json(&p.body).unwrap().task;
        assert_eq!(task.queue(), QueueName::Poll);
    }
    let d = eventually("the dispatch arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Dispatch, LONG)
    })
    .await;
    assert_eq!(TaskEnvelope::from_json(&d.body).unwrap().task, dispatch);
    assert!(
        env.queue
            .receive(QueueName::Callbacks, 10, LONG)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_delayed_task_is_invisible_until_its_time<Q: Queue>(env: QueueEnv<Q>) {
    let delay = Duration::from_secs(3);
    let sent = envelope(&env, poll_task(2), delay);
    let sent_at = std::time::Instant::now();
    env.queue.send(&sent).await.unwrap();
    assert!(
        receive_one(&env.queue, QueueName::Poll, LONG).await.is_none(),
        "not before its delay"
    );
    env.advance(delay - Duration::from_millis(1));
    if !env.is_real_time() {
        assert!(
            receive_one(&env.queue, QueueName::Poll, LONG).await.is_none(),
            "1 ms early"
        );
    }
    env.advance(Duration::from_millis(1));
    let got = eventually("the delayed task arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    if env.is_real_time() {
        // SQS delays are whole seconds, rounded up: never early.
        assert!(
            sent_at.elapsed() >= delay - Duration::from_millis(500),
            "{:?}",
            sent_at.elapsed()
        );
    }
    assert_eq!(TaskEnvelope::from_json(&got.body).unwrap(), sent);
    assert_eq!(got.receive_count, 1);
}

pub async fn a_received_task_is_hidden_for_its_visibility_timeout_then_redelivered<Q: Queue>(env: QueueEnv<Q>) {
    env.queue
        .send(&envelope(&env, poll_task(3), Duration::ZERO))
        .await
        .unwrap();
    let visibility = Duration::from_secs(2);
    let first = eventually("the task arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, visibility)
    })
    .await;
    let taken = std::time::Instant::now();
    assert!(receive_one(&env.queue, QueueName::Poll, visibility).await.is_none());
    env.advance(visibility);
    let second = eventually("the task comes back", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    if env.is_real_time() {
        assert!(taken.elapsed() >= visibility - Duration::from_millis(500));
    }
    assert_eq!(second.body, first.body);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt, "each receive has its own receipt");
    env.queue.ack(QueueName::Poll, &second.receipt).await.unwrap();
    assert_eq!(env.queue.depth(QueueName::Poll).await.unwrap().total(), 0);
}

pub async fn a_released_task_comes_back_after_its_delay_with_its_receive_count<Q: Queue>(env: QueueEnv<Q>) {
    env.queue
        .send(&envelope(&env, poll_task(4), Duration::ZERO))
        .await
        .unwrap();
    let first = eventually("the task arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    env.queue
        .release(QueueName::Poll, &first.receipt, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        receive_one(&env.queue, QueueName::Poll, LONG).await.is_none(),
        "not before the delay"
    );
    env.advance(Duration::from_secs(2));
    let again = eventually("the released task comes back", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    assert_eq!(again.receive_count, 2);
    env.queue
        .release(QueueName::Poll, &again.receipt, Duration::ZERO)
        .await
        .unwrap();
    let third = eventually("released at once", DEADLINE, || {
        receive_one(&env.queue, QueueName::Poll, LONG)
    })
    .await;
    assert_eq!(third.receive_count, 3);
}

pub async fn a_task_received_too_often_goes_to_the_dead_letter_queue<Q: Queue>(env: QueueEnv<Q>) {
    let max = Definition::embedded()
        .unwrap()
        .queue(QueueName::Dispatch)
        .unwrap()
        .max_receive_count;
    let task = Task::Dispatch {
        cashout_request_id: CashoutRequestId::from_uuid(uuid::Uuid::from_u128(5)),
    };
    let sent = envelope(&env, task, Duration::ZERO);
    env.queue.send(&sent).await.unwrap();
    for n in 1..=max {
        let got = eventually("the task is redelivered", DEADLINE, || {
            receive_one(&env.queue, QueueName::Dispatch, LONG)
        })
        .await;
        assert_eq!(got.receive_count, n);
        env.queue
            .release(QueueName::Dispatch, &got.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The next receive moves it instead of returning it.
    let dead = eventually("the task is dead-lettered", DEADLINE, || {
        let q = env.queue.clone();
        async move {
            let got = q.receive(QueueName::Dispatch, 10, LONG).await.unwrap();
            assert!(got.is_empty(), "a task past its redrive limit is not delivered again");
            let dead = q.dead_letters(QueueName::Dispatch, 10).await.unwrap();
            (!dead.is_empty()).then_some(dead)
        }
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(TaskEnvelope::from_json(&dead[0].body).unwrap(), sent);
    assert!(dead[0].receive_count >= max);
    assert_eq!(env.queue.depth(QueueName::Dispatch).await.unwrap().total(), 0);
}

pub async fn a_batch_is_sent_to_each_task_s_queue_and_acknowledged_together<Q: Queue>(env: QueueEnv<Q>) {
    let dispatch = Task::Dispatch {
        cashout_request_id: CashoutRequestId::from_uuid(uuid::Uuid::from_u128(77)),
    };
    let batch: Vec<TaskEnvelope> = (1..=5)
        .map(|n| envelope(&env, poll_task(n), Duration::ZERO))
        .chain([envelope(&env, dispatch, Duration::ZERO)])
        .collect();
    env.queue.send_batch(&batch).await.unwrap();
    env.queue.send_batch(&[]).await.unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    eventually("the batch arrives", DEADLINE, || {
        let (queue, got) = (env.queue.clone(), got.clone());
        async move {
            let more = queue.receive(QueueName::Poll, 10, LONG).await.unwrap();
            let mut got = got.lock().unwrap();
            got.extend(more);
            (got.len() >= 5).then_some(())
        }
    })
    .await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 5, "the dispatch task went to its own queue");
    let receipts: Vec<Receipt> = got.iter().map(|m| m.receipt.clone()).collect();
    assert_eq!(env.queue.ack_batch(QueueName::Poll, &receipts[..4]).await.unwrap(), 4);
    // Acknowledging again is harmless (SQLite reports the receipt as no longer held; SQS
    // accepts a repeated delete of a receipt it issued).
    let again = env.queue.ack_batch(QueueName::Poll, &receipts[3..]).await.unwrap();
    assert!((1..=2).contains(&again), "{again}");
    assert_eq!(env.queue.ack_batch(QueueName::Poll, &[]).await.unwrap(), 0);
    let depth = env.queue.depth(QueueName::Poll).await.unwrap();
    assert_eq!(depth.total(), 0, "every message acknowledged: {depth:?}");
    let dispatched = eventually("the dispatch task arrives", DEADLINE, || {
        receive_one(&env.queue, QueueName::Dispatch, LONG)
    })
    .await;
    env.queue.ack(QueueName::Dispatch, &dispatched.receipt).await.unwrap();
}
