//! Requests, events, endpoints, attempts, routing rules and provider health to store, built
//! through the domain's own operations.

use std::sync::Arc;

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::health::{BreakerConfig, CallOutcome, ProviderHealth};
use cashout_core::ids::{CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, RoutingRuleId};
use cashout_core::input::CashoutInput;
use cashout_core::ports::{Clock, IdGenerator, IdempotencyRecord, ManualClock, SequentialIds};
use cashout_core::provider::ProviderName;
use cashout_core::routing::RoutingRule;
use cashout_core::signing::WebhookSecret;
use cashout_core::webhook::{AttemptOutcome, DeliveryAttempt, EndpointSecret, WebhookEndpoint};
use serde_json::json;
use time::OffsetDateTime;

/// 2026-11-23T12:00:00Z.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_435_200).unwrap()
}

pub fn merchant(name: &str) -> MerchantId {
    MerchantId::new(name).unwrap()
}

pub fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

/// Builds domain objects with the suite's clock and deterministic ids.
pub struct Fixtures {
    pub clock: Arc<ManualClock>,
    ids: SequentialIds,
}

impl Fixtures {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        Fixtures {
            clock,
            ids: SequentialIds::default(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn request_id(&self) -> CashoutRequestId {
        CashoutRequestId::from_uuid(self.ids.uuid_v7(self.now()))
    }

    pub fn endpoint_id(&self) -> EndpointId {
        EndpointId::from_uuid(self.ids.uuid_v7(self.now()))
    }

    /// A D24 BRL request of `invoices` invoices of 100.00 at 80 %.
    pub fn create(&self, merchant_id: &MerchantId, invoices: usize) -> Change {
        self.create_with(merchant_id, invoices, "P", 8)
    }

    /// A request whose payer names are `payer_name` and whose invoice ids are `id_len` long.
    /// Its payer tax id (32 characters) is its own id, so that no two requests share an invoice.
    pub fn create_with(&self, merchant_id: &MerchantId, invoices: usize, payer_name: &str, id_len: usize) -> Change {
        let id = self.request_id();
        let tax_id = id.as_uuid().simple().to_string();
        let invoices: Vec<_> = (0..invoices)
            .map(|i| (tax_id.clone(), format!("{i:0>width$}", width = id_len)))
            .collect();
        self.create_of(id, merchant_id, &invoices, payer_name)
    }

    /// A request advancing exactly these invoices (payer tax id, invoice id).
    pub fn create_invoices(&self, merchant_id: &MerchantId, invoices: &[(&str, &str)]) -> Change {
        let invoices: Vec<_> = invoices
            .iter()
            .map(|(t, i)| ((*t).to_owned(), (*i).to_owned()))
            .collect();
        self.create_of(self.request_id(), merchant_id, &invoices, "P")
    }

    fn create_of(
        &self,
        id: CashoutRequestId,
        merchant_id: &MerchantId,
        invoices: &[(String, String)],
        payer_name: &str,
    ) -> Change {
        let invoices: Vec<_> = invoices
            .iter()
            .map(|(tax_id, invoice_id)| {
                json!({"invoice_id": invoice_id, "payer": {"tax_id": tax_id, "name": payer_name},
                       "amount": "100.00", "advance_percentage": "80"})
            })
            .collect();
        let body = json!({
            "currency": "BRL", "country": "BR", "requested_by": "ana@example.com", "provider": "d24",
            "beneficiary": {"name": "Ana", "document_id": "12345678909", "bank_account": "0001234567"},
            "invoices": invoices,
        });
        let draft = serde_json::from_value::<CashoutInput>(body)
            .unwrap()
            .validate(&cashout_core::routing::Coverage::default())
            .unwrap();
        CashoutRequest::create(id, merchant_id.clone(), draft, self.now())
    }

    /// The in-progress idempotency record of a creation.
    pub fn idempotency(&self, change: &Change, k: &str, body_hash: &str) -> IdempotencyRecord {
        IdempotencyRecord::begin(
            change.request.merchant_id().clone(),
            key(k),
            body_hash.to_owned(),
            change.request.id(),
            self.now(),
        )
    }

    pub fn endpoint(&self, merchant_id: &MerchantId, url: &str) -> WebhookEndpoint {
        WebhookEndpoint {
            id: self.endpoint_id(),
            merchant_id: merchant_id.clone(),
            url: url.to_owned(),
            event_types: vec![],
            secrets: vec![EndpointSecret {
                secret: WebhookSecret::from_key_bytes(&self.ids.secret_bytes()),
                created_at: self.now(),
                expires_at: None,
            }],
            disabled: None,
            created_at: self.now(),
            version: 1,
            description: None,
            headers: Default::default(),
            rate_limit: None,
            ordered: false,
            failing_since: None,
        }
    }

    pub fn attempt(&self, endpoint: &WebhookEndpoint, event_id: EventId, attempt: u32) -> DeliveryAttempt {
        DeliveryAttempt {
            event_id,
            endpoint_id: endpoint.id,
            merchant_id: endpoint.merchant_id.clone(),
            attempt,
            attempted_at: self.now(),
            outcome: AttemptOutcome::Failed,
            status_code: Some(500),
            duration_ms: 12,
            response_excerpt: Some("oops".into()),
            next_attempt_at: Some(self.now() + time::Duration::seconds(5)),
        }
    }

    /// A rule (version 1) sending Brazilian bank transfers of 10 to 5,000 BRL to D24 for 70 %
    /// and Onspot for 30 %: `merchant_id`'s, or a default rule.
    pub fn rule(&self, merchant_id: Option<&MerchantId>, priority: u32) -> RoutingRule {
        let spec = serde_json::from_value(json!({
            "merchant_id": merchant_id, "priority": priority, "description": "Brazil: D24 first",
            "match": {"countries": ["BR"], "currencies": ["BRL"], "amount_min": "10.00",
                      "amount_max": "5000.00", "payout_methods": ["bank_transfer"]},
            "providers": [{"provider": "d24", "weight": 70}, {"provider": "onspot", "weight": 30}],
            "failover_on_decline": true,
        }))
        .unwrap();
        RoutingRule {
            id: RoutingRuleId::from_uuid(self.ids.uuid_v7(self.now())),
            spec,
            created_at: self.now(),
            updated_at: self.now(),
            version: 1,
        }
    }

    /// `rule` as an operator's next change leaves it: another priority, the next version.
    pub fn reprioritised(&self, rule: &RoutingRule, priority: u32) -> RoutingRule {
        let mut next = rule.clone();
        next.spec.priority = priority;
        next.updated_at = self.now();
        next.version += 1;
        next
    }

    /// A provider's first stored health (version 1): one successful call.
    pub fn health(&self, provider: ProviderName) -> ProviderHealth {
        self.recorded(&ProviderHealth::new(provider, self.now()), CallOutcome::Success)
    }

    /// `health` after one more call, at the next version.
    pub fn recorded(&self, health: &ProviderHealth, outcome: CallOutcome) -> ProviderHealth {
        let latency = std::time::Duration::from_millis(180);
        let (mut next, _) = health.record(outcome, latency, self.now(), &BreakerConfig::default());
        next.version = health.version + 1;
        next
    }
}
