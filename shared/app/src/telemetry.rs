//! Logging set-up for the Lambda functions: JSON lines (CloudWatch Logs Insights reads them), with
//! the current span's fields (the request id of every use case). Levels come from `RUST_LOG` in
//! the `target=level` list form (default `info`); it is read with `Targets`, not `EnvFilter`,
//! which keeps a regular-expression engine out of the binaries. Nothing secret is ever a field:
//! keys, secrets and account numbers have redacting `Debug`/`Display` implementations.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The levels used when `RUST_LOG` is absent or unreadable.
pub const DEFAULT_LEVELS: &str = "info,aws_config=warn,aws_smithy_runtime=warn";

/// The level filter for a `RUST_LOG` value; whatever it says, events without a target of their
/// own are logged at `info` at least, so a malformed value never silences the function.
pub fn levels(rust_log: Option<&str>) -> Targets {
    let parsed: Targets = rust_log
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| DEFAULT_LEVELS.parse().unwrap_or_default());
    match parsed.default_level() {
        Some(_) => parsed,
        None => parsed.with_default(LevelFilter::INFO),
    }
}

/// Installs the JSON subscriber. Call once, first thing in `main`.
pub fn init_lambda() {
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    tracing_subscriber::registry()
        .with(format)
        .with(levels(std::env::var("RUST_LOG").ok().as_deref()))
        .init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn levels_come_from_rust_log_with_a_default() {
        let default = levels(None);
        assert!(default.would_enable("cashout_app", &Level::INFO));
        assert!(!default.would_enable("aws_config::loader", &Level::INFO));
        let debug = levels(Some("debug"));
        assert!(debug.would_enable("cashout_app", &Level::DEBUG));
        assert_eq!(levels(Some("not a level=")).default_level(), default.default_level());
        assert_eq!(levels(Some("warn")).default_level(), Some(LevelFilter::WARN));
    }
}
