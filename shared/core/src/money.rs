//! Exact money: ISO-4217 currencies with their minor units, positive amounts that fit them, and
//! percentages. Nothing here ever goes through a binary float.
//!
//! Rounding rule (the only place cashout rounds): an invoice's eligible amount is
//! `amount × advance_percentage / 100`, rounded **half to even** ("banker's rounding") to the
//! currency's minor unit. Half-even has no upward bias when many invoices are summed, and it is
//! the rule the request's `requested_amount` (the sum of eligible amounts) is computed with.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an amount, a percentage or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a plain decimal number (`123`, `123.45`).
    #[error("`{0}` is not a decimal number (digits with an optional `.` and fraction)")]
    NotADecimal(String),
    /// Zero or negative: a payout amount is always positive.
    #[error("the amount must be greater than zero")]
    NotPositive,
    /// More fractional digits than the currency has (`10.001` USD).
    #[error("{currency} has {minor_units} decimal places; `{amount}` has more")]
    TooPrecise {
        /// The amount as given.
        amount: String,
        /// The currency it was given in.
        currency: Currency,
        /// The number of minor-unit digits the currency allows.
        minor_units: u32,
    },
    /// Larger than any sane payout ([`Amount::MAX_MAJOR_UNITS`]).
    #[error("the amount exceeds the maximum of {max} major units")]
    TooLarge {
        /// The limit in major units.
        max: u64,
    },
    /// Not an active ISO-4217 currency code that cashout knows.
    #[error("`{0}` is not a supported ISO-4217 currency code")]
    UnknownCurrency(String),
    /// A percentage outside `(0, 100]` or with more than four decimals.
    #[error("the advance percentage must be greater than 0 and at most 100, with at most 4 decimals")]
    InvalidPercentage,
    /// The eligible amount rounds to zero in the currency's minor unit.
    #[error("the eligible amount rounds to zero in {0}")]
    EligibleAmountIsZero(Currency),
}

macro_rules! currencies {
    ($($code:ident = $minor:literal),+ $(,)?) => {
        /// An active ISO-4217 currency, with the number of digits of its minor unit.
        ///
        /// Only currencies that can be paid out are listed (no funds codes such as `BOV`,
        /// no precious metals, no `XXX`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum Currency { $($code),+ }

        impl Currency {
            /// Every supported currency, in code order.
            pub const SUPPORTED: &'static [Currency] = &[$(Currency::$code),+];

            /// The three-letter ISO code.
            pub const fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code)),+ }
            }

            /// Digits after the decimal point in this currency (JPY 0, USD 2, KWD 3).
            pub const fn minor_units(self) -> u32 {
                match self { $(Currency::$code => $minor),+ }
            }
        }

        impl FromStr for Currency {
            type Err = MoneyError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $(stringify!($code) => Ok(Currency::$code),)+
                    other => Err(MoneyError::UnknownCurrency(other.chars().take(16).collect())),
                }
            }
        }
    };
}

currencies! {
    AED = 2, AFN = 2, ALL = 2, AMD = 2, ANG = 2, AOA = 2, ARS = 2, AUD = 2, AWG = 2, AZN = 2,
    BAM = 2, BBD = 2, BDT = 2, BGN = 2, BHD = 3, BIF = 0, BMD = 2, BND = 2, BOB = 2, BRL = 2,
    BSD = 2, BTN = 2, BWP = 2, BYN = 2, BZD = 2, CAD = 2, CDF = 2, CHF = 2, CLF = 4, CLP = 0,
    CNY = 2, COP = 2, CRC = 2, CUP = 2, CVE = 2, CZK = 2, DJF = 0, DKK = 2, DOP = 2, DZD = 2,
    EGP = 2, ERN = 2, ETB = 2, EUR = 2, FJD = 2, FKP = 2, GBP = 2, GEL = 2, GHS = 2, GIP = 2,
    GMD = 2, GNF = 0, GTQ = 2, GYD = 2, HKD = 2, HNL = 2, HTG = 2, HUF = 2, IDR = 2, ILS = 2,
    INR = 2, IQD = 3, IRR = 2, ISK = 0, JMD = 2, JOD = 3, JPY = 0, KES = 2, KGS = 2, KHR = 2,
    KMF = 0, KPW = 2, KRW = 0, KWD = 3, KYD = 2, KZT = 2, LAK = 2, LBP = 2, LKR = 2, LRD = 2,
    LSL = 2, LYD = 3, MAD = 2, MDL = 2, MGA = 2, MKD = 2, MMK = 2, MNT = 2, MOP = 2, MRU = 2,
    MUR = 2, MVR = 2, MWK = 2, MXN = 2, MYR = 2, MZN = 2, NAD = 2, NGN = 2, NIO = 2, NOK = 2,
    NPR = 2, NZD = 2, OMR = 3, PAB = 2, PEN = 2, PGK = 2, PHP = 2, PKR = 2, PLN = 2, PYG = 0,
    QAR = 2, RON = 2, RSD = 2, RUB = 2, RWF = 0, SAR = 2, SBD = 2, SCR = 2, SDG = 2, SEK = 2,
    SGD = 2, SHP = 2, SLE = 2, SOS = 2, SRD = 2, SSP = 2, STN = 2, SVC = 2, SYP = 2, SZL = 2,
    THB = 2, TJS = 2, TMT = 2, TND = 3, TOP = 2, TRY = 2, TTD = 2, TWD = 2, TZS = 2, UAH = 2,
    UGX = 0, USD = 2, UYI = 0, UYU = 2, UYW = 4, UZS = 2, VES = 2, VND = 0, VUV = 0, WST = 2,
    XAF = 0, XCD = 2, XOF = 0, XPF = 0, YER = 2, ZAR = 2, ZMW = 2, ZWG = 2,
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// Parses a plain decimal literal exactly: optional `-`, digits, optional `.` and digits.
///
/// Exponents, `+`, spaces, `NaN` and friends are refused, and so is anything longer than
/// 40 characters (no amount needs more; it bounds the work done on hostile input).
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let refuse = || MoneyError::NotADecimal(text.chars().take(40).collect());
    if text.is_empty() || text.len() > 40 {
        return Err(refuse());
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(refuse());
    }
    Decimal::from_str_exact(text).map_err(|_| refuse())
}

/// A decimal kept as text (`"248.24"`) in stored and queued data, never through a float, for
/// `#[serde(with = …)]`. Written here because `rust_decimal`'s own helpers cannot read from the
/// buffered content of an internally tagged enum (`PayoutState`, `AttentionReason`).
pub mod decimal_text {
    use rust_decimal::Decimal;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the decimal as a string.
    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    /// Reads a decimal string ([`super::parse_decimal`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_decimal(&text).map_err(D::Error::custom)
    }

    /// The same for an optional decimal (`null` when absent).
    pub mod option {
        use super::*;

        /// Writes the decimal as a string, or `null`.
        pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(d) => s.collect_str(d),
                None => s.serialize_none(),
            }
        }

        /// Reads a decimal string or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| crate::money::parse_decimal(&text).map_err(D::Error::custom))
                .transpose()
        }
    }
}

/// A decimal exactly as a client wrote it, from a JSON string (`"1000.50"`) or a JSON number
/// (`1000.50`), never through a float. Not yet checked against a currency: turn it into an
/// [`Amount`] or a [`Percentage`].
///
/// Reading a number exactly relies on `serde_json`'s raw values, so this type can be
/// deserialized by `serde_json` directly, not from buffered content (untagged or internally
/// tagged enums, `flatten`); stored and queued data keeps amounts as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalInput(pub Decimal);

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<serde_json::value::RawValue>>::deserialize(d)?;
        let text = raw.get();
        let value = if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(D::Error::custom)?;
            parse_decimal(&s)
        } else {
            parse_decimal(text)
        };
        value.map(DecimalInput).map_err(D::Error::custom)
    }
}

impl FromStr for DecimalInput {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_decimal(s).map(DecimalInput)
    }
}

/// A positive amount that fits a currency's minor unit, kept at exactly that scale
/// (`10` USD is held and printed as `10.00`).
///
/// An `Amount` does not carry its currency: inside a cashout request every amount is in the
/// request's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    /// The largest amount accepted, in major units (10^14). Larger values are input errors,
    /// and the bound keeps every sum of 500 of them exact.
    pub const MAX_MAJOR_UNITS: u64 = 100_000_000_000_000;

    /// Checks `value` against `currency`: positive, no more decimals than the currency's minor
    /// unit (trailing zeros are fine: `10.000` USD is `10.00`), at most
    /// [`Self::MAX_MAJOR_UNITS`].
    pub fn new(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if value <= Decimal::ZERO {
            return Err(MoneyError::NotPositive);
        }
        if value > Decimal::from(Self::MAX_MAJOR_UNITS) {
            return Err(MoneyError::TooLarge {
                max: Self::MAX_MAJOR_UNITS,
            });
        }
        let minor_units = currency.minor_units();
        if value.normalize().scale() > minor_units {
            return Err(MoneyError::TooPrecise {
                amount: value.to_string(),
                currency,
                minor_units,
            });
        }
        let mut exact = value;
        exact.rescale(minor_units);
        Ok(Amount(exact))
    }

    /// Parses a decimal string for `currency` (see [`Amount::new`]).
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        Self::new(parse_decimal(text)?, currency)
    }

    /// Builds an amount from an integer count of minor units (cents for USD).
    pub fn from_minor_units(minor: i128, currency: Currency) -> Result<Self, MoneyError> {
        let value =
            Decimal::try_from_i128_with_scale(minor, currency.minor_units()).map_err(|_| MoneyError::TooLarge {
                max: Self::MAX_MAJOR_UNITS,
            })?;
        Self::new(value, currency)
    }

    /// The exact decimal value.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// The amount as an integer count of the currency's minor units.
    pub fn to_minor_units(self) -> i128 {
        // The scale is the currency's minor unit (set in `new`), so the mantissa is exact.
        self.0.mantissa()
    }

    /// `self × percentage / 100`, rounded half-even to the currency's minor unit.
    pub fn percentage_of(self, percentage: Percentage, currency: Currency) -> Result<Self, MoneyError> {
        let raw = self.0 * percentage.value() / Decimal::ONE_HUNDRED;
        let rounded = raw.round_dp_with_strategy(currency.minor_units(), RoundingStrategy::MidpointNearestEven);
        if rounded.is_zero() {
            return Err(MoneyError::EligibleAmountIsZero(currency));
        }
        Self::new(rounded, currency)
    }

    /// Exact sum of amounts of one currency. The bound on each amount keeps sums of up to
    /// millions of them exact; `None` for an empty list.
    pub fn sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Option<Amount> {
        let mut it = amounts.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, a| Amount(acc.0 + a.0)))
    }

    /// The decimal text at the currency's scale (`"1000.00"`), the way amounts travel in JSON.
    pub fn to_decimal_string(self) -> String {
        self.0.to_string()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Reads an amount cashout wrote itself (a decimal string, scale already set). Client input goes
/// through [`DecimalInput`] and [`Amount::new`] instead, which also check the currency.
impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let value = parse_decimal(&s).map_err(D::Error::custom)?;
        if value <= Decimal::ZERO {
            return Err(D::Error::custom(MoneyError::NotPositive));
        }
        Ok(Amount(value))
    }
}

/// An invoice's advance percentage: greater than 0, at most 100, at most four decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentage(Decimal);

impl Percentage {
    /// Validates a percentage.
    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        if value <= Decimal::ZERO || value > Decimal::ONE_HUNDRED || value.normalize().scale() > 4 {
            return Err(MoneyError::InvalidPercentage);
        }
        Ok(Percentage(value.normalize()))
    }

    /// The exact value (80 means 80 %).
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Percentage::new(parse_decimal(&s).map_err(D::Error::custom)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::JPY.minor_units(), 0);
        assert_eq!(Currency::CLP.minor_units(), 0);
        assert_eq!(Currency::USD.minor_units(), 2);
        assert_eq!(Currency::BRL.minor_units(), 2);
        assert_eq!(Currency::PEN.minor_units(), 2);
        assert_eq!(Currency::BHD.minor_units(), 3);
        assert_eq!(Currency::KWD.minor_units(), 3);
        assert_eq!(Currency::CLF.minor_units(), 4);
    }

    #[test]
    fn currency_codes_round_trip_and_unknown_codes_are_refused() {
        for c in Currency::SUPPORTED {
            assert_eq!(c.code().parse::<Currency>().unwrap(), *c);
        }
        assert!(matches!("usd".parse::<Currency>(), Err(MoneyError::UnknownCurrency(_))));
        assert!("XXX".parse::<Currency>().is_err());
        assert!("BOV".parse::<Currency>().is_err());
    }

    #[test]
    fn amounts_are_kept_at_the_currency_scale() {
        assert_eq!(Amount::parse("10", Currency::USD).unwrap().to_string(), "10.00");
        assert_eq!(Amount::parse("10.5", Currency::USD).unwrap().to_string(), "10.50");
        assert_eq!(Amount::parse("10.000", Currency::USD).unwrap().to_string(), "10.00");
        assert_eq!(Amount::parse("1500", Currency::JPY).unwrap().to_string(), "1500");
        assert_eq!(Amount::parse("1.234", Currency::KWD).unwrap().to_minor_units(), 1234);
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_refused() {
        assert!(matches!(
            Amount::parse("10.001", Currency::USD),
            Err(MoneyError::TooPrecise { minor_units: 2, .. })
        ));
        assert!(matches!(
            Amount::parse("100.5", Currency::JPY),
            Err(MoneyError::TooPrecise { minor_units: 0, .. })
        ));
        assert!(Amount::parse("1.2345", Currency::BHD).is_err());
    }

    #[test]
    fn zero_negative_and_absurd_amounts_are_refused() {
        assert_eq!(Amount::parse("0", Currency::USD), Err(MoneyError::NotPositive));
        assert_eq!(Amount::parse("0.00", Currency::USD), Err(MoneyError::NotPositive));
        assert_eq!(Amount::parse("-5", Currency::USD), Err(MoneyError::NotPositive));
        assert!(matches!(
            Amount::parse("100000000000000.01", Currency::USD),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(Amount::parse("100000000000000", Currency::USD).is_ok());
        assert!(matches!(
            Amount::parse(&"9".repeat(41), Currency::USD),
            Err(MoneyError::NotADecimal(_))
        ));
    }

    #[test]
    fn only_plain_decimal_literals_parse() {
        for bad in [
            "", "1e3", "+1", " 1", "1 ", "1.", ".5", "1,5", "NaN", "inf", "0x10", "1..2", "--1",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(parse_decimal("0012.50").unwrap(), dec("12.50"));
    }

    #[test]
    fn json_strings_and_numbers_are_read_exactly() {
        let n: DecimalInput = serde_json::from_str("1000.10").unwrap();
        assert_eq!(n.0, dec("1000.10"));
        assert_eq!(n.0.to_string(), "1000.10");
        // A float would turn this into 0.30000000000000004 or lose digits.
        let precise: DecimalInput = serde_json::from_str("0.3000000000000000000000000001").unwrap();
        assert_eq!(precise.0, dec("0.3000000000000000000000000001"));
        let s: DecimalInput = serde_json::from_str("\"1000.10\"").unwrap();
        assert_eq!(s.0, dec("1000.10"));
        assert!(serde_json::from_str::<DecimalInput>("1e2").is_err());
        assert!(serde_json::from_str::<DecimalInput>("true").is_err());
        assert!(serde_json::from_str::<DecimalInput>("\"12abc\"").is_err());
    }

    #[test]
    fn amounts_serialise_as_decimal_strings() {
        let a = Amount::parse("1000", Currency::BRL).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"1000.00\"");
        let back: Amount = serde_json::from_str("\"1000.00\"").unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn eligible_amounts_round_half_to_even() {
        let pct = |s| Percentage::new(dec(s)).unwrap();
        // 0.125 → 0.12 (even), 0.135 → 0.14 (even), both exact halves.
        assert_eq!(
            Amount::parse("0.25", Currency::USD)
                .unwrap()
                .percentage_of(pct("50"), Currency::USD)
                .unwrap()
                .to_string(),
            "0.12"
        );
        assert_eq!(
            Amount::parse("0.27", Currency::USD)
                .unwrap()
                .percentage_of(pct("50"), Currency::USD)
                .unwrap()
                .to_string(),
            "0.14"
        );
        assert_eq!(
            Amount::parse("1000.00", Currency::BRL)
                .unwrap()
                .percentage_of(pct("80"), Currency::BRL)
                .unwrap()
                .to_string(),
            "800.00"
        );
        assert_eq!(
            Amount::parse("5", Currency::JPY)
                .unwrap()
                .percentage_of(pct("50"), Currency::JPY)
                .unwrap()
                .to_string(),
            "2"
        );
        assert_eq!(
            Amount::parse("0.01", Currency::USD)
                .unwrap()
                .percentage_of(pct("10"), Currency::USD),
            Err(MoneyError::EligibleAmountIsZero(Currency::USD))
        );
    }

    #[test]
    fn percentages_are_bounded() {
        assert!(Percentage::new(dec("0")).is_err());
        assert!(Percentage::new(dec("-1")).is_err());
        assert!(Percentage::new(dec("100.0001")).is_err());
        assert!(Percentage::new(dec("12.34567")).is_err());
        assert!(Percentage::new(dec("100")).is_ok());
        assert!(Percentage::new(dec("0.0001")).is_ok());
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(minor in 1i128..=10_000_000_000_000_000i128) {
            let a = Amount::from_minor_units(minor, Currency::USD).unwrap();
            prop_assert_eq!(a.to_minor_units(), minor);
            prop_assert_eq!(Amount::parse(&a.to_string(), Currency::USD).unwrap(), a);
        }

        #[test]
        fn eligible_amount_never_exceeds_the_invoice(minor in 1i128..=1_000_000_000_000i128, pct_bp in 1u32..=1_000_000u32) {
            let a = Amount::from_minor_units(minor, Currency::USD).unwrap();
            let pct = Percentage::new(Decimal::new(i64::from(pct_bp), 4)).unwrap();
            if let Ok(e) = a.percentage_of(pct, Currency::USD) {
                prop_assert!(e <= a);
                prop_assert!(e.value().scale() == 2);
            }
        }
    }
}
