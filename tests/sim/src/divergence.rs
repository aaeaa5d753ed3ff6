//! Divergences on demand, for reconciliation tests: a payout's status, amount or currency
//! changed behind the client's back ([`PayoutChange`]), and payouts the client never asked for,
//! made as if by someone else on the account ([`NewPayout`]). Neither sends a notification or a
//! callback: that is the point, a reconciler must find them by asking the provider.
//!
//! Statuses are the provider's own words, checked against the simulator's tables: the D24
//! family's six (`ON_HOLD` not on Tupay) with an optional bank rejection code for `REJECTED`;
//! Cascad's documented thirteen with an optional `resolution`.

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::Provider;
use crate::book::{Book, Ctx, Detail, HistoryEntry, Payout};
use crate::cascad::{self, ForeignInvoice};
use crate::d24::table::{D24State, rejection_reason};
use crate::decimal::parse_decimal;
use crate::ledger::LedgerPayout;

/// A change to an existing payout, made behind the client's back (`PUT
/// /_sim/payouts/{provider}/{payout_id}`, [`crate::SimHandle::change_payout`]). At least one
/// field must be given; what is not given is kept.
///
/// A status change stops the payout's planned lifecycle: it stays as set until changed again
/// (or until the client acts on it: a D24 hold, release or cancel still works as documented).
/// An amount or currency change alone keeps the lifecycle going.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutChange {
    /// The provider's own status word: D24 family `PENDING`, `DELIVERED`, `COMPLETED`,
    /// `REJECTED`, `CANCELLED`, `ON_HOLD` (not Tupay); Cascad `created`, `processing`,
    /// `processed`, `process_failed`, `terminated`… (PROVIDERS.md's list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// D24 family, with `REJECTED` only: the bank's rejection code (800–826, as
    /// `rejection_code` in the status answer). Without it, a `REJECTED` cashout carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_code: Option<u16>,
    /// Cascad only: the invoice's `resolution` (`ok` unless given, when the status changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The new amount, decimal text (`"12.34"`; a JSON number is read exactly too).
    #[serde(
        default,
        deserialize_with = "optional_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount: Option<String>,
    /// The new currency (ISO 4217, `USD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A payout the client never asked for, as if someone else had made it on the account (`POST
/// /_sim/payouts/{provider}`, [`crate::SimHandle::add_payout`]). It has no lifecycle: it stays in
/// its status until changed through [`PayoutChange`]. A reference the provider already holds is
/// refused (409), as the providers refuse it, unless `accept_duplicate_references` is on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayout {
    /// Its reference (`external_id` / `reference_id`): any text, ours or not.
    pub reference: String,
    /// Decimal text (`"10.00"`; a JSON number is read exactly too).
    #[serde(deserialize_with = "required_amount")]
    pub amount: String,
    /// ISO 4217. Cascad: `USD` unless given; D24 family: none unless given (the currency is
    /// optional there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The provider's status word; `PENDING` (D24 family) or `created` (Cascad) unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// As in [`PayoutChange::rejection_code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_code: Option<u16>,
    /// As in [`PayoutChange::resolution`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

/// Why a divergence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such provider or payout (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A status word the provider does not have, a bad amount or currency, a field of the
    /// other family, nothing to change (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The provider already holds a payout with the reference (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

/// Amount text from a JSON string or number, never through a float.
fn amount_text(raw: &serde_json::value::RawValue) -> Result<String, serde_json::Error> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str(text)
    } else {
        Ok(text.to_owned())
    }
}

fn optional_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = <Option<Box<serde_json::value::RawValue>>>::deserialize(d)?;
    match raw {
        Some(r) if r.get() != "null" => amount_text(&r).map(Some).map_err(D::Error::custom),
        _ => Ok(None),
    }
}

fn required_amount<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = <Box<serde_json::value::RawValue>>::deserialize(d)?;
    amount_text(&raw).map_err(D::Error::custom)
}

fn invalid(message: impl Into<String>) -> ControlError {
    ControlError::Invalid(message.into())
}

fn parse_amount(text: &str) -> Result<Decimal, ControlError> {
    parse_decimal(text.trim())
        .filter(|a| *a > Decimal::ZERO)
        .ok_or_else(|| invalid(format!("amount `{}` is not a positive decimal", clip(text))))
}

fn parse_currency(text: &str) -> Result<String, ControlError> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err(invalid(format!("currency `{}` is not an ISO 4217 code", clip(text))))
    }
}

fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A D24-family status word (and rejection code) the profile has.
fn d24_status(provider: Provider, word: &str, code: Option<u16>) -> Result<(D24State, Option<u16>), ControlError> {
    let state = D24State::from_name(word)
        .filter(|s| s.exists_on(provider))
        .ok_or_else(|| {
            let words: Vec<&str> = D24State::ALL
                .iter()
                .filter(|s| s.exists_on(provider))
                .map(|s| s.name())
                .collect();
            invalid(format!(
                "`{}` is not a {provider} status ({})",
                clip(word),
                words.join(", ")
            ))
        })?;
    match code {
        Some(_) if state != D24State::Rejected => Err(invalid("rejection_code goes with REJECTED only")),
        Some(c) if rejection_reason(c).is_none() => Err(invalid(format!("{c} is not a D24 rejection code"))),
        _ => Ok((state, code)),
    }
}

/// A `resolution` word: lowercase letters and `_`.
fn resolution_word(r: &str) -> Result<String, ControlError> {
    if !r.is_empty() && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        Ok(r.to_owned())
    } else {
        Err(invalid(format!("resolution `{}` is not a word", clip(r))))
    }
}

/// A Cascad status word (documented) and its resolution (`ok` unless given).
fn cascad_status(word: &str, resolution: Option<&str>) -> Result<(String, String), ControlError> {
    if !cascad::STATUSES.contains(&word) {
        return Err(invalid(format!(
            "`{}` is not a cascad status ({})",
            clip(word),
            cascad::STATUSES.join(", ")
        )));
    }
    Ok((
        word.to_owned(),
        resolution.map_or(Ok("ok".to_owned()), resolution_word)?,
    ))
}

/// What a change does to the family's status.
enum NextStatus {
    D24(D24State, Option<u16>),
    /// Status (`None`: kept) and resolution.
    Cascad(Option<String>, String),
}

impl Book {
    /// Changes a payout behind the client's back: no notification, one history entry.
    pub(crate) fn change_payout(
        &mut self,
        provider: Provider,
        id: &str,
        change: &PayoutChange,
        ctx: &Ctx<'_>,
    ) -> Result<LedgerPayout, ControlError> {
        let i = self
            .find(provider, id)
            .ok_or_else(|| ControlError::NotFound(format!("{provider} has no payout `{}`", clip(id))))?;
        let empty = change.status.is_none()
            && change.rejection_code.is_none()
            && change.resolution.is_none()
            && change.amount.is_none()
            && change.currency.is_none();
        if empty {
            return Err(invalid(
                "nothing to change: give status, amount or currency (rejection_code, resolution)",
            ));
        }
        let amount = change.amount.as_deref().map(parse_amount).transpose()?;
        let currency = change.currency.as_deref().map(parse_currency).transpose()?;
        let next = match &self.payouts[i].detail {
            Detail::D24 { status, .. } => {
                if change.resolution.is_some() {
                    return Err(invalid("resolution is Cascad's; the D24 family has rejection_code"));
                }
                let (state, code) = match (&change.status, change.rejection_code) {
                    (Some(word), code) => d24_status(provider, word, code)?,
                    (None, Some(code)) => d24_status(provider, status.name(), Some(code))?,
                    (None, None) => (*status, None),
                };
                (change.status.is_some() || change.rejection_code.is_some()).then_some(NextStatus::D24(state, code))
            }
            Detail::Cascad(_) => {
                if change.rejection_code.is_some() {
                    return Err(invalid("rejection_code is the D24 family's; Cascad has resolution"));
                }
                match (&change.status, &change.resolution) {
                    (Some(word), r) => {
                        let (s, r) = cascad_status(word, r.as_deref())?;
                        Some(NextStatus::Cascad(Some(s), r))
                    }
                    (None, Some(r)) => Some(NextStatus::Cascad(None, resolution_word(r)?)),
                    (None, None) => None,
                }
            }
        };
        let now = ctx.now;
        let status_changed = next.is_some();
        let p = &mut self.payouts[i];
        if let Some(a) = amount {
            p.amount = a.to_string();
        }
        if let Some(c) = &currency {
            p.currency = Some(c.clone());
        }
        match &mut p.detail {
            Detail::D24 {
                status, rejection_code, ..
            } => {
                if let Some(NextStatus::D24(s, code)) = next {
                    *status = s;
                    *rejection_code = code;
                }
            }
            Detail::Cascad(inv) => {
                if let Some(a) = amount {
                    inv.amount = a.to_string();
                }
                if let Some(c) = currency {
                    inv.currency = c;
                }
                if let Some(NextStatus::Cascad(s, r)) = next {
                    if let Some(s) = s {
                        if s == "processed" && inv.processed.is_none() {
                            inv.processed = Some(now.unix_timestamp());
                        }
                        inv.status = s;
                    }
                    inv.resolution = r;
                }
                inv.updated = now.unix_timestamp();
            }
        }
        p.updated_at = now;
        let word = p.status_word();
        p.history.push(HistoryEntry { status: word, at: now });
        if status_changed {
            self.set_plan(i, Vec::new());
        }
        tracing::info!(%provider, id, ?change, "payout changed behind the client's back (no notification)");
        Ok(self.payouts[i].ledger())
    }

    /// The provider loses a payout (as if it had never been made): no lookup, listing or
    /// ledger shows it from now on, and no notification says so.
    pub(crate) fn lose_payout(&mut self, provider: Provider, id: &str) -> Result<LedgerPayout, ControlError> {
        let i = self
            .find(provider, id)
            .ok_or_else(|| ControlError::NotFound(format!("{provider} has no payout `{}`", clip(id))))?;
        let ledger = self.payouts[i].ledger();
        self.lose_at(i);
        tracing::info!(%provider, id, "payout lost behind the client's back (no notification)");
        Ok(ledger)
    }

    /// Makes a payout the client never asked for: no notification, no create attempt counted.
    pub(crate) fn add_payout(
        &mut self,
        provider: Provider,
        new: &NewPayout,
        ctx: &mut Ctx<'_>,
    ) -> Result<LedgerPayout, ControlError> {
        let reference = new.reference.trim();
        let too_long = match provider {
            Provider::D24 | Provider::Onspot | Provider::Tupay => reference.chars().count() > 100,
            Provider::Cascad => reference.len() > 255,
        };
        if reference.is_empty() || too_long {
            return Err(invalid(
                "reference must not be blank, nor longer than the provider allows",
            ));
        }
        let amount = parse_amount(&new.amount)?;
        let currency = new.currency.as_deref().map(parse_currency).transpose()?;
        let accept_dups = ctx.faults.get(provider).accept_duplicate_references;
        if !accept_dups && !self.by_reference(provider, reference).is_empty() {
            return Err(ControlError::Conflict(format!(
                "{provider} already has a payout with reference `{}`",
                clip(reference)
            )));
        }
        let payout = match provider {
            Provider::D24 | Provider::Onspot | Provider::Tupay => {
                if new.resolution.is_some() {
                    return Err(invalid("resolution is Cascad's; the D24 family has rejection_code"));
                }
                let (status, rejection_code) =
                    d24_status(provider, new.status.as_deref().unwrap_or("PENDING"), new.rejection_code)?;
                let id = self.next_d24_id(ctx.config.d24_first_cashout_id);
                Payout {
                    provider,
                    id,
                    reference: reference.to_owned(),
                    amount: amount.to_string(),
                    currency,
                    account_masked: None,
                    created_at: ctx.now,
                    updated_at: ctx.now,
                    detail: Detail::D24 {
                        status,
                        rejection_code,
                        // Nobody to notify: a notification would be recorded as refused.
                        notification_url: String::new(),
                    },
                    plan: Vec::new(),
                    history: Vec::new(),
                    lost: false,
                }
            }
            Provider::Cascad => {
                if new.rejection_code.is_some() {
                    return Err(invalid("rejection_code is the D24 family's; Cascad has resolution"));
                }
                let (status, resolution) =
                    cascad_status(new.status.as_deref().unwrap_or("created"), new.resolution.as_deref())?;
                cascad::foreign_invoice(
                    self,
                    ctx,
                    ForeignInvoice {
                        reference: reference.to_owned(),
                        amount,
                        currency: currency.unwrap_or_else(|| "USD".to_owned()),
                        status,
                        resolution,
                    },
                )
            }
        };
        tracing::info!(%provider, id = %payout.id, reference, "payout made behind the client's back (no notification)");
        let i = self.push_payout(payout);
        Ok(self.payouts[i].ledger())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_text_from_strings_and_numbers() {
        let c: PayoutChange = serde_json::from_str(r#"{"amount": 12.30}"#).unwrap();
        assert_eq!(c.amount.as_deref(), Some("12.30"));
        let c: PayoutChange = serde_json::from_str(r#"{"amount": "12.34", "currency": "USD"}"#).unwrap();
        assert_eq!(c.amount.as_deref(), Some("12.34"));
        let c: PayoutChange = serde_json::from_str(r#"{"amount": null}"#).unwrap();
        assert_eq!(c.amount, None);
        assert!(serde_json::from_str::<PayoutChange>(r#"{"stauts": "COMPLETED"}"#).is_err());
        let n: NewPayout = serde_json::from_str(r#"{"reference": "x", "amount": 10}"#).unwrap();
        assert_eq!(n.amount, "10");
        assert!(serde_json::from_str::<NewPayout>(r#"{"reference": "x"}"#).is_err());
    }

    #[test]
    fn status_words_are_the_providers_own() {
        assert_eq!(
            d24_status(Provider::D24, "REJECTED", Some(826)).unwrap(),
            (D24State::Rejected, Some(826))
        );
        assert!(d24_status(Provider::Tupay, "ON_HOLD", None).is_err());
        assert!(d24_status(Provider::Onspot, "ON_HOLD", None).is_ok());
        assert!(d24_status(Provider::D24, "processed", None).is_err());
        assert!(d24_status(Provider::D24, "COMPLETED", Some(826)).is_err());
        assert!(d24_status(Provider::D24, "REJECTED", Some(825)).is_err());
        assert_eq!(
            cascad_status("processed", None).unwrap(),
            ("processed".to_owned(), "ok".to_owned())
        );
        assert!(cascad_status("COMPLETED", None).is_err());
        assert!(cascad_status("processed", Some("Bad word")).is_err());
        assert!(parse_amount("0").is_err());
        assert!(parse_amount("1e3").is_err());
        assert!(parse_currency("usd").is_err());
    }
}
