//! What every backend checks of a change before it writes anything. It reads nothing but the
//! change itself, so the three stores share it.

use cashout_core::cashout::Change;
use cashout_core::ports::StoreError;

/// Checks what every change must satisfy before anything is written: a creation, and only a
/// creation, expects version 0; the new version follows the expected one; every event is the
/// request's.
pub(crate) fn check_change(change: &Change, creation: bool) -> Result<(), StoreError> {
    let id = change.request.id();
    if creation != (change.expected_version == 0) {
        return Err(StoreError::invalid(if creation {
            "a creation must expect version 0"
        } else {
            "a change to an existing request cannot expect version 0"
        }));
    }
    if change.request.version() != change.expected_version + 1 {
        return Err(StoreError::invalid(format!(
            "the new version {} does not follow {}",
            change.request.version(),
            change.expected_version
        )));
    }
    if let Some(e) = change.events.iter().find(|e| e.cashout_request_id != id) {
        return Err(StoreError::invalid(format!(
            "event {} belongs to another request",
            e.id
        )));
    }
    Ok(())
}
