//! Test harness: a simulator on a free port with a manual clock, adapters pointed at it, a
//! notification receiver, and payout orders.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cashout_core::ids::{CashoutRequestId, PayoutReference};
use cashout_core::money::{Amount, Currency};
use cashout_core::party::{AccountNumber, Beneficiary};
use cashout_core::ports::{InboundNotification, PayoutOrder};
use cashout_core::provider::ProviderName;
use cashout_provider_sim::{ManualClock, SimConfig, SimHandle};
use cashout_providers::{HttpConfig, Providers, ProvidersConfig};
use time::OffsetDateTime;

pub struct Env {
    pub sim: SimHandle,
    pub clock: Arc<ManualClock>,
    pub providers: Providers,
    pub receiver: Receiver,
}

pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

/// Short timeouts and quick retries so fault tests stay fast.
pub fn test_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(800),
        read_retries: 2,
        retry_backoff: Duration::from_millis(10),
        max_retry_backoff: Duration::from_millis(50),
        ..HttpConfig::default()
    }
}

/// The simulator's name for a provider: it has its own enum, independent of ours.
pub fn sim(p: ProviderName) -> cashout_provider_sim::Provider {
    match p {
        ProviderName::D24 => cashout_provider_sim::Provider::D24,
        ProviderName::Onspot => cashout_provider_sim::Provider::Onspot,
        ProviderName::Tupay => cashout_provider_sim::Provider::Tupay,
        ProviderName::Cascad => cashout_provider_sim::Provider::Cascad,
    }
}

pub async fn start_sim(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cashout_provider_sim::start(config, listener).await.unwrap()
}

impl Env {
    pub async fn start() -> Env {
        Env::with(|_| {}, |_| {}).await
    }

    pub async fn with(
        sim_config: impl FnOnce(&mut SimConfig),
        providers_config: impl FnOnce(&mut ProvidersConfig),
    ) -> Env {
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut config = SimConfig {
            clock: clock.clone(),
            tick: Duration::from_millis(5),
            ..SimConfig::default()
        };
        sim_config(&mut config);
        let sim = start_sim(config).await;
        let mut pc = ProvidersConfig::for_simulator(&sim.url());
        pc.http = test_http();
        providers_config(&mut pc);
        let providers = Providers::new(pc).unwrap();
        let receiver = Receiver::start().await;
        Env {
            sim,
            clock,
            providers,
            receiver,
        }
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(time::Duration::try_from(d).unwrap());
    }
}

/// A notification endpoint that records what it receives and answers with a programmable
/// status (500 for the first `fail_first` posts).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<InboundNotification>,
    fail_first: usize,
    seen: usize,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state }
    }

    pub fn fail_first(&self, n: usize) {
        self.state.lock().unwrap().fail_first = n;
    }

    pub fn received(&self) -> Vec<InboundNotification> {
        self.state.lock().unwrap().received.clone()
    }

    /// Posts seen, including the ones answered with a failure.
    pub fn seen(&self) -> usize {
        self.state.lock().unwrap().seen
    }

    /// Waits (bounded) until `n` notifications were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<InboundNotification> {
        wait_until(|| self.received().len() >= n).await;
        self.received()
    }
}

async fn receive(State(state): State<Arc<Mutex<ReceiverState>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut s = state.lock().unwrap();
    s.seen += 1;
    if s.seen <= s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.received.push(InboundNotification {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    StatusCode::OK
}

/// Waits for a condition with a 10 s deadline (no sleeping as synchronisation: the condition
/// is polled).
pub async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn new_reference() -> PayoutReference {
    PayoutReference::first(CashoutRequestId::from_uuid(uuid::Uuid::now_v7()))
}

/// An order the provider accepts; `account` picks the test trigger by its last two digits.
/// Cascad's goes through its `test_usd` service (USD is also paid by card).
pub fn order(provider: ProviderName, account: &str, notification_url: &str) -> PayoutOrder {
    let (country, currency, beneficiary) = match provider {
        ProviderName::Tupay => (
            "PE",
            Currency::PEN,
            Beneficiary {
                document_type: Some("DNI".into()),
                document_id: Some("12345678".into()),
                account_type: Some("S".into()),
                ..beneficiary(account)
            },
        ),
        ProviderName::Cascad => ("US", Currency::USD, beneficiary(account)),
        ProviderName::D24 | ProviderName::Onspot => (
            "BR",
            Currency::BRL,
            Beneficiary {
                document_type: Some("CPF".into()),
                document_id: Some("12345678909".into()),
                bank_code: Some("001".into()),
                ..beneficiary(account)
            },
        ),
    };
    PayoutOrder {
        provider,
        reference: new_reference(),
        country: country.parse().unwrap(),
        currency,
        amount: Amount::parse("1234.50", currency).unwrap(),
        beneficiary,
        description: "cashout test".into(),
        notification_url: Some(notification_url.to_owned()),
        hold: false,
        service: (provider == ProviderName::Cascad).then(|| "test_usd".to_owned()),
        metadata: Default::default(),
    }
}

pub fn beneficiary(account: &str) -> Beneficiary {
    Beneficiary {
        last_name: Some("Silva".into()),
        email: Some("ana@example.com".into()),
        bank_account: Some(AccountNumber::new(account)),
        ..Beneficiary::named("Ana")
    }
}
