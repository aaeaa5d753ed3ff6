//! The outbox worker: applies due lifecycle steps even when nobody asks, and posts due D24
//! notifications and Cascad callbacks, retrying on failure as the providers document.
//!
//! Deviation from D24's docs (ports 80/443 only): any port is accepted, because receivers run
//! locally. Only loopback hosts are posted to; any other URL is recorded as `refused`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::book::Delivery;
use crate::sim::Sim;

/// Whether a notification URL points at this machine.
pub(crate) fn is_loopback(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

pub(crate) async fn run(sim: Arc<Sim>, client: reqwest::Client, mut stop: watch::Receiver<bool>) {
    let mut sends = JoinSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(sim.config.tick) => {}
            _ = sim.wake.notified() => {}
            _ = stop.changed() => break,
        }
        while sends.try_join_next().is_some() {}
        let due: Vec<Delivery> = sim.read_book(|book, ctx| book.take_due_deliveries(ctx.now));
        for d in due {
            sends.spawn(send(sim.clone(), client.clone(), d));
        }
    }
    sends.abort_all();
}

async fn send(sim: Arc<Sim>, client: reqwest::Client, d: Delivery) {
    if !is_loopback(&d.url) {
        tracing::warn!(provider = %d.provider, payout = %d.payout_id, "notification URL is not on loopback: not sent");
        sim.with_book(|book, _| book.refuse_delivery(d.id));
        return;
    }
    let mut req = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, &d.content_type)
        .timeout(Duration::from_secs(10))
        .body(d.body.clone());
    for (k, v) in &d.headers {
        req = req.header(k, v);
    }
    let (ok, result) = match req.send().await {
        Ok(resp) => (resp.status().is_success(), format!("HTTP {}", resp.status().as_u16())),
        Err(e) => (false, format!("error: {e}")),
    };
    tracing::debug!(provider = %d.provider, payout = %d.payout_id, attempt = d.attempts + 1, %result, "notification sent");
    sim.with_book(|book, ctx| book.record_attempt(d.id, ok, result, ctx));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_posted_to() {
        assert!(is_loopback("http://127.0.0.1:9000/webhooks/d24"));
        assert!(is_loopback("http://localhost:1/x"));
        assert!(is_loopback("http://[::1]:8080/"));
        assert!(!is_loopback("https://example.com/hook"));
        assert!(!is_loopback("http://10.0.0.1/hook"));
        assert!(!is_loopback("not a url"));
    }
}
