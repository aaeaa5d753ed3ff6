//! Creating a cashout request: authenticate (done by the caller) → parse → idempotency →
//! create and review in one step → one write of the request (`APPROVED` or `UNDER_REVIEW`), its
//! two events (`cashout_request.created`, the review's status update), its invoice claims and
//! the idempotency record completed with the answer → dispatch an approved request.
//!
//! One write per create: the review needs nothing but the request and the policy, so its
//! outcome, and therefore the answer, is known before anything is written. A replay is answered
//! from the record. Records left in progress by an earlier version (which wrote the request, then
//! reviewed, then completed the record) are still honoured: another attempt takes one over after
//! [`IdempotencyRecord::IN_PROGRESS_EXPIRY`] and resumes the same request (the id is in the
//! record), so no retry ever creates a second request.
//!
//! An invoice (merchant, payer tax id, invoice id) is advanced by one request at a time: the
//! request claims its invoices in the same write, and a create naming an invoice held by a
//! request that has not let it go is refused with `409 invoice_in_use`, naming the holder
//! ([`cashout_core::claim`]).

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::claim::InvoiceClaim;
use cashout_core::ids::{CashoutRequestId, IdempotencyKey, MerchantId};
use cashout_core::input::CashoutInput;
use cashout_core::ports::{CreateOutcome, IdempotencyRecord, IdempotencyState, Store, StoredResponse, TaskQueue};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::AppError;
use crate::views::CashoutRequestView;

/// What a create call did. Either way the caller gets [`Created::answer`], the answer stored
/// with the idempotency record, which every later call with the same key and body gets too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new request was written (or one a crashed create left in progress was finished).
    New {
        /// The request as written: `APPROVED` or `UNDER_REVIEW`.
        request: Box<CashoutRequest>,
        /// Its answer, as stored.
        answer: StoredResponse,
    },
    /// The same key and body came before: the first answer, as it was stored.
    Replayed {
        /// The request the first call created.
        id: CashoutRequestId,
        /// Its answer, as stored.
        answer: StoredResponse,
    },
}

impl Created {
    /// The request's id.
    pub fn id(&self) -> CashoutRequestId {
        match self {
            Created::New { request, .. } => request.id(),
            Created::Replayed { id, .. } => *id,
        }
    }

    /// The answer (the request's view, as JSON, with its status code).
    pub fn answer(&self) -> &StoredResponse {
        match self {
            Created::New { answer, .. } | Created::Replayed { answer, .. } => answer,
        }
    }

    /// The answer, owned.
    pub fn into_answer(self) -> StoredResponse {
        match self {
            Created::New { answer, .. } | Created::Replayed { answer, .. } => answer,
        }
    }

    /// Whether this replays an earlier answer.
    pub fn replayed(&self) -> bool {
        matches!(self, Created::Replayed { .. })
    }
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Creates a cashout request for `merchant` from a JSON `body`, idempotently per
    /// `Idempotency-Key`.
    #[tracing::instrument(skip(self, body), fields(merchant_id = %merchant, cashout_request_id))]
    pub async fn create_cashout(
        &self,
        merchant: &MerchantId,
        idempotency_key: Option<&str>,
        body: &[u8],
    ) -> Result<Created, AppError> {
        self.admit()?;
        let key = idempotency_key.ok_or(AppError::BadHeader("the Idempotency-Key header is required"))?;
        let key = IdempotencyKey::new(key).map_err(|_| {
            AppError::BadHeader("the Idempotency-Key header must be 1 to 255 printable ASCII characters")
        })?;
        let value: serde_json::Value = serde_json::from_slice(body)?;
        let body_hash = canonical_hash(&value);
        let input: CashoutInput = serde_json::from_slice(body)?;
        let draft = input.validate(&self.config.coverage).map_err(AppError::Validation)?;

        let now = self.now();
        let id = CashoutRequestId::from_uuid(self.ids.uuid_v7(now));
        let rules = self.routing_rules().await?;
        let change = self.created_and_reviewed(id, merchant, draft, &rules, now).await?;
        let answer = answer_for(&change.request)?;
        let record = IdempotencyRecord::completed(
            merchant.clone(),
            key.clone(),
            body_hash.clone(),
            id,
            answer.clone(),
            now,
        );
        match self.create_claiming(&change, &record).await? {
            CreateOutcome::InvoiceHeld(claim) => {
                tracing::info!(holder = %claim.holder, "a create names an invoice another request holds");
                Err(AppError::InvoiceInUse {
                    invoice_id: claim.key.invoice_id,
                    payer_tax_id: claim.key.payer_tax_id,
                    holder: claim.holder,
                })
            }
            CreateOutcome::Created => {
                tracing::Span::current().record("cashout_request_id", tracing::field::display(id));
                tracing::info!(amount = %change.request.requested_amount(), currency = %change.request.currency(), status = %change.request.status(), "cashout request created");
                self.committed(&change).await;
                self.follow_up(&change.request).await;
                Ok(Created::New {
                    request: Box::new(change.request),
                    answer,
                })
            }
            CreateOutcome::Existing(existing) => {
                if existing.body_hash != body_hash {
                    return Err(AppError::IdempotencyMismatch);
                }
                tracing::Span::current().record(
                    "cashout_request_id",
                    tracing::field::display(existing.cashout_request_id),
                );
                self.answer_again(merchant, &key, existing, now).await
            }
        }
    }

    /// A key and body seen before: the stored answer; a create still in progress elsewhere is
    /// refused until its record expires, then taken over and finished.
    async fn answer_again(
        &self,
        merchant: &MerchantId,
        key: &IdempotencyKey,
        existing: IdempotencyRecord,
        now: time::OffsetDateTime,
    ) -> Result<Created, AppError> {
        match &existing.state {
            IdempotencyState::Completed { response } => Ok(Created::Replayed {
                id: existing.cashout_request_id,
                answer: response.clone(),
            }),
            IdempotencyState::InProgress { until } if *until > now => Err(AppError::IdempotencyInProgress),
            IdempotencyState::InProgress { .. } => {
                let new_until = now + IdempotencyRecord::IN_PROGRESS_EXPIRY;
                if !self.store.reclaim_idempotency(&existing, new_until).await? {
                    return Err(AppError::IdempotencyInProgress);
                }
                tracing::warn!("resuming a create left in progress by a crashed writer");
                let request = self
                    .store
                    .get_request(existing.cashout_request_id)
                    .await?
                    .ok_or_else(|| {
                        AppError::Store(cashout_core::ports::StoreError::corrupt(
                            "an idempotency record points to a missing request",
                            format!("{}", existing.cashout_request_id),
                        ))
                    })?;
                // Only a create left in progress by an earlier version (which reviewed after
                // writing) gets here.
                let request = self.finish_review(request).await?;
                let answer = answer_for(&request)?;
                self.store.complete_idempotency(merchant, key, &answer).await?;
                Ok(Created::New {
                    request: Box::new(request),
                    answer,
                })
            }
        }
    }
}

/// The answer to a create: `201` with the request's view.
fn answer_for(request: &CashoutRequest) -> Result<StoredResponse, AppError> {
    let body = serde_json::to_string(&CashoutRequestView::from(request))
        .map_err(|e| AppError::Internal(format!("the created request's view: {e}")))?;
    Ok(StoredResponse { status: 201, body })
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// The new request, reviewed in the same step: one write holds `REQUESTED`, the review's
    /// outcome (`APPROVED` with its providers chosen from `rules`, or `UNDER_REVIEW`) and both
    /// events. The merchant's approval policy decides; what it needs of the store (the day's
    /// usage, whether the account was paid before) is read first.
    async fn created_and_reviewed(
        &self,
        id: CashoutRequestId,
        merchant: &MerchantId,
        draft: cashout_core::input::CashoutDraft,
        rules: &[cashout_core::routing::RoutingRule],
        now: time::OffsetDateTime,
    ) -> Result<Change, AppError> {
        let created = CashoutRequest::create(id, merchant.clone(), draft, now)
            .with_next_check(Some(crate::schedule::later(now, self.config.review_grace)));
        let routing = self.choose_routes(rules, &created.request);
        let policy = self.policy_for(merchant).await?;
        let facts = self.review_facts(&policy, &created.request).await?;
        let review = created.request.review(&policy, &facts, routing, now)?;
        created
            .then(self.scheduled(review, now))
            .ok_or_else(|| AppError::Internal("the review of a new request did not follow its creation".into()))
    }

    /// Writes the new request with claims on its invoices. A claim held by a request that lets
    /// the invoice go (ended CANCELLED or REJECTED, or excluded it; or, never created, a crashed
    /// create's leftover) is taken over; the first one held for real comes back as
    /// [`CreateOutcome::InvoiceHeld`].
    async fn create_claiming(&self, change: &Change, record: &IdempotencyRecord) -> Result<CreateOutcome, AppError> {
        let mut released: Vec<InvoiceClaim> = Vec::new();
        // Each round frees one more claim (or ends): bounded by the invoices, plus one round
        // for each claim that moved to another holder meanwhile.
        let rounds = change.request.invoices().len().saturating_mul(2).saturating_add(2);
        for _ in 0..rounds {
            let claim = match self.store.create_request(change, record, &released).await? {
                CreateOutcome::InvoiceHeld(claim) => claim,
                done => return Ok(done),
            };
            let free = match self.store.get_request(claim.holder).await? {
                Some(holder) => holder.releases(&claim.key),
                None => claim.is_orphan_at(self.now()),
            };
            if !free {
                return Ok(CreateOutcome::InvoiceHeld(claim));
            }
            released.retain(|c| c.key != claim.key);
            released.push(claim);
        }
        Err(AppError::Contended)
    }
}

/// Hex SHA-256 of the body's canonical JSON (object keys sorted at every level), so that the
/// same request sent with other whitespace or key order is the same request.
pub(crate) fn canonical_hash(value: &serde_json::Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_hash;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str("{ \"b\" : {\"x\":\"s\", \"y\":[1, 2]}, \"a\": 1 }").unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        let c: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":{"y":[2,1],"x":"s"}}"#).unwrap();
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }
}
