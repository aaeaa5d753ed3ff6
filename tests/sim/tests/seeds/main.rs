//! The simulator against the providers' own documents: every request and answer example of the
//! seeds (`tests/fixtures/`, copied verbatim, see its README) is sent or expected **byte for
//! byte**, and the rules the seeds state are exercised on the wire. Where a seed sample cannot
//! be reproduced as printed (ids, timestamps, a reference that differs between request and
//! answer), the test names the substitution it makes.
//!
//! The harness is here; the D24 family's seeds (001, 002) are replayed in `d24`, Cascad's (003)
//! in `cascad`.

#![allow(clippy::unwrap_used)]

mod cascad;
mod d24;

use std::sync::Arc;
use std::time::Duration;

use cashout_provider_sim::{ManualClock, SimConfig, SimHandle};
use hmac::Mac;
use serde_json::Value;
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------------
// Harness

async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cashout_provider_sim::start(config, listener).await.unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn clocked(unix: i64) -> (Arc<ManualClock>, SimConfig) {
    let clock = Arc::new(ManualClock::new(at(unix)));
    let config = SimConfig {
        clock: clock.clone(),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    };
    (clock, config)
}

/// An HTTP answer: status and the exact body text.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        text: r.text().await.unwrap(),
    }
}

/// Asserts that two texts are equal, showing the first line that differs.
#[track_caller]
fn assert_bytes(actual: &str, expected: &str, what: &str) {
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "{what}: not byte for byte; first difference at line {}:\n  got:      {:?}\n  expected: {:?}\n--- got ---\n{actual}",
            line + 1,
            actual.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

/// `Payload-Signature`, computed here with the HMAC crate directly (not the simulator's code).
fn payload_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A seed's "Request Example": its `// HEADERS` lines and its `// BODY`, exactly as printed.
struct SeedRequest {
    headers: Vec<(String, String)>,
    body: String,
}

fn seed_request(text: &str) -> SeedRequest {
    let (head, body) = text.split_once("// BODY\n").unwrap();
    let headers = head
        .lines()
        .filter(|l| !l.starts_with("//") && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    SeedRequest {
        headers,
        body: body.to_owned(),
    }
}
