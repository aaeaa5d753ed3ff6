//! Routing on the request: the providers chosen at approval, each provider attempt with its own
//! reference, and failover to the next provider — only when the current one provably holds no
//! payout for the request and will not create one.
//!
//! Why this can never pay twice: a request leaves a provider only through [`CashoutRequest::fail_over`],
//! which refuses while a create may have reached it ([`ProviderKnowledge::MayExist`], or an
//! unresolved dispatch) or once it reported a payout; every provider is tried at most once; and
//! each attempt has its own reference, so no lookup or "already exists" answer at one provider
//! can stand for another's payout. A payout that appears at a provider the request left is
//! flagged for a person ([`AttentionReason::PayoutAtLeftProvider`]), never adopted.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AttentionReason, CashoutRequest, Change, ProviderKnowledge, TransitionError};
use crate::event::EventPayload;
use crate::ids::PayoutReference;
use crate::provider::ProviderName;
use crate::routing::{Route, RoutingChoice};

/// Why a request left a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailoverReason {
    /// The provider's circuit was open: nothing was sent to it for this request.
    CircuitOpen,
    /// It refused the payout for a configuration or account reason and created nothing.
    Refused { code: Option<String>, message: String },
    /// It declined the beneficiary's data and the rule says to try the next provider.
    Declined { code: Option<String>, message: String },
    /// It stayed unavailable through every dispatch attempt, and a lookup answered that it holds
    /// nothing.
    Unavailable { message: String },
}

/// One provider a request was sent to (or skipped), with its own reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAttempt {
    pub provider: ProviderName,
    /// Our reference at this provider (`<request id>` for the first attempt, `<id>.<n>` after).
    pub reference: PayoutReference,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the request left this provider (absent for the current attempt).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it left (absent for the current attempt, whose outcome is the request's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverReason>,
    /// When a lookup at this provider, made once a late create would have landed after the
    /// request left, answered (a payout found there is flagged for a person).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub checked_at: Option<OffsetDateTime>,
}

impl CashoutRequest {
    /// Whether the merchant named the provider (no routing rules, no failover). Requests made
    /// before routing rules read as pinned: they keep the provider chosen at their creation.
    pub fn provider_pinned(&self) -> bool {
        self.provider_pinned
    }

    /// How its providers were chosen, once approved.
    pub fn routing(&self) -> Option<&RoutingChoice> {
        self.routing.as_ref()
    }

    /// Every provider attempt so far, the current one last.
    pub fn provider_attempts(&self) -> &[ProviderAttempt] {
        &self.provider_attempts
    }

    /// Our reference at the current provider: the current attempt's, or the one the next
    /// attempt will take.
    pub fn payout_reference(&self) -> PayoutReference {
        match self.provider_attempts.last() {
            Some(a) if a.provider == self.provider && a.ended_at.is_none() => a.reference,
            _ => self.next_reference(),
        }
    }

    fn next_reference(&self) -> PayoutReference {
        let n = u32::try_from(self.provider_attempts.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        PayoutReference::new(self.id, n).unwrap_or(PayoutReference::first(self.id))
    }

    /// Our reference at `provider`: its attempt's when the request went there, else the
    /// current one's.
    pub fn reference_at(&self, provider: ProviderName) -> PayoutReference {
        self.provider_attempts
            .iter()
            .find(|a| a.provider == provider)
            .map_or_else(|| self.payout_reference(), |a| a.reference)
    }

    /// Whether the request went to `provider` once and left it after a failover.
    pub fn left_provider(&self, provider: ProviderName) -> bool {
        provider != self.provider && self.provider_attempts.iter().any(|a| a.provider == provider)
    }

    /// The routes not tried yet, in order (the current provider excluded).
    pub fn untried_routes(&self) -> impl Iterator<Item = &Route> {
        self.routing
            .iter()
            .flat_map(|c| c.routes.iter())
            .filter(|r| r.provider != self.provider && !self.provider_attempts.iter().any(|a| a.provider == r.provider))
    }

    /// Whether a provider's decline of the beneficiary's data may move the request on.
    pub fn fails_over_on_decline(&self) -> bool {
        self.routing.as_ref().is_some_and(|c| c.failover_on_decline)
    }

    /// Records the routes chosen at approval and moves to the first (no event of its own: the
    /// approval's event carries the provider).
    pub(super) fn set_routing(&mut self, choice: Option<RoutingChoice>) {
        let choice = choice.unwrap_or_else(|| {
            let route = Route {
                provider: self.provider,
                method: self.payout_method,
                service: self.payout_service.clone(),
            };
            let mut only = RoutingChoice::pinned(route);
            if !self.provider_pinned {
                only.source = crate::routing::RoutingSource::Default;
            }
            only
        });
        if let Some(first) = choice.routes.first() {
            self.provider = first.provider;
            self.payout_method = first.method;
            self.payout_service = first.service.clone();
        }
        self.routing = Some(choice);
    }

    /// Opens the current provider's attempt at the first claim (its reference is fixed from
    /// then on).
    pub(super) fn open_attempt(&mut self, now: OffsetDateTime) {
        let open = self
            .provider_attempts
            .last()
            .is_some_and(|a| a.provider == self.provider && a.ended_at.is_none());
        if !open {
            let reference = self.next_reference();
            self.provider_attempts.push(ProviderAttempt {
                provider: self.provider,
                reference,
                started_at: now,
                ended_at: None,
                failover: None,
                checked_at: None,
            });
        }
    }

    /// Moves an `APPROVED` request from its provider to `to`, one of its untried routes, ending
    /// the current attempt with `reason` (event `cashout_request.provider_failover`).
    ///
    /// Refused ([`TransitionError::ProviderMayHold`]) unless the current provider provably holds
    /// nothing: no payout reported, and what the dispatcher learnt (`knowledge`) or, when it
    /// learnt nothing new, the last thing known says no create can have reached it. Refused
    /// too ([`TransitionError::Unsettled`]) until `settle` has passed since a create whose
    /// outcome was unknown: a provider can process a create after a lookup answered "none",
    /// and once the request has left, such a late payout would be a second one. The caller must
    /// hold the dispatch lease (or never have sent anything).
    pub fn fail_over(
        &self,
        to: ProviderName,
        reason: FailoverReason,
        knowledge: ProviderKnowledge,
        settle: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Change, TransitionError> {
        self.require(&[super::CashoutStatus::Approved], "fail over")?;
        let nothing_there = match knowledge {
            ProviderKnowledge::NothingThere | ProviderKnowledge::NoneSoFar => true,
            ProviderKnowledge::Unchanged => self.dispatch.is_none_or(|d| !d.unresolved),
            ProviderKnowledge::MayExist => false,
        };
        if !nothing_there || self.provider_reference.is_some() {
            return Err(TransitionError::ProviderMayHold);
        }
        let unknown = self.dispatch.and_then(|d| d.unknown_create_at);
        let settled_at = unknown.map(|at| at.checked_add(settle).unwrap_or(at));
        if let Some(until) = settled_at.filter(|until| *until > now) {
            return Err(TransitionError::Unsettled { until });
        }
        let route = self
            .untried_routes()
            .find(|r| r.provider == to)
            .cloned()
            .ok_or(TransitionError::NoSuchRoute(to))?;
        let from = self.provider;
        self.change(now, |r, ev| {
            r.open_attempt(now);
            if let Some(a) = r.provider_attempts.last_mut() {
                a.ended_at = Some(now);
                a.failover = Some(reason.clone());
            }
            r.provider = route.provider;
            r.payout_method = route.method;
            r.payout_service = route.service.clone();
            r.dispatch = None;
            r.provider_status = None;
            let payload = EventPayload::ProviderFailover {
                cashout_request_id: r.id,
                from_provider: from,
                to_provider: to,
                reason,
                provider_attempts: r.provider_attempts.clone(),
            };
            r.push_event(now, payload, ev);
            Ok(())
        })
    }

    /// The providers this request left at least `after` ago whose reference has not been looked
    /// up since: a create that landed there late must be found.
    pub fn left_attempts_to_check(
        &self,
        after: time::Duration,
        now: OffsetDateTime,
    ) -> Vec<(ProviderName, PayoutReference)> {
        self.provider_attempts
            .iter()
            .filter(|a| a.checked_at.is_none())
            .filter(|a| {
                a.ended_at
                    .is_some_and(|end| end.checked_add(after).is_some_and(|due| due <= now))
            })
            .map(|a| (a.provider, a.reference))
            .collect()
    }

    /// Records that a lookup at a provider the request left answered (no event).
    pub fn record_left_check(&self, provider: ProviderName, now: OffsetDateTime) -> Change {
        self.touch(now, |r| {
            if let Some(a) = r
                .provider_attempts
                .iter_mut()
                .find(|a| a.provider == provider && a.ended_at.is_some())
            {
                a.checked_at = Some(now);
            }
        })
    }

    /// A provider the request left (or never used) reports a live or paid payout for it: it
    /// must not happen, and it is never adopted — flagged for a person instead.
    pub(super) fn payout_at_left_provider(
        &self,
        payout: &crate::provider::ProviderPayout,
        now: OffsetDateTime,
    ) -> Option<Change> {
        let live_or_paid = matches!(
            payout.state.target_status(),
            Some(super::CashoutStatus::PendingPayment | super::CashoutStatus::Paid)
        );
        if !live_or_paid {
            return None;
        }
        self.flag_attention(
            AttentionReason::PayoutAtLeftProvider {
                provider: payout.provider,
                payout_id: payout.payout_id.clone(),
                provider_status: payout.provider_status.clone(),
            },
            now,
        )
    }
}
