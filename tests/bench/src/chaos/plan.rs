//! What the run will do, decided up front from the seed: for each request its merchant,
//! provider (or none: routed at approval), outcome trigger, whether it waits for review, and what
//! the merchant does besides (cancel right away, send the create twice).

use cashout_core::provider::ProviderName;
use cashout_system::workload::{PROVIDERS, Trigger, account, body};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;

use super::ChaosConfig;

/// What one planned request does.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Plan {
    pub n: usize,
    pub merchant_b: bool,
    /// The provider named in the create; for a request routed at approval (`pinned` false), the
    /// first of its default routes (BR/BRL: D24, then Onspot).
    pub provider: ProviderName,
    /// Whether the create names the provider. A BR/BRL request without one gets the default
    /// routes [d24, onspot] at approval and may fail over.
    pub pinned: bool,
    pub trigger: Trigger,
    pub account: String,
    /// Above the auto-approval limit: waits for review.
    pub review: Option<Review>,
    /// The merchant cancels right after the create.
    pub cancel_soon: bool,
    /// The merchant sends the create twice.
    pub duplicate: bool,
    pub key: String,
    #[serde(skip)]
    pub body: Value,
}

/// What happens to a request waiting for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) enum Review {
    Approve,
    MerchantCancels,
    Leave,
}

/// The plan of every request.
pub(super) fn plan(config: &ChaosConfig) -> Vec<Plan> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    (0..config.requests)
        .map(|n| {
            let planned = PROVIDERS[n % PROVIDERS.len()];
            // Half of the BR/BRL requests (D24 and Onspot turns, every other round) name no
            // provider: routed at approval to [d24, onspot], they can fail over.
            let pinned = !(matches!(planned, ProviderName::D24 | ProviderName::Onspot)
                && (n / PROVIDERS.len()).is_multiple_of(2));
            let provider = if pinned { planned } else { ProviderName::D24 };
            let roll = rng.random_range(0..100u32);
            let (trigger, review) = match roll {
                0..=51 => (Trigger::Success, None),
                52..=63 => (Trigger::BankRejects, None),
                64..=77 => (Trigger::Reversal, None),
                78..=83 => (Trigger::Declined, None),
                84..=88 => (Trigger::OnHold, None),
                89..=92 => (Trigger::Success, Some(Review::Approve)),
                93..=95 => (Trigger::Success, Some(Review::MerchantCancels)),
                _ => (Trigger::Success, Some(Review::Leave)),
            };
            let account = account(config.seed.wrapping_mul(1_000_000) + n as u64, trigger);
            let amount = if review.is_some() { "20000.00" } else { "1000.00" };
            let merchant_b = rng.random_range(0..100u32) < 20;
            let mut body = body(provider, &account, amount);
            if !pinned && let Some(b) = body.as_object_mut() {
                b.remove("provider");
            }
            Plan {
                n,
                merchant_b,
                provider,
                pinned,
                trigger,
                review,
                cancel_soon: review.is_none() && rng.random_range(0..100u32) < 4,
                duplicate: rng.random_range(0..100u32) < 8,
                key: format!("chaos-{}-{n}", config.seed),
                body,
                account,
            }
        })
        .collect()
}
