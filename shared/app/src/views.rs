//! The JSON resources of the merchant API. Amounts are decimal strings; account numbers are
//! masked to their last four characters, card numbers to their first six and last four.

use std::collections::BTreeMap;

use cashout_core::auth::{Actor, OperatorRecord};
use cashout_core::cashout::{Attention, CashoutRequest, Invoice, ProviderAttempt};
use cashout_core::event::StatusEvent;
use cashout_core::health::{CircuitState, ProviderHealth};
use cashout_core::party::Beneficiary;
use cashout_core::ports::{MethodField, PayoutMethod};
use cashout_core::review::ReviewState;
use cashout_core::routing::{PayoutMethodKind, RoutingChoice, RoutingRule};
use cashout_core::status::{CashoutStatus, InvoiceStatus};
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A cashout request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CashoutRequestView {
    /// UUID; also the provider's external reference.
    pub id: String,
    /// One of the eight statuses.
    #[schema(value_type = crate::http::openapi::CashoutStatusSchema)]
    pub status: CashoutStatus,
    /// Why it has this status (`kind`, and the fields of that kind).
    #[schema(value_type = Option<Object>)]
    pub status_reason: Option<cashout_core::event::StatusReason>,
    /// ISO-4217.
    pub currency: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Σ eligible amounts, decimal string.
    pub requested_amount: String,
    /// Invoices in the request.
    pub requested_invoice_count: u32,
    /// Invoices paid (0 until paid).
    pub paid_invoice_count: u32,
    /// Amount paid; null until paid.
    pub paid_amount: Option<String>,
    /// Creation time (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub request_date: OffsetDateTime,
    /// Payment time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub payment_date: Option<OffsetDateTime>,
    /// The provider's payment reference.
    pub payment_reference: Option<String>,
    /// Who asked for it.
    pub requested_by: String,
    /// `d24`, `onspot`, `tupay` or `cascad`.
    pub provider: String,
    /// How the payout reaches the beneficiary: `card`, `bank_transfer`, `swift` or `test`.
    #[schema(value_type = Option<crate::http::openapi::PayoutMethodSchema>)]
    pub payout_method: Option<PayoutMethodKind>,
    /// The provider's service that pays it (Cascad's `card`, `bank_transfer_zar`), when the
    /// provider has services.
    pub payout_service: Option<String>,
    /// The provider's payout id, once it holds the payout.
    pub provider_reference: Option<String>,
    /// The provider's own status words.
    pub provider_status: Option<String>,
    /// The merchant asked for the payout to be created on hold (`hold` at creation).
    pub hold: bool,
    /// The provider holds the payout now (`ON_HOLD`): it is paid once an operator releases it.
    pub on_hold: bool,
    /// The invoices.
    pub invoices: Vec<InvoiceView>,
    /// The beneficiary (account masked).
    pub beneficiary: BeneficiaryView,
    /// The merchant's metadata.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Whether a person must look at it: the provider may hold a payout that cashout could not
    /// settle (see `attention`). Operators clear it with `POST …/resolve-attention`.
    pub needs_attention: bool,
    /// Why it needs a person, oldest first: each note is `{"reason": {"kind": …}, "since": …}`,
    /// `kind` one of `unresolved_dispatch`, `payout_after_end`, `conflicting_payout`,
    /// `provider_needs_attention`, `paid_amount_differs` (with `requested` and the provider's
    /// `paid`), `payout_at_left_provider`, `reconciliation_difference` (with
    /// `reconciliation_id`, `difference` and `detail`).
    #[schema(value_type = Vec<Object>)]
    pub attention: Vec<Attention>,
    /// How its providers were chosen at approval (absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingView>,
    /// Every provider it was sent to, the current one last (empty before its first dispatch).
    #[serde(default)]
    pub provider_attempts: Vec<ProviderAttemptView>,
    /// The approval policy's decision (the rules that fired, the approvals it needs) and the
    /// approvals so far (absent before the review).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    /// The person behind the current status: the operator who approved, rejected or retried
    /// it, the merchant who cancelled it (null when cashout or a provider set it).
    #[serde(default)]
    pub status_actor: Option<ActorView>,
    /// Increases with every change.
    pub version: u64,
    /// Last change (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The merchant whose request it is.
    pub merchant_id: String,
}

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActorView {
    /// `operator` or `merchant`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(operator|merchant)$")]
    pub actor_type: String,
    /// The operator's name or the merchant's id.
    pub id: String,
}

impl From<&Actor> for ActorView {
    fn from(a: &Actor) -> Self {
        match a {
            Actor::Operator { id } => ActorView {
                actor_type: "operator".into(),
                id: id.to_string(),
            },
            Actor::Merchant { id } => ActorView {
                actor_type: "merchant".into(),
                id: id.clone(),
            },
        }
    }
}

/// The review of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// `default` or the merchant's id: whose policy decided.
    pub policy: String,
    /// The policy's version (0: the configured default).
    pub policy_version: u64,
    /// The rules that fired (none: approved at once).
    pub rules_fired: Vec<FiredRuleView>,
    /// Distinct operators who must approve: 0 (approved at once), 1 or 2.
    pub required_approvals: u8,
    /// The approvals so far, in order.
    pub approvals: Vec<ApprovalView>,
}

/// A rule that fired on a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FiredRuleView {
    /// `amount_limit`, `reference_limit`, `daily_velocity`, `new_beneficiary` or `invoice_count`.
    pub rule: String,
    /// Why it fired.
    pub detail: String,
    /// Approvers it asks for (1 or 2).
    pub approvers: u8,
}

/// An operator's approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// The operator's name.
    pub operator: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl From<&ReviewState> for ReviewView {
    fn from(r: &ReviewState) -> Self {
        ReviewView {
            policy: r.decision.policy.key(),
            policy_version: r.decision.policy_version,
            rules_fired: r
                .decision
                .fired
                .iter()
                .map(|f| FiredRuleView {
                    rule: f.rule.clone(),
                    detail: f.detail.clone(),
                    approvers: f.approvers.get(),
                })
                .collect(),
            required_approvals: r.decision.required_approvals,
            approvals: r
                .approvals
                .iter()
                .map(|a| ApprovalView {
                    operator: a.operator.to_string(),
                    at: a.at,
                })
                .collect(),
        }
    }
}

/// A named operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorView {
    /// 1 to 64 lowercase letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// `reviewer` or `admin`.
    #[schema(value_type = String, pattern = "^(reviewer|admin)$")]
    pub role: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked (null: active).
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&OperatorRecord> for OperatorView {
    fn from(o: &OperatorRecord) -> Self {
        OperatorView {
            name: o.name.to_string(),
            role: o.role.to_string(),
            created_at: o.created_at,
            created_by: o.created_by.clone(),
            revoked_at: o.revoked_at,
        }
    }
}

/// An operator with a new API key (shown this once only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorKeyView {
    /// The operator.
    pub operator: OperatorView,
    /// The new key: `Authorization: Bearer <api_key>`. Stored only as a hash; not shown again.
    pub api_key: String,
}

/// Every operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorList {
    /// By name.
    pub data: Vec<OperatorView>,
}

/// An approval policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// `default` or the merchant's id.
    pub scope: String,
    /// The rules, each `{"kind": …, "approvers": 1|2, …}` (see `PolicyRule`).
    #[schema(value_type = Vec<crate::http::api::PolicyRuleSchema>)]
    pub rules: Vec<cashout_core::review::PolicyRule>,
    /// Bumped by every change (0: the configured default, never stored).
    pub version: u64,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Who changed it last.
    pub updated_by: Option<ActorView>,
}

impl From<&cashout_core::review::ApprovalPolicy> for PolicyView {
    fn from(p: &cashout_core::review::ApprovalPolicy) -> Self {
        PolicyView {
            scope: p.scope.key(),
            rules: p.rules.clone(),
            version: p.version,
            updated_at: p.updated_at,
            updated_by: p.updated_by.as_ref().map(ActorView::from),
        }
    }
}

/// Every stored policy, and the configured default where none is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    /// `default` first, then by merchant.
    pub data: Vec<PolicyView>,
}

/// One request of a bulk approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkApproveResult {
    /// The request's id.
    pub id: String,
    /// `approved` (it moved on), `approval_recorded` (it waits for another operator) or
    /// `refused`.
    #[schema(pattern = "^(approved|approval_recorded|refused)$")]
    pub outcome: String,
    /// The request after the approval (absent when refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<CashoutRequestView>,
    /// Why it was refused: the problem the single approval would answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub problem: Option<serde_json::Value>,
}

/// The outcome of a bulk approval, in the order given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkApproveAnswer {
    /// One per distinct id.
    pub data: Vec<BulkApproveResult>,
}

/// An invoice inside a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceView {
    /// The merchant's id.
    pub invoice_id: String,
    /// Who owes it.
    pub payer: PayerView,
    /// Decimal string.
    pub amount: String,
    /// Decimal string, `(0, 100]`.
    pub advance_percentage: String,
    /// amount × percentage / 100, half-even to the minor unit.
    pub eligible_amount: String,
    /// The request's status, or `EXCLUDED`.
    #[schema(value_type = crate::http::openapi::InvoiceStatusSchema)]
    pub status: InvoiceStatus,
}

/// A payer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayerView {
    /// Tax id.
    pub tax_id: String,
    /// Name.
    pub name: String,
}

/// A beneficiary, with the account and card numbers masked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BeneficiaryView {
    pub name: String,
    pub last_name: Option<String>,
    pub document_type: Option<String>,
    /// The document number (a tax id), masked to its last four characters.
    pub document_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub bank_code: Option<String>,
    pub bank_branch: Option<String>,
    /// Masked to the last four characters.
    pub bank_account: Option<String>,
    /// Masked to the first six and last four digits (`512381******0000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<String>,
    pub account_type: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub birthdate: Option<String>,
    /// The merchant's own id for the beneficiary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_fields: BTreeMap<String, String>,
}

impl From<&Beneficiary> for BeneficiaryView {
    fn from(b: &Beneficiary) -> Self {
        BeneficiaryView {
            name: b.name.clone(),
            last_name: b.last_name.clone(),
            document_type: b.document_type.clone(),
            document_id: b.document_id.as_deref().map(cashout_core::party::mask_document),
            email: b.email.clone(),
            phone: b.phone.clone(),
            bank_code: b.bank_code.clone(),
            bank_branch: b.bank_branch.clone(),
            bank_account: b.bank_account.as_ref().map(|a| a.masked()),
            card_number: b.card_number.as_ref().map(|c| c.masked()),
            account_type: b.account_type.clone(),
            address: b.address.clone(),
            city: b.city.clone(),
            postal_code: b.postal_code.clone(),
            birthdate: b.birthdate.map(|d| d.to_string()),
            reference_id: b.reference_id.clone(),
            extra_fields: b.extra_fields.clone(),
        }
    }
}

impl From<&Invoice> for InvoiceView {
    fn from(i: &Invoice) -> Self {
        InvoiceView {
            invoice_id: i.invoice_id.to_string(),
            payer: PayerView {
                tax_id: i.payer.tax_id.clone(),
                name: i.payer.name.clone(),
            },
            amount: i.amount.to_string(),
            advance_percentage: i.advance_percentage.to_string(),
            eligible_amount: i.eligible_amount.to_string(),
            status: i.status,
        }
    }
}

impl From<&CashoutRequest> for CashoutRequestView {
    fn from(r: &CashoutRequest) -> Self {
        CashoutRequestView {
            id: r.id().to_string(),
            status: r.status(),
            status_reason: r.status_reason().cloned(),
            currency: r.currency().to_string(),
            country: r.country().to_string(),
            requested_amount: r.requested_amount().to_string(),
            requested_invoice_count: r.requested_invoice_count(),
            paid_invoice_count: r.paid_invoice_count(),
            paid_amount: r.paid_amount().map(|a| a.to_string()),
            request_date: r.request_date(),
            payment_date: r.payment_date(),
            payment_reference: r.payment_reference().map(str::to_owned),
            requested_by: r.requested_by().to_owned(),
            provider: r.provider().to_string(),
            payout_method: r.payout_method(),
            payout_service: r.payout_service().map(str::to_owned),
            provider_reference: r.provider_reference().map(|p| p.to_string()),
            provider_status: r.provider_status().map(str::to_owned),
            hold: r.hold(),
            on_hold: r.provider().supports_hold() && r.provider_status() == Some("ON_HOLD"),
            invoices: r.invoices().iter().map(InvoiceView::from).collect(),
            beneficiary: r.beneficiary().into(),
            metadata: r.metadata().clone(),
            needs_attention: r.needs_attention(),
            attention: r.attention().to_vec(),
            routing: r.routing().map(RoutingView::from),
            provider_attempts: r.provider_attempts().iter().map(ProviderAttemptView::from).collect(),
            review: r.review_state().map(ReviewView::from),
            status_actor: r.status_actor().map(ActorView::from),
            version: r.version(),
            updated_at: r.updated_at(),
            merchant_id: r.merchant_id().to_string(),
        }
    }
}

/// A page of requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CashoutRequestPage {
    /// Newest first.
    pub data: Vec<CashoutRequestView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a request's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// `evt_…`; the `webhook-id` of its deliveries.
    pub id: String,
    /// `cashout_request.created`, `cashout_request.status_update`, or
    /// `cashout_request.invoice_status_update`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event_type: String,
    /// Per-request, from 1, without gaps.
    pub sequence: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The person behind it: the operator who approved, rejected, retried or excluded, or the
    /// merchant who cancelled (null when cashout or a provider made the change).
    #[serde(default)]
    pub actor: Option<ActorView>,
    /// The webhook body.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<&StatusEvent> for EventView {
    fn from(e: &StatusEvent) -> Self {
        EventView {
            id: e.id.to_string(),
            event_type: e.event_type().to_string(),
            sequence: e.sequence,
            occurred_at: e.occurred_at,
            actor: e.payload.actor().map(ActorView::from),
            data: serde_json::from_str(&e.webhook_body()).unwrap_or_default(),
        }
    }
}

/// A request's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// In sequence order.
    pub data: Vec<EventView>,
}

/// A webhook endpoint (its secret appears only on creation and rotation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    /// `ep_…`.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// Subscribed event types (every type when empty at creation).
    #[schema(value_type = Vec<crate::http::openapi::EventTypeSchema>)]
    pub event_types: Vec<String>,
    /// `whsec_…`: shown only when created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Whether deliveries stopped.
    pub disabled: bool,
    /// Why: `gone` (it answered 410), `manual` (the merchant), `failing` (no success for the
    /// failure window); null while enabled.
    #[schema(value_type = Option<String>, pattern = "^(gone|manual|failing)$")]
    pub disabled_reason: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The merchant's note.
    pub description: Option<String>,
    /// Headers sent with every delivery (names lower-case).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Deliveries per second at most; null: no limit.
    pub rate_limit: Option<u32>,
    /// Whether the events of one request are delivered in sequence.
    pub ordered: bool,
    /// Delivered ÷ attempts (0 to 1) over its latest 100 attempts, claims in flight and skips
    /// left out (null without any).
    #[schema(minimum = 0, maximum = 1)]
    pub success_rate: Option<f64>,
    /// Its latest success among those attempts.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Its first failure since its last success (null while healthy); 5 days of failures
    /// without a success disable it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
}

impl EndpointView {
    /// The view without the secret (and without the health read from its attempts).
    pub fn of(e: &WebhookEndpoint) -> Self {
        EndpointView {
            id: e.id.to_string(),
            url: e.url.clone(),
            event_types: e.event_types.iter().map(|t| t.to_string()).collect(),
            secret: None,
            disabled: e.disabled.is_some(),
            disabled_reason: e.disabled.map(|r| r.as_str().to_owned()),
            created_at: e.created_at,
            description: e.description.clone(),
            headers: e.headers.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            rate_limit: e.rate_limit.map(|r| r.per_second()),
            ordered: e.ordered,
            success_rate: None,
            last_success_at: None,
            failing_since: e.failing_since,
        }
    }

    /// The view with its health.
    pub fn with_health(self, health: &crate::endpoint_health::EndpointHealth) -> Self {
        EndpointView {
            success_rate: health.success_rate,
            last_success_at: health.last_success_at,
            failing_since: health.failing_since,
            ..self
        }
    }

    /// The view with the primary secret (creation and rotation only).
    pub fn with_secret(e: &WebhookEndpoint) -> Self {
        EndpointView {
            secret: e.secrets.first().map(|s| s.secret.expose().to_owned()),
            ..Self::of(e)
        }
    }
}

/// The merchant's endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointList {
    /// Oldest first.
    pub data: Vec<EndpointView>,
}

/// A page of the merchant's events across its requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Newest first.
    pub data: Vec<EventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a recovery queued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoverAnswer {
    /// Events queued for the endpoint, once each.
    pub queued: usize,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// The event.
    pub event_id: String,
    /// From 1.
    pub attempt: u32,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    /// `delivered`, `failed`, `exhausted`, `gone`, `skipped`, or `sending` (in flight).
    pub outcome: String,
    /// HTTP status, if any answer came.
    pub status_code: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Start of the answer, or the transport error.
    pub response_excerpt: Option<String>,
    /// Next attempt, if scheduled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The endpoint it was sent to.
    pub endpoint_id: String,
}

impl From<&DeliveryAttempt> for AttemptView {
    fn from(a: &DeliveryAttempt) -> Self {
        AttemptView {
            event_id: a.event_id.to_string(),
            endpoint_id: a.endpoint_id.to_string(),
            attempt: a.attempt,
            attempted_at: a.attempted_at,
            outcome: a.outcome.as_str().to_owned(),
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response_excerpt: a.response_excerpt.clone(),
            next_attempt_at: a.next_attempt_at,
        }
    }
}

/// A page of attempts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptPage {
    /// Newest first.
    pub data: Vec<AttemptView>,
    /// Next page.
    pub next_cursor: Option<String>,
}

/// A way to pay.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayoutMethodView {
    /// The provider.
    pub provider: String,
    /// The `payout_method` a create request names to be paid this way.
    #[schema(value_type = Option<crate::http::openapi::PayoutMethodSchema>)]
    pub payout_method: Option<PayoutMethodKind>,
    /// Its service, if it has services.
    pub service: Option<String>,
    /// Minimum amount.
    pub amount_min: Option<String>,
    /// Maximum amount.
    pub amount_max: Option<String>,
    /// The beneficiary fields a create request carries for it, by their path in the request
    /// (`beneficiary.card_number`, `beneficiary.extra_fields.swift_code`).
    pub fields: Vec<MethodFieldView>,
}

/// A field a payout method needs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MethodFieldView {
    /// Field key.
    pub key: String,
    /// `string`, `date`…
    #[serde(rename = "type")]
    pub kind: String,
    /// A regular expression the value must match.
    pub regexp: Option<String>,
    /// Whether it is required.
    pub required: bool,
}

impl From<&PayoutMethod> for PayoutMethodView {
    fn from(m: &PayoutMethod) -> Self {
        PayoutMethodView {
            provider: m.provider.to_string(),
            payout_method: m.method,
            service: m.service.clone(),
            amount_min: m.amount_min.clone(),
            amount_max: m.amount_max.clone(),
            fields: m.fields.iter().map(MethodFieldView::from).collect(),
        }
    }
}

impl From<&MethodField> for MethodFieldView {
    fn from(f: &MethodField) -> Self {
        MethodFieldView {
            key: f.key.clone(),
            kind: f.kind.clone(),
            regexp: f.regexp.clone(),
            required: f.required,
        }
    }
}

/// Payout methods.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayoutMethodList {
    /// In routing preference order.
    pub data: Vec<PayoutMethodView>,
}

/// The body of a `cashout_request.created` webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    /// `cashout_request.created`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The request.
    pub cashout_request_id: String,
    /// ISO 4217.
    pub currency_code: String,
    /// Σ eligible amounts, decimal string.
    pub requested_amount: String,
    /// Invoices in the request.
    pub requested_invoice_count: u32,
    /// When it was created (RFC 3339, UTC).
    pub request_date: String,
    /// Always `REQUESTED`.
    #[schema(value_type = crate::http::openapi::CashoutStatusSchema)]
    pub status: String,
    /// `evt_…`, also the `webhook-id` header.
    pub event_id: String,
    /// Per-request, from 1, without gaps: order events by it.
    pub sequence: u64,
    /// When the change was accepted (RFC 3339, UTC).
    pub occurred_at: String,
}

/// The body of a `cashout_request.status_update` webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusUpdateWebhook {
    /// `cashout_request.status_update`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The request.
    pub cashout_request_id: String,
    /// The new status.
    #[schema(value_type = crate::http::openapi::CashoutStatusSchema)]
    pub status: String,
    /// The status before.
    #[schema(value_type = crate::http::openapi::CashoutStatusSchema)]
    pub previous_status: String,
    /// Set once paid (null before, and after a reversal), decimal string.
    pub paid_amount: Option<String>,
    /// Invoices paid (0 until paid).
    pub paid_invoice_count: u32,
    /// When it was paid (RFC 3339, UTC).
    pub payment_date: Option<String>,
    /// The provider's payout reference.
    pub payment_reference: Option<String>,
    /// Why it changed: `kind`, and the fields of that kind.
    #[schema(value_type = Object)]
    pub reason: serde_json::Value,
    /// The provider paying it, from its approval on (null before).
    #[schema(value_type = Option<crate::http::openapi::ProviderSchema>)]
    pub provider: Option<String>,
    /// Every provider attempt so far, the current one last (empty before the first dispatch).
    pub provider_attempts: Vec<ProviderAttemptView>,
    /// The routing rule (`rr_…`) that chose the providers at approval; null when the merchant
    /// pinned the provider, no rule matched, or before approval.
    pub routing_rule_id: Option<String>,
    /// The person behind the change (absent when cashout or a provider made it): the
    /// operator who approved, rejected or retried it, or the merchant who cancelled it.
    #[serde(default)]
    pub actor: Option<ActorView>,
    /// `evt_…`, also the `webhook-id` header.
    pub event_id: String,
    /// Per-request, from 1, without gaps: order events by it.
    pub sequence: u64,
    /// When the change was accepted (RFC 3339, UTC).
    pub occurred_at: String,
}

/// The body of a `cashout_request.provider_failover` webhook: the request moved to its next
/// provider; its status stays `APPROVED`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderFailoverWebhook {
    /// `cashout_request.provider_failover`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The request.
    pub cashout_request_id: String,
    /// The provider it left.
    #[schema(value_type = crate::http::openapi::ProviderSchema)]
    pub from_provider: String,
    /// The provider it goes to.
    #[schema(value_type = crate::http::openapi::ProviderSchema)]
    pub to_provider: String,
    /// Why it left: `kind` (`circuit_open`, `refused`, `declined`, `unavailable`) and its fields.
    #[schema(value_type = Object)]
    pub reason: serde_json::Value,
    /// Every provider attempt so far; the last one is the new provider's.
    pub provider_attempts: Vec<ProviderAttemptView>,
    /// `evt_…`, also the `webhook-id` header.
    pub event_id: String,
    /// Per-request, from 1, without gaps: order events by it.
    pub sequence: u64,
    /// When the change was accepted (RFC 3339, UTC).
    pub occurred_at: String,
}

/// The body of a `webhook_endpoint.test` webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointTestWebhook {
    /// `webhook_endpoint.test`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The endpoint tested.
    pub endpoint_id: String,
    /// `evt_op_…`, also the `webhook-id` header.
    pub event_id: String,
    /// When it was sent (RFC 3339, UTC).
    pub occurred_at: String,
}

/// The body of a `webhook_endpoint.disabled` webhook, sent to the merchant's other enabled
/// endpoints that receive it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointDisabledWebhook {
    /// `webhook_endpoint.disabled`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The endpoint disabled.
    pub endpoint_id: String,
    /// `failing` (no success for the failure window), `gone` (it answered 410) or `manual`.
    pub reason: String,
    /// Its first failure without a success since (`failing`), else when it was disabled.
    pub since: String,
    /// `evt_op_…`, also the `webhook-id` header.
    pub event_id: String,
    /// When it was disabled (RFC 3339, UTC).
    pub occurred_at: String,
}

/// One provider a request was sent to, with our reference there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderAttemptView {
    #[schema(value_type = crate::http::openapi::ProviderSchema)]
    pub provider: String,
    /// Our reference at this provider (its `external_id` / `reference_id`): the request id for
    /// the first attempt, `<id>.<n>` for the n-th.
    pub reference: String,
    /// When the request went to it (RFC 3339, UTC).
    pub started_at: String,
    /// When it left it (absent for the current attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Why it left: `kind` (`circuit_open`, `refused`, `declined`, `unavailable`) and its fields;
    /// absent for the current attempt, whose outcome is the request's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub failover: Option<serde_json::Value>,
    /// When our reference was looked up at this provider once more after leaving it (a late
    /// payout there is flagged for a person); absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
}

/// How a request's providers were chosen at approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoutingView {
    /// `pinned` (the merchant named the provider), `rule` or `default`.
    pub source: String,
    /// The rule that chose them (`rr_…`), when `source` is `rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The providers in the order they are tried.
    #[schema(value_type = Vec<crate::http::openapi::ProviderSchema>)]
    pub providers: Vec<String>,
    /// Whether a decline of the beneficiary's data moves the request to the next provider.
    pub failover_on_decline: bool,
}

/// The body of a `cashout_request.invoice_status_update` webhook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceStatusUpdateWebhook {
    /// `cashout_request.invoice_status_update`.
    #[schema(value_type = crate::http::openapi::EventTypeSchema)]
    pub event: String,
    /// The request.
    pub cashout_request_id: String,
    /// The invoice.
    pub invoice_id: String,
    /// Its new status.
    #[schema(value_type = crate::http::openapi::InvoiceStatusSchema)]
    pub status: String,
    /// Its status before.
    #[schema(value_type = crate::http::openapi::InvoiceStatusSchema)]
    pub previous_status: String,
    /// The operator who excluded it.
    #[serde(default)]
    pub actor: Option<ActorView>,
    /// `evt_…`, also the `webhook-id` header.
    pub event_id: String,
    /// Per-request, from 1, without gaps: order events by it.
    pub sequence: u64,
    /// When the change was accepted (RFC 3339, UTC).
    pub occurred_at: String,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<&ProviderAttempt> for ProviderAttemptView {
    fn from(a: &ProviderAttempt) -> Self {
        ProviderAttemptView {
            provider: a.provider.to_string(),
            reference: a.reference.to_string(),
            started_at: rfc3339(a.started_at),
            ended_at: a.ended_at.map(rfc3339),
            failover: a.failover.as_ref().and_then(|f| serde_json::to_value(f).ok()),
            checked_at: a.checked_at.map(rfc3339),
        }
    }
}

impl From<&RoutingChoice> for RoutingView {
    fn from(c: &RoutingChoice) -> Self {
        RoutingView {
            source: serde_json::to_value(c.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            rule_id: c.rule_id.map(|id| id.to_string()),
            providers: c.routes.iter().map(|r| r.provider.to_string()).collect(),
            failover_on_decline: c.failover_on_decline,
        }
    }
}

/// Which requests a routing rule takes; an empty list matches anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RuleMatchView {
    /// Beneficiary countries (ISO 3166-1 alpha-2).
    #[serde(default)]
    #[schema(value_type = Vec<crate::http::openapi::CountrySchema>)]
    pub countries: Vec<String>,
    /// Payout currencies; required with an amount bound.
    #[serde(default)]
    #[schema(value_type = Vec<crate::http::openapi::CurrencySchema>)]
    pub currencies: Vec<String>,
    /// Smallest payable amount taken (inclusive, exact decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::http::openapi::DecimalSchema>)]
    pub amount_min: Option<String>,
    /// Largest payable amount taken (inclusive, exact decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::http::openapi::DecimalSchema>)]
    pub amount_max: Option<String>,
    /// Payout methods.
    #[serde(default)]
    #[schema(value_type = Vec<crate::http::openapi::PayoutMethodSchema>)]
    pub payout_methods: Vec<String>,
}

/// One provider of a rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuleProviderView {
    #[schema(value_type = crate::http::openapi::ProviderSchema)]
    pub provider: String,
    /// Its share of the requests that go to it first; on every provider of the rule or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 10000)]
    pub weight: Option<u32>,
}

/// A routing rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoutingRuleView {
    /// `rr_…`.
    pub id: String,
    /// The merchant it applies to; absent: a default rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// Lower first, among the merchant's own rules, then among the default ones.
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which requests it takes.
    #[serde(rename = "match")]
    pub conditions: RuleMatchView,
    /// The providers in the order they are tried.
    pub providers: Vec<RuleProviderView>,
    /// Whether a decline of the beneficiary's data moves a request on to the next provider.
    pub failover_on_decline: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// +1 on every change; `PUT` with `expected_version` replaces only that version.
    pub version: u64,
}

impl From<&RoutingRule> for RoutingRuleView {
    fn from(r: &RoutingRule) -> Self {
        let m = &r.spec.conditions;
        RoutingRuleView {
            id: r.id.to_string(),
            merchant_id: r.spec.merchant_id.as_ref().map(ToString::to_string),
            priority: r.spec.priority,
            description: r.spec.description.clone(),
            conditions: RuleMatchView {
                countries: m.countries.iter().map(ToString::to_string).collect(),
                currencies: m.currencies.iter().map(ToString::to_string).collect(),
                amount_min: m.amount_min.map(|d| d.to_string()),
                amount_max: m.amount_max.map(|d| d.to_string()),
                payout_methods: m.payout_methods.iter().map(ToString::to_string).collect(),
            },
            providers: r
                .spec
                .providers
                .iter()
                .map(|p| RuleProviderView {
                    provider: p.provider.to_string(),
                    weight: p.weight,
                })
                .collect(),
            failover_on_decline: r.spec.failover_on_decline,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            version: r.version,
        }
    }
}

/// Every routing rule, in the order they are tried.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoutingRuleList {
    pub data: Vec<RoutingRuleView>,
}

/// A provider's counts over the breaker's current window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthWindowView {
    /// When the window started (RFC 3339, UTC).
    pub started_at: String,
    /// Its length in seconds.
    pub seconds: u64,
    pub successes: u64,
    /// Declines of the payout's data (the provider working).
    pub declines: u64,
    /// 5xx, refusals, unreadable answers, configuration refusals.
    pub errors: u64,
    /// Calls whose outcome was unknown.
    pub timeouts: u64,
    /// Mean latency of the calls counted, in milliseconds.
    pub latency_ms_mean: Option<u64>,
    /// The slowest, in milliseconds.
    pub latency_ms_max: u64,
}

/// A provider's health and circuit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderHealthView {
    #[schema(value_type = crate::http::openapi::ProviderSchema)]
    pub provider: String,
    /// `closed` (dispatches go), `open` (none until `open_until`) or `half_open` (one probe
    /// at a time).
    pub state: String,
    /// When the circuit last changed state (RFC 3339, UTC).
    pub since: String,
    /// Open: when a probe may go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// How many times the circuit opened.
    pub times_opened: u64,
    /// When a call last came back (RFC 3339, UTC).
    pub last_call_at: Option<String>,
    pub window: HealthWindowView,
}

impl ProviderHealthView {
    /// The view of `h` at `now`, with the breaker's window length.
    pub fn new(h: &ProviderHealth, now: OffsetDateTime, window: std::time::Duration) -> Self {
        let circuit = h.circuit_at(now);
        ProviderHealthView {
            provider: h.provider.to_string(),
            state: circuit.name().to_owned(),
            since: rfc3339(h.changed_at),
            open_until: match circuit {
                CircuitState::Open { until } => Some(rfc3339(until)),
                CircuitState::Closed | CircuitState::HalfOpen { .. } => None,
            },
            consecutive_failures: h.consecutive_failures,
            times_opened: h.times_opened,
            last_call_at: h.last_call_at.map(rfc3339),
            window: HealthWindowView {
                started_at: rfc3339(h.window_start),
                seconds: window.as_secs(),
                successes: h.window.successes,
                declines: h.window.declines,
                errors: h.window.errors,
                timeouts: h.window.timeouts,
                latency_ms_mean: h.window.latency_ms_mean(),
                latency_ms_max: h.window.latency_ms_max,
            },
        }
    }
}

/// Every provider's health.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderHealthList {
    pub data: Vec<ProviderHealthView>,
}

/// One line of a statement: a request as it stands now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementLineView {
    /// The request (UUID).
    pub cashout_request_id: String,
    pub merchant_id: String,
    /// Its current provider.
    pub provider: String,
    /// The provider's payout id, once known.
    pub provider_payout_id: Option<String>,
    /// Our reference at the provider (`<id>`, `<id>.<n>` after a failover).
    pub reference: String,
    /// Decimal string.
    pub requested_amount: String,
    /// Decimal string; null until paid, and after a reversal.
    pub paid_amount: Option<String>,
    /// ISO 4217.
    pub currency: String,
    #[schema(value_type = crate::http::openapi::CashoutStatusSchema)]
    pub status: CashoutStatus,
    /// RFC 3339, UTC.
    pub request_date: String,
    /// RFC 3339, UTC; null until paid.
    pub payment_date: Option<String>,
    /// Decimal string: the amount paid and then returned by the bank (a reversal); null if none.
    pub reversed_amount: Option<String>,
    /// RFC 3339, UTC: its last change.
    pub updated_at: String,
}

impl From<&cashout_core::reconcile::StatementLine> for StatementLineView {
    fn from(l: &cashout_core::reconcile::StatementLine) -> Self {
        StatementLineView {
            cashout_request_id: l.cashout_request_id.to_string(),
            merchant_id: l.merchant_id.to_string(),
            provider: l.provider.to_string(),
            provider_payout_id: l.provider_payout_id.as_ref().map(ToString::to_string),
            reference: l.reference.to_string(),
            requested_amount: l.requested_amount.to_decimal_string(),
            paid_amount: l.paid_amount.map(|a| a.to_decimal_string()),
            currency: l.currency.to_string(),
            status: l.status,
            request_date: rfc3339(l.request_date),
            payment_date: l.payment_date.map(rfc3339),
            reversed_amount: l.reversed_amount.map(|a| a.to_decimal_string()),
            updated_at: rfc3339(l.updated_at),
        }
    }
}

/// The totals of one status in one currency (decimal strings).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusTotalsView {
    pub count: u64,
    pub requested: String,
    pub paid: String,
}

/// The totals of one currency (decimal strings, exact).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CurrencyTotalsView {
    /// Lines in this currency.
    pub count: u64,
    /// Σ requested amounts.
    pub requested: String,
    /// Σ paid amounts of the requests PAID now.
    pub paid: String,
    /// Σ amounts paid and then reversed.
    pub reversed: String,
    /// Σ requested amounts of the requests not final yet.
    pub pending: String,
    /// Per status.
    pub by_status: BTreeMap<String, StatusTotalsView>,
}

/// A statement's totals, by currency.
pub fn totals_view(t: &cashout_core::reconcile::StatementTotals) -> BTreeMap<String, CurrencyTotalsView> {
    t.0.iter()
        .map(|(currency, c)| {
            let minor = currency.minor_units();
            let d = |v: rust_decimal::Decimal| {
                let mut v = v;
                v.rescale(minor);
                v.to_string()
            };
            (
                currency.to_string(),
                CurrencyTotalsView {
                    count: c.count,
                    requested: d(c.requested),
                    paid: d(c.paid),
                    reversed: d(c.reversed),
                    pending: d(c.pending),
                    by_status: c
                        .by_status
                        .iter()
                        .map(|(s, t)| {
                            (
                                s.to_string(),
                                StatusTotalsView {
                                    count: t.count,
                                    requested: d(t.requested),
                                    paid: d(t.paid),
                                },
                            )
                        })
                        .collect(),
                },
            )
        })
        .collect()
}

/// A statement: every line of the period, then the totals. The body is streamed: `lines` come
/// page by page as they are read, `totals` last.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementView {
    /// First day (YYYY-MM-DD, UTC).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// One per request that changed in the period, as it stands now.
    pub lines: Vec<StatementLineView>,
    /// Per currency (ISO 4217 keys): sums in exact decimals, and per status.
    pub totals: BTreeMap<String, CurrencyTotalsView>,
}

/// One page of a statement (`limit` given): lines only; totals come with the whole statement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementPageView {
    pub lines: Vec<StatementLineView>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// What `GET /v1/statements` answers in JSON: the whole statement, or (with `limit`/`cursor`)
/// one page of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StatementAnswer {
    /// Without `limit` and `cursor`.
    Whole(StatementView),
    /// With `limit` or `cursor`.
    Page(StatementPageView),
}

/// A reconciliation run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationView {
    /// `recon_…`.
    pub id: String,
    /// First day (YYYY-MM-DD, UTC).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// `running`, `completed` or `failed`.
    #[schema(value_type = String, example = "completed")]
    pub status: cashout_core::reconcile::ReconciliationStatus,
    /// `schedule` or `operator`.
    #[schema(value_type = String, example = "operator")]
    pub trigger: cashout_core::reconcile::ReconciliationTrigger,
    /// Requests compared.
    pub requests_checked: u64,
    /// Provider calls made (lookups and list pages).
    pub provider_calls: u64,
    /// Provider payouts read from listings.
    pub provider_payouts_listed: u64,
    /// Provider attempts the provider refused to look up (logged).
    pub lookups_failed: u64,
    /// Differences found.
    pub difference_count: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// RFC 3339, UTC, once completed.
    pub completed_at: Option<String>,
    /// A page of the differences, in a stable order.
    pub differences: Vec<DifferenceView>,
    /// Pass as `cursor` for the next page of differences; null on the last.
    pub next_cursor: Option<String>,
}

impl ReconciliationView {
    /// The run with one page of its differences.
    pub fn new(
        r: &cashout_core::reconcile::Reconciliation,
        differences: &[cashout_core::reconcile::Difference],
        next_cursor: Option<String>,
    ) -> Self {
        ReconciliationView {
            id: r.id.to_string(),
            from: r.period.from.to_string(),
            to: r.period.to.to_string(),
            status: r.status,
            trigger: r.trigger,
            requests_checked: r.requests_checked,
            provider_calls: r.provider_calls,
            provider_payouts_listed: r.provider_payouts_listed,
            lookups_failed: r.lookups_failed,
            difference_count: r.differences,
            error: r.error.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            completed_at: r.completed_at.map(rfc3339),
            differences: differences.iter().map(DifferenceView::from).collect(),
            next_cursor,
        }
    }
}

/// One difference, with both sides.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DifferenceView {
    /// `status_mismatch`, `unknown_provider_payout`, `amount_mismatch`, `currency_mismatch`,
    /// `missing_at_provider` or `status_lag`.
    #[schema(value_type = String, example = "status_mismatch")]
    pub kind: cashout_core::reconcile::DifferenceKind,
    /// The request concerned, if there is one.
    pub cashout_request_id: Option<String>,
    pub provider: String,
    /// The reference compared.
    pub reference: String,
    /// Our side: `status`, `amount`, `currency`, `paid_amount`, `provider_payout_id`,
    /// `updated_at` (null for a payout we do not know).
    #[schema(value_type = Option<Object>)]
    pub ours: Option<cashout_core::reconcile::OurSide>,
    /// The provider's side: `payout_id`, `status` (its words), `implies` (our status it means),
    /// `amount`, `currency`, `updated_at` (null when it holds nothing).
    #[schema(value_type = Option<Object>)]
    pub theirs: Option<cashout_core::reconcile::TheirSide>,
    /// What differs, in words.
    pub detail: String,
    /// Whether the provider's status was recorded through the normal status path (a reversal
    /// we missed, a final status we lagged behind), with its event.
    pub applied: bool,
    /// RFC 3339, UTC.
    pub found_at: String,
}

impl From<&cashout_core::reconcile::Difference> for DifferenceView {
    fn from(d: &cashout_core::reconcile::Difference) -> Self {
        DifferenceView {
            kind: d.kind,
            cashout_request_id: d.cashout_request_id.map(|i| i.to_string()),
            provider: d.provider.to_string(),
            reference: d.reference.clone(),
            ours: d.ours.clone(),
            theirs: d.theirs.clone(),
            detail: d.detail.clone(),
            applied: d.applied,
            found_at: rfc3339(d.found_at),
        }
    }
}
