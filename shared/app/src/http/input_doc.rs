//! The documented form of `POST /v1/cashout-requests`'s body. The body is read by
//! [`cashout_core::input::CashoutInput`] (every field optional at the JSON level, so that one
//! answer names every problem); these types only describe it, with every constraint the server
//! enforces on one field alone: types, required fields, lengths (counted in characters as sent),
//! the currency, country and provider lists, the number of invoices and of metadata keys. Rules
//! that tie fields together or depend on the deployment — which provider pays a country and
//! currency, the beneficiary fields that provider needs, an amount's decimals in its currency,
//! distinct invoice ids, the size of the metadata — are checked by the server and answered with
//! `422 validation_failed` naming each field. A test keeps these fields equal to core's.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use crate::http::openapi::{CountrySchema, CurrencySchema, DecimalSchema, PayoutMethodSchema, ProviderSchema};

/// A cashout request to create.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CashoutInputDoc {
    /// The currency of every invoice and of the payout.
    #[schema(value_type = CurrencySchema)]
    currency: String,
    /// The beneficiary's country.
    #[schema(value_type = CountrySchema)]
    country: String,
    /// Who asked for the advance (a user of the merchant).
    #[schema(min_length = 1, max_length = 254)]
    requested_by: String,
    /// Pins the provider; routed by country and currency when absent.
    #[schema(value_type = Option<ProviderSchema>)]
    provider: Option<String>,
    /// How the payout reaches the beneficiary. Required when the currency can be paid more than
    /// one way (Cascad pays USD by card and by its test service); the D24 family pays bank
    /// transfers only. `GET /v1/payout-methods` lists the ways and the fields each needs.
    #[schema(value_type = Option<PayoutMethodSchema>)]
    payout_method: Option<String>,
    /// Who receives the money.
    beneficiary: BeneficiaryInputDoc,
    /// The invoices advanced, with distinct ids.
    #[schema(min_items = 1, max_items = 500)]
    invoices: Vec<InvoiceInputDoc>,
    /// Free-form merchant data, returned as given (at most 50 keys and 8 KiB).
    #[schema(value_type = Option<Object>)]
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    /// Create the payout on hold (D24 and Onspot): it is paid once an operator releases it.
    hold: Option<bool>,
}

/// The beneficiary of a cashout request. Which fields a provider needs: `GET /v1/payout-methods`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BeneficiaryInputDoc {
    /// First name(s), or the company name.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Last name(s).
    #[schema(max_length = 100)]
    last_name: Option<String>,
    /// `CPF`, `DNI`, `RUC`, `CE`, `PASS`…
    #[schema(max_length = 10)]
    document_type: Option<String>,
    /// Letters, digits, `.`, `-`, `/`.
    #[schema(max_length = 30)]
    document_id: Option<String>,
    /// E-mail address.
    #[schema(max_length = 254)]
    email: Option<String>,
    /// Digits, `+`, `-`, spaces, parentheses.
    #[schema(max_length = 20)]
    phone: Option<String>,
    /// Bank code.
    #[schema(max_length = 20)]
    bank_code: Option<String>,
    /// Bank branch.
    #[schema(max_length = 20)]
    bank_branch: Option<String>,
    /// Account number (masked in every answer and log).
    #[schema(max_length = 64)]
    bank_account: Option<String>,
    /// A payment card number for card payouts: 12 to 19 digits, the last a valid (Luhn) check
    /// digit (masked to its first six and last four digits in every answer and log).
    #[schema(pattern = "^[0-9]{12,19}$")]
    card_number: Option<String>,
    /// `C` checking, `S` savings, or the provider's own words.
    #[schema(max_length = 20)]
    account_type: Option<String>,
    /// Street address.
    #[schema(max_length = 200)]
    address: Option<String>,
    /// City.
    #[schema(max_length = 100)]
    city: Option<String>,
    /// Postal code.
    #[schema(max_length = 20)]
    postal_code: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    birthdate: Option<String>,
    /// Your own id for the beneficiary (sent to Cascad as its customer): letters, digits,
    /// `- _ . :`.
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    reference_id: Option<String>,
    /// A provider's own fields by key (at most 20; keys of at most 64 characters, values of at
    /// most 256).
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    extra_fields: Option<BTreeMap<String, String>>,
}

/// One invoice advanced.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct InvoiceInputDoc {
    /// The merchant's invoice id: letters, digits, `_ - . : / #`, at most 64.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:/#-]{1,64}$")]
    invoice_id: String,
    /// Who owes it.
    payer: PayerInputDoc,
    /// Its amount in the request's currency: a decimal string or number, exact, positive, with at
    /// most the currency's decimals.
    #[schema(value_type = DecimalSchema)]
    amount: String,
    /// The share advanced, in `(0, 100]`.
    #[schema(value_type = DecimalSchema)]
    advance_percentage: String,
}

/// Who owes an invoice.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PayerInputDoc {
    /// Tax id.
    #[schema(min_length = 1, max_length = 32)]
    tax_id: String,
    /// Name.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[cfg(test)]
mod tests {
    use cashout_core::input::{BeneficiaryInput, CashoutInput, InvoiceInput, PayerInput};
    use serde_json::{Value, json};

    use crate::http::openapi::generate;

    /// The documented properties of component `name`.
    fn documented(document: &Value, name: &str) -> Vec<String> {
        let mut keys: Vec<String> = document["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} is not documented"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_documented_create_body_has_exactly_the_fields_core_reads() {
        // Destructuring without `..`: a field added to core's input fails to compile here, which
        // is where its documentation is due.
        let CashoutInput {
            currency: _,
            country: _,
            requested_by: _,
            provider: _,
            payout_method: _,
            beneficiary: _,
            invoices: _,
            metadata: _,
            hold: _,
        } = CashoutInput::default();
        let BeneficiaryInput {
            name: _,
            last_name: _,
            document_type: _,
            document_id: _,
            email: _,
            phone: _,
            bank_code: _,
            bank_branch: _,
            bank_account: _,
            card_number: _,
            account_type: _,
            address: _,
            city: _,
            postal_code: _,
            birthdate: _,
            reference_id: _,
            extra_fields: _,
        } = BeneficiaryInput::default();
        let InvoiceInput {
            invoice_id: _,
            payer: _,
            amount: _,
            advance_percentage: _,
        } = InvoiceInput::default();
        let PayerInput { tax_id: _, name: _ } = PayerInput::default();

        let document: Value = serde_json::from_str(&generate()).unwrap();
        let cases: [(&str, &[&str]); 4] = [
            (
                "CashoutInputDoc",
                &[
                    "currency",
                    "country",
                    "requested_by",
                    "provider",
                    "payout_method",
                    "beneficiary",
                    "invoices",
                    "metadata",
                    "hold",
                ],
            ),
            (
                "BeneficiaryInputDoc",
                &[
                    "name",
                    "last_name",
                    "document_type",
                    "document_id",
                    "email",
                    "phone",
                    "bank_code",
                    "bank_branch",
                    "bank_account",
                    "card_number",
                    "account_type",
                    "address",
                    "city",
                    "postal_code",
                    "birthdate",
                    "reference_id",
                    "extra_fields",
                ],
            ),
            (
                "InvoiceInputDoc",
                &["invoice_id", "payer", "amount", "advance_percentage"],
            ),
            ("PayerInputDoc", &["tax_id", "name"]),
        ];
        for (name, fields) in cases {
            assert_eq!(documented(&document, name), sorted(fields), "{name}");
        }
        // and core reads every documented field (it refuses unknown ones; every field is
        // optional at the JSON level, so null stands for any value)
        let nulls = |name: &str| -> serde_json::Map<String, Value> {
            documented(&document, name)
                .into_iter()
                .map(|k| (k, Value::Null))
                .collect()
        };
        let mut invoice = nulls("InvoiceInputDoc");
        invoice.insert("payer".into(), Value::Object(nulls("PayerInputDoc")));
        let mut full = nulls("CashoutInputDoc");
        full.insert("beneficiary".into(), Value::Object(nulls("BeneficiaryInputDoc")));
        full.insert("invoices".into(), json!([invoice]));
        let full = Value::Object(full);
        serde_json::from_value::<CashoutInput>(full).expect("core reads every documented field");
    }
}
