//! # cashout-core: the domain
//!
//! A merchant asks for a **cashout request**: one or more invoices, each advanced at a
//! percentage, paid as one payout to one beneficiary through one **payout provider**
//! (D24, Onspot, Tupay, Cascad). This crate is everything cashout knows about that, with no I/O:
//!
//! | module | what |
//! |---|---|
//! | [`money`] | ISO-4217 currencies, exact amounts at the currency's scale, percentages, the rounding rule |
//! | [`ids`] | typed identifiers (`CashoutRequestId`, `EventId`, …) |
//! | [`input`] | the create body and its validation (every problem at once, with field paths) |
//! | [`cashout`] | the request aggregate and every operation on it, as [`cashout::Change`]s |
//! | [`status`] | the eight statuses and the transition table |
//! | [`event`] | status events: the audit trail and the webhook outbox |
//! | [`review`] | auto-approve rules |
//! | [`routing`] | which provider pays what, what it needs from the beneficiary, and the operators' routing rules |
//! | [`health`] | each provider's recent outcomes and its circuit breaker |
//! | [`provider`] | provider names, the normalised payout state, D24 and Cascad status/error tables |
//! | [`signing`] | D24 `Payload-Signature`, Cascad `X-Signature`, Standard Webhooks |
//! | [`webhook`] | merchant endpoints, delivery attempts, the retry schedule, the SSRF policy |
//! | [`auth`] | API keys (stored as hashes) and principals |
//! | [`ports`] | the traits adapters implement: store, queue, provider, webhook sender, clock, ids |
//!
//! ## The rules that keep money safe
//! - A request changes only through [`cashout::CashoutRequest`]'s operations; each yields a
//!   [`cashout::Change`] (new version + its events) written atomically on the condition that the
//!   stored version is unchanged. Two writers racing: one wins, the other reloads.
//! - Statuses never move backwards on provider input: a stale or duplicate answer yields no
//!   change ([`cashout::CashoutRequest::record_provider_payout`]).
//! - The request id is the provider's reference, so a payout is created at most once.

pub mod auth;
pub mod cashout;
pub mod claim;
pub mod event;
pub mod health;
pub mod ids;
pub mod input;
pub mod limit;
pub mod money;
pub(crate) mod named;
pub mod notice;
pub mod party;
pub mod ports;
pub mod provider;
pub mod reconcile;
pub mod review;
pub mod routing;
pub mod signing;
pub mod status;
pub mod validation;
pub mod webhook;

#[cfg(test)]
mod tests;
