//! The form D24 posts to a cashout's `notification_url` when its status changes.

use time::OffsetDateTime;

use super::table::{D24State, rejection_reason};
use crate::book::{Detail, Payout};
use crate::config::SimConfig;
use crate::signing::d24_payload_signature;

/// The form D24 posts to `notification_url` (PROVIDERS.md, "Notifications"): `date`
/// (`YYYY-MM-DD HH:MM:SS`, GMT), `bank_reference_id`, `comments`, `external_id`, `control`,
/// `cashout_id`, `status_reason`, and no status on purpose. `control` is uppercase hex
/// HMAC-SHA256 with the API Signature secret; D24 does not document its message, so the
/// simulator signs `date ‖ cashout_id ‖ external_id` (receivers must not rely on it).
pub(crate) fn notification(
    payout: &Payout,
    at: OffsetDateTime,
    config: &SimConfig,
) -> Option<(String, Vec<(String, String)>)> {
    let Detail::D24 {
        status, rejection_code, ..
    } = &payout.detail
    else {
        return None;
    };
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let secret = &config.d24_credentials(payout.provider).secret;
    let control =
        d24_payload_signature(secret, format!("{date}{}{}", payout.id, payout.reference).as_bytes()).to_uppercase();
    let bank_reference = match status {
        D24State::Delivered | D24State::Completed | D24State::Rejected => {
            format!("BR{}", payout.id)
        }
        D24State::Pending | D24State::OnHold | D24State::Cancelled => String::new(),
    };
    let reason = rejection_code
        .and_then(rejection_reason)
        .map(str::to_owned)
        .unwrap_or_default();
    let fields = [
        ("date", date),
        ("bank_reference_id", bank_reference),
        ("comments", String::new()),
        ("external_id", payout.reference.clone()),
        ("control", control),
        ("cashout_id", payout.id.clone()),
        ("status_reason", reason),
    ];
    serde_urlencoded::to_string(fields).ok().map(|body| (body, Vec::new()))
}
