//! What every backend decides the same way about the operators' lists (the `WorkStore` port of
//! `cashout-core`): which requests are in which work list, and which attempts are dead letters.

use cashout_core::cashout::CashoutRequest;
use cashout_core::ports::WorkList;
use cashout_core::status::CashoutStatus;
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt};

/// Whether `request` is in `list` as it stands.
pub(crate) fn in_work_list(request: &CashoutRequest, list: WorkList) -> bool {
    match list {
        WorkList::Review | WorkList::ProcessorError => status_list(request) == Some(list),
        WorkList::Attention => request.needs_attention(),
    }
}

/// The status list a request is in, if any (a request is in at most one: its status).
pub(crate) fn status_list(request: &CashoutRequest) -> Option<WorkList> {
    match request.status() {
        CashoutStatus::UnderReview => Some(WorkList::Review),
        CashoutStatus::PaymentProcessorError => Some(WorkList::ProcessorError),
        // Every other status waits for no one.
        _ => None,
    }
}

/// Whether an attempt is a dead letter: it did not succeed and nothing more is scheduled.
pub(crate) fn is_dead_letter(attempt: &DeliveryAttempt) -> bool {
    // A claim is an attempt in flight; an operational event (a test) is not worth an operator's
    // attention.
    !matches!(attempt.outcome, AttemptOutcome::Delivered | AttemptOutcome::Sending)
        && attempt.next_attempt_at.is_none()
        && !attempt.event_id.is_operational()
}
