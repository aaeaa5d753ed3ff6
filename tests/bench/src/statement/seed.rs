//! Seeding: `requests` cashout requests written straight into a store through its own API
//! (`create_request`), each created, approved and moved to its final state by the core's own
//! transitions in one write, and what the statement must then say, summed here from the
//! requests as written (not through the product's statement code).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::ids::{CashoutRequestId, IdempotencyKey, MerchantId, ProviderPayoutId};
use cashout_core::ports::{CashoutStore, CreateOutcome, IdempotencyRecord};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};
use cashout_system::client::with_own_invoices;
use cashout_system::workload::{Trigger, account, body};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::bench::{BenchError, fail};

/// The merchants the requests are spread over.
pub const MERCHANTS: [&str; 4] = [
    "merchant_stmt_0",
    "merchant_stmt_1",
    "merchant_stmt_2",
    "merchant_stmt_3",
];

/// A decimal as its exact text.
fn text<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// The totals of one status in one currency, as seeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusExpect {
    pub count: u64,
    #[serde(serialize_with = "text")]
    pub requested: Decimal,
    #[serde(serialize_with = "text")]
    pub paid: Decimal,
}

/// The totals of one currency, as seeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyExpect {
    pub count: u64,
    #[serde(serialize_with = "text")]
    pub requested: Decimal,
    /// Σ paid amounts of the PAID requests.
    #[serde(serialize_with = "text")]
    pub paid: Decimal,
    /// Σ amounts paid and then reversed.
    #[serde(serialize_with = "text")]
    pub reversed: Decimal,
    /// Σ requested amounts of the requests not final (here: PENDING_PAYMENT).
    #[serde(serialize_with = "text")]
    pub pending: Decimal,
    pub by_status: BTreeMap<String, StatusExpect>,
}

/// What the whole statement must say, per currency; and per merchant, its line count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub currencies: BTreeMap<String, CurrencyExpect>,
    pub per_merchant: BTreeMap<String, u64>,
}

impl Expected {
    /// Lines in the whole statement.
    pub fn lines(&self) -> u64 {
        self.currencies.values().map(|c| c.count).sum()
    }

    fn merge(&mut self, other: Expected) {
        for (currency, o) in other.currencies {
            let c = self.currencies.entry(currency).or_default();
            c.count += o.count;
            c.requested += o.requested;
            c.paid += o.paid;
            c.reversed += o.reversed;
            c.pending += o.pending;
            for (status, s) in o.by_status {
                let t = c.by_status.entry(status).or_default();
                t.count += s.count;
                t.requested += s.requested;
                t.paid += s.paid;
            }
        }
        for (m, n) in other.per_merchant {
            *self.per_merchant.entry(m).or_default() += n;
        }
    }

    /// Adds a request as written; `reversed` is the amount paid before a reversal.
    fn add(&mut self, request: &CashoutRequest, reversed: Option<Decimal>) {
        let status = request.status().to_string();
        let c = self.currencies.entry(request.currency().to_string()).or_default();
        let requested = request.requested_amount().value();
        let paid = request.paid_amount().map_or(Decimal::ZERO, |a| a.value());
        c.count += 1;
        c.requested += requested;
        if status == "PAID" {
            c.paid += paid;
        }
        if status == "PENDING_PAYMENT" {
            c.pending += requested;
        }
        c.reversed += reversed.unwrap_or_default();
        let s = c.by_status.entry(status).or_default();
        s.count += 1;
        s.requested += requested;
        s.paid += paid;
        *self.per_merchant.entry(request.merchant_id().to_string()).or_default() += 1;
    }
}

/// The end a seeded request is taken to.
#[derive(Debug, Clone, Copy)]
enum End {
    Paid,
    Pending,
    Reversed,
    Rejected,
}

/// Request `n`: D24 (BRL), Tupay (PEN) or Cascad (USD), one of four merchants, half of them
/// PAID, a fifth PENDING_PAYMENT, a tenth reversed after payment, a fifth rejected; an amount
/// that varies with `n` (in 0.05 steps, so that 80 % of it is whole cents).
fn shape(n: usize) -> (ProviderName, &'static str, End, String) {
    let provider = [ProviderName::D24, ProviderName::Tupay, ProviderName::Cascad][n % 3];
    let merchant = MERCHANTS[(n / 3) % MERCHANTS.len()];
    let end = match (n / 12) % 10 {
        0..=4 => End::Paid,
        5 | 6 => End::Pending,
        7 => End::Reversed,
        _ => End::Rejected,
    };
    let amount = format!("{}.{:02}", 100 + (n * 7) % 9000, (n % 20) * 5);
    (provider, merchant, end, amount)
}

fn payout(request: &CashoutRequest, n: usize, state: PayoutState, words: &str) -> Result<ProviderPayout, BenchError> {
    Ok(ProviderPayout {
        provider: request.provider(),
        payout_id: ProviderPayoutId::new(format!("stmt-{n}")).map_err(fail)?,
        reference: None,
        state,
        provider_status: words.to_owned(),
        updated_at: None,
    })
}

/// `change` followed by what the provider says about its payout, as one write.
fn then_payout(change: Change, n: usize, state: PayoutState, words: &str) -> Result<Change, BenchError> {
    let now = time::OffsetDateTime::now_utc();
    let next = change
        .request
        .record_provider_payout(&payout(&change.request, n, state, words)?, now)
        .ok_or_else(|| BenchError(format!("request {n}: `{words}` changed nothing")))?;
    change
        .then(next)
        .ok_or_else(|| BenchError(format!("request {n}: `{words}` does not follow")))
}

/// The write that creates request `n` in its end state, and the amount reversed if any.
fn request(
    n: usize,
    coverage: &cashout_core::routing::Coverage,
) -> Result<(Change, IdempotencyRecord, Option<Decimal>), BenchError> {
    let (provider, merchant, end, amount) = shape(n);
    let key = format!("stmt-{n}");
    let input: cashout_core::input::CashoutInput = serde_json::from_value(with_own_invoices(
        &body(provider, &account(n as u64, Trigger::Success), &amount),
        &key,
    ))
    .map_err(fail)?;
    let draft = input
        .validate(coverage)
        .map_err(|e| BenchError(format!("request {n}: {e:?}")))?;
    let merchant = MerchantId::new(merchant).map_err(fail)?;
    let id = CashoutRequestId::from_uuid(uuid::Uuid::now_v7());
    let now = time::OffsetDateTime::now_utc();
    let created = CashoutRequest::create(id, merchant.clone(), draft, now);
    let approve = created
        .request
        .approve(&"seed".parse().map_err(fail)?, None, now)
        .map_err(fail)?;
    let approved = created
        .then(approve)
        .ok_or_else(|| BenchError(format!("request {n}: approval does not follow")))?;
    let paid = || PayoutState::Paid {
        paid_at: None,
        amount: None,
    };
    let rejected = |code: &str, reason: &str| PayoutState::Rejected {
        code: Some(code.to_owned()),
        reason: Some(reason.to_owned()),
    };
    let (change, reversed) = match end {
        End::Pending => (then_payout(approved, n, PayoutState::Pending, "PENDING")?, None),
        End::Paid => (then_payout(approved, n, paid(), "COMPLETED")?, None),
        End::Rejected => (
            then_payout(approved, n, rejected("800", "ERROR_ACCOUNT_INCORRECT"), "REJECTED 800")?,
            None,
        ),
        End::Reversed => {
            let paid = then_payout(approved, n, paid(), "COMPLETED")?;
            let amount = paid.request.paid_amount().map(|a| a.value());
            (
                then_payout(paid, n, rejected("826", "WITHDRAWAL_REVERSED"), "REJECTED 826")?,
                amount,
            )
        }
    };
    let record = IdempotencyRecord::begin(merchant, IdempotencyKey::new(key).map_err(fail)?, "h".into(), id, now);
    Ok((change, record, reversed))
}

/// Writes `requests` requests into `store` from `concurrency` tasks; returns what the statement
/// must say and how long the writes took.
pub async fn seed<S>(store: Arc<S>, requests: usize, concurrency: usize) -> Result<(Expected, Duration), BenchError>
where
    S: CashoutStore + Send + Sync + 'static,
{
    let coverage = Arc::new(cashout_providers::ProvidersConfig::for_simulator("http://127.0.0.1:9").coverage());
    let started = Instant::now();
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|c| {
            let (store, coverage, progress) = (store.clone(), coverage.clone(), progress.clone());
            tokio::spawn(async move {
                let mut expected = Expected::default();
                for n in (c..requests).step_by(concurrency) {
                    let (change, record, reversed) = request(n, &coverage)?;
                    match store.create_request(&change, &record, &[]).await.map_err(fail)? {
                        CreateOutcome::Created => expected.add(&change.request, reversed),
                        other => return Err(BenchError(format!("request {n} not created: {other:?}"))),
                    }
                    let done = progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if done % 10_000 == 0 {
                        eprintln!("  seeded {done} requests in {:.1} s", started.elapsed().as_secs_f64());
                    }
                }
                Ok::<_, BenchError>(expected)
            })
        })
        .collect();
    let mut expected = Expected::default();
    for t in tasks {
        expected.merge(t.await.map_err(fail)??);
    }
    Ok((expected, started.elapsed()))
}
