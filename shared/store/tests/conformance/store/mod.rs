//! What every store backend must do, by port: creation (idempotency records and invoice
//! claims), changes and what reads them back, webhooks and API keys, routing rules and provider
//! health; operators, policies, usage and sessions; operators' work lists and dead letters.

mod changed;
mod creation;
mod deliveries;
mod limits;
mod people;
mod requests;
mod routing;
mod webhooks;
mod work;

pub use changed::*;
pub use creation::*;
pub use deliveries::*;
pub use limits::*;
pub use people::*;
pub use requests::*;
pub use routing::*;
pub use webhooks::*;
pub use work::*;

use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::ProviderPayoutId;
use cashout_core::ports::{CreateOutcome, Store};
use cashout_core::provider::{PayoutState, ProviderName, ProviderPayout};

use super::StoreEnv;
use super::fixtures::Fixtures;

pub(super) fn fx<S>(env: &StoreEnv<S>) -> Fixtures {
    Fixtures::new(env.clock.clone())
}

pub(super) async fn create<S: Store>(store: &S, fx: &Fixtures, change: &cashout_core::cashout::Change) {
    let idem = fx.idempotency(change, &format!("k-{}", change.request.id()), "h");
    assert_eq!(
        store.create_request(change, &idem, &[]).await.unwrap(),
        CreateOutcome::Created
    );
}

pub(super) async fn load<S: Store>(store: &S, id: cashout_core::ids::CashoutRequestId) -> CashoutRequest {
    store.get_request(id).await.unwrap().expect("the request exists")
}

pub(super) fn pending(payout_id: &str) -> ProviderPayout {
    ProviderPayout {
        provider: ProviderName::D24,
        payout_id: ProviderPayoutId::new(payout_id).unwrap(),
        reference: None,
        state: PayoutState::Pending,
        provider_status: "PENDING".into(),
        updated_at: None,
    }
}
