//! The ground truth a request is judged against, written here independently of the product's
//! own tables: the status table's transitions, what a provider's payout status implies, and
//! which endpoint receives which events.

use cashout_provider_sim::{Ledger, LedgerPayout, Provider};
use cashout_system::workload::Trigger;

use super::plan::{Plan, Review};

/// The transitions of the status table (`docs/architecture.md`), written here independently of
/// the product's own table.
pub(super) fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("REQUESTED", "APPROVED" | "UNDER_REVIEW" | "REJECTED" | "CANCELLED")
            | ("UNDER_REVIEW", "APPROVED" | "REJECTED" | "CANCELLED")
            | (
                "APPROVED",
                "PENDING_PAYMENT" | "REJECTED" | "PAYMENT_PROCESSOR_ERROR" | "CANCELLED"
            )
            | (
                "PENDING_PAYMENT",
                "PAID" | "REJECTED" | "CANCELLED" | "PAYMENT_PROCESSOR_ERROR"
            )
            | ("PAYMENT_PROCESSOR_ERROR", "APPROVED" | "REJECTED" | "CANCELLED")
            | ("PAID", "REJECTED")
    )
}

/// What the provider's truth implies for a request, or why it may legitimately wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    /// This status, for good.
    Final(&'static str),
    /// This status until something outside cashout happens (the reason says what).
    Waiting(&'static str, &'static str),
    /// Not settled yet (the provider is still working, or a reversal is due).
    Moving,
}

/// The request a payout reference belongs to: our reference is the request id for its first
/// provider attempt and `<id>.<n>` for the n-th (after a failover).
pub(super) fn request_of(reference: &str) -> &str {
    match reference.rsplit_once('.') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => reference,
    }
}

/// Every payout of the request `id` at any provider, under any of its attempts' references.
pub(super) fn payouts_of_request<'a>(ledger: &'a Ledger, id: &str) -> Vec<&'a LedgerPayout> {
    ledger
        .payouts
        .iter()
        .filter(|p| request_of(&p.reference) == id)
        .collect()
}

/// What a provider's payout status implies for its request.
fn provider_truth(provider: Provider, status: &str) -> Expect {
    let family_d24 = provider != Provider::Cascad;
    let head = status.split_whitespace().next().unwrap_or_default();
    match (family_d24, head) {
        (true, "COMPLETED") | (false, "processed") => Expect::Final("PAID"),
        (true, "REJECTED") | (false, "process_failed" | "expired" | "terminated") => Expect::Final("REJECTED"),
        (true, "CANCELLED") => Expect::Final("CANCELLED"),
        (true, "ON_HOLD") => Expect::Waiting("PENDING_PAYMENT", "on hold at the provider until released"),
        _ => Expect::Moving,
    }
}

/// The expected status of one request, from its payouts at every provider
/// ([`payouts_of_request`]: two or more never settle, and the checks report them) and what the
/// merchant did.
pub(super) fn expect(p: &Plan, payouts: &[&LedgerPayout], actual: &str) -> Expect {
    match payouts {
        [payout] => {
            let truth = provider_truth(payout.provider, &payout.status);
            // A D24-family reversal comes after COMPLETED: not final until it has happened.
            if p.trigger == Trigger::Reversal && payout.provider != Provider::Cascad && truth == Expect::Final("PAID") {
                return Expect::Moving;
            }
            truth
        }
        [] => match actual {
            // Nothing at any provider (under any attempt's reference): only outcomes that pay
            // nothing are possible.
            "REJECTED" if p.trigger == Trigger::Declined => Expect::Final("REJECTED"),
            "CANCELLED" if p.cancel_soon || p.review == Some(Review::MerchantCancels) => Expect::Final("CANCELLED"),
            "UNDER_REVIEW" if p.review == Some(Review::Leave) => {
                Expect::Waiting("UNDER_REVIEW", "above the auto-approval limit, left for an operator")
            }
            "PAYMENT_PROCESSOR_ERROR" => Expect::Waiting(
                "PAYMENT_PROCESSOR_ERROR",
                "the provider refused it for a configuration reason; an operator decides",
            ),
            _ => Expect::Moving,
        },
        _ => Expect::Moving,
    }
}

/// An endpoint of the run: (name, merchant is B, event types it receives; empty = all).
pub(super) type Endpoint = (&'static str, bool, &'static [&'static str]);

/// The endpoints of the run.
pub(super) const ENDPOINTS: [Endpoint; 3] = [
    ("a-all", false, &[]),
    ("a-status", false, &["cashout_request.status_update"]),
    ("b-all", true, &[]),
];

/// Whether `endpoint` receives events of type `event_type` of a request of merchant B or A.
pub(super) fn subscribed(endpoint: &Endpoint, merchant_b: bool, event_type: &str) -> bool {
    endpoint.1 == merchant_b && (endpoint.2.is_empty() || endpoint.2.contains(&event_type))
}

#[cfg(test)]
mod tests {
    use super::request_of;

    #[test]
    fn a_reference_after_a_failover_belongs_to_its_request() {
        let id = "0193a5b4-7c1d-7e2f-8a3b-4c5d6e7f8091";
        assert_eq!(request_of(id), id);
        assert_eq!(request_of(&format!("{id}.2")), id);
        assert_eq!(request_of(&format!("{id}.13")), id);
        // Not an attempt suffix: left whole (and reported as an unknown reference).
        assert_eq!(request_of(&format!("{id}.x")), format!("{id}.x"));
        assert_eq!(request_of(&format!("{id}.")), format!("{id}."));
    }
}
