//! The background publisher and the workers of one process.

#![allow(clippy::unwrap_used)]

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_publisher_and_the_workers_deliver_every_event_and_acknowledge_every_task() {
    let h = Harness::new().await;
    let m1 = merchant("m1");
    h.app
        .create_endpoint(&m1, br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn({
        let (app, stopped) = (h.app.clone(), stopped.clone());
        async move { app.run_publisher(stopped).await }
    });
    let callbacks = tokio::spawn({
        let (app, stopped) = (h.app.clone(), stopped.clone());
        async move {
            app.run_queue(
                QueueName::Callbacks,
                WorkerOptions::for_queue(QueueName::Callbacks),
                stopped,
            )
            .await;
        }
    });
    // Twenty creates, each one write with two events (created, APPROVED), handed to the
    // publisher rather than published before the answer.
    for n in 0..20 {
        h.create(&format!("k{n}"), &body("10.00")).await.unwrap();
    }
    eventually("40 deliveries", || h.app.sender.sent.lock().unwrap().len() >= 40).await;
    stop.send(true).unwrap();
    publisher.await.unwrap();
    callbacks.await.unwrap();
    assert_eq!(h.app.sender.sent.lock().unwrap().len(), 40, "each event once");
    let unpublished = h
        .app
        .store
        .unpublished_events(h.now() + time::Duration::hours(1), 100)
        .await
        .unwrap();
    assert!(unpublished.is_empty(), "every event marked published: {unpublished:?}");
    let depth = cashout_store::QueueInspect::depth(&*h.app.store, QueueName::Callbacks)
        .await
        .unwrap();
    assert_eq!(depth.total(), 0, "every delivery task acknowledged: {depth:?}");
}

#[tokio::test]
async fn events_the_publisher_cannot_take_are_left_to_the_sweep() {
    let h = Harness::with(|c| c.outbox_lag = Duration::from_secs(5)).await;
    h.app
        .create_endpoint(&merchant("m1"), br#"{"url":"https://hooks.example.com/cashout"}"#)
        .await
        .unwrap();
    // A publisher that has stopped (its channel is closed): the write path must not wait for
    // it nor publish inline, and must not lose the events.
    let (_stop, stopped) = tokio::sync::watch::channel(true);
    h.app.run_publisher(stopped).await;
    h.create("k1", &body("10.00")).await.unwrap();
    assert!(
        h.drain(QueueName::Callbacks).await.is_empty(),
        "nothing published inline"
    );
    h.clock.advance(time::Duration::seconds(6));
    h.app.sweep().await.unwrap();
    let tasks = h.drain(QueueName::Callbacks).await;
    assert_eq!(tasks.len(), 2, "the sweep published both events: {tasks:?}");
}
