//! The fields a service asks for: the beneficiary attribute each is read from, its key, and its
//! regexp, compiled once.

use std::borrow::Cow;
use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

use crate::party::Beneficiary;

use super::{MAX_REGEXP_LEN, ServiceError};

/// The beneficiary attribute a service field is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BeneficiaryField {
    /// `name`.
    Name,
    /// `last_name`.
    LastName,
    /// `name` and `last_name`, separated by a space (for fields such as `beneficiary_name`).
    FullName,
    /// `document_type`.
    DocumentType,
    /// `document_id`.
    DocumentId,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `bank_code`.
    BankCode,
    /// `bank_branch`.
    BankBranch,
    /// `bank_account`.
    BankAccount,
    /// `card_number`.
    CardNumber,
    /// `account_type`.
    AccountType,
    /// `address`.
    Address,
    /// `city`.
    City,
    /// `postal_code`.
    PostalCode,
    /// `birthdate` (`YYYY-MM-DD`).
    Birthdate,
    /// `extra_fields.<key>`.
    Extra(String),
}

/// The attributes by name, as configuration and the API write them.
const NAMED: [(&str, BeneficiaryField); 16] = [
    ("name", BeneficiaryField::Name),
    ("last_name", BeneficiaryField::LastName),
    ("full_name", BeneficiaryField::FullName),
    ("document_type", BeneficiaryField::DocumentType),
    ("document_id", BeneficiaryField::DocumentId),
    ("email", BeneficiaryField::Email),
    ("phone", BeneficiaryField::Phone),
    ("bank_code", BeneficiaryField::BankCode),
    ("bank_branch", BeneficiaryField::BankBranch),
    ("bank_account", BeneficiaryField::BankAccount),
    ("card_number", BeneficiaryField::CardNumber),
    ("account_type", BeneficiaryField::AccountType),
    ("address", BeneficiaryField::Address),
    ("city", BeneficiaryField::City),
    ("postal_code", BeneficiaryField::PostalCode),
    ("birthdate", BeneficiaryField::Birthdate),
];

impl BeneficiaryField {
    /// Reads a source as configured: an attribute name (`card_number`, `full_name`) or
    /// `extra_fields.<key>`.
    pub fn parse(text: &str) -> Result<BeneficiaryField, ServiceError> {
        if let Some(key) = text.strip_prefix("extra_fields.") {
            return field_key(key).map(|k| BeneficiaryField::Extra(k.to_owned()));
        }
        NAMED
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| ServiceError::Source(text.chars().take(80).collect()))
    }

    /// The source of a field `key` that names none: the attribute of that name if there is
    /// one, `bank_account` for `account_field` (the key the test services call `account`), and
    /// `extra_fields.<key>` otherwise.
    pub fn for_key(key: &str, account_field: &str) -> BeneficiaryField {
        if key == account_field {
            return BeneficiaryField::BankAccount;
        }
        NAMED
            .iter()
            .filter(|(_, f)| *f != BeneficiaryField::FullName)
            .find(|(n, _)| *n == key)
            .map_or_else(|| BeneficiaryField::Extra(key.to_owned()), |(_, f)| f.clone())
    }

    /// The JSON path of the attribute in a create request (`beneficiary.card_number`,
    /// `beneficiary.extra_fields.swift_code`); a full name is fixed in `beneficiary.name`.
    pub fn path(&self) -> String {
        match self {
            BeneficiaryField::Extra(key) => format!("beneficiary.extra_fields.{key}"),
            BeneficiaryField::FullName => "beneficiary.name".to_owned(),
            named => format!("beneficiary.{}", named.name()),
        }
    }

    /// The name as configuration writes it.
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            BeneficiaryField::Extra(key) => Cow::Owned(format!("extra_fields.{key}")),
            named => Cow::Borrowed(NAMED.iter().find(|(_, f)| f == named).map_or("?", |(n, _)| n)),
        }
    }

    /// The beneficiary's value, if it has one. The full card or account number: for the
    /// provider call and the checks only.
    pub fn value<'a>(&self, b: &'a Beneficiary) -> Option<Cow<'a, str>> {
        let text = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        match self {
            BeneficiaryField::Name => Some(Cow::Borrowed(b.name.as_str())),
            BeneficiaryField::LastName => text(&b.last_name),
            BeneficiaryField::FullName => Some(match &b.last_name {
                Some(last) => Cow::Owned(format!("{} {last}", b.name)),
                None => Cow::Borrowed(b.name.as_str()),
            }),
            BeneficiaryField::DocumentType => text(&b.document_type),
            BeneficiaryField::DocumentId => text(&b.document_id),
            BeneficiaryField::Email => text(&b.email),
            BeneficiaryField::Phone => text(&b.phone),
            BeneficiaryField::BankCode => text(&b.bank_code),
            BeneficiaryField::BankBranch => text(&b.bank_branch),
            BeneficiaryField::BankAccount => b.bank_account.as_ref().map(|a| Cow::Borrowed(a.expose())),
            BeneficiaryField::CardNumber => b.card_number.as_ref().map(|c| Cow::Borrowed(c.expose())),
            BeneficiaryField::AccountType => text(&b.account_type),
            BeneficiaryField::Address => text(&b.address),
            BeneficiaryField::City => text(&b.city),
            BeneficiaryField::PostalCode => text(&b.postal_code),
            BeneficiaryField::Birthdate => b.birthdate.map(|d| Cow::Owned(d.to_string())),
            BeneficiaryField::Extra(key) => b.extra_fields.get(key).map(|v| Cow::Borrowed(v.as_str())),
        }
    }
}

/// A service field's key (`card_number`): 1 to 64 letters, digits and `_`.
fn field_key(key: &str) -> Result<&str, ServiceError> {
    if (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(key)
    } else {
        Err(ServiceError::Key(key.chars().take(80).collect()))
    }
}

/// A compiled field regexp, kept with its text.
#[derive(Clone)]
pub struct FieldPattern {
    text: String,
    regex: Regex,
}

impl FieldPattern {
    /// Compiles a regexp as Cascad applies it. Cascad runs on PHP, whose `preg_match` without
    /// the `u` flag reads `\d`, `\s`, `\w` as ASCII classes over the value's bytes: the pattern
    /// is compiled so (a Unicode digit is not a `\d`), and only if it cannot be expressed that
    /// way, with Unicode classes.
    ///
    /// Seed 003 prints its regexps escaped twice (`"^\\\\d{1,15}$"` in its JSON: a literal
    /// backslash, then `d`), which no account would match. A pattern with that shape is refused,
    /// naming the fix, so that a catalogue copied from the document does not refuse every
    /// beneficiary.
    pub fn new(text: &str) -> Result<FieldPattern, ServiceError> {
        let bad = |why: String| ServiceError::Regexp {
            regexp: text.chars().take(120).collect(),
            why,
        };
        if text.len() > MAX_REGEXP_LEN {
            return Err(bad(format!("longer than {MAX_REGEXP_LEN} bytes")));
        }
        if let Some(escaped) = escaped_twice(text) {
            return Err(bad(format!(
                "`\\\\{escaped}` matches a backslash followed by `{escaped}`: it is escaped twice, as seed 003 prints it; write `\\{escaped}` (in JSON `\"\\\\{escaped}\"`)"
            )));
        }
        let build = |unicode: bool| {
            RegexBuilder::new(text)
                .unicode(unicode)
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .build()
        };
        let regex = build(false)
            .or_else(|_| build(true))
            .map_err(|e| bad(e.to_string().lines().last().unwrap_or_default().to_owned()))?;
        Ok(FieldPattern {
            text: text.to_owned(),
            regex,
        })
    }

    /// The regexp as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value.as_bytes())
    }
}

/// The escaped character after a `\\` that reads as a doubled escape (`\\d`, `\\s`, …).
fn escaped_twice(text: &str) -> Option<char> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        // `\\` then a class letter: a backslash escaped where a class was meant. Any other
        // escape is skipped whole.
        if chars.next() == Some('\\')
            && let Some(n @ ('d' | 'D' | 's' | 'S' | 'w' | 'W' | 'b' | 'B')) = chars.clone().next()
        {
            return Some(n);
        }
    }
    None
}

impl fmt::Debug for FieldPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPattern({})", self.text)
    }
}

impl PartialEq for FieldPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for FieldPattern {}

/// A field a service needs in `fields`, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceField {
    pub(super) key: String,
    pub(super) source: BeneficiaryField,
    pub(super) required: bool,
    pub(super) regexp: Option<FieldPattern>,
}

impl ServiceField {
    /// A field `key` read from `source`, compiled now.
    pub fn new(
        key: &str,
        source: BeneficiaryField,
        required: bool,
        regexp: Option<&str>,
    ) -> Result<ServiceField, ServiceError> {
        Ok(ServiceField {
            key: field_key(key)?.to_owned(),
            source,
            required,
            regexp: regexp.map(FieldPattern::new).transpose()?,
        })
    }

    /// Cascad's key (`card_number`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where the value comes from.
    pub fn source(&self) -> &BeneficiaryField {
        &self.source
    }

    /// Whether the service needs it.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The regexp a value must match, as configured.
    pub fn regexp(&self) -> Option<&str> {
        self.regexp.as_ref().map(FieldPattern::as_str)
    }
}
