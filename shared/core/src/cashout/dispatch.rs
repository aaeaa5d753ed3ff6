//! Dispatch: the lease a dispatcher holds while it sends a request to its provider, its release,
//! and a dispatch that ends without a payout.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CashoutRequest, Change, TransitionError};
use crate::event::StatusReason;
use crate::status::CashoutStatus;

/// Dispatch bookkeeping: once a dispatcher has claimed a request, the provider may hold a payout
/// for it, so a cancel or a reject must ask the provider first.
///
/// The claim is a **lease**: while `lease_until` is in the future, one dispatcher owns the
/// request and no other dispatcher, cancel or reject acts on it. A dispatcher ends its attempt by
/// releasing the lease; one that crashed leaves it set, and the next claim (after it lapses)
/// counts that attempt as one that may have created a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchState {
    /// When the first dispatcher claimed it.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Claims since the request was last approved (more than one after a crash or a retryable
    /// provider error; every attempt looks the payout up by reference before creating).
    pub attempts: u32,
    /// Until when the current dispatcher owns the request (`None`: no attempt in flight).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    /// A create may have reached the provider and no lookup since has shown the payout absent:
    /// the request must not end without a payout until a lookup answers. Records written before
    /// this field existed read as `true`, the safe side.
    #[serde(default = "unresolved_by_default")]
    pub unresolved: bool,
    /// When a create whose outcome was unknown was last sent (or a dispatcher that may have
    /// sent one lost its lease). A provider may still process such a create after a lookup
    /// answered "none": failover waits [`CashoutRequest::fail_over`]'s settle time after it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub unknown_create_at: Option<OffsetDateTime>,
}

fn unresolved_by_default() -> bool {
    true
}

impl DispatchState {
    /// Whether a dispatcher owns the request at `now`.
    pub fn is_leased(&self, now: OffsetDateTime) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }
}

/// What a dispatch attempt learnt about the provider before it ended without a payout to adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKnowledge {
    /// A lookup in this attempt showed no payout and nothing was created since.
    NothingThere,
    /// A create's outcome was unknown and the lookup right after it showed no payout: nothing
    /// there now, but the provider may still process that create. The same provider may be
    /// asked again (its reference makes a second create the first one); another provider only
    /// once the create has had time to land ([`CashoutRequest::fail_over`]).
    NoneSoFar,
    /// No create was sent and no lookup answered: what was known at the claim stands.
    Unchanged,
    /// A create was sent, its outcome is unknown, and no lookup has answered since.
    MayExist,
}

/// Why a dispatch ended without a payout at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchFailure {
    /// The provider declined the data (D24 `DECLINED`, Cascad 422 on fields): `REJECTED`.
    Declined {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
    /// Configuration, funds or provider trouble: `PAYMENT_PROCESSOR_ERROR`.
    ProcessorError {
        /// Provider error code.
        code: Option<String>,
        /// Provider message.
        message: String,
    },
}

impl CashoutRequest {
    /// A dispatcher claims an `APPROVED` request before calling the provider (no event): it takes
    /// the lease until `now + lease`. Refused while another dispatcher holds it. A previous
    /// attempt that never released its lease (it crashed) may have created a payout: the claim
    /// records that. From here on a cancel or a reject asks the provider first.
    pub fn begin_dispatch(&self, now: OffsetDateTime, lease: time::Duration) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "dispatch")?;
        if let Some(d) = self.dispatch.filter(|d| d.is_leased(now)) {
            return Err(TransitionError::DispatchLeased {
                until: d.lease_until.unwrap_or(now),
            });
        }
        let lease_until = now.checked_add(lease).unwrap_or(now);
        self.change(now, |r, _| {
            r.open_attempt(now);
            r.dispatch = Some(match r.dispatch {
                None => DispatchState {
                    started_at: now,
                    attempts: 1,
                    lease_until: Some(lease_until),
                    unresolved: false,
                    unknown_create_at: None,
                },
                Some(d) => DispatchState {
                    attempts: d.attempts.saturating_add(1),
                    lease_until: Some(lease_until),
                    unresolved: d.unresolved || d.lease_until.is_some(),
                    // A lapsed lease: that dispatcher may have sent a create.
                    unknown_create_at: if d.lease_until.is_some() {
                        Some(now)
                    } else {
                        d.unknown_create_at
                    },
                    ..d
                },
            });
            Ok(())
        })
    }

    /// A dispatcher ends its attempt without a payout to adopt (it will try again later): the
    /// lease is released and what it learnt about the provider recorded (no event).
    pub fn release_dispatch(
        &self,
        knowledge: ProviderKnowledge,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "release the dispatch of")?;
        Ok(self.touch(now, |r| {
            if let Some(d) = r.dispatch.as_mut() {
                d.lease_until = None;
                d.unresolved = match knowledge {
                    ProviderKnowledge::NothingThere | ProviderKnowledge::NoneSoFar => false,
                    ProviderKnowledge::Unchanged => d.unresolved,
                    ProviderKnowledge::MayExist => true,
                };
                if matches!(knowledge, ProviderKnowledge::NoneSoFar | ProviderKnowledge::MayExist) {
                    d.unknown_create_at = Some(now);
                }
            }
        }))
    }

    /// The provider refused to create the payout and holds none (a lookup in the same attempt
    /// showed nothing, or no create was ever sent): `REJECTED` for a data problem,
    /// `PAYMENT_PROCESSOR_ERROR` otherwise. The caller must know that; while a payout may exist,
    /// the request waits instead (see [`ProviderKnowledge`]).
    pub fn record_dispatch_failure(
        &self,
        failure: DispatchFailure,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[CashoutStatus::Approved], "record a dispatch failure of")?;
        let (to, reason) = match failure {
            DispatchFailure::Declined { code, message } => (
                CashoutStatus::Rejected,
                StatusReason::ProviderDeclined { code, message },
            ),
            DispatchFailure::ProcessorError { code, message } => (
                CashoutStatus::PaymentProcessorError,
                StatusReason::ProcessorError { code, message },
            ),
        };
        self.change(now, |r, ev| {
            if let Some(d) = r.dispatch.as_mut() {
                d.lease_until = None;
                d.unresolved = false;
            }
            r.step(to, reason, now, ev)
        })
    }
}
