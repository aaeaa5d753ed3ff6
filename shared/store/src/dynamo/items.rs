//! Item shapes of the single table: keys, index attributes, and the conversions between items
//! and domain values. Attribute names are short (they count towards item size and so towards
//! capacity units). `docs/store.md` has the same table in prose.

use std::collections::HashMap;
use std::io::Read;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use cashout_core::cashout::CashoutRequest;
use cashout_core::claim::{InvoiceClaim, InvoiceKey};
use cashout_core::event::StatusEvent;
use cashout_core::health::ProviderHealth;
use cashout_core::ids::{
    CashoutRequestId, EndpointId, EventId, IdempotencyKey, MerchantId, ProviderPayoutId, ReconciliationId,
    RoutingRuleId,
};
use cashout_core::ports::{IdempotencyRecord, IdempotencyState, StoreError, StoredResponse, WorkList};
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Difference, Reconciliation};
use cashout_core::routing::RoutingRule;
use cashout_core::status::CashoutStatus;
use cashout_core::webhook::{DeliveryAttempt, WebhookEndpoint};
use flate2::read::DeflateDecoder;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::codec::{
    AttemptPosition, DeadLetterPosition, WorkPosition, from_json, from_ns, to_epoch_seconds_ceil, to_json, to_ns,
};
use crate::work::{is_dead_letter, status_list};

pub(crate) type Item = HashMap<String, AttributeValue>;

// Attribute names.
pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
pub(crate) const GSI2PK: &str = "gsi2pk";
pub(crate) const GSI2SK: &str = "gsi2sk";
pub(crate) const DUE_PK: &str = "due_pk";
pub(crate) const DUE_AT: &str = "due_at";
pub(crate) const OUTBOX_PK: &str = "outbox_pk";
pub(crate) const OUTBOX_AT: &str = "outbox_at";
pub(crate) const DAY_PK: &str = "day_pk";
pub(crate) const DAY_SK: &str = "day_sk";
pub(crate) const WORK_PK: &str = "work_pk";
pub(crate) const WORK_SK: &str = "work_sk";
pub(crate) const ATTENTION_PK: &str = "attn_pk";
pub(crate) const ATTENTION_SK: &str = "attn_sk";
pub(crate) const DEAD_PK: &str = "dead_pk";
pub(crate) const DEAD_SK: &str = "dead_sk";
pub(crate) const VERSION: &str = "v";
pub(crate) const BODY: &str = "body";
/// A body deflated without a dictionary (items written before `bodyd`; still read).
pub(crate) const BODY_DEFLATED: &str = "bodyz";
/// A body deflated against a preset dictionary: one byte naming the dictionary, then the raw
/// deflate stream.
pub(crate) const BODY_DICTIONARY: &str = "bodyd";
pub(crate) const TTL: &str = "ttl";
/// The token of the last single-put write of a request (see `apply_change`).
pub(crate) const WRITE_TOKEN: &str = "w";

// Index names (as in infra/template.yaml).
pub(crate) const BY_OWNER: &str = "by-owner";
pub(crate) const BY_STATUS: &str = "by-status";
pub(crate) const DUE: &str = "due";
pub(crate) const OUTBOX: &str = "outbox";
pub(crate) const BY_DAY: &str = "by-day";
pub(crate) const WORK: &str = "work";
pub(crate) const ATTENTION: &str = "attention";
pub(crate) const DEAD_LETTERS: &str = "dead-letters";

/// Write shards of the sparse `due` and `outbox` indexes: each index partition takes ~1,000
/// writes/s, and a sweep reads every shard (4 small queries).
pub(crate) const SHARDS: u8 = 4;

/// Request bodies longer than this are stored deflated (`bodyd`): a write costs one unit per KB
/// (two in a transaction) and every transition rewrites the request item, whose JSON is about
/// 1.7 KB with one invoice (90 KB with 500). So in practice every request body is deflated.
const DEFLATE_ABOVE: usize = 256;

/// The preset dictionaries of request bodies, by number (`bodyd`'s first byte; index 0 is
/// dictionary 1). Plain deflate leaves a one-invoice request at ~760 bytes, mostly its field
/// names, which with the keys passes the first 1 KB write unit; against a dictionary holding
/// those names and the usual values it is ~300 bytes.
///
/// A dictionary is frozen once released: the items deflated against it can only be read with
/// it, byte for byte (a test pins its digest). A better one is added as the next number and
/// [`CURRENT_DICTIONARY`] moved to it; the old ones stay for reading.
const REQUEST_DICTIONARIES: [&[u8]; 1] = [include_bytes!("request-dictionary-1.txt")];

/// The dictionary new bodies are deflated against.
const CURRENT_DICTIONARY: u8 = 1;

/// The longest body an item may inflate to: DynamoDB items are at most 400 KB, and anything
/// beyond this is a corrupt or hostile stream, not a request.
const MAX_INFLATED: usize = 16 * 1024 * 1024;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt {
        message: format!("item attribute {what} is missing or of the wrong type"),
        source: None,
    }
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(name))
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(name))
}

pub(crate) fn shard(id: CashoutRequestId) -> u8 {
    // The low bytes of a UUID v7 are random (a counter in tests): an even spread.
    id.as_uuid().as_bytes()[15] % SHARDS
}

// ----- keys -----

pub(crate) fn request_pk(id: CashoutRequestId) -> String {
    format!("CR#{id}")
}
pub(crate) const REQUEST_SK: &str = "META";
pub(crate) const EVENT_SK_PREFIX: &str = "EVT#";

pub(crate) fn event_sk(sequence: u64) -> Result<String, StoreError> {
    if sequence >= 10_000_000_000 {
        return Err(StoreError::invalid("event sequence beyond 10 digits"));
    }
    Ok(format!("{EVENT_SK_PREFIX}{sequence:010}"))
}

pub(crate) fn event_key(id: EventId) -> Result<Item, StoreError> {
    Ok(key(request_pk(id.cashout_request_id()), event_sk(id.sequence())?))
}

pub(crate) fn merchant_requests_pk(merchant: &MerchantId) -> String {
    format!("M#{merchant}#CR")
}

pub(crate) fn merchant_status_pk(merchant: &MerchantId, status: CashoutStatus) -> String {
    format!("M#{merchant}#CR#{status}")
}

pub(crate) fn due_pk(shard: u8) -> String {
    format!("DUE#{shard}")
}

pub(crate) fn outbox_pk(shard: u8) -> String {
    format!("OUTBOX#{shard}")
}

/// The UTC day of an instant, as the `by-day` index writes it (`yyyy-mm-dd`).
pub(crate) fn day_text(day: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day())
}

/// The UTC day of an instant.
pub(crate) fn utc_day(at: time::OffsetDateTime) -> time::Date {
    at.to_offset(time::UtcOffset::UTC).date()
}

/// The `by-day` partition of the events of one UTC day and shard.
pub(crate) fn day_pk(day: time::Date, shard: u8) -> String {
    format!("DAY#{}#{shard}", day_text(day))
}

/// Where an event sorts in its day's partition: merchant, request, sequence (a request's events
/// of one day are together, in order).
pub(crate) fn day_sk(merchant: &MerchantId, request: CashoutRequestId, sequence: u64) -> String {
    format!("{merchant}#{request}#{sequence:010}")
}

pub(crate) fn idempotency_key(merchant: &MerchantId, key_: &IdempotencyKey) -> Item {
    // Merchant ids have no `#`, so the key after the second `#` cannot be confused.
    key(format!("IDEM#{merchant}#{key_}"), "IDEM")
}

pub(crate) fn claim_key(storage_key: &str) -> Item {
    key(format!("INV#{storage_key}"), "INV")
}

/// The attributes of an invoice claim.
pub(crate) const CLAIM_HOLDER: &str = "holder";
pub(crate) const CLAIM_AT: &str = "claimed_at";

pub(crate) fn claim_item(key_: &InvoiceKey, holder: CashoutRequestId, claimed_at: i64) -> Item {
    let mut item = claim_key(&key_.storage_key());
    item.insert(CLAIM_HOLDER.into(), s(holder.to_string()));
    item.insert(CLAIM_AT.into(), n(claimed_at));
    item
}

pub(crate) fn claim_from_item(key_: &InvoiceKey, item: &Item) -> Result<InvoiceClaim, StoreError> {
    Ok(InvoiceClaim {
        key: key_.clone(),
        holder: get_s(item, CLAIM_HOLDER)?.parse().map_err(|_| corrupt(CLAIM_HOLDER))?,
        claimed_at: from_ns(get_n(item, CLAIM_AT)?)?,
    })
}

pub(crate) fn provider_ref_key(provider: ProviderName, payout: &ProviderPayoutId) -> Item {
    key(format!("PREF#{provider}#{payout}"), "PREF")
}

pub(crate) fn endpoint_pk(merchant: &MerchantId) -> String {
    format!("M#{merchant}")
}
pub(crate) const ENDPOINT_SK_PREFIX: &str = "EP#";

pub(crate) fn endpoint_key(merchant: &MerchantId, id: EndpointId) -> Item {
    key(endpoint_pk(merchant), format!("{ENDPOINT_SK_PREFIX}{id}"))
}

/// Beside a merchant's endpoints, their count (attribute [`ENDPOINT_COUNT`]), which bounds them
/// against concurrent creations. Not under [`ENDPOINT_SK_PREFIX`], so listings skip it.
const ENDPOINT_COUNT_SK: &str = "COUNT#EP";
/// The attribute of the endpoint count.
pub(crate) const ENDPOINT_COUNT: &str = "n";

pub(crate) fn endpoint_count_key(merchant: &MerchantId) -> Item {
    key(endpoint_pk(merchant), ENDPOINT_COUNT_SK)
}

/// An endpoint's item: its key, `created_at`, its version (`v`, for conditional replacements)
/// and its JSON.
pub(crate) fn endpoint_item(endpoint: &WebhookEndpoint, body: String) -> Result<Item, StoreError> {
    let mut item = endpoint_key(&endpoint.merchant_id, endpoint.id);
    item.insert("created_at".into(), n(to_ns(endpoint.created_at)?));
    item.insert(VERSION.into(), n(endpoint.version));
    item.insert(BODY.into(), s(body));
    Ok(item)
}

pub(crate) fn attempts_pk(event: EventId) -> String {
    format!("DLV#{event}")
}

/// The `by-owner` partition of a merchant's events.
pub(crate) fn merchant_events_pk(merchant: &MerchantId) -> String {
    format!("M#{merchant}#EVT")
}

pub(crate) fn endpoint_attempts_pk(merchant: &MerchantId, endpoint: EndpointId) -> String {
    format!("M#{merchant}#EP#{endpoint}")
}

pub(crate) fn api_key_key(hash: &str) -> Item {
    key(format!("KEY#{hash}"), "KEY")
}

/// Every routing rule lives in one partition, so that the list an approval reads is one
/// `Query`; beside them, the count of rules that bounds it.
pub(crate) const RULES_PK: &str = "RULES";
pub(crate) const RULE_SK_PREFIX: &str = "RR#";
const RULE_COUNT_SK: &str = "COUNT";
/// The attribute of the rule count.
pub(crate) const RULE_COUNT: &str = "n";

pub(crate) fn rule_key(id: RoutingRuleId) -> Item {
    key(RULES_PK.to_owned(), format!("{RULE_SK_PREFIX}{id}"))
}

pub(crate) fn rule_count_key() -> Item {
    key(RULES_PK.to_owned(), RULE_COUNT_SK)
}

/// Every provider's health in one partition (a handful of items: one `Query` lists them).
pub(crate) const HEALTH_PK: &str = "HEALTH";

pub(crate) fn health_key(provider: ProviderName) -> Item {
    key(HEALTH_PK.to_owned(), provider.as_str())
}

// ----- request items -----

fn dictionary(number: u8) -> Result<&'static [u8], StoreError> {
    usize::from(number)
        .checked_sub(1)
        .and_then(|i| REQUEST_DICTIONARIES.get(i))
        .copied()
        .ok_or_else(|| StoreError::Corrupt {
            message: format!("a body deflated against dictionary {number}, which this build does not have"),
            source: None,
        })
}

/// `text` as a raw deflate stream against the current dictionary, behind the dictionary's number.
fn deflate(text: &str) -> Result<Vec<u8>, StoreError> {
    let failed = |e: flate2::CompressError| StoreError::Invalid {
        message: "the body cannot be compressed".into(),
        source: Some(e.into()),
    };
    let mut deflater = Compress::new_with_window_bits(Compression::default(), false, 15);
    deflater
        .set_dictionary(dictionary(CURRENT_DICTIONARY)?)
        .map_err(failed)?;
    let input = text.as_bytes();
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    out.push(CURRENT_DICTIONARY);
    loop {
        let (consumed, produced) = (deflater.total_in(), deflater.total_out());
        out.reserve(input.len() / 4 + 64);
        let rest = input
            .get(usize::try_from(consumed).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let status = deflater
            .compress_vec(rest, &mut out, FlushCompress::Finish)
            .map_err(failed)?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if (deflater.total_in(), deflater.total_out()) == (consumed, produced) {
            return Err(StoreError::Invalid {
                message: "the body cannot be compressed: the compressor made no progress".into(),
                source: None,
            });
        }
    }
}

/// The text of a `bodyd` blob.
fn inflate(blob: &[u8]) -> Result<String, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        message: format!("a deflated body {message}"),
        source: None,
    };
    let (&number, stream) = blob.split_first().ok_or_else(|| corrupt("is empty"))?;
    let mut inflater = Decompress::new_with_window_bits(false, 15);
    inflater
        .set_dictionary(dictionary(number)?)
        .map_err(|e| StoreError::corrupt("a deflated body's dictionary", e))?;
    let mut out = Vec::with_capacity(stream.len() * 6);
    loop {
        let (consumed, produced) = (inflater.total_in(), inflater.total_out());
        let rest = stream
            .get(usize::try_from(consumed).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        out.reserve(out.len().max(1024));
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::Finish)
            .map_err(|e| StoreError::corrupt("a deflated body", e))?;
        if status == Status::StreamEnd {
            break;
        }
        if out.len() > MAX_INFLATED {
            return Err(corrupt("inflates past 16 MiB"));
        }
        if (inflater.total_in(), inflater.total_out()) == (consumed, produced) {
            return Err(corrupt("is truncated"));
        }
    }
    String::from_utf8(out).map_err(|e| StoreError::corrupt("a deflated body", e))
}

/// The text of a `bodyz` blob (deflated without a dictionary, before `bodyd`).
fn inflate_plain(bytes: &[u8]) -> Result<String, StoreError> {
    let mut text = String::new();
    DeflateDecoder::new(bytes)
        .take(MAX_INFLATED as u64)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::corrupt("a deflated body", e))?;
    Ok(text)
}

/// The stored body attribute: JSON, deflated when long.
fn body_attribute(json: String) -> Result<(&'static str, AttributeValue), StoreError> {
    if json.len() > DEFLATE_ABOVE {
        Ok((BODY_DICTIONARY, AttributeValue::B(Blob::new(deflate(&json)?))))
    } else {
        Ok((BODY, s(json)))
    }
}

/// Every attribute a body may be stored in, for a projection that must read it
/// ([`body_text`] tries them in turn).
pub(crate) const BODY_ATTRIBUTES: &str = "body, bodyz, bodyd";

/// The body of an item, whichever way it was stored.
pub(crate) fn body_text(item: &Item) -> Result<String, StoreError> {
    if let Some(v) = item.get(BODY_DICTIONARY) {
        let blob = v.as_b().map_err(|_| corrupt(BODY_DICTIONARY))?;
        return inflate(blob.as_ref());
    }
    if let Some(v) = item.get(BODY_DEFLATED) {
        let blob = v.as_b().map_err(|_| corrupt(BODY_DEFLATED))?;
        return inflate_plain(blob.as_ref());
    }
    get_s(item, BODY).map(str::to_owned)
}

/// The request item: the request's JSON plus its keys and index attributes.
pub(crate) fn request_item(request: &CashoutRequest) -> Result<Item, StoreError> {
    let id = request.id();
    let mut item = key(request_pk(id), REQUEST_SK);
    item.insert(GSI1PK.into(), s(merchant_requests_pk(request.merchant_id())));
    item.insert(GSI1SK.into(), s(id.to_string()));
    item.insert(
        GSI2PK.into(),
        s(merchant_status_pk(request.merchant_id(), request.status())),
    );
    item.insert(GSI2SK.into(), s(id.to_string()));
    if let Some(at) = request.next_check_at() {
        item.insert(DUE_PK.into(), s(due_pk(shard(id))));
        item.insert(DUE_AT.into(), n(to_ns(at)?));
    }
    item.extend(work_attributes(request)?);
    item.insert(VERSION.into(), n(request.version()));
    let (name, body) = body_attribute(to_json(request, "cashout request")?)?;
    item.insert(name.into(), body);
    Ok(item)
}

/// Where a work list lives: its sparse index, the index's key attributes, and its partition
/// (one per list: the lists are operators' queues, written only while requests wait in them).
pub(crate) struct WorkIndex {
    pub name: &'static str,
    pub pk_attr: &'static str,
    pub sk_attr: &'static str,
    pub partition: &'static str,
}

pub(crate) const fn work_index(list: WorkList) -> WorkIndex {
    match list {
        WorkList::Review => WorkIndex {
            name: WORK,
            pk_attr: WORK_PK,
            sk_attr: WORK_SK,
            partition: "WORK#review",
        },
        WorkList::ProcessorError => WorkIndex {
            name: WORK,
            pk_attr: WORK_PK,
            sk_attr: WORK_SK,
            partition: "WORK#processor_error",
        },
        WorkList::Attention => WorkIndex {
            name: ATTENTION,
            pk_attr: ATTENTION_PK,
            sk_attr: ATTENTION_SK,
            partition: "ATTENTION",
        },
    }
}

/// The work-list attributes of a request item: `work_pk`/`work_sk` while its status waits for an
/// operator, `attn_pk`/`attn_sk` while it is flagged; absent otherwise, so that the request
/// leaves an index with the write that ends its reason to be there (a put replaces the item).
pub(crate) fn work_attributes(request: &CashoutRequest) -> Result<Vec<(String, AttributeValue)>, StoreError> {
    let position = WorkPosition::of(request)?.sort_key();
    let mut attributes = Vec::new();
    let lists = status_list(request)
        .into_iter()
        .chain(request.needs_attention().then_some(WorkList::Attention));
    for list in lists {
        let index = work_index(list);
        attributes.push((index.pk_attr.to_owned(), s(index.partition)));
        attributes.push((index.sk_attr.to_owned(), s(position.clone())));
    }
    Ok(attributes)
}

pub(crate) fn request_from_item(item: &Item) -> Result<CashoutRequest, StoreError> {
    from_json(&body_text(item)?, "cashout request")
}

/// The request id of an item keyed `CR#<id>`.
pub(crate) fn request_id_of(item: &Item) -> Result<CashoutRequestId, StoreError> {
    get_s(item, PK)?
        .strip_prefix("CR#")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| corrupt(PK))
}

// ----- event items -----

/// An unpublished event: in the `outbox` index until published.
pub(crate) fn event_item(event: &StatusEvent) -> Result<Item, StoreError> {
    let mut item = key(request_pk(event.cashout_request_id), event_sk(event.sequence)?);
    item.insert(OUTBOX_PK.into(), s(outbox_pk(shard(event.cashout_request_id))));
    item.insert(OUTBOX_AT.into(), n(to_ns(event.occurred_at)?));
    item.insert(
        DAY_PK.into(),
        s(day_pk(utc_day(event.occurred_at), shard(event.cashout_request_id))),
    );
    item.insert(
        DAY_SK.into(),
        s(day_sk(&event.merchant_id, event.cashout_request_id, event.sequence)),
    );
    // A merchant's events newest first (`GET /v1/events`), in the `by-owner` index.
    item.insert(GSI1PK.into(), s(merchant_events_pk(&event.merchant_id)));
    item.insert(GSI1SK.into(), s(crate::events::EventPosition::of(event)?.sort_key()));
    item.insert(BODY.into(), s(to_json(event, "status event")?));
    Ok(item)
}

pub(crate) fn event_from_item(item: &Item) -> Result<StatusEvent, StoreError> {
    from_json(get_s(item, BODY)?, "status event")
}

// ----- idempotency items -----

pub(crate) const IDEM_STATE: &str = "state";
pub(crate) const IDEM_UNTIL: &str = "until";
pub(crate) const IDEM_REQUEST: &str = "request_id";
pub(crate) const IDEM_EXPIRES: &str = "expires_at";
const IDEM_HASH: &str = "body_hash";
pub(crate) const IDEM_RESPONSE_STATUS: &str = "response_status";
pub(crate) const IDEM_RESPONSE_BODY: &str = "response_body";
pub(crate) const IN_PROGRESS: &str = "in_progress";
pub(crate) const COMPLETED: &str = "completed";

/// The idempotency item: fields as attributes, so that conditions can read them; `ttl` lets
/// DynamoDB delete it (up to days late: expiry itself is judged on `expires_at`).
pub(crate) fn idempotency_item(record: &IdempotencyRecord) -> Result<Item, StoreError> {
    let mut item = idempotency_key(&record.merchant_id, &record.key);
    item.insert("merchant_id".into(), s(record.merchant_id.to_string()));
    item.insert("key".into(), s(record.key.to_string()));
    item.insert(IDEM_HASH.into(), s(record.body_hash.clone()));
    item.insert(IDEM_REQUEST.into(), s(record.cashout_request_id.to_string()));
    match &record.state {
        IdempotencyState::InProgress { until } => {
            item.insert(IDEM_STATE.into(), s(IN_PROGRESS));
            item.insert(IDEM_UNTIL.into(), n(to_ns(*until)?));
        }
        IdempotencyState::Completed { response } => {
            item.insert(IDEM_STATE.into(), s(COMPLETED));
            item.insert(IDEM_RESPONSE_STATUS.into(), n(response.status));
            item.insert(IDEM_RESPONSE_BODY.into(), s(response.body.clone()));
        }
    }
    item.insert(IDEM_EXPIRES.into(), n(to_ns(record.expires_at)?));
    item.insert(TTL.into(), n(to_epoch_seconds_ceil(record.expires_at)));
    Ok(item)
}

pub(crate) fn idempotency_from_item(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    let state = match get_s(item, IDEM_STATE)? {
        IN_PROGRESS => IdempotencyState::InProgress {
            until: from_ns(get_n(item, IDEM_UNTIL)?)?,
        },
        COMPLETED => IdempotencyState::Completed {
            response: StoredResponse {
                status: get_n(item, IDEM_RESPONSE_STATUS)?,
                body: get_s(item, IDEM_RESPONSE_BODY)?.to_owned(),
            },
        },
        _ => return Err(corrupt(IDEM_STATE)),
    };
    Ok(IdempotencyRecord {
        merchant_id: MerchantId::new(get_s(item, "merchant_id")?)
            .map_err(|e| StoreError::corrupt("idempotency merchant id", e))?,
        key: IdempotencyKey::new(get_s(item, "key")?).map_err(|e| StoreError::corrupt("idempotency key", e))?,
        body_hash: get_s(item, IDEM_HASH)?.to_owned(),
        cashout_request_id: get_s(item, IDEM_REQUEST)?
            .parse()
            .map_err(|e| StoreError::corrupt("idempotency request id", e))?,
        state,
        expires_at: from_ns(get_n(item, IDEM_EXPIRES)?)?,
    })
}

// ----- routing rules and provider health -----

/// A rule: its version as `v` (the conditions read it) and its JSON (`crate::routing::rule_body`).
pub(crate) fn rule_item(rule: &RoutingRule, body: String) -> Item {
    let mut item = rule_key(rule.id);
    item.insert(VERSION.into(), n(rule.version));
    item.insert(BODY.into(), s(body));
    item
}

pub(crate) fn rule_from_item(item: &Item) -> Result<RoutingRule, StoreError> {
    from_json(get_s(item, BODY)?, "routing rule")
}

/// A provider's health: its version as `v` and its JSON (`crate::routing::health_body`).
pub(crate) fn health_item(health: &ProviderHealth, body: String) -> Item {
    let mut item = health_key(health.provider);
    item.insert(VERSION.into(), n(health.version));
    item.insert(BODY.into(), s(body));
    item
}

pub(crate) fn health_from_item(item: &Item) -> Result<ProviderHealth, StoreError> {
    from_json(get_s(item, BODY)?, "provider health")
}

// ----- reconciliations -----

pub(crate) fn reconciliation_pk(id: ReconciliationId) -> String {
    format!("RECON#{id}")
}
pub(crate) const RECONCILIATION_SK: &str = "RECON";
pub(crate) const DIFFERENCE_SK_PREFIX: &str = "DIFF#";

pub(crate) fn reconciliation_key(id: ReconciliationId) -> Item {
    key(reconciliation_pk(id), RECONCILIATION_SK)
}

/// A run: its version as `v` (the conditions read it) and its JSON.
pub(crate) fn reconciliation_item(run: &Reconciliation, body: String) -> Item {
    let mut item = reconciliation_key(run.id);
    item.insert(VERSION.into(), n(run.version));
    item.insert(BODY.into(), s(body));
    item
}

pub(crate) fn reconciliation_from_item(item: &Item) -> Result<Reconciliation, StoreError> {
    from_json(get_s(item, BODY)?, "reconciliation")
}

/// A difference of run `id`, keyed by its `Difference::key` (the same key replaces it).
pub(crate) fn difference_item(id: ReconciliationId, key_: &str, difference: &Difference) -> Result<Item, StoreError> {
    let mut item = key(reconciliation_pk(id), format!("{DIFFERENCE_SK_PREFIX}{key_}"));
    item.insert(BODY.into(), s(to_json(difference, "difference")?));
    Ok(item)
}

pub(crate) fn difference_from_item(item: &Item) -> Result<Difference, StoreError> {
    from_json(get_s(item, BODY)?, "difference")
}

// ----- the rest -----

pub(crate) fn attempt_position(attempt: &DeliveryAttempt) -> Result<AttemptPosition, StoreError> {
    Ok(AttemptPosition {
        attempted_at_ns: to_ns(attempt.attempted_at)?,
        event_id: attempt.event_id,
        attempt: attempt.attempt,
    })
}

pub(crate) fn attempt_item(attempt: &DeliveryAttempt) -> Result<Item, StoreError> {
    let mut item = key(
        attempts_pk(attempt.event_id),
        format!("EP#{}#{:010}", attempt.endpoint_id, attempt.attempt),
    );
    item.insert(
        GSI1PK.into(),
        s(endpoint_attempts_pk(&attempt.merchant_id, attempt.endpoint_id)),
    );
    item.insert(GSI1SK.into(), s(attempt_position(attempt)?.sort_key()));
    if is_dead_letter(attempt) {
        item.insert(DEAD_PK.into(), s(DEAD_PARTITION));
        item.insert(DEAD_SK.into(), s(DeadLetterPosition::of(attempt)?.sort_key()));
    }
    item.insert(BODY.into(), s(to_json(attempt, "delivery attempt")?));
    Ok(item)
}

/// The one partition of the sparse `dead-letters` index (given-up attempts are rare).
pub(crate) const DEAD_PARTITION: &str = "DEAD";

pub(crate) fn attempt_from_item(item: &Item) -> Result<DeliveryAttempt, StoreError> {
    from_json(get_s(item, BODY)?, "delivery attempt")
}

// ----- people -----

pub(crate) const OPERATORS_PK: &str = "OPERATORS";
pub(crate) const OPERATOR_SK_PREFIX: &str = "OP#";

pub(crate) fn operator_key(name: &cashout_core::auth::OperatorName) -> Item {
    key(OPERATORS_PK.to_owned(), format!("{OPERATOR_SK_PREFIX}{name}"))
}

pub(crate) const POLICIES_PK: &str = "POLICIES";
pub(crate) const POLICY_SK_PREFIX: &str = "POL#";

pub(crate) fn policy_key(scope: &cashout_core::review::PolicyScope) -> Item {
    key(POLICIES_PK.to_owned(), format!("{POLICY_SK_PREFIX}{}", scope.key()))
}

/// A small versioned document (operator, policy): its version as `v` and its JSON.
pub(crate) fn versioned_item(mut key_: Item, version: u64, body: String) -> Item {
    key_.insert(VERSION.into(), n(version));
    key_.insert(BODY.into(), s(body));
    key_
}

/// A merchant's usage of one UTC day: the count `n` and one `amt_<CUR>` per currency.
pub(crate) fn day_usage_key(merchant: &MerchantId, day: time::Date) -> Item {
    key(format!("USAGE#{merchant}"), day_text(day))
}

pub(crate) const USAGE_COUNT: &str = "n";

pub(crate) fn usage_amount_attribute(currency: cashout_core::money::Currency) -> String {
    format!("amt_{}", currency.code())
}

/// A beneficiary fingerprint a merchant has paid out to (its attribute `at`: when first
/// recorded).
pub(crate) fn beneficiary_key(merchant: &MerchantId, fingerprint: &str) -> Item {
    key(format!("BEN#{merchant}"), fingerprint)
}

pub(crate) fn session_key(token_hash: &str) -> Item {
    key(format!("SESSION#{token_hash}"), "SESSION")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_deflated_and_read_back() {
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
        let (name, value) = body_attribute(long.clone()).unwrap();
        assert_eq!(name, BODY_DICTIONARY);
        let blob = value.as_b().unwrap().as_ref().to_vec();
        assert_eq!(blob.first(), Some(&CURRENT_DICTIONARY));
        assert!(blob.len() < 100, "5 KB of one letter deflates to {} bytes", blob.len());
        let item = HashMap::from([(name.to_owned(), value)]);
        assert_eq!(body_text(&item).unwrap(), long);
        let (name, _) = body_attribute("{}".into()).unwrap();
        assert_eq!(name, BODY);
    }

    /// A request body as the runner stores one (one invoice, paid through D24), which must fit
    /// with the item's keys in one 1 KB write unit.
    const PAID_REQUEST: &str = r#"{"id":"01a2346b-bc39-76de-891f-398cddd48045","merchant_id":"merchant_local","currency":"BRL","country":"BR","requested_by":"ops@clinic.example","provider":"d24","beneficiary":{"name":"Ana","last_name":"Souza","document_type":"CPF","document_id":"12345678909","email":"ana@clinic.example","phone":null,"bank_code":"001","bank_branch":"1234","bank_account":"000010001","account_type":"C","address":null,"city":null,"postal_code":null,"birthdate":null},"invoices":[{"invoice_id":"INV-1","payer":{"tax_id":"11222333000181","name":"Health Co"},"amount":"1000.00","advance_percentage":"80","eligible_amount":"800.00","status":"PAID"}],"requested_amount":"800.00","requested_invoice_count":1,"paid_invoice_count":1,"paid_amount":"800.00","request_date":"2026-12-02T01:43:25.497326219Z","payment_date":"2026-12-02T01:43:26.558084657Z","payment_reference":"8400001","provider_reference":"8400001","provider_status":"COMPLETED","status":"PAID","status_reason":{"kind":"provider_paid"},"metadata":{},"version":5,"last_sequence":4,"updated_at":"2026-12-02T01:43:26.558084657Z","dispatch":{"started_at":"2026-12-02T01:43:25.503385105Z","attempts":1,"lease_until":null,"unresolved":false},"next_check_at":"2026-12-02T01:43:36.558084657Z","checks_since_change":0,"hint_poll_at":"2026-12-02T01:43:26.536751683Z","payout_method":"bank_transfer","provider_pinned":true,"routing":{"source":"pinned","routes":[{"provider":"d24","method":"bank_transfer"}],"failover_on_decline":false},"provider_attempts":[{"provider":"d24","reference":"01a2346b-bc39-76de-891f-398cddd48045","started_at":"2026-12-02T01:43:25.503385105Z"}],"review":{"decision":{"policy":{"scope":"default"},"policy_version":0,"fired":[],"required_approvals":0},"approvals":[]}}"#;

    #[test]
    fn a_one_invoice_request_deflates_against_the_dictionary_to_a_third_of_plain_deflate() {
        let (_, value) = body_attribute(PAID_REQUEST.to_owned()).unwrap();
        let with_dictionary = value.as_b().unwrap().as_ref().len();
        let mut plain = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        std::io::Write::write_all(&mut plain, PAID_REQUEST.as_bytes()).unwrap();
        let plain = plain.finish().unwrap().len();
        assert!(with_dictionary < 400, "{with_dictionary} bytes");
        assert!(
            with_dictionary * 2 < plain,
            "{with_dictionary} against {plain} without the dictionary"
        );
        let item = HashMap::from([(BODY_DICTIONARY.to_owned(), value)]);
        assert_eq!(body_text(&item).unwrap(), PAID_REQUEST);
    }

    #[test]
    fn bodies_deflated_before_the_dictionary_still_read() {
        let mut plain = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut plain, PAID_REQUEST.as_bytes()).unwrap();
        let blob = AttributeValue::B(Blob::new(plain.finish().unwrap()));
        let item = HashMap::from([(BODY_DEFLATED.to_owned(), blob)]);
        assert_eq!(body_text(&item).unwrap(), PAID_REQUEST);
    }

    #[test]
    fn a_damaged_or_unknown_body_is_corrupt_not_a_panic() {
        let (_, value) = body_attribute(PAID_REQUEST.to_owned()).unwrap();
        let blob = value.as_b().unwrap().as_ref().to_vec();
        let cases = [
            ("empty", Vec::new()),
            ("unknown dictionary", [&[9u8][..], &blob[1..]].concat()),
            ("dictionary 0", [&[0u8][..], &blob[1..]].concat()),
            ("truncated", blob[..blob.len() / 2].to_vec()),
            ("not deflate", vec![1, 0xff, 0xff, 0xff, 0xff]),
        ];
        for (what, bytes) in cases {
            let item = HashMap::from([(BODY_DICTIONARY.to_owned(), AttributeValue::B(Blob::new(bytes)))]);
            assert!(
                matches!(body_text(&item), Err(StoreError::Corrupt { .. })),
                "{what}: {:?}",
                body_text(&item)
            );
        }
    }

    /// Items deflated against dictionary 1 read only with these exact bytes: an edit would make
    /// every stored request unreadable. Add a dictionary instead.
    #[test]
    fn dictionary_1_is_frozen() {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(REQUEST_DICTIONARIES[0]);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "79f85b5c36d85108578295a142c1c3172147ddb62641ef680ccaf602ff089f49");
    }

    #[test]
    fn the_body_projection_names_every_body_attribute() {
        assert_eq!(BODY_ATTRIBUTES, format!("{BODY}, {BODY_DEFLATED}, {BODY_DICTIONARY}"));
    }

    #[test]
    fn event_keys_sort_by_sequence() {
        assert!(event_sk(9).unwrap() < event_sk(10).unwrap());
        assert!(event_sk(10_000_000_000).is_err());
    }
}
