//! What happens to an invoice once processing starts: a script of statuses and delays, decided
//! at create from the account trigger and the test fields, and planned on the clock when
//! processing is asked for (or at create, with `auto_process`). An invoice never processed
//! expires.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::book::{Change, Ctx, Step};
use crate::triggers::{Trigger, delays};

/// What happens after processing starts: delays (before scaling) and statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScriptStep {
    pub after_ms: u64,
    pub status: String,
    pub resolution: String,
}

/// `process failed` / `process-failed` → `process_failed` (the documented regexp allows no `_`).
fn status_word(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn step(after_ms: u64, status: &str, resolution: &str) -> ScriptStep {
    ScriptStep {
        after_ms,
        status: status.to_owned(),
        resolution: resolution.to_owned(),
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What happens once processing starts, from the account trigger and the test fields
/// (PROVIDERS.md: "service `test_usd` honours `test_details_payout_status`,
/// `test_details_payout_resolution`, `test_details_success_rate`").
pub(super) fn script(trigger: Trigger, fields: &BTreeMap<String, String>, ctx: &mut Ctx<'_>) -> Vec<ScriptStep> {
    let start = ms(delays::CASCAD_START);
    let failure = || {
        vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_ERROR), "process_error", "bank_error"),
            step(ms(delays::CASCAD_FAIL), "process_failed", "declined"),
        ]
    };
    if let Some(status) = fields.get("test_details_payout_status") {
        let resolution = fields
            .get("test_details_payout_resolution")
            .map_or_else(|| "ok".to_owned(), |r| status_word(r));
        return vec![
            step(start, "processing", "ok"),
            ScriptStep {
                after_ms: ms(delays::CASCAD_SETTLE),
                status: status_word(status),
                resolution,
            },
        ];
    }
    if let Some(rate) = fields
        .get("test_details_success_rate")
        .and_then(|r| r.parse::<u32>().ok())
        && ctx.rng.random_range(0u32..100) >= rate
    {
        return failure();
    }
    match trigger {
        Trigger::BankRejects => failure(),
        // The digest: `resolution` is `ok` on success, other values exist; a `processed`
        // invoice whose resolution is not `ok` must not be taken as paid.
        Trigger::UnclearOutcome => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_SETTLE), "processed", "error"),
        ],
        Trigger::SlowBank => vec![
            step(start, "processing", "ok"),
            step(ms(delays::SLOW_BANK), "processed", "ok"),
        ],
        Trigger::OnHold => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_ERROR), "process_error", "bank_error"),
            step(ms(delays::CASCAD_SETTLE), "processing", "ok"),
            step(ms(delays::CASCAD_FAIL), "processed", "ok"),
        ],
        Trigger::Success | Trigger::Reversal | Trigger::DeclinedCreate | Trigger::PaidShort => vec![
            step(start, "processing", "ok"),
            step(ms(delays::CASCAD_SETTLE), "processed", "ok"),
        ],
    }
}

/// Plans a script from `t0`.
pub(super) fn planned(script: &[ScriptStep], t0: time::OffsetDateTime, ctx: &Ctx<'_>) -> Vec<Step> {
    script
        .iter()
        .map(|s| Step {
            at: t0 + ctx.scaled(std::time::Duration::from_millis(s.after_ms)),
            change: Change::Cascad {
                status: s.status.clone(),
                resolution: s.resolution.clone(),
            },
        })
        .collect()
}

/// An invoice nobody asks to process expires (`delays::CASCAD_EXPIRY` after `t0`, scaled); asking
/// for processing replaces this plan.
pub(super) fn expiry(t0: time::OffsetDateTime, ctx: &Ctx<'_>) -> Vec<Step> {
    vec![Step {
        at: t0 + ctx.scaled(delays::CASCAD_EXPIRY),
        change: Change::Cascad {
            status: "expired".into(),
            resolution: "ok".into(),
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_statuses_read_spaces_and_dashes_as_underscores() {
        assert_eq!(status_word("process failed"), "process_failed");
        assert_eq!(status_word("Terminated"), "terminated");
        assert_eq!(status_word("cancel-failed"), "cancel_failed");
    }
}
