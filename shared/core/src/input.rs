//! What a merchant sends to create a cashout request, and its validation into a
//! [`CashoutDraft`]. Every field is optional at the JSON level so that validation can report
//! every problem at once, with its path.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::macros::format_description;

use crate::ids::InvoiceId;
use crate::money::{Amount, Currency, DecimalInput, Percentage};
use crate::party::{AccountNumber, Beneficiary, CardNumber, Country, Payer};
use crate::provider::ProviderName;
use crate::routing::{Coverage, PayoutMethodKind, RouteQuery};
use crate::validation::{ValidationErrors, text};

/// The most invoices one request may bundle.
pub const MAX_INVOICES: usize = 500;
/// The most metadata keys a request may carry.
pub const MAX_METADATA_KEYS: usize = 50;
/// The largest metadata object, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// The body of `POST /v1/cashout-requests`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashoutInput {
    /// ISO-4217 code; every invoice is in it.
    pub currency: Option<String>,
    /// ISO 3166-1 alpha-2 code of the beneficiary's country.
    pub country: Option<String>,
    /// Who asked for the advance (a user of the merchant).
    pub requested_by: Option<String>,
    /// `d24`, `onspot`, `tupay` or `cascad`; routed by country and currency when absent.
    pub provider: Option<String>,
    /// `card`, `bank_transfer`, `swift` or `test`: how the payout reaches the beneficiary.
    /// Needed when the currency can be paid more than one way (Cascad's `card` and `test_usd`
    /// both pay USD); the D24 family pays bank transfers only.
    pub payout_method: Option<String>,
    /// Who receives the money.
    pub beneficiary: Option<BeneficiaryInput>,
    /// 1 to 500 invoices with distinct ids.
    pub invoices: Option<Vec<InvoiceInput>>,
    /// Free-form merchant data, returned as given (at most 50 keys, 8 KiB).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Create the payout on hold (`on_hold`, D24 and Onspot only): the provider pays it only
    /// once an operator releases it (`POST /v1/cashout-requests/{id}/release`).
    pub hold: Option<bool>,
}

/// The beneficiary as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeneficiaryInput {
    pub name: Option<String>,
    pub last_name: Option<String>,
    pub document_type: Option<String>,
    pub document_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub bank_code: Option<String>,
    pub bank_branch: Option<String>,
    pub bank_account: Option<String>,
    /// A payment card number (digits, with a valid check digit), for card payouts.
    pub card_number: Option<String>,
    pub account_type: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthdate: Option<String>,
    /// The merchant's own id for the beneficiary (sent to Cascad as its customer).
    pub reference_id: Option<String>,
    /// Provider-specific fields by key.
    pub extra_fields: Option<BTreeMap<String, String>>,
}

/// One invoice as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceInput {
    /// The merchant's invoice id, unique in the request.
    pub invoice_id: Option<String>,
    /// Who owes it.
    pub payer: Option<PayerInput>,
    /// Its amount (string or number, exact).
    pub amount: Option<DecimalInput>,
    /// The advance percentage, `(0, 100]`.
    pub advance_percentage: Option<DecimalInput>,
}

/// A payer as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerInput {
    pub tax_id: Option<String>,
    pub name: Option<String>,
}

/// A request that passed validation: ready to become a [`crate::cashout::CashoutRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashoutDraft {
    pub(crate) currency: Currency,
    pub(crate) country: Country,
    pub(crate) requested_by: String,
    pub(crate) provider: ProviderName,
    pub(crate) provider_pinned: bool,
    pub(crate) payout_method: Option<PayoutMethodKind>,
    pub(crate) payout_service: Option<String>,
    pub(crate) beneficiary: Beneficiary,
    pub(crate) invoices: Vec<InvoiceDraft>,
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    pub(crate) hold: bool,
}

impl CashoutDraft {
    /// The provider chosen (given or routed).
    pub fn provider(&self) -> ProviderName {
        self.provider
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// How the payout reaches the beneficiary.
    pub fn payout_method(&self) -> Option<PayoutMethodKind> {
        self.payout_method
    }

    /// The provider's service that pays it (Cascad's `card`), when the provider has services.
    pub fn payout_service(&self) -> Option<&str> {
        self.payout_service.as_deref()
    }

    /// Σ eligible amounts.
    pub fn requested_amount(&self) -> Amount {
        // Validation guarantees at least one invoice.
        Amount::sum(self.invoices.iter().map(|i| i.eligible_amount)).unwrap_or(self.invoices[0].eligible_amount)
    }
}

/// A validated invoice with its eligible amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceDraft {
    pub(crate) invoice_id: InvoiceId,
    pub(crate) payer: Payer,
    pub(crate) amount: Amount,
    pub(crate) advance_percentage: Percentage,
    pub(crate) eligible_amount: Amount,
}

impl CashoutInput {
    /// Validates everything against what the providers can pay (`coverage`, built from
    /// configuration), reporting every problem with its field path.
    pub fn validate(self, coverage: &Coverage) -> Result<CashoutDraft, ValidationErrors> {
        let mut errors = ValidationErrors::default();

        let currency: Option<Currency> = required(&mut errors, "currency", self.currency.as_deref());
        let country: Option<Country> = required(&mut errors, "country", self.country.as_deref());
        let requested_by = text(&mut errors, "requested_by", self.requested_by.as_deref(), 254, true);
        let explicit_provider: Option<ProviderName> = optional(&mut errors, "provider", self.provider.as_deref());
        let beneficiary = match self.beneficiary {
            None => {
                errors.push("beneficiary", "required", "is required");
                None
            }
            Some(b) => b.validate(&mut errors),
        };
        let invoices = match (self.invoices, currency) {
            (None, _) => {
                errors.push("invoices", "required", "is required");
                None
            }
            (Some(list), Some(currency)) => validate_invoices(list, currency, &mut errors),
            (Some(_), None) => None,
        };
        let metadata = self.metadata.unwrap_or_default();
        check_metadata(&metadata, &mut errors);
        let method: Option<PayoutMethodKind> = optional(&mut errors, "payout_method", self.payout_method.as_deref());
        let amount = invoices
            .as_ref()
            .and_then(|list| Amount::sum(list.iter().map(|i| i.eligible_amount)));
        let route = match (country, currency) {
            // A provider or method that did not parse is reported already: no routing guess.
            (Some(country), Some(currency))
                if self.provider.is_some() == explicit_provider.is_some()
                    && self.payout_method.is_some() == method.is_some() =>
            {
                coverage.route(
                    RouteQuery {
                        provider: explicit_provider,
                        country,
                        currency,
                        method,
                        amount,
                        beneficiary: beneficiary.as_ref(),
                    },
                    &mut errors,
                )
            }
            _ => None,
        };
        let provider = route.as_ref().map(|r| r.provider);
        let hold = self.hold.unwrap_or(false);
        if let Some(p) = provider
            && hold
            && !p.supports_hold()
        {
            errors.push("hold", "unsupported", format!("{p} cannot hold a payout"));
        }

        match (currency, country, requested_by, provider, beneficiary, invoices) {
            (Some(currency), Some(country), Some(requested_by), Some(provider), Some(beneficiary), Some(invoices))
                if errors.is_empty() =>
            {
                let (payout_method, payout_service) = route.map_or((None, None), |r| (r.method, r.service));
                Ok(CashoutDraft {
                    currency,
                    country,
                    requested_by,
                    provider,
                    provider_pinned: explicit_provider.is_some(),
                    payout_method,
                    payout_service,
                    beneficiary,
                    invoices,
                    metadata,
                    hold,
                })
            }
            _ => Err(errors),
        }
    }
}

fn validate_invoices(
    list: Vec<InvoiceInput>,
    currency: Currency,
    errors: &mut ValidationErrors,
) -> Option<Vec<InvoiceDraft>> {
    if list.is_empty() || list.len() > MAX_INVOICES {
        errors.push(
            "invoices",
            "invalid_count",
            format!("between 1 and {MAX_INVOICES} invoices"),
        );
        return None;
    }
    let before = errors.0.len();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, inv) in list.into_iter().enumerate() {
        if let Some(draft) = validate_invoice(i, inv, currency, &mut seen, errors) {
            out.push(draft);
        }
    }
    (errors.0.len() == before).then_some(out)
}

/// One invoice of the list (`i`: its position, for the field paths); `seen` holds the ids of
/// the invoices before it.
fn validate_invoice(
    i: usize,
    inv: InvoiceInput,
    currency: Currency,
    seen: &mut std::collections::HashSet<InvoiceId>,
    errors: &mut ValidationErrors,
) -> Option<InvoiceDraft> {
    let path = |f: &str| format!("invoices[{i}].{f}");
    let id = match inv.invoice_id.as_deref() {
        None => {
            errors.push(path("invoice_id"), "required", "is required");
            None
        }
        Some(s) => match InvoiceId::new(s) {
            Ok(id) if !seen.insert(id.clone()) => {
                errors.push(
                    path("invoice_id"),
                    "duplicate",
                    format!("`{id}` appears more than once"),
                );
                None
            }
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(path("invoice_id"), "invalid", e.to_string());
                None
            }
        },
    };
    let payer = match inv.payer {
        None => {
            errors.push(path("payer"), "required", "is required");
            None
        }
        Some(p) => {
            let tax_id = text(errors, &path("payer.tax_id"), p.tax_id.as_deref(), 32, true);
            let name = text(errors, &path("payer.name"), p.name.as_deref(), 200, true);
            tax_id.zip(name).map(|(tax_id, name)| Payer { tax_id, name })
        }
    };
    let amount = match inv.amount {
        None => {
            errors.push(path("amount"), "required", "is required");
            None
        }
        Some(a) => Amount::new(a.0, currency)
            .map_err(|e| errors.push(path("amount"), "invalid", e.to_string()))
            .ok(),
    };
    let pct = match inv.advance_percentage {
        None => {
            errors.push(path("advance_percentage"), "required", "is required");
            None
        }
        Some(p) => Percentage::new(p.0)
            .map_err(|e| errors.push(path("advance_percentage"), "invalid", e.to_string()))
            .ok(),
    };
    let eligible = match (amount, pct) {
        (Some(a), Some(p)) => a
            .percentage_of(p, currency)
            .map_err(|e| errors.push(path("advance_percentage"), "invalid", e.to_string()))
            .ok(),
        _ => None,
    };
    Some(InvoiceDraft {
        invoice_id: id?,
        payer: payer?,
        amount: amount?,
        advance_percentage: pct?,
        eligible_amount: eligible?,
    })
}

/// A required field parsed from its text: `required` when absent, `invalid` with the parser's
/// message when it does not parse.
fn required<T: std::str::FromStr>(errors: &mut ValidationErrors, field: &str, value: Option<&str>) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    if value.is_none() {
        errors.push(field, "required", "is required");
    }
    optional(errors, field, value)
}

/// An optional field parsed from its text: `invalid` with the parser's message when it does not
/// parse.
fn optional<T: std::str::FromStr>(errors: &mut ValidationErrors, field: &str, value: Option<&str>) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    value?
        .parse()
        .map_err(|e: T::Err| errors.push(field, "invalid", e.to_string()))
        .ok()
}

fn check_metadata(metadata: &serde_json::Map<String, serde_json::Value>, errors: &mut ValidationErrors) {
    if metadata.len() > MAX_METADATA_KEYS {
        errors.push("metadata", "too_large", format!("at most {MAX_METADATA_KEYS} keys"));
    } else if serde_json::to_vec(metadata).map_or(0, |v| v.len()) > MAX_METADATA_BYTES {
        errors.push("metadata", "too_large", format!("at most {MAX_METADATA_BYTES} bytes"));
    }
}

impl BeneficiaryInput {
    fn validate(self, errors: &mut ValidationErrors) -> Option<Beneficiary> {
        let before = errors.0.len();
        let f = |name: &str| format!("beneficiary.{name}");
        let name = text(errors, &f("name"), self.name.as_deref(), 100, true);
        let last_name = text(errors, &f("last_name"), self.last_name.as_deref(), 100, false);
        let document_type = text(errors, &f("document_type"), self.document_type.as_deref(), 10, false);
        let document_id = token(errors, &f("document_id"), self.document_id.as_deref(), 30, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/')
        });
        let email = email(errors, &f("email"), self.email.as_deref());
        let phone = token(errors, &f("phone"), self.phone.as_deref(), 20, |c| {
            c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')
        });
        let bank_code = token(errors, &f("bank_code"), self.bank_code.as_deref(), 20, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        });
        let bank_branch = token(errors, &f("bank_branch"), self.bank_branch.as_deref(), 20, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        });
        let bank_account = token(errors, &f("bank_account"), self.bank_account.as_deref(), 64, |c| {
            c.is_ascii_graphic()
        });
        let card_number = card_number(errors, &f("card_number"), self.card_number.as_deref());
        let reference_id = token(errors, &f("reference_id"), self.reference_id.as_deref(), 64, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
        });
        let account_type = token(errors, &f("account_type"), self.account_type.as_deref(), 20, |c| {
            c.is_ascii_alphanumeric() || c == '_'
        });
        let address = text(errors, &f("address"), self.address.as_deref(), 200, false);
        let city = text(errors, &f("city"), self.city.as_deref(), 100, false);
        let postal_code = token(errors, &f("postal_code"), self.postal_code.as_deref(), 20, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | ' ')
        });
        let birthdate = self.birthdate.as_deref().and_then(|d| {
            time::Date::parse(d, format_description!("[year]-[month]-[day]"))
                .map_err(|_| errors.push(f("birthdate"), "invalid", "must be a date as YYYY-MM-DD"))
                .ok()
        });
        let extra_fields = self.extra_fields.unwrap_or_default();
        check_extra_fields(&extra_fields, &f("extra_fields"), errors);
        if errors.0.len() != before {
            return None;
        }
        Some(Beneficiary {
            name: name?,
            last_name,
            document_type,
            document_id,
            email,
            phone,
            bank_code,
            bank_branch,
            bank_account: bank_account.map(AccountNumber::new),
            card_number,
            account_type,
            address,
            city,
            postal_code,
            birthdate,
            reference_id,
            extra_fields,
        })
    }
}

/// An optional e-mail address: a local part, `@`, and a domain with a dot; no spaces.
fn email(errors: &mut ValidationErrors, field: &str, value: Option<&str>) -> Option<String> {
    let email = text(errors, field, value, 254, false)?;
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@') && !email.contains(char::is_whitespace)
    });
    if valid {
        Some(email)
    } else {
        errors.push(field, "invalid", "is not an e-mail address");
        None
    }
}

/// An optional card number. ISO/IEC 7812: up to 19 digits, the last a Luhn check digit. The
/// message never repeats the number.
fn card_number(errors: &mut ValidationErrors, field: &str, value: Option<&str>) -> Option<CardNumber> {
    let card = CardNumber::new(token(errors, field, value, 19, |c| c.is_ascii_digit())?);
    if card.expose().len() >= 12 && card.luhn_valid() {
        Some(card)
    } else {
        errors.push(
            field,
            "invalid",
            "is not a card number (12 to 19 digits, the last a valid check digit)",
        );
        None
    }
}

fn check_extra_fields(extra_fields: &BTreeMap<String, String>, field: &str, errors: &mut ValidationErrors) {
    if extra_fields.len() > 20
        || extra_fields
            .iter()
            .any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 256)
    {
        errors.push(
            field,
            "too_large",
            "at most 20 fields of 64-character keys and 256-character values",
        );
    }
}

/// An optional code-like field: at most `max` characters, each passing `allowed`.
fn token(
    errors: &mut ValidationErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
    allowed: fn(char) -> bool,
) -> Option<String> {
    let value = text(errors, field, value, max, false)?;
    if value.chars().all(allowed) {
        Some(value)
    } else {
        errors.push(field, "invalid", "contains characters that are not allowed");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn valid_body() -> serde_json::Value {
        json!({
            "currency": "BRL",
            "country": "BR",
            "requested_by": "ana@clinic.example",
            "beneficiary": {"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                            "email": "ana@clinic.example", "bank_code": "001", "bank_branch": "1234", "bank_account": "123456789", "account_type": "C"},
            "invoices": [
                {"invoice_id": "INV-1", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": "1000.00", "advance_percentage": "80"},
                {"invoice_id": "INV-2", "payer": {"tax_id": "11222333000181", "name": "Health Co"}, "amount": 250.55, "advance_percentage": 50}
            ],
            "metadata": {"seller": "42"}
        })
    }

    fn parse(v: serde_json::Value) -> Result<CashoutDraft, ValidationErrors> {
        serde_json::from_str::<CashoutInput>(&v.to_string())
            .unwrap()
            .validate(&Coverage::default())
    }

    #[test]
    fn a_valid_body_computes_eligible_amounts_and_routes() {
        let draft = parse(valid_body()).unwrap();
        assert_eq!(draft.provider(), ProviderName::D24);
        assert_eq!(draft.invoices[0].eligible_amount.to_string(), "800.00");
        // 250.55 × 50 % = 125.275 → 125.28 (half-even on the last digit: 7 is odd, so up).
        assert_eq!(draft.invoices[1].eligible_amount.to_string(), "125.28");
        assert_eq!(draft.requested_amount().to_string(), "925.28");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut body = valid_body();
        body["currency"] = json!("BRL");
        body["invoices"][0]["amount"] = json!("10.001");
        body["invoices"][1]["invoice_id"] = json!("INV-1");
        body["invoices"][1]["advance_percentage"] = json!("101");
        body["beneficiary"]["email"] = json!("not-an-email");
        body["requested_by"] = json!("  ");
        let errors = parse(body).unwrap_err();
        for field in [
            "invoices[0].amount",
            "invoices[1].invoice_id",
            "invoices[1].advance_percentage",
            "beneficiary.email",
            "requested_by",
        ] {
            assert_eq!(errors.for_field(field).len(), 1, "{field}: {errors}");
        }
        assert_eq!(errors.for_field("invoices[1].invoice_id")[0].code, "duplicate");
    }

    #[test]
    fn invoice_counts_are_bounded() {
        let mut body = valid_body();
        body["invoices"] = json!([]);
        assert_eq!(
            parse(body.clone()).unwrap_err().for_field("invoices")[0].code,
            "invalid_count"
        );
        let one = valid_body()["invoices"][0].clone();
        let many: Vec<_> = (0..501)
            .map(|i| {
                let mut inv = one.clone();
                inv["invoice_id"] = json!(format!("INV-{i}"));
                inv
            })
            .collect();
        body["invoices"] = json!(many[..500]);
        assert!(parse(body.clone()).is_ok());
        body["invoices"] = json!(many);
        assert!(parse(body).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut body = valid_body();
        body["colour"] = json!("blue");
        assert!(serde_json::from_str::<CashoutInput>(&body.to_string()).is_err());
        let mut body = valid_body();
        body["invoices"][0]["discount"] = json!("1");
        assert!(serde_json::from_str::<CashoutInput>(&body.to_string()).is_err());
    }

    #[test]
    fn bad_currency_country_and_provider_are_refused() {
        let mut body = valid_body();
        body["currency"] = json!("XYZ");
        body["country"] = json!("Brazil");
        assert!(parse(body).unwrap_err().for_field("currency").len() == 1);
        let mut body = valid_body();
        body["provider"] = json!("tupay");
        assert_eq!(parse(body).unwrap_err().for_field("provider")[0].code, "unsupported");
        let mut body = valid_body();
        body["provider"] = json!("paypal");
        assert_eq!(parse(body).unwrap_err().for_field("provider")[0].code, "invalid");
    }

    #[test]
    fn tupay_rules_apply_in_peru() {
        let mut body = valid_body();
        body["currency"] = json!("PEN");
        body["country"] = json!("PE");
        body["beneficiary"]["document_type"] = json!("DNI");
        body["beneficiary"]["document_id"] = json!("1234567");
        body["beneficiary"]["account_type"] = json!("X");
        let errors = parse(body.clone()).unwrap_err();
        assert_eq!(errors.for_field("beneficiary.document_id").len(), 1, "{errors}");
        assert_eq!(errors.for_field("beneficiary.account_type").len(), 1, "{errors}");
        body["beneficiary"]["document_id"] = json!("12345678");
        body["beneficiary"]["account_type"] = json!("S");
        body["beneficiary"]["bank_account"] = json!("00212300456789012345");
        let draft = parse(body).unwrap();
        assert_eq!(draft.provider(), ProviderName::Tupay);
    }

    fn cascad_card_body() -> serde_json::Value {
        let mut body = valid_body();
        body["currency"] = json!("USD");
        body["country"] = json!("US");
        body["payout_method"] = json!("card");
        body["beneficiary"] = json!({"name": "John", "last_name": "Wick", "card_number": "5123817234060000"});
        body
    }

    fn parse_with_cascad(v: serde_json::Value) -> Result<CashoutDraft, ValidationErrors> {
        serde_json::from_str::<CashoutInput>(&v.to_string())
            .unwrap()
            .validate(&crate::routing::tests::coverage())
    }

    #[test]
    fn a_cascad_card_payout_is_routed_to_the_card_service() {
        let draft = parse_with_cascad(cascad_card_body()).unwrap();
        assert_eq!(draft.provider(), ProviderName::Cascad);
        assert_eq!(draft.payout_method(), Some(PayoutMethodKind::Card));
        assert_eq!(draft.payout_service(), Some("card"));
        assert_eq!(
            format!("{:?}", draft.beneficiary.card_number),
            "Some(CardNumber(512381******0000))"
        );
    }

    #[test]
    fn cascad_fields_are_refused_at_creation_naming_the_field() {
        let mut body = cascad_card_body();
        body["payout_method"] = json!(null);
        let errors = parse_with_cascad(body).unwrap_err();
        assert_eq!(errors.for_field("payout_method")[0].code, "required", "{errors}");

        let mut body = cascad_card_body();
        body["beneficiary"]["card_number"] = json!("5123817234060001");
        let errors = parse_with_cascad(body).unwrap_err();
        assert_eq!(
            errors.for_field("beneficiary.card_number")[0].code,
            "invalid",
            "{errors}"
        );
        assert!(!errors.to_string().contains("5123817234060001"), "{errors}");

        let mut body = cascad_card_body();
        body["beneficiary"]["card_number"] = json!(null);
        body["beneficiary"]["bank_account"] = json!("123456789");
        let errors = parse_with_cascad(body).unwrap_err();
        assert_eq!(
            errors.for_field("beneficiary.card_number")[0].code,
            "required",
            "{errors}"
        );

        let mut body = cascad_card_body();
        body["payout_method"] = json!("pigeon");
        let errors = parse_with_cascad(body).unwrap_err();
        assert_eq!(errors.for_field("payout_method")[0].code, "invalid", "{errors}");
        assert_eq!(errors.0.len(), 1, "no routing guess after a bad method: {errors}");
    }
}
