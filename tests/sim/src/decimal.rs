//! Amounts read exactly from JSON, never through a float. Cascad documents amounts "in the
//! float format, for example: 100.55" (seed 003, "Invoice Initiation", `amount`); D24's digest
//! sends them as JSON numbers. Both are read from the number's text; a string holding a decimal
//! is accepted too.

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A decimal as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireDecimal(pub Decimal);

/// Plain decimal text (`-`? digits (`.` digits)?): no exponent, no sign `+`, at most 40 chars.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > 40 {
        return None;
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

impl<'de> Deserialize<'de> for WireDecimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<serde_json::value::RawValue>>::deserialize(d)?;
        let text = raw.get();
        let value = if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(D::Error::custom)?;
            parse_decimal(&s)
        } else {
            parse_decimal(text)
        };
        value.map(WireDecimal).ok_or_else(|| {
            D::Error::custom(format!(
                "`{}` is not a decimal amount",
                text.chars().take(40).collect::<String>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly_from_numbers_and_strings() {
        let n: WireDecimal = serde_json::from_str("100.55").unwrap();
        assert_eq!(n.0.to_string(), "100.55");
        let s: WireDecimal = serde_json::from_str("\"0.10\"").unwrap();
        assert_eq!(s.0.to_string(), "0.10");
        let big: WireDecimal = serde_json::from_str("9999999.99").unwrap();
        assert_eq!(big.0.to_string(), "9999999.99");
        assert!(serde_json::from_str::<WireDecimal>("1e3").is_err());
        assert!(serde_json::from_str::<WireDecimal>("\"ten\"").is_err());
        assert!(serde_json::from_str::<WireDecimal>("true").is_err());
        assert_eq!(parse_decimal("-1.5").map(|d| d.to_string()).as_deref(), Some("-1.5"));
        assert_eq!(parse_decimal(".5"), None);
    }
}
