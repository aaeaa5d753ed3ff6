//! Property tests of the request aggregate: a reference model of the status machine drives random
//! operation sequences against [`CashoutRequest`], and random provider status streams (with
//! duplicates and reordering) are replayed against requests at the provider.

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use rust_decimal::Decimal;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::OperatorName;
use crate::cashout::{AttentionReason, CashoutRequest, Change, DispatchFailure, ProviderKnowledge};
use crate::event::{EventPayload, StatusEvent};
use crate::ids::{CashoutRequestId, InvoiceId, MerchantId, ProviderPayoutId};
use crate::input::CashoutInput;
use crate::money::Amount;
use crate::provider::{PayoutState, ProviderName, ProviderPayout};
use crate::review::{ApprovalPolicy, PolicyScope, ReviewFacts};
use crate::status::{CashoutStatus, InvoiceStatus};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
}

/// How long a dispatcher's claim lasts in these tests.
const LEASE: time::Duration = time::Duration::minutes(5);

/// A D24 request in BRL with `n` invoices of 100.00 at 80 %.
pub(crate) fn new_request(n: usize) -> Change {
    let invoices: Vec<_> = (0..n)
        .map(|i| json!({"invoice_id": format!("INV-{i}"), "payer": {"tax_id": "1", "name": "P"}, "amount": "100.00", "advance_percentage": "80"}))
        .collect();
    let body = json!({
        "currency": "BRL", "country": "BR", "requested_by": "ana@example.com", "provider": "d24",
        "beneficiary": {"name": "Ana", "document_id": "12345678909", "bank_account": "0001234567"},
        "invoices": invoices,
    });
    let draft = serde_json::from_value::<CashoutInput>(body)
        .unwrap()
        .validate(&crate::routing::Coverage::default())
        .unwrap();
    CashoutRequest::create(
        CashoutRequestId::from_uuid(Uuid::from_u128(7)),
        MerchantId::new("clinic").unwrap(),
        draft,
        t0(),
    )
}

fn payout(state: PayoutState) -> ProviderPayout {
    ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new("8405147").unwrap(),
        reference: None,
        provider_status: format!("{state:?}"),
        state,
        updated_at: None,
    }
}

fn provider_state() -> impl Strategy<Value = PayoutState> {
    prop_oneof![
        Just(PayoutState::Pending),
        Just(PayoutState::Paid {
            paid_at: None,
            amount: None
        }),
        Just(PayoutState::Rejected {
            code: Some("800".into()),
            reason: None
        }),
        Just(PayoutState::Rejected {
            code: Some("826".into()),
            reason: Some("WITHDRAWAL_REVERSED".into())
        }),
        Just(PayoutState::Cancelled),
        Just(PayoutState::NeedsAttention {
            reason: "partial".into()
        }),
        Just(PayoutState::Unknown),
    ]
}

/// The reference model: just enough state to predict every operation's outcome. Operations
/// happen one minute apart and a claim lasts [`LEASE`], so a claim is still held at the next
/// operation unless released.
#[derive(Debug, Clone)]
struct Model {
    invoices: usize,
    status: CashoutStatus,
    dispatched: bool,
    leased: bool,
    provider_ref: bool,
    /// The provider's own words last recorded on the request (only reports that move or keep
    /// the status record them; an attention note alone does not).
    provider_words: Option<String>,
    /// The final status came from the payout's own end at the provider.
    ended_by_provider: bool,
    /// Attention notes, by the provider status and request status they were noted for.
    attention: Vec<(String, CashoutStatus)>,
    excluded: Vec<bool>,
    version: u64,
    events: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Review { auto_approve: bool },
    Approve,
    Reject,
    Cancel,
    RejectConfirmed,
    CancelConfirmed,
    Exclude(usize),
    BeginDispatch,
    Release,
    Declined,
    ProcessorError,
    Retry,
    Provider(PayoutState),
}

struct ModelMachine;

impl Model {
    fn included(&self) -> usize {
        self.excluded.iter().filter(|e| !**e).count()
    }

    fn step(&mut self, to: CashoutStatus) {
        if self.status == CashoutStatus::Approved {
            // Only an APPROVED request can be leased.
            self.leased = false;
        }
        self.status = to;
        self.events += 1;
    }
}

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (1usize..=4)
            .prop_map(|n| Model {
                invoices: n,
                status: CashoutStatus::Requested,
                dispatched: false,
                leased: false,
                provider_ref: false,
                provider_words: None,
                ended_by_provider: false,
                attention: Vec::new(),
                excluded: vec![false; n],
                version: 1,
                events: 1,
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let n = state.invoices;
        prop_oneof![
            any::<bool>().prop_map(|auto_approve| Op::Review { auto_approve }),
            Just(Op::Approve),
            Just(Op::Reject),
            Just(Op::Cancel),
            Just(Op::RejectConfirmed),
            Just(Op::CancelConfirmed),
            (0..n).prop_map(Op::Exclude),
            Just(Op::BeginDispatch),
            Just(Op::Release),
            Just(Op::Declined),
            Just(Op::ProcessorError),
            Just(Op::Retry),
            provider_state().prop_map(Op::Provider),
            provider_state().prop_map(Op::Provider),
        ]
        .boxed()
    }

    fn apply(mut s: Model, op: &Op) -> Model {
        use CashoutStatus::*;
        let events_before = s.events;
        let mut bookkeeping = false;
        let before_review = matches!(s.status, Requested | UnderReview);
        let endable = matches!(s.status, Approved | PaymentProcessorError) && !s.leased;
        match op {
            Op::Review { auto_approve } if s.status == Requested => {
                s.step(if *auto_approve { Approved } else { UnderReview })
            }
            Op::Approve if before_review => s.step(Approved),
            Op::Reject | Op::Cancel if (before_review || (endable && !s.dispatched)) && !s.provider_ref => {
                s.step(if matches!(op, Op::Reject) { Rejected } else { Cancelled })
            }
            Op::RejectConfirmed | Op::CancelConfirmed if before_review || endable => {
                s.step(if matches!(op, Op::RejectConfirmed) {
                    Rejected
                } else {
                    Cancelled
                })
            }
            Op::Exclude(i) if before_review && !s.excluded[*i] && s.included() > 1 => {
                s.excluded[*i] = true;
                s.events += 1;
            }
            Op::BeginDispatch if s.status == Approved && !s.leased => {
                s.dispatched = true;
                s.leased = true;
                bookkeeping = true;
            }
            Op::Release if s.status == Approved => {
                s.leased = false;
                bookkeeping = true;
            }
            Op::Declined if s.status == Approved => {
                s.leased = false;
                s.step(Rejected)
            }
            Op::ProcessorError if s.status == Approved => {
                s.leased = false;
                s.step(PaymentProcessorError)
            }
            Op::Retry if s.status == PaymentProcessorError => {
                s.leased = false;
                s.step(Approved);
            }
            Op::Provider(state) => bookkeeping = s.provider(state),
            _ => {}
        }
        // Every accepted operation appends events or is bookkeeping; each bumps the version once.
        if s.events != events_before || bookkeeping {
            s.version += 1;
        }
        s
    }
}

impl Model {
    /// What a provider report does; `true` for a bookkeeping-only write.
    fn provider(&mut self, state: &PayoutState) -> bool {
        use CashoutStatus::*;
        let Some(target) = state.target_status() else {
            return false;
        };
        let live_or_paid = matches!(target, PendingPayment | Paid);
        let through_pending = match self.status {
            Approved => true,
            PaymentProcessorError => live_or_paid,
            PendingPayment | Paid => false,
            Requested | UnderReview | Rejected | Cancelled => {
                let note = (format!("{state:?}"), self.status);
                if !live_or_paid || self.ended_by_provider || self.attention.contains(&note) {
                    return false;
                }
                self.attention.push(note);
                self.provider_ref = true;
                return true;
            }
        };
        let words = Some(format!("{state:?}"));
        if target == self.status {
            let news = !self.provider_ref || self.provider_words != words;
            self.provider_ref = true;
            self.provider_words = words;
            return news;
        }
        let from = if through_pending { PendingPayment } else { self.status };
        if target != from && !from.can_transition_to(target) {
            return false;
        }
        if self.status == PaymentProcessorError && live_or_paid {
            let note = (format!("{state:?}"), PaymentProcessorError);
            if !self.attention.contains(&note) {
                self.attention.push(note);
            }
        }
        self.provider_ref = true;
        self.provider_words = words;
        if through_pending {
            self.step(PendingPayment);
        }
        if target != PendingPayment {
            self.step(target);
            self.ended_by_provider = matches!(target, Rejected | Cancelled);
            let note = (format!("{state:?}"), PaymentProcessorError);
            if target == PaymentProcessorError && !self.attention.contains(&note) {
                self.attention.push(note);
            }
        }
        false
    }
}

struct Sut {
    request: CashoutRequest,
    events: Vec<StatusEvent>,
}

struct AggregateTest;

fn apply_change(sut: &mut Sut, change: Change) {
    assert_eq!(
        change.expected_version,
        sut.request.version(),
        "a change is computed from the current version"
    );
    assert_eq!(
        change.request.version(),
        sut.request.version() + 1,
        "every write bumps the version by one"
    );
    for (i, e) in change.events.iter().enumerate() {
        assert_eq!(
            e.sequence,
            sut.request.last_sequence() + 1 + i as u64,
            "sequence numbers are consecutive"
        );
        if let EventPayload::StatusUpdate {
            previous_status,
            status,
            ..
        } = &e.payload
        {
            assert!(
                previous_status.can_transition_to(*status),
                "{previous_status} -> {status} is not in the table"
            );
        }
    }
    sut.events.extend(change.events);
    sut.request = change.request;
}

impl StateMachineTest for AggregateTest {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(model: &Model) -> Sut {
        let change = new_request(model.invoices);
        Sut {
            events: change.events,
            request: change.request,
        }
    }

    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        let now = t0() + time::Duration::minutes(sut.events.len() as i64);
        let was_final = sut.request.status().is_final();
        let before = sut.request.clone();
        let result: Option<Change> = match op {
            Op::Review { auto_approve } => {
                let limit = if auto_approve {
                    Decimal::from(1_000_000)
                } else {
                    Decimal::ZERO
                };
                sut.request
                    .review(
                        &ApprovalPolicy::limit_only(PolicyScope::Default, limit),
                        &ReviewFacts::default(),
                        None,
                        now,
                    )
                    .ok()
            }
            Op::Approve => sut.request.approve(&OperatorName::new("ops").unwrap(), None, now).ok(),
            Op::Reject => sut.request.reject("no".into(), now).ok(),
            Op::Cancel => sut.request.cancel(now).ok(),
            Op::RejectConfirmed => sut.request.reject_confirmed("no".into(), now).ok(),
            Op::CancelConfirmed => sut.request.cancel_confirmed(now).ok(),
            Op::Exclude(i) => sut
                .request
                .exclude_invoice(&InvoiceId::new(format!("INV-{i}")).unwrap(), now)
                .ok(),
            Op::BeginDispatch => sut.request.begin_dispatch(now, LEASE).ok(),
            Op::Release => sut.request.release_dispatch(ProviderKnowledge::Unchanged, now).ok(),
            Op::Declined => sut
                .request
                .record_dispatch_failure(
                    DispatchFailure::Declined {
                        code: Some("300".into()),
                        message: "bad".into(),
                    },
                    now,
                )
                .ok(),
            Op::ProcessorError => sut
                .request
                .record_dispatch_failure(
                    DispatchFailure::ProcessorError {
                        code: Some("514".into()),
                        message: "funds".into(),
                    },
                    now,
                )
                .ok(),
            Op::Retry => sut.request.retry(now).ok(),
            Op::Provider(state) => sut.request.record_provider_payout(&payout(state), now),
        };
        if was_final {
            assert!(
                result
                    .as_ref()
                    .is_none_or(|c| c.events.is_empty() && c.request.status() == before.status()),
                "nothing may change the status of a final request"
            );
        }
        match result {
            Some(change) => apply_change(&mut sut, change),
            None => assert_eq!(sut.request, before, "a refused operation changes nothing"),
        }
        assert_eq!(
            sut.request.status(),
            model.status,
            "the aggregate agrees with the model"
        );
        assert_eq!(
            sut.events.len() as u64,
            model.events,
            "event count agrees with the model"
        );
        assert_eq!(sut.request.version(), model.version, "version agrees with the model");
        assert_eq!(
            sut.request.attention().len(),
            model.attention.len(),
            "attention notes agree with the model"
        );
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let r = &sut.request;
        assert_eq!(r.last_sequence(), sut.events.len() as u64);
        for (i, e) in sut.events.iter().enumerate() {
            assert_eq!(e.sequence, i as u64 + 1);
        }
        for (i, inv) in r.invoices().iter().enumerate() {
            if model.excluded[i] {
                assert_eq!(inv.status, InvoiceStatus::Excluded, "excluded invoices stay excluded");
            } else {
                assert_eq!(
                    inv.status,
                    InvoiceStatus::from(r.status()),
                    "included invoices move with the request"
                );
            }
        }
        assert_eq!(r.included_invoice_count() as usize, model.included());
        assert_eq!(r.requested_invoice_count() as usize, model.invoices);
        match r.paid_amount() {
            Some(paid) => {
                assert_eq!(r.status(), CashoutStatus::Paid);
                assert!(paid <= r.requested_amount(), "paid_amount ≤ requested_amount");
                assert_eq!(paid, r.payable_amount());
                assert_eq!(r.paid_invoice_count(), r.included_invoice_count());
                assert!(r.payment_date().is_some() && r.payment_reference().is_some());
            }
            None => {
                assert_ne!(r.status(), CashoutStatus::Paid);
                assert_eq!(r.paid_invoice_count(), 0);
            }
        }
        assert!(r.paid_invoice_count() <= r.requested_invoice_count());
        if r.status().is_final() {
            assert_eq!(r.next_check_at(), None);
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn the_aggregate_follows_the_status_machine(sequential 1..40 => AggregateTest);
}

proptest! {
    /// Any stream of provider answers — with duplicates and in any order — moves a request at
    /// the provider only forward (but out of a processor error, flagged for a person), and never
    /// changes the status of a final request.
    #[test]
    fn provider_streams_never_move_a_request_backwards(
        stream in prop::collection::vec(provider_state(), 1..30),
        duplicate_every in 1usize..4,
    ) {
        let request = new_request(2).request.review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0()).unwrap().request;
        let mut request = request.begin_dispatch(t0(), LEASE).unwrap().request;
        let mut delivered = Vec::new();
        for (i, s) in stream.into_iter().enumerate() {
            delivered.push(s.clone());
            if i % duplicate_every == 0 {
                delivered.push(s);
            }
        }
        let mut last_progress = request.status().progress();
        for s in delivered {
            let was_final = request.status().is_final();
            let before = request.status();
            if let Some(c) = request.record_provider_payout(&payout(s), t0()) {
                prop_assert!(!was_final || c.events.is_empty(), "a final request changed status");
                for e in &c.events {
                    if let EventPayload::StatusUpdate { previous_status, status, .. } = &e.payload {
                        prop_assert!(previous_status.can_transition_to(*status));
                    }
                }
                request = c.request;
            }
            let back_after_error = before == CashoutStatus::PaymentProcessorError && request.needs_attention();
            prop_assert!(
                request.status().progress() >= last_progress || back_after_error,
                "{before} went back to {}", request.status()
            );
            last_progress = request.status().progress();
        }
    }
}

#[test]
fn a_request_is_approved_paid_and_reversed() {
    let created = new_request(3);
    assert_eq!(created.events.len(), 1);
    let r = created.request;
    let approved = r
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
        .unwrap()
        .request;
    assert_eq!(approved.status(), CashoutStatus::Approved);
    let claimed = approved.begin_dispatch(t0(), LEASE).unwrap();
    assert!(claimed.events.is_empty());
    assert!(matches!(
        claimed.request.cancel(t0()),
        Err(crate::cashout::TransitionError::DispatchLeased { .. })
    ));
    assert_eq!(
        claimed.request.cancel(t0() + LEASE),
        Err(crate::cashout::TransitionError::ProviderMayHold),
        "after the lease, a cancel still asks the provider first"
    );
    // The provider answers COMPLETED before the dispatcher recorded PENDING: two steps.
    let paid = claimed
        .request
        .record_provider_payout(
            &payout(PayoutState::Paid {
                paid_at: None,
                amount: None,
            }),
            t0(),
        )
        .unwrap();
    assert_eq!(paid.events.len(), 2);
    assert_eq!(
        paid.new_provider_reference,
        Some((ProviderName::D24, ProviderPayoutId::new("8405147").unwrap()))
    );
    let paid = paid.request;
    assert_eq!(paid.status(), CashoutStatus::Paid);
    assert_eq!(paid.paid_amount().unwrap().to_string(), "240.00");
    assert_eq!(paid.paid_invoice_count(), 3);
    // A stale PENDING changes nothing.
    assert!(
        paid.record_provider_payout(&payout(PayoutState::Pending), t0())
            .is_none()
    );
    let reversed = paid
        .record_provider_payout(
            &payout(PayoutState::Rejected {
                code: Some("826".into()),
                reason: Some("WITHDRAWAL_REVERSED".into()),
            }),
            t0(),
        )
        .unwrap();
    assert!(matches!(
        reversed.events[0].payload,
        EventPayload::StatusUpdate {
            reason: crate::event::StatusReason::ProviderReversed { .. },
            ..
        }
    ));
    assert_eq!(reversed.request.status(), CashoutStatus::Rejected);
    assert_eq!(reversed.request.paid_amount(), None);
}

#[test]
fn excluded_invoices_lower_the_paid_amount() {
    let r = new_request(3).request;
    let limit = ApprovalPolicy::limit_only(PolicyScope::Default, Decimal::ZERO);
    let r = r.review(&limit, &ReviewFacts::default(), None, t0()).unwrap().request;
    assert_eq!(r.status(), CashoutStatus::UnderReview);
    let c = r.exclude_invoice(&InvoiceId::new("INV-1").unwrap(), t0()).unwrap();
    assert!(matches!(
        c.events[0].payload,
        EventPayload::InvoiceStatusUpdate {
            status: InvoiceStatus::Excluded,
            ..
        }
    ));
    let r = c
        .request
        .approve(&OperatorName::new("ops").unwrap(), None, t0())
        .unwrap()
        .request;
    let r = r
        .record_provider_payout(
            &payout(PayoutState::Paid {
                paid_at: None,
                amount: None,
            }),
            t0(),
        )
        .unwrap()
        .request;
    assert_eq!(r.requested_amount().to_string(), "240.00");
    assert_eq!(r.paid_amount().unwrap().to_string(), "160.00");
    assert_eq!(r.paid_invoice_count(), 2);
    assert_eq!(r.requested_invoice_count(), 3);
    assert_eq!(r.invoices()[1].status, InvoiceStatus::Excluded);
    assert_eq!(r.invoices()[0].status, InvoiceStatus::Paid);
}

#[test]
fn webhook_bodies_carry_the_osigu_fields_and_the_sequence() {
    let created = new_request(1);
    let body: serde_json::Value = serde_json::from_str(&created.events[0].webhook_body()).unwrap();
    assert_eq!(body["event"], "cashout_request.created");
    assert_eq!(body["requested_amount"], "80.00");
    assert_eq!(body["currency_code"], "BRL");
    assert_eq!(body["requested_invoice_count"], 1);
    assert_eq!(body["status"], "REQUESTED");
    assert_eq!(body["sequence"], 1);
    assert_eq!(body["cashout_request_id"], "00000000-0000-0000-0000-000000000007");
    let approved = created
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&approved.events[0].webhook_body()).unwrap();
    assert_eq!(body["event"], "cashout_request.status_update");
    assert_eq!(body["status"], "APPROVED");
    assert_eq!(body["paid_amount"], serde_json::Value::Null);
    assert_eq!(body["sequence"], 2);
    assert_eq!(body["reason"]["kind"], "auto_approved");
}

#[test]
fn requests_round_trip_through_json_storage() {
    let c = new_request(2);
    let text = serde_json::to_string(&c.request).unwrap();
    let back: CashoutRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(back, c.request);
    let e = serde_json::to_string(&c.events[0]).unwrap();
    assert_eq!(serde_json::from_str::<StatusEvent>(&e).unwrap(), c.events[0]);
}

#[test]
fn a_paid_amount_other_than_the_payable_one_is_recorded_and_flagged() {
    let approved = new_request(3)
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
        .unwrap()
        .request;
    let paid = |amount: &str| {
        approved
            .record_provider_payout(
                &payout(PayoutState::Paid {
                    paid_at: None,
                    amount: Some(amount.parse().unwrap()),
                }),
                t0(),
            )
            .unwrap()
            .request
    };
    // The same value at another scale is the same amount: nothing to flag.
    let exact = paid("240");
    assert_eq!(exact.paid_amount().unwrap().to_string(), "240.00");
    assert!(exact.attention().is_empty());

    let short = paid("237.6");
    assert_eq!(short.status(), CashoutStatus::Paid);
    assert_eq!(
        short.paid_amount().unwrap().to_string(),
        "237.60",
        "the provider's amount"
    );
    assert_eq!(
        short.attention().iter().map(|a| &a.reason).collect::<Vec<_>>(),
        [&AttentionReason::PaidAmountDiffers {
            requested: Amount::parse("240.00", short.currency()).unwrap(),
            paid: "237.6".parse().unwrap(),
        }]
    );
    assert!(short.needs_attention());

    // A figure that is no amount in the currency (zero, a fraction of a cent) is flagged as
    // said; the paid amount stays the one we asked for.
    for odd in ["0", "239.995", "-1"] {
        let r = paid(odd);
        assert_eq!(r.paid_amount().unwrap().to_string(), "240.00", "{odd}");
        assert!(
            matches!(&r.attention()[0].reason, AttentionReason::PaidAmountDiffers { paid, .. } if paid.to_string() == odd),
            "{odd}"
        );
    }
}

#[test]
fn a_paid_amount_note_round_trips_through_storage() {
    let reason = AttentionReason::PaidAmountDiffers {
        requested: Amount::parse("240.00", crate::money::Currency::USD).unwrap(),
        paid: "237.6".parse().unwrap(),
    };
    let text = serde_json::to_string(&reason).unwrap();
    assert_eq!(
        text,
        r#"{"kind":"paid_amount_differs","requested":"240.00","paid":"237.6"}"#
    );
    assert_eq!(serde_json::from_str::<AttentionReason>(&text).unwrap(), reason);
}

#[test]
fn the_providers_own_id_replaces_a_placeholder_even_after_payment() {
    let approved = new_request(1)
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), None, t0())
        .unwrap()
        .request;
    let placeholder = ProviderPayoutId::by_reference(approved.payout_reference());
    let adopted = ProviderPayout {
        payout_id: placeholder.clone(),
        ..payout(PayoutState::Paid {
            paid_at: None,
            amount: None,
        })
    };
    let paid = approved.record_provider_payout(&adopted, t0()).unwrap().request;
    assert_eq!(paid.payment_reference(), Some(placeholder.as_str()));
    // The same PAID, now under D24's own id: no event, both references move to it.
    let named = paid
        .record_provider_payout(
            &payout(PayoutState::Paid {
                paid_at: None,
                amount: None,
            }),
            t0(),
        )
        .unwrap();
    assert!(named.events.is_empty());
    assert_eq!(
        named.new_provider_reference,
        Some((ProviderName::D24, ProviderPayoutId::new("8405147").unwrap()))
    );
    assert_eq!(named.request.provider_reference().map(|p| p.as_str()), Some("8405147"));
    assert_eq!(named.request.payment_reference(), Some("8405147"));
    // Never the reverse: a later report by reference keeps the real id.
    assert!(named.request.record_provider_payout(&adopted, t0()).is_none());
}

#[test]
fn a_review_chained_onto_the_creation_is_one_write_with_both_events() {
    let created = new_request(1);
    let policy = ApprovalPolicy::default();
    let review = created
        .request
        .review(&policy, &ReviewFacts::default(), None, t0())
        .unwrap();
    let both = created.clone().then(review.clone()).unwrap();
    assert_eq!(both.expected_version, 0);
    assert_eq!(both.request.version(), 1, "one write, one version step");
    assert_eq!(both.request.status(), CashoutStatus::Approved);
    let sequences: Vec<u64> = both.events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![1, 2]);
    assert!(matches!(
        both.events[1].payload,
        EventPayload::StatusUpdate {
            status: CashoutStatus::Approved,
            previous_status: CashoutStatus::Requested,
            ..
        }
    ));
    let other = review.clone();
    assert!(created.then(other.clone()).is_some());
    assert!(
        review.clone().then(other).is_none(),
        "not computed from the review's result"
    );
}

#[test]
fn a_provider_event_keeps_the_wire_format_tasks_in_flight_were_written_with() {
    use crate::ports::{ProviderEvent, ProviderNotification, Task, TaskEnvelope};

    let id = CashoutRequestId::from_uuid(Uuid::now_v7());
    let mut paid = payout(PayoutState::Pending);
    paid.reference = Some(id.into());
    // Written by the version before the event was an enum: a hint, then a verified status.
    let hint = json!({"v": 1, "not_before": "2026-01-01T00:00:00Z",
        "task": {"type": "provider_event", "provider": "d24", "reference": id, "payout_id": null, "payout": null}});
    let status = json!({"v": 1, "not_before": "2026-01-01T00:00:00Z",
        "task": {"type": "provider_event", "provider": "d24", "reference": id, "payout_id": paid.payout_id,
                 "payout": paid}});

    let read: TaskEnvelope = serde_json::from_value(hint.clone()).unwrap();
    let Task::ProviderEvent(event) = &read.task else {
        panic!("{read:?}")
    };
    assert_eq!(
        event.notification,
        ProviderNotification::Hint {
            reference: Some(id.into()),
            payout_id: None
        }
    );
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        hint,
        "written back as it was read"
    );

    let read: TaskEnvelope = serde_json::from_value(status.clone()).unwrap();
    let Task::ProviderEvent(event) = &read.task else {
        panic!("{read:?}")
    };
    assert!(matches!(&event.notification, ProviderNotification::Status(p) if p.payout_id == paid.payout_id));
    assert_eq!(event.reference(), Some(id.into()));
    assert_eq!(event.payout_id(), Some(&paid.payout_id));
    assert_eq!(serde_json::to_value(&read).unwrap()["task"], status["task"]);

    let written = serde_json::to_value(Task::ProviderEvent(ProviderEvent {
        provider: ProviderName::D24,
        notification: ProviderNotification::Status(paid.clone()),
    }))
    .unwrap();
    assert_eq!(written["reference"], json!(id));
    assert_eq!(written["payout_id"], json!(paid.payout_id));
    assert_eq!(written["payout"], serde_json::to_value(&paid).unwrap());
}

#[test]
fn failover_is_refused_while_a_payout_may_exist_and_until_an_unknown_create_could_have_landed() {
    use crate::cashout::{FailoverReason, ProviderKnowledge, TransitionError};
    use crate::routing::{Route, RoutingChoice, RoutingSource};
    let route = |p| Route {
        provider: p,
        method: None,
        service: None,
    };
    let choice = RoutingChoice {
        source: RoutingSource::Default,
        rule_id: None,
        routes: vec![route(ProviderName::D24), route(ProviderName::Onspot)],
        failover_on_decline: false,
    };
    let r = new_request(1)
        .request
        .review(&ApprovalPolicy::default(), &ReviewFacts::default(), Some(choice), t0())
        .unwrap()
        .request;
    let lease = time::Duration::minutes(5);
    let claimed = r.begin_dispatch(t0(), lease).unwrap().request;
    let settle = time::Duration::minutes(2);
    let go = |r: &CashoutRequest, k, at| r.fail_over(ProviderName::Onspot, FailoverReason::CircuitOpen, k, settle, at);

    assert_eq!(
        go(&claimed, ProviderKnowledge::MayExist, t0()).unwrap_err(),
        TransitionError::ProviderMayHold
    );
    assert_eq!(
        claimed
            .fail_over(
                ProviderName::Tupay,
                FailoverReason::CircuitOpen,
                ProviderKnowledge::NothingThere,
                settle,
                t0()
            )
            .unwrap_err(),
        TransitionError::NoSuchRoute(ProviderName::Tupay)
    );
    // A create whose outcome was unknown, and a lookup that found nothing yet.
    let released = claimed
        .release_dispatch(ProviderKnowledge::NoneSoFar, t0())
        .unwrap()
        .request;
    assert_eq!(
        go(
            &released,
            ProviderKnowledge::Unchanged,
            t0() + time::Duration::minutes(1)
        )
        .unwrap_err(),
        TransitionError::Unsettled { until: t0() + settle }
    );
    let moved = go(&released, ProviderKnowledge::Unchanged, t0() + settle).unwrap();
    assert_eq!(moved.request.provider(), ProviderName::Onspot);
    assert_eq!(moved.request.payout_reference().to_string(), format!("{}.2", r.id()));
    assert_eq!(moved.events.len(), 1);
    // Onspot is the last route: nowhere else to go, and never back to D24.
    assert_eq!(moved.request.untried_routes().count(), 0);
}

/// A request of `amount` in `currency`, one invoice at 100 % (review tests).
pub(crate) fn sample_request_in(currency: &str, amount: &str) -> CashoutRequest {
    let country = match currency {
        "USD" => "EC",
        "CLP" => "CL",
        "MXN" => "MX",
        _ => "BR",
    };
    let body = json!({
        "currency": currency, "country": country, "requested_by": "ana@example.com", "provider": "d24",
        "beneficiary": {"name": "Ana", "document_id": "12345678909", "bank_account": "0001234567"},
        "invoices": [{"invoice_id": "INV-1", "payer": {"tax_id": "1", "name": "P"}, "amount": amount, "advance_percentage": "100"}],
    });
    let draft = serde_json::from_value::<CashoutInput>(body)
        .unwrap()
        .validate(&crate::routing::Coverage::default())
        .unwrap();
    CashoutRequest::create(
        CashoutRequestId::from_uuid(Uuid::from_u128(8)),
        MerchantId::new("clinic").unwrap(),
        draft,
        t0(),
    )
    .request
}
