//! Create-request bodies for every provider, with the simulators' test triggers (the last two
//! digits of the beneficiary account choose the outcome, `tests/sim/README.md`).

use cashout_core::provider::ProviderName;
use serde_json::{Value, json};

/// The simulator's name for a provider: it has its own enum, independent of ours.
pub fn sim_provider(p: ProviderName) -> cashout_provider_sim::Provider {
    match p {
        ProviderName::D24 => cashout_provider_sim::Provider::D24,
        ProviderName::Onspot => cashout_provider_sim::Provider::Onspot,
        ProviderName::Tupay => cashout_provider_sim::Provider::Tupay,
        ProviderName::Cascad => cashout_provider_sim::Provider::Cascad,
    }
}

/// What the simulated provider will do with a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Trigger {
    /// Paid.
    Success,
    /// The bank rejects it (D24 800; Cascad `process_failed`).
    BankRejects,
    /// D24 family: paid, then reversed 10 s later (scaled). Cascad: paid.
    Reversal,
    /// The create is declined; nothing is created.
    Declined,
    /// D24/Onspot: created on hold (stays there: nobody releases it). Tupay: paid. Cascad: a
    /// processing attempt fails and the retry pays.
    OnHold,
}

impl Trigger {
    /// The last two digits of the account.
    pub fn digits(self) -> &'static str {
        match self {
            Trigger::Success => "67",
            Trigger::BankRejects => "13",
            Trigger::Reversal => "26",
            Trigger::Declined => "30",
            Trigger::OnHold => "55",
        }
    }
}

/// The four providers, in a fixed order.
pub const PROVIDERS: [ProviderName; 4] = [
    ProviderName::D24,
    ProviderName::Onspot,
    ProviderName::Tupay,
    ProviderName::Cascad,
];

/// An account number ending in the trigger's digits, unique per `n` (so that logs can be
/// searched for it).
pub fn account(n: u64, trigger: Trigger) -> String {
    format!("{:08}{}", n % 100_000_000, trigger.digits())
}

/// A create body for `provider`: two invoices, `amount` and 500.00, advanced at 80 % and 50 %
/// (so `amount` above 11,875 needs a review under the default 10,000 limit).
pub fn body(provider: ProviderName, account: &str, amount: &str) -> Value {
    let (country, currency, beneficiary, method) = match provider {
        ProviderName::D24 | ProviderName::Onspot => (
            "BR",
            "BRL",
            json!({"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                   "email": "ana@clinic.example", "bank_code": "001", "bank_branch": "1234",
                   "bank_account": account, "account_type": "C"}),
            "bank_transfer",
        ),
        ProviderName::Tupay => (
            "PE",
            "PEN",
            json!({"name": "Rosa", "last_name": "Quispe", "document_type": "DNI", "document_id": "12345678",
                   "email": "rosa@clinic.example", "bank_code": "002", "bank_account": account, "account_type": "S"}),
            "bank_transfer",
        ),
        ProviderName::Cascad => (
            "US",
            "USD",
            json!({"name": "John", "last_name": "Smith", "email": "john@clinic.example", "bank_account": account}),
            // Cascad pays USD by card and by its test service, which the triggers drive.
            "test",
        ),
    };
    json!({
        "currency": currency, "country": country, "requested_by": "ops@clinic.example", "provider": provider.as_str(),
        "payout_method": method, "beneficiary": beneficiary,
        "invoices": [
            {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": amount, "advance_percentage": "80"},
            {"invoice_id": "INV-2", "payer": {"tax_id": "99888777000166", "name": "Clinic Two"}, "amount": "500.00", "advance_percentage": "50"}
        ],
        "metadata": {"seller": "42"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_passes_validation() {
        for p in PROVIDERS {
            for t in [Trigger::Success, Trigger::BankRejects, Trigger::Declined] {
                let b = body(p, &account(7, t), "1000.00");
                let input: cashout_core::input::CashoutInput = serde_json::from_value(b).unwrap();
                let coverage = cashout_providers::ProvidersConfig::for_simulator("http://127.0.0.1:9").coverage();
                assert!(input.validate(&coverage).is_ok(), "{p} {t:?}");
            }
        }
        assert_eq!(account(7, Trigger::Reversal), "0000000726");
    }
}
