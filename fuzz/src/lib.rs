//! # cashout-fuzz: hostile input
//!
//! One function per parser that reads what strangers send. Each takes raw bytes, never panics
//! on any input, and asserts the invariants the parser promises (a panic here is a finding).
//! The same functions run under proptest in `./scripts/test` (`tests/hostile.rs`, a bounded
//! number of cases from the seed corpus in `fuzz/corpus/`) and under libFuzzer with
//! `cargo fuzz` in `./scripts/test --extended` (`fuzz/cargo-fuzz/`).
//!
//! | target | parser |
//! |---|---|
//! | [`d24_notification`] | D24-family notification (form-urlencoded, no status) |
//! | [`cascad_callback`] | Cascad callback: `X-Signature` check, then the JSON:API invoice(s) |
//! | [`merchant_body`] | `POST /v1/cashout-requests` body: JSON, validation, the request and its view |
//! | [`webhook_verify`] | Standard Webhooks verification (ours against the official library) |
//! | [`money`] | decimal literals, amounts in every currency, percentages, the rounding rule |

use std::sync::OnceLock;

use cashout_core::ids::{CashoutRequestId, MerchantId, PayoutReference, ProviderPayoutId};
use cashout_core::money::{Amount, Currency, Percentage, parse_decimal};
use cashout_core::ports::{InboundNotification, PayoutProvider, ProviderNotification};
use cashout_core::provider::ProviderName;
use cashout_core::signing::{ProviderSecret, WebhookSecret, WebhookVerifier, cascad_signature};
use cashout_providers::{Providers, ProvidersConfig};
use rust_decimal::Decimal;
use time::OffsetDateTime;

/// The Cascad callback secret the providers are configured with (the simulator's default).
pub const CASCAD_SECRET: &str = cashout_providers::simulator::CASCAD.2;

fn providers() -> &'static Providers {
    static PROVIDERS: OnceLock<Providers> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        // Nothing is ever sent: parsing needs the configuration only.
        Providers::new(ProvidersConfig::for_simulator("http://127.0.0.1:9"))
            .unwrap_or_else(|e| panic!("the simulator configuration is valid: {e}"))
    })
}

/// What the simulator configuration can pay (Cascad's services with their fields).
fn coverage() -> &'static cashout_core::routing::Coverage {
    static COVERAGE: OnceLock<cashout_core::routing::Coverage> = OnceLock::new();
    COVERAGE.get_or_init(|| ProvidersConfig::for_simulator("http://127.0.0.1:9").coverage())
}

/// Splits fuzz bytes into `n` fields at `0xFF` bytes (never valid UTF-8, so fields stay
/// meaningful to a mutating fuzzer); missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0xFF).collect();
    out.resize(n, &[]);
    out
}

/// A D24-family notification body (and a `Content-Type`). A notification carries no status: it
/// is at most a hint naming the payout, and the names it gives are the ones in the form:
/// - its reference is the request id the form's `external_id` field holds, and `None` when that
///   field is absent or holds no request id — never an id read from another field or from
///   anywhere else in the body;
/// - its payout id is the form's `cashout_id` field, exactly, and `None` when that field is
///   absent or holds no valid payout id (empty, too long, not visible ASCII);
/// - it names at least one of the two.
///
/// The form is decoded here independently of the adapter (`form_fields`), and a form that
/// gives either field twice must not become a hint (which of the two would it name?).
pub fn d24_notification(data: &[u8]) {
    for provider in [ProviderName::D24, ProviderName::Onspot, ProviderName::Tupay] {
        let n = InboundNotification {
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: data.to_vec(),
        };
        match providers().parse_notification(provider, &n) {
            Ok(ProviderNotification::Hint { reference, payout_id }) => {
                assert!(reference.is_some() || payout_id.is_some(), "a hint that names nothing");
                let form = form_fields(data);
                let values = |name: &str| -> Vec<&str> {
                    form.iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v.as_str())
                        .collect()
                };
                let (external_ids, cashout_ids) = (values("external_id"), values("cashout_id"));
                assert!(
                    external_ids.len() <= 1 && cashout_ids.len() <= 1,
                    "a hint from a form that names a field twice: {form:?}"
                );
                let expected_reference = external_ids.first().and_then(|v| v.parse::<PayoutReference>().ok());
                assert_eq!(
                    reference, expected_reference,
                    "the reference is not the form's external_id: {form:?}"
                );
                let expected_payout_id = cashout_ids.first().and_then(|v| ProviderPayoutId::new(*v).ok());
                assert_eq!(
                    payout_id, expected_payout_id,
                    "the payout id is not the form's cashout_id: {form:?}"
                );
            }
            Ok(ProviderNotification::Status(_)) => panic!("a D24 notification must never carry a trusted status"),
            Err(_) => {}
        }
    }
}

/// The name/value pairs of an `application/x-www-form-urlencoded` body, decoded as the WHATWG
/// URL standard says (and written here from it, not borrowed from the adapter's parser): split
/// on `&`, skip empty pieces, split each at its first `=`, turn `+` into a space, percent-decode
/// (a `%` not followed by two hex digits stays as it is), then read the bytes as UTF-8 with
/// replacement characters.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(part: &[u8]) -> String {
        let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    part.get(i + 1).copied().and_then(hex),
                    part.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(high), Some(low)) => {
                        out.push(high * 16 + low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|b| *b == b'=') {
            Some(at) => (decode(&piece[..at]), decode(&piece[at + 1..])),
            None => (decode(piece), String::new()),
        })
        .collect()
}

/// A Cascad callback: `fields[0]` is the body, `fields[1]` a signature to try. The body is also
/// tried with its correct signature, so the JSON:API reading behind the check is reached.
pub fn cascad_callback(data: &[u8]) {
    let f = fields(data, 2);
    let (body, given) = (f[0], String::from_utf8_lossy(f[1]).into_owned());
    let valid = cascad_signature(&ProviderSecret::new(CASCAD_SECRET), body);
    let parse = |signature: Option<&str>| {
        let mut headers = vec![("content-type".to_owned(), "application/vnd.api+json".to_owned())];
        if let Some(s) = signature {
            headers.push(("x-signature".to_owned(), s.to_owned()));
        }
        providers().parse_notification(
            ProviderName::Cascad,
            &InboundNotification {
                headers,
                body: body.to_vec(),
            },
        )
    };
    assert!(parse(None).is_err(), "an unsigned callback was accepted");
    if given.trim() != valid {
        assert!(
            parse(Some(&given)).is_err(),
            "a callback with a wrong signature was accepted"
        );
    }
    if let Ok(n) = parse(Some(&valid)) {
        match n {
            ProviderNotification::Status(p) => {
                assert_eq!(p.provider, ProviderName::Cascad);
                assert!(!p.payout_id.to_string().is_empty());
            }
            ProviderNotification::Hint { reference, payout_id } => {
                assert!(reference.is_some() || payout_id.is_some(), "a hint that names nothing");
            }
        }
    }
}

/// A merchant's create body, as the API reads it: JSON, then the input type, then validation;
/// a valid one becomes a request and its view. Invariants: the requested amount is the sum of
/// the eligible amounts at the currency's scale, and the view never shows a full account number,
/// nor more of a card number than its first six and last four digits.
pub fn merchant_body(data: &[u8]) {
    if serde_json::from_slice::<serde_json::Value>(data).is_err() {
        return;
    }
    let Ok(input) = serde_json::from_slice::<cashout_core::input::CashoutInput>(data) else {
        return;
    };
    let account = input
        .beneficiary
        .as_ref()
        .and_then(|b| b.bank_account.clone())
        .unwrap_or_default();
    let card = input
        .beneficiary
        .as_ref()
        .and_then(|b| b.card_number.clone())
        .unwrap_or_default();
    let Ok(draft) = input.validate(coverage()) else { return };
    let currency = draft.currency();
    let requested = draft.requested_amount();
    assert_eq!(
        requested.value().scale(),
        currency.minor_units(),
        "amount not at the currency's scale"
    );
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let id = CashoutRequestId::from_uuid(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
    let merchant = MerchantId::new("merchant_fuzz").unwrap_or_else(|e| panic!("valid merchant id: {e}"));
    let change = cashout_core::cashout::CashoutRequest::create(id, merchant, draft, now);
    let view = cashout_app::views::CashoutRequestView::from(&change.request);
    let sum = view
        .invoices
        .iter()
        .map(|i| i.eligible_amount.parse::<Decimal>().unwrap_or_default())
        .sum::<Decimal>();
    assert_eq!(
        view.requested_amount.parse::<Decimal>().ok(),
        Some(sum),
        "requested amount is not the sum of the eligible amounts"
    );
    if !account.is_empty() {
        let shown = view.beneficiary.bank_account.clone().unwrap_or_default();
        assert!(
            shown != account && shown.contains('*'),
            "the view shows the full account number"
        );
    }
    if !card.is_empty() {
        let shown = view.beneficiary.card_number.clone().unwrap_or_default();
        assert!(
            shown.len() == card.len() && shown.chars().filter(|c| *c == '*').count() >= card.len().saturating_sub(10),
            "the view shows more of the card number than its first six and last four digits"
        );
    }
    assert!(serde_json::to_string(&view).is_ok());
    assert_eq!(change.events.len(), 1, "a create is one created event");
}

/// Standard Webhooks verification. `fields`: secret key bytes, message id, timestamp offset
/// (seconds from now, decimal), signature header, body. Invariants: ours never accepts what the
/// official library refuses (away from the tolerance edge, where the two clocks may differ by a
/// second); a correct signature is accepted; any change to the id, timestamp or body is refused.
pub fn webhook_verify(data: &[u8]) {
    let f = fields(data, 5);
    let key: Vec<u8> = f[0].iter().copied().cycle().take(32).collect();
    let key = if key.is_empty() { vec![7u8; 32] } else { key };
    let secret = WebhookSecret::from_key_bytes(&key);
    let msg_id = String::from_utf8_lossy(f[1]).into_owned();
    let offset: i64 = String::from_utf8_lossy(f[2]).trim().parse().unwrap_or(0);
    let now = OffsetDateTime::now_utc();
    let ts = now.unix_timestamp().saturating_add(offset);
    let signature = String::from_utf8_lossy(f[3]).into_owned();
    let body = f[4];

    let headers = |id: &str, ts: &str, sig: &str| -> Option<http::HeaderMap> {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", id.parse().ok()?);
        h.insert("webhook-timestamp", ts.parse().ok()?);
        h.insert("webhook-signature", sig.parse().ok()?);
        Some(h)
    };
    let ours = WebhookVerifier::new(secret.clone());
    let official = standardwebhooks::Webhook::new(secret.expose()).unwrap_or_else(|e| panic!("valid secret: {e:?}"));
    let edge = (offset.abs() - 300).abs() <= 2;

    // The fuzzed signature.
    if let Some(h) = headers(&msg_id, &ts.to_string(), &signature) {
        let mine = ours.verify(&h, body, now).is_ok();
        let theirs = official.verify(body, &h).is_ok();
        if !edge {
            assert!(!mine || theirs, "we accepted a message the official library refuses");
        }
    }

    // A correct signature, then tampered.
    let Ok(good) = secret.sign(&msg_id, ts, body) else {
        return;
    };
    let Some(h) = headers(&msg_id, &ts.to_string(), &good) else {
        return;
    };
    // Header values that are not visible ASCII are refused as unreadable: safe, so only
    // readable ones must verify.
    let readable = msg_id.bytes().all(|b| (0x20..0x7f).contains(&b));
    let within = (-300..=300).contains(&offset);
    let accepted = ours.verify(&h, body, now).is_ok();
    if readable {
        assert_eq!(accepted, within, "a correct signature, offset {offset}");
    }
    if !accepted {
        return;
    }
    let mut tampered = body.to_vec();
    if tampered.is_empty() {
        tampered.push(b' ');
    } else {
        tampered[0] ^= 0x01;
    }
    assert!(ours.verify(&h, &tampered, now).is_err(), "a changed body was accepted");
    if let Some(h2) = headers(&format!("{msg_id}x"), &ts.to_string(), &good) {
        assert!(
            ours.verify(&h2, body, now).is_err(),
            "a replay under another id was accepted"
        );
    }
    if let Some(h3) = headers(&msg_id, &(ts + 1).to_string(), &good) {
        assert!(ours.verify(&h3, body, now).is_err(), "a changed timestamp was accepted");
    }
    // The same message replayed after the tolerance is refused.
    let later = OffsetDateTime::from_unix_timestamp(ts + 301).unwrap_or(now);
    assert!(ours.verify(&h, body, later).is_err(), "a stale replay was accepted");
}

/// Money: `fields[0]` a decimal text, `fields[1]` a percentage text, `fields[2]` a currency
/// index. Invariants: parsing is exact and round-trips; amounts keep their currency's scale and
/// bounds; the eligible amount is the half-even rounding of amount × percentage / 100 and is
/// never more than the amount.
pub fn money(data: &[u8]) {
    let f = fields(data, 3);
    let text = String::from_utf8_lossy(f[0]);
    let pct_text = String::from_utf8_lossy(f[1]);
    let currencies = Currency::SUPPORTED;
    let currency = currencies[f[2].first().map_or(0, |b| usize::from(*b)) % currencies.len()];

    if let Ok(d) = parse_decimal(&text) {
        assert_eq!(d.to_string().parse::<Decimal>().ok(), Some(d), "decimal round-trip");
        assert!(text.len() <= 40);
    }
    let Ok(amount) = Amount::parse(&text, currency) else {
        return;
    };
    assert!(amount.value() > Decimal::ZERO);
    assert!(amount.value() <= Decimal::from(Amount::MAX_MAJOR_UNITS));
    assert_eq!(amount.value().scale(), currency.minor_units());
    assert_eq!(
        Amount::parse(&amount.to_decimal_string(), currency).ok(),
        Some(amount),
        "amount round-trip"
    );
    assert_eq!(
        Amount::from_minor_units(amount.to_minor_units(), currency).ok(),
        Some(amount),
        "minor units round-trip"
    );
    let Ok(pct) = parse_decimal(&pct_text).and_then(Percentage::new) else {
        return;
    };
    if let Ok(eligible) = amount.percentage_of(pct, currency) {
        assert!(eligible <= amount, "eligible above the amount");
        assert_eq!(eligible.value().scale(), currency.minor_units());
        let exact = amount.value() * pct.value() / Decimal::ONE_HUNDRED;
        let diff = (eligible.value() - exact).abs();
        let half_unit = Decimal::new(5, currency.minor_units() + 1);
        assert!(diff <= half_unit, "rounded by more than half a minor unit");
    }
}
