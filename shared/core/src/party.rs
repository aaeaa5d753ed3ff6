//! The people around a cashout: the beneficiary who receives the money, the payers of the
//! invoices, and the country they are in.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 3166-1 alpha-2 country code (`BR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES \
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO \
IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK \
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR \
PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK \
TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A text that is not an assigned ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 3166-1 alpha-2 country code")]
pub struct UnknownCountry(pub String);

impl Country {
    /// Every assigned ISO 3166-1 alpha-2 code, in alphabetical order.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        COUNTRIES.split(' ')
    }

    /// The two-letter code.
    pub fn code(&self) -> &str {
        // Only ASCII uppercase letters are ever stored (checked in `from_str`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for Country {
    type Err = UnknownCountry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() == 2 && bytes.iter().all(u8::is_ascii_uppercase) && COUNTRIES.split(' ').any(|c| c == s) {
            Ok(Country([bytes[0], bytes[1]]))
        } else {
            Err(UnknownCountry(s.chars().take(8).collect()))
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// A bank account number (or CCI, CBU, CLABE, PIX key…). Its `Debug` and `Display` show only
/// the last four characters; the full number is only for the provider call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountNumber(String);

impl AccountNumber {
    /// Wraps an account number (validated by the beneficiary rules).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The full number. Only provider adapters should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The number with everything but the last four characters replaced by `*`
    /// (`******1234`); numbers of four characters or fewer are fully masked.
    pub fn masked(&self) -> String {
        mask(&self.0, 0)
    }
}

/// A document number (a tax id: CPF, DNI, RUC…) as views and logs show it: every character but
/// the last four replaced by `*` (fully masked at four characters or fewer), like an account
/// number.
pub fn mask_document(text: &str) -> String {
    mask(text, 0)
}

/// `text` with every character replaced by `*` but the first `head` and the last four; a text
/// of four characters or fewer is fully masked.
fn mask(text: &str, head: usize) -> String {
    let n = text.chars().count();
    let tail = if n > 4 { 4 } else { 0 };
    text.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { c } else { '*' })
        .collect()
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountNumber({})", self.masked())
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A payment card number (PAN), digits only. As sensitive as an account number: its `Debug`
/// and `Display` show what a card's holder may see printed (the first six and last four digits,
/// `512381******0000`, as Cascad masks cards in seed 003 line 392); the full number is only for
/// the provider call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardNumber(String);

impl CardNumber {
    /// Wraps a card number (validated by the beneficiary rules).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The full number. Only provider adapters and the service checks should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first six and last four characters, the rest `*`; a number of twelve characters or
    /// fewer shows its last four only (fully masked at four or fewer).
    pub fn masked(&self) -> String {
        let head = if self.0.chars().count() > 12 { 6 } else { 0 };
        mask(&self.0, head)
    }

    /// Whether the last digit is the Luhn check digit of the others (ISO/IEC 7812: every card
    /// number's is).
    pub fn luhn_valid(&self) -> bool {
        let mut sum = 0u32;
        for (i, c) in self.0.chars().rev().enumerate() {
            let Some(d) = c.to_digit(10) else {
                return false;
            };
            sum += if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            };
        }
        !self.0.is_empty() && sum.is_multiple_of(10)
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Who receives the money: provider-agnostic fields; each provider's adapter takes what its API
/// needs, and [`crate::routing::check_beneficiary`] refuses at creation what a provider would
/// decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beneficiary {
    /// First name(s), or the company name.
    pub name: String,
    /// Last name(s).
    pub last_name: Option<String>,
    /// Document type (`CPF`, `DNI`, `RUC`, `CE`, `PASS`…).
    pub document_type: Option<String>,
    /// Document number.
    pub document_id: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    pub bank_code: Option<String>,
    pub bank_branch: Option<String>,
    /// Account number (masked everywhere but the provider call).
    pub bank_account: Option<AccountNumber>,
    /// Payment card number (masked everywhere but the provider call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<CardNumber>,
    /// Account type (`C` checking, `S` savings, or the provider's own words).
    pub account_type: Option<String>,
    /// Street address.
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    pub birthdate: Option<time::Date>,
    /// The merchant's own id for the beneficiary (Cascad: `customer.reference_id`; the customer
    /// object is sent only when it is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// Provider-specific fields by key (for example a Cascad service's own fields).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_fields: BTreeMap<String, String>,
}

impl Beneficiary {
    /// A beneficiary known only by name; the other fields are set with struct update syntax.
    pub fn named(name: impl Into<String>) -> Self {
        Beneficiary {
            name: name.into(),
            last_name: None,
            document_type: None,
            document_id: None,
            email: None,
            phone: None,
            bank_code: None,
            bank_branch: None,
            bank_account: None,
            card_number: None,
            account_type: None,
            address: None,
            city: None,
            postal_code: None,
            birthdate: None,
            reference_id: None,
            extra_fields: BTreeMap::new(),
        }
    }
}

/// Who owes an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The payer's tax id.
    pub tax_id: String,
    /// The payer's name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_assigned_alpha2_codes() {
        for ok in ["BR", "PE", "MX", "US", "ZW", "AD"] {
            assert_eq!(ok.parse::<Country>().unwrap().code(), ok);
        }
        for bad in ["br", "XX", "BRA", "", "B", "ZZ"] {
            assert!(bad.parse::<Country>().is_err(), "{bad}");
        }
        assert_eq!(COUNTRIES.split(' ').count(), 249);
    }

    #[test]
    fn account_numbers_never_print_in_full() {
        let a = AccountNumber::new("0012345678901234567890");
        assert_eq!(a.masked(), "******************7890");
        assert_eq!(format!("{a:?}"), "AccountNumber(******************7890)");
        assert_eq!(a.to_string(), a.masked());
        assert_eq!(AccountNumber::new("123").masked(), "***");
    }

    #[test]
    fn card_numbers_show_their_first_six_and_last_four_digits_only() {
        // Seed 003 line 338 sends 5123817234060000 and line 392 shows it back masked.
        let c = CardNumber::new("5123817234060000");
        assert_eq!(c.masked(), "512381******0000");
        assert_eq!(format!("{c:?}"), "CardNumber(512381******0000)");
        assert_eq!(c.to_string(), c.masked());
        assert_eq!(CardNumber::new("123456789012").masked(), "********9012");
        assert_eq!(CardNumber::new("1234").masked(), "****");
        assert!(c.luhn_valid(), "the seed's card number has a valid check digit");
        assert!(!CardNumber::new("5123817234060001").luhn_valid());
        assert!(!CardNumber::new("").luhn_valid());
        assert!(!CardNumber::new("51238172340600x0").luhn_valid());
    }
}
