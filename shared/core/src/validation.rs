//! Field-level validation errors: every problem of an input at once, each with the JSON path of
//! the field, a stable code and a message for people.

use std::fmt;

use serde::Serialize;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field (`invoices[2].amount`, `beneficiary.email`).
    pub field: String,
    /// Stable machine code (`required`, `invalid`, `too_long`, `duplicate`, …).
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

/// Every problem found in an input. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a problem.
    pub fn push(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code,
            message: message.into(),
        });
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found, the errors otherwise.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.is_empty() { Ok(value()) } else { Err(self) }
    }

    /// The problems of one field path, for tests and callers that care.
    pub fn for_field(&self, field: &str) -> Vec<&FieldError> {
        self.0.iter().filter(|e| e.field == field).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// Checks a free-text field: trimmed non-empty when required, at most `max` characters, no
/// control characters. Returns the trimmed text.
pub(crate) fn text(
    errors: &mut ValidationErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
    required: bool,
) -> Option<String> {
    // The length is the value's as sent (what the API documents), the content its trimmed text.
    let too_long = value.is_some_and(|v| v.chars().count() > max);
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match value {
        None => {
            if required {
                errors.push(field, "required", "is required");
            }
            None
        }
        Some(_) if too_long => {
            errors.push(field, "too_long", format!("must be at most {max} characters"));
            None
        }
        Some(v) if v.chars().any(char::is_control) => {
            errors.push(field, "invalid", "must not contain control characters");
            None
        }
        Some(v) => Some(v.to_owned()),
    }
}
