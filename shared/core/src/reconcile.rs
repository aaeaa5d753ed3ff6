//! Statements and reconciliation: what we believe, added up to the cent, and compared with what
//! each provider holds.
//!
//! - A [`StatementLine`] is one request as it stands, and [`StatementTotals`] adds lines up per
//!   currency and status in exact decimals.
//! - [`compare`] puts one provider attempt of a request beside the provider's own record and says
//!   which [`Difference`]s there are. It is pure: the reconciler (in `cashout-app`) reads both
//!   sides, calls it, records what it returns and flags the request.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::cashout::CashoutRequest;
use crate::event::StatusReason;
use crate::ids::{CashoutRequestId, MerchantId, PayoutReference, ProviderPayoutId, ReconciliationId};
use crate::money::{Amount, Currency};
use crate::provider::{PayoutState, ProviderName, ProviderPayout};
use crate::status::CashoutStatus;

/// The longest period a statement or a reconciliation covers, in days (inclusive dates).
pub const MAX_PERIOD_DAYS: i64 = 366;

/// A period of whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// The first day.
    pub from: Date,
    /// The last day (included).
    pub to: Date,
}

/// Why a period is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// `to` is before `from`.
    #[error("`to` ({to}) is before `from` ({from})")]
    Reversed {
        /// The first day asked for.
        from: Date,
        /// The last day asked for.
        to: Date,
    },
    /// Longer than [`MAX_PERIOD_DAYS`].
    #[error("the period is {days} days long; at most {MAX_PERIOD_DAYS} are allowed")]
    TooLong {
        /// Its length.
        days: i64,
    },
}

impl Period {
    /// A period of inclusive dates, at most [`MAX_PERIOD_DAYS`] long.
    pub fn new(from: Date, to: Date) -> Result<Self, PeriodError> {
        if to < from {
            return Err(PeriodError::Reversed { from, to });
        }
        let days = (to - from).whole_days() + 1;
        if days > MAX_PERIOD_DAYS {
            return Err(PeriodError::TooLong { days });
        }
        Ok(Period { from, to })
    }

    /// The first instant of the period.
    pub fn start(&self) -> OffsetDateTime {
        self.from.midnight().assume_utc()
    }

    /// The first instant after the period (`to` + 1 day at midnight), saturating at the end
    /// of time.
    pub fn end(&self) -> OffsetDateTime {
        self.to
            .next_day()
            .map_or(OffsetDateTime::new_utc(Date::MAX, time::Time::MAX), |d| {
                d.midnight().assume_utc()
            })
    }

    /// Whether `at` falls inside the period.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        at >= self.start() && at < self.end()
    }
}

/// One line of a statement: a request as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The request.
    pub cashout_request_id: CashoutRequestId,
    /// Whose it is.
    pub merchant_id: MerchantId,
    /// Its current provider.
    pub provider: ProviderName,
    /// The provider's payout id, once known.
    pub provider_payout_id: Option<ProviderPayoutId>,
    /// Our reference at the provider (`<id>`, `<id>.<n>` after a failover).
    pub reference: PayoutReference,
    /// What the merchant asked for.
    pub requested_amount: Amount,
    /// What was paid (null until paid, and after a reversal).
    pub paid_amount: Option<Amount>,
    /// The currency of both amounts.
    pub currency: Currency,
    /// Its status now.
    pub status: CashoutStatus,
    /// When it was requested.
    #[serde(with = "time::serde::rfc3339")]
    pub request_date: OffsetDateTime,
    /// When it was paid, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub payment_date: Option<OffsetDateTime>,
    /// The amount paid and then returned by the beneficiary's bank (a reversal), if any.
    pub reversed_amount: Option<Amount>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl StatementLine {
    /// The line of one request.
    pub fn of(request: &CashoutRequest) -> Self {
        let reversed = match request.status_reason() {
            Some(StatusReason::ProviderReversed { .. }) => true,
            // D24's 826 WITHDRAWAL_REVERSED: the provider paid and the bank sent the money back,
            // even when the reversal came before we saw the payout paid.
            Some(StatusReason::ProviderRejected { code: Some(code), .. }) => {
                matches!(request.provider().family(), crate::provider::ProviderFamily::D24(_))
                    && code.parse::<u16>().ok() == Some(crate::provider::d24::RejectionCode::WITHDRAWAL_REVERSED.code())
            }
            _ => false,
        };
        StatementLine {
            cashout_request_id: request.id(),
            merchant_id: request.merchant_id().clone(),
            provider: request.provider(),
            provider_payout_id: request.provider_reference().cloned(),
            reference: request.payout_reference(),
            requested_amount: request.requested_amount(),
            paid_amount: request.paid_amount(),
            currency: request.currency(),
            status: request.status(),
            request_date: request.request_date(),
            payment_date: request.payment_date(),
            reversed_amount: reversed.then(|| request.payable_amount()),
            updated_at: request.updated_at(),
        }
    }

    /// The CSV header matching [`StatementLine::csv_record`].
    pub const CSV_HEADER: [&'static str; 13] = [
        "cashout_request_id",
        "merchant_id",
        "provider",
        "provider_payout_id",
        "reference",
        "requested_amount",
        "paid_amount",
        "currency",
        "status",
        "request_date",
        "payment_date",
        "reversed_amount",
        "updated_at",
    ];

    /// The line's CSV fields, in [`StatementLine::CSV_HEADER`] order (amounts as exact decimal
    /// text, dates RFC 3339, absent values empty).
    pub fn csv_record(&self) -> [String; 13] {
        let date = |d: OffsetDateTime| {
            d.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        [
            self.cashout_request_id.to_string(),
            self.merchant_id.to_string(),
            self.provider.to_string(),
            self.provider_payout_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            self.reference.to_string(),
            self.requested_amount.to_decimal_string(),
            self.paid_amount.map(Amount::to_decimal_string).unwrap_or_default(),
            self.currency.to_string(),
            self.status.to_string(),
            date(self.request_date),
            self.payment_date.map(date).unwrap_or_default(),
            self.reversed_amount.map(Amount::to_decimal_string).unwrap_or_default(),
            date(self.updated_at),
        ]
    }
}

/// The totals of one status in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTotals {
    /// Lines in this status.
    pub count: u64,
    /// Σ requested amounts.
    #[serde(with = "crate::money::decimal_text")]
    pub requested: Decimal,
    /// Σ paid amounts.
    #[serde(with = "crate::money::decimal_text")]
    pub paid: Decimal,
}

/// The totals of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    /// Lines in this currency.
    pub count: u64,
    /// Σ requested amounts of every line.
    #[serde(with = "crate::money::decimal_text")]
    pub requested: Decimal,
    /// Σ paid amounts (requests PAID now).
    #[serde(with = "crate::money::decimal_text")]
    pub paid: Decimal,
    /// Σ amounts paid and then reversed.
    #[serde(with = "crate::money::decimal_text")]
    pub reversed: Decimal,
    /// Σ requested amounts of requests not final yet (requested, under review, approved,
    /// pending payment, processor error).
    #[serde(with = "crate::money::decimal_text")]
    pub pending: Decimal,
    /// Per status.
    pub by_status: BTreeMap<CashoutStatus, StatusTotals>,
}

/// A statement's totals per currency, in exact decimals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatementTotals(pub BTreeMap<Currency, CurrencyTotals>);

impl StatementTotals {
    /// Adds a line.
    pub fn add(&mut self, line: &StatementLine) {
        let c = self.0.entry(line.currency).or_default();
        let paid = line.paid_amount.map_or(Decimal::ZERO, Amount::value);
        c.count += 1;
        c.requested += line.requested_amount.value();
        if line.status == CashoutStatus::Paid {
            c.paid += paid;
        }
        if let Some(r) = line.reversed_amount {
            c.reversed += r.value();
        }
        if !line.status.is_final() && line.status != CashoutStatus::Paid {
            c.pending += line.requested_amount.value();
        }
        let s = c.by_status.entry(line.status).or_default();
        s.count += 1;
        s.requested += line.requested_amount.value();
        s.paid += paid;
    }
}

/// Where a reconciliation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationStatus {
    /// Being worked on.
    Running,
    /// Every request and provider listing of the period was compared.
    Completed,
    /// It stopped on an error it cannot get past (see `error`).
    Failed,
}

/// Which part of the work a running reconciliation is at; saved after every page so that a
/// crashed or timed-out worker resumes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum ReconciliationProgress {
    /// Comparing our requests that changed in the period, page by page.
    Requests {
        /// The store's cursor of the next page (`None`: the first).
        cursor: Option<String>,
    },
    /// Listing a provider's payouts to find the ones we do not know.
    ProviderListing {
        /// Which provider.
        provider: ProviderName,
        /// The provider's cursor of the next page (`None`: the first).
        cursor: Option<String>,
    },
    /// Nothing left.
    Done,
}

/// Who started a reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationTrigger {
    /// The daily schedule.
    Schedule,
    /// An operator (`POST /v1/reconciliations`).
    Operator,
}

/// One reconciliation run over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub id: ReconciliationId,
    /// The period compared.
    pub period: Period,
    pub status: ReconciliationStatus,
    /// Who started it.
    pub trigger: ReconciliationTrigger,
    /// Where the work stands.
    pub progress: ReconciliationProgress,
    /// Requests compared so far.
    pub requests_checked: u64,
    /// Provider calls made so far (lookups and list pages).
    pub provider_calls: u64,
    /// Provider payouts read from listings so far.
    pub provider_payouts_listed: u64,
    /// Provider attempts that could not be compared (the provider refused the lookup for a
    /// reason retrying cannot fix); each is logged.
    pub lookups_failed: u64,
    /// Differences found so far.
    pub differences: u64,
    /// Why it failed.
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// Written on this version (optimistic concurrency, like requests).
    pub version: u64,
}

impl Reconciliation {
    /// A new, running reconciliation of `period`.
    pub fn start(id: ReconciliationId, period: Period, trigger: ReconciliationTrigger, now: OffsetDateTime) -> Self {
        Reconciliation {
            id,
            period,
            status: ReconciliationStatus::Running,
            trigger,
            progress: ReconciliationProgress::Requests { cursor: None },
            requests_checked: 0,
            provider_calls: 0,
            provider_payouts_listed: 0,
            lookups_failed: 0,
            differences: 0,
            error: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            version: 0,
        }
    }

    /// The id of the scheduled reconciliation of one day: the same for every process, so two
    /// schedulers racing create it once.
    pub fn scheduled_id(day: Date) -> ReconciliationId {
        // A UUID v7 whose time is the day's midnight and whose random bits are zero: it sorts
        // with the others and cannot collide with a random one in practice.
        let millis = u64::try_from(day.midnight().assume_utc().unix_timestamp())
            .unwrap_or(0)
            .saturating_mul(1000);
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        bytes[6] = 0x70;
        bytes[8] = 0x80;
        ReconciliationId::from_uuid(uuid::Uuid::from_bytes(bytes))
    }
}

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Both sides hold the payout in different states (a reversal we missed, a payout we ended
    /// that the provider holds live or paid, a payout at a provider the request left).
    StatusMismatch,
    /// The provider holds a payout under our reference that we have no record of.
    UnknownProviderPayout,
    /// The amounts differ.
    AmountMismatch,
    /// The currencies differ.
    CurrencyMismatch,
    /// We consider the payout sent; the provider has nothing under our reference.
    MissingAtProvider,
    /// The provider ended the payout longer ago than the lag threshold and we still have it
    /// open.
    StatusLag,
}

impl DifferenceKind {
    /// The snake_case name (as in JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            DifferenceKind::StatusMismatch => "status_mismatch",
            DifferenceKind::UnknownProviderPayout => "unknown_provider_payout",
            DifferenceKind::AmountMismatch => "amount_mismatch",
            DifferenceKind::CurrencyMismatch => "currency_mismatch",
            DifferenceKind::MissingAtProvider => "missing_at_provider",
            DifferenceKind::StatusLag => "status_lag",
        }
    }
}

/// Our side of a difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OurSide {
    pub status: CashoutStatus,
    /// What we asked the provider to pay (the payable amount).
    pub amount: Amount,
    pub currency: Currency,
    /// What we recorded as paid.
    pub paid_amount: Option<Amount>,
    /// The provider's payout id we hold.
    pub provider_payout_id: Option<ProviderPayoutId>,
    /// When we last changed it.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl OurSide {
    /// Our side from a request.
    pub fn of(request: &CashoutRequest) -> Self {
        OurSide {
            status: request.status(),
            amount: request.payable_amount(),
            currency: request.currency(),
            paid_amount: request.paid_amount(),
            provider_payout_id: request.provider_reference().cloned(),
            updated_at: request.updated_at(),
        }
    }
}

/// A provider's own record of a payout, as its API gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// The payout, normalised.
    pub payout: ProviderPayout,
    /// The amount the provider holds, when its API says (Cascad's `amount`; the D24 family's
    /// status call does not say).
    #[serde(with = "crate::money::decimal_text::option")]
    pub amount: Option<Decimal>,
    /// The currency, when its API says.
    pub currency: Option<String>,
    /// The reference as the provider returned it (even one that is not ours).
    pub reference: Option<String>,
    /// When the provider created it, if it says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// The provider's side of a difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TheirSide {
    pub payout_id: ProviderPayoutId,
    /// The provider's status words.
    pub status: String,
    /// What that status means for a request (`None`: unknown to us).
    pub implies: Option<CashoutStatus>,
    #[serde(with = "crate::money::decimal_text::option")]
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    /// When the provider last changed it, if it says.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

impl TheirSide {
    /// The provider's side from its record.
    pub fn of(record: &ProviderRecord) -> Self {
        TheirSide {
            payout_id: record.payout.payout_id.clone(),
            status: record.payout.provider_status.clone(),
            implies: record.payout.state.target_status(),
            amount: record.amount,
            currency: record.currency.clone(),
            updated_at: record.payout.updated_at,
        }
    }
}

/// One difference between our records and a provider's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    /// The request concerned, when there is one.
    pub cashout_request_id: Option<CashoutRequestId>,
    /// The provider compared with.
    pub provider: ProviderName,
    /// The reference compared (ours, or the provider's for an unknown payout).
    pub reference: String,
    /// Our side (absent for a payout we do not know).
    pub ours: Option<OurSide>,
    /// The provider's side (absent when it holds nothing).
    pub theirs: Option<TheirSide>,
    /// What differs, in words.
    pub detail: String,
    /// Whether the reconciler applied the provider's status through the normal status path (a
    /// missed reversal).
    pub applied: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
}

impl Difference {
    /// A stable key within a reconciliation: the same difference found twice (a worker
    /// resumed after a crash) is recorded once.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.provider, self.reference, self.kind.as_str())
    }
}

/// One provider attempt of a request to compare: where, under which reference, and whether it
/// is the request's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptToCheck {
    pub provider: ProviderName,
    pub reference: PayoutReference,
    /// The request's current attempt (the others were left after a failover).
    pub current: bool,
}

/// The provider attempts of a request worth comparing: every attempt it made (the current one
/// last), or none if no provider may hold anything for it.
pub fn attempts_to_check(request: &CashoutRequest) -> Vec<AttemptToCheck> {
    let mut out: Vec<AttemptToCheck> = request
        .provider_attempts()
        .iter()
        .map(|a| AttemptToCheck {
            provider: a.provider,
            reference: a.reference,
            current: a.provider == request.provider() && a.ended_at.is_none(),
        })
        .collect();
    if !out.iter().any(|a| a.current) && request.provider_may_hold() {
        out.push(AttemptToCheck {
            provider: request.provider(),
            reference: request.payout_reference(),
            current: true,
        });
    }
    out
}

/// Whether we consider the payout of the current attempt sent: the provider accepted it (or
/// reported it), so it must hold it.
fn considered_sent(request: &CashoutRequest) -> bool {
    request.provider_reference().is_some()
        || matches!(request.status(), CashoutStatus::PendingPayment | CashoutStatus::Paid)
}

/// Whether the provider is ahead of us on the request's current attempt: it reports a status
/// our request may still move to (it paid, rejected or cancelled a payout we hold open). Then
/// how long it has been so matters ([`compare`]'s `status_since`).
pub fn provider_ahead(request: &CashoutRequest, theirs: &ProviderRecord) -> bool {
    let ours = request.status();
    theirs.payout.state.target_status().is_some_and(|implied| {
        implied != ours
            && !ours.is_final()
            && implied != CashoutStatus::Approved
            && (ours.allowed_next().contains(&implied)
                || (ours == CashoutStatus::Approved && implied == CashoutStatus::PendingPayment))
    })
}

/// What kind of difference there is between one attempt of a request and the provider's record
/// of that reference (`None`: the provider holds nothing), if any, with its detail. `lag` is
/// how long a provider may be ahead of us before it counts; `status_since` is when our
/// request's status last changed (its last status event: bookkeeping such as a counted check
/// moves `updated_at`, not the status).
pub fn compare(
    request: &CashoutRequest,
    attempt: AttemptToCheck,
    theirs: Option<&ProviderRecord>,
    lag: time::Duration,
    status_since: OffsetDateTime,
    now: OffsetDateTime,
) -> Vec<(DifferenceKind, String)> {
    let mut out = Vec::new();
    let ours = request.status();
    if !attempt.current {
        // A provider the request left must hold nothing live or paid.
        if let Some(r) = theirs
            && matches!(r.payout.state, PayoutState::Pending | PayoutState::Paid { .. })
        {
            out.push((
                DifferenceKind::StatusMismatch,
                format!(
                    "the request left {} after a failover, which holds a payout in `{}`",
                    attempt.provider, r.payout.provider_status
                ),
            ));
        }
        return out;
    }
    let Some(r) = theirs else {
        if considered_sent(request) {
            out.push((
                DifferenceKind::MissingAtProvider,
                format!(
                    "we hold it as {ours}; {} has no payout for {}",
                    attempt.provider, attempt.reference
                ),
            ));
        }
        return out;
    };
    // A placeholder id on either side (`ext:<reference>`: the provider's answer named no id, as
    // the D24 family's status by reference does not) proves nothing.
    if let Some(id) = request.provider_reference()
        && id != &r.payout.payout_id
        && !id.is_by_reference()
        && !r.payout.payout_id.is_by_reference()
    {
        out.push((
            DifferenceKind::UnknownProviderPayout,
            format!(
                "{} holds payout {} for our reference; we know {id}",
                attempt.provider, r.payout.payout_id
            ),
        ));
    }
    if let Some(cur) = r.currency.as_deref()
        && !cur.eq_ignore_ascii_case(request.currency().code())
    {
        out.push((
            DifferenceKind::CurrencyMismatch,
            format!("we sent {}; {} holds {cur}", request.currency(), attempt.provider),
        ));
    }
    let ours_amount = request.payable_amount().value();
    let theirs_amount = match &r.payout.state {
        PayoutState::Paid { amount: Some(paid), .. } => Some(*paid),
        _ => r.amount,
    };
    if let Some(a) = theirs_amount
        && a != ours_amount
    {
        out.push((
            DifferenceKind::AmountMismatch,
            format!("we sent {ours_amount}; {} holds {a}", attempt.provider),
        ));
    }
    let Some(implied) = r.payout.state.target_status() else {
        return out; // an unknown provider status moves nothing and proves nothing
    };
    if implied == ours {
        return out;
    }
    let reversed_missed = ours == CashoutStatus::Paid && implied == CashoutStatus::Rejected;
    if reversed_missed {
        out.push((
            DifferenceKind::StatusMismatch,
            format!(
                "we hold it PAID; {} reports `{}` (a reversal we missed)",
                attempt.provider, r.payout.provider_status
            ),
        ));
    } else if provider_ahead(request, r) {
        let since = r.payout.updated_at.map_or(status_since, |t| t.max(status_since));
        if now - since > lag {
            out.push((
                DifferenceKind::StatusLag,
                format!(
                    "{} reports `{}` ({implied}) since {since}; we still hold it {ours}",
                    attempt.provider, r.payout.provider_status
                ),
            ));
        }
    } else if !(ours == CashoutStatus::Paid && implied == CashoutStatus::PendingPayment) || now - status_since > lag {
        // A provider behind us on PAID (its own settlement still running) is not a
        // difference until the lag passes.
        out.push((
            DifferenceKind::StatusMismatch,
            format!(
                "we hold it {ours}; {} reports `{}` ({implied})",
                attempt.provider, r.payout.provider_status
            ),
        ));
    }
    out
}

/// Whether a provider payout's reference is one of ours: a request id, optionally `.<n>`.
pub fn our_reference(reference: &str) -> Option<PayoutReference> {
    reference.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::date;

    use super::*;
    use crate::review::{ApprovalPolicy, ReviewFacts};
    use crate::tests::new_request;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    fn record(state: PayoutState, id: &str, amount: Option<Decimal>) -> ProviderRecord {
        ProviderRecord {
            payout: ProviderPayout {
                provider: ProviderName::D24,
                payout_id: ProviderPayoutId::new(id).unwrap(),
                reference: None,
                provider_status: format!("{state:?}"),
                state,
                updated_at: None,
            },
            amount,
            currency: None,
            reference: None,
            created_at: None,
        }
    }

    /// A two-invoice request (160.00 BRL) the provider accepted as payout `8405147`.
    fn pending() -> CashoutRequest {
        let r = new_request(2)
            .request
            .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
            .unwrap()
            .request;
        let claimed = r.begin_dispatch(t0(), time::Duration::minutes(5)).unwrap().request;
        claimed
            .record_provider_payout(&record(PayoutState::Pending, "8405147", None).payout, t0())
            .unwrap()
            .request
    }

    fn current(r: &CashoutRequest) -> AttemptToCheck {
        *attempts_to_check(r).last().unwrap()
    }

    fn kinds(found: &[(DifferenceKind, String)]) -> Vec<DifferenceKind> {
        found.iter().map(|(k, _)| *k).collect()
    }

    const LAG: time::Duration = time::Duration::minutes(10);

    #[test]
    fn a_period_is_whole_utc_days_both_ends_included_and_bounded() {
        let p = Period::new(date!(2026 - 11 - 30), date!(2026 - 12 - 01)).unwrap();
        assert_eq!(p.start(), date!(2026 - 11 - 30).midnight().assume_utc());
        assert_eq!(p.end(), date!(2026 - 12 - 02).midnight().assume_utc());
        assert!(p.contains(p.end() - time::Duration::nanoseconds(1)));
        assert!(!p.contains(p.end()));
        assert!(matches!(
            Period::new(date!(2026 - 12 - 01), date!(2026 - 11 - 30)),
            Err(PeriodError::Reversed { .. })
        ));
        assert!(
            Period::new(date!(2025 - 01 - 01), date!(2025 - 12 - 31)).is_ok(),
            "365 days"
        );
        assert_eq!(
            Period::new(date!(2024 - 01 - 01), date!(2025 - 01 - 01)),
            Err(PeriodError::TooLong { days: 367 })
        );
    }

    #[test]
    fn the_scheduled_run_of_a_day_has_one_id_that_sorts_by_day() {
        let a = Reconciliation::scheduled_id(date!(2026 - 11 - 30));
        assert_eq!(a, Reconciliation::scheduled_id(date!(2026 - 11 - 30)));
        let b = Reconciliation::scheduled_id(date!(2026 - 12 - 01));
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert_eq!(a.to_string().parse::<ReconciliationId>().unwrap(), a);
    }

    #[test]
    fn totals_add_paid_reversed_and_pending_apart() {
        let r = pending();
        let mut totals = StatementTotals::default();
        totals.add(&StatementLine::of(&r));
        let paid = r
            .record_provider_payout(
                &record(
                    PayoutState::Paid {
                        paid_at: None,
                        amount: None,
                    },
                    "8405147",
                    None,
                )
                .payout,
                t0(),
            )
            .unwrap()
            .request;
        totals.add(&StatementLine::of(&paid));
        let reversed = paid
            .record_provider_payout(
                &record(
                    PayoutState::Rejected {
                        code: Some("826".into()),
                        reason: None,
                    },
                    "8405147",
                    None,
                )
                .payout,
                t0(),
            )
            .unwrap()
            .request;
        let line = StatementLine::of(&reversed);
        assert_eq!(line.paid_amount, None);
        assert_eq!(line.reversed_amount, Some(reversed.payable_amount()));
        totals.add(&line);
        let brl = &totals.0[&Currency::BRL];
        assert_eq!(brl.count, 3);
        assert_eq!(brl.requested, Decimal::new(48000, 2));
        assert_eq!(brl.pending, Decimal::new(16000, 2));
        assert_eq!(brl.paid, Decimal::new(16000, 2));
        assert_eq!(brl.reversed, Decimal::new(16000, 2));
        assert_eq!(brl.by_status[&CashoutStatus::Rejected].count, 1);
    }

    #[test]
    fn a_d24_reversal_seen_before_the_payment_is_a_reversal_in_the_statement() {
        let rejected = |code: &str| {
            pending()
                .record_provider_payout(
                    &record(
                        PayoutState::Rejected {
                            code: Some(code.into()),
                            reason: None,
                        },
                        "8405147",
                        None,
                    )
                    .payout,
                    t0(),
                )
                .unwrap()
                .request
        };
        let reversed = rejected("826");
        assert_eq!(reversed.status(), CashoutStatus::Rejected);
        assert_eq!(
            StatementLine::of(&reversed).reversed_amount,
            Some(reversed.payable_amount())
        );
        assert_eq!(
            StatementLine::of(&rejected("800")).reversed_amount,
            None,
            "a plain rejection"
        );
    }

    #[test]
    fn the_same_payout_in_the_same_state_is_no_difference() {
        let r = pending();
        let theirs = record(PayoutState::Pending, "8405147", Some(Decimal::new(16000, 2)));
        assert!(compare(&r, current(&r), Some(&theirs), LAG, t0(), t0()).is_empty());
        // A placeholder id (the D24 family's status by reference names none) is the same payout.
        let placeholder = record(PayoutState::Pending, &format!("ext:{}", r.payout_reference()), None);
        assert!(compare(&r, current(&r), Some(&placeholder), LAG, t0(), t0()).is_empty());
    }

    #[test]
    fn each_kind_of_difference_is_found() {
        let r = pending();
        let at = current(&r);
        assert_eq!(
            kinds(&compare(&r, at, None, LAG, t0(), t0())),
            [DifferenceKind::MissingAtProvider]
        );
        let other = record(PayoutState::Pending, "999", None);
        assert_eq!(
            kinds(&compare(&r, at, Some(&other), LAG, t0(), t0())),
            [DifferenceKind::UnknownProviderPayout]
        );
        let mut wrong = record(PayoutState::Pending, "8405147", Some(Decimal::new(16001, 2)));
        wrong.currency = Some("USD".into());
        assert_eq!(
            kinds(&compare(&r, at, Some(&wrong), LAG, t0(), t0())),
            [DifferenceKind::CurrencyMismatch, DifferenceKind::AmountMismatch]
        );
        let paid = record(
            PayoutState::Paid {
                paid_at: None,
                amount: None,
            },
            "8405147",
            None,
        );
        assert!(
            compare(&r, at, Some(&paid), LAG, t0(), t0() + LAG).is_empty(),
            "ahead of us by no more than the lag"
        );
        assert_eq!(
            kinds(&compare(
                &r,
                at,
                Some(&paid),
                LAG,
                t0(),
                t0() + LAG + time::Duration::SECOND
            )),
            [DifferenceKind::StatusLag]
        );
        let paid_here = r.record_provider_payout(&paid.payout, t0()).unwrap().request;
        let reversed = record(
            PayoutState::Rejected {
                code: Some("826".into()),
                reason: None,
            },
            "8405147",
            None,
        );
        let found = compare(&paid_here, current(&paid_here), Some(&reversed), LAG, t0(), t0());
        assert_eq!(kinds(&found), [DifferenceKind::StatusMismatch]);
        assert!(found[0].1.contains("reversal"), "{found:?}");
    }

    #[test]
    fn a_request_no_provider_may_hold_has_nothing_to_compare() {
        let approved = new_request(1)
            .request
            .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
            .unwrap()
            .request;
        assert!(attempts_to_check(&approved).is_empty());
    }
}
