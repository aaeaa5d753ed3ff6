//! The calls on an existing cashout: `POST /v3/cashout/status`, `PUT /v3/cashout/status`
//! (hold/release) and `DELETE /v3/cashout/cancel`, each naming the cashout by `cashout_id` or
//! `external_id`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::table::{D24State, ErrorCode, rejection_reason};
use super::{Profile, Reply, check_credentials, check_request, error, fault_body, invalid, parse, plan};
use crate::Provider;
use crate::book::{Book, Change, Detail, Payout};
use crate::sim::pretty_json;
use crate::triggers::Trigger;

/// The body of the status, hold/release and cancel calls (seed 001 "Request Body"; the digest's
/// hold/release and cancel rows).
#[derive(Debug, Deserialize)]
pub(super) struct StatusRequest {
    login: Option<String>,
    pass: Option<String>,
    /// Seed 001: `cashout_id` is a "Number".
    cashout_id: Option<serde_json::Value>,
    /// Seed 001: `external_id` is a "String".
    external_id: Option<String>,
    /// Only for `PUT` (hold/release): `PENDING` or `ON_HOLD`.
    status: Option<String>,
}

/// The `cashout_id` of a request: a JSON number, as seed 001 documents it (`"cashout_id":
/// 11954`). A string, even of digits, is a wrong type: 300.
fn cashout_id(v: &Option<serde_json::Value>) -> Result<Option<String>, Response> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(invalid("cashout_id", "must be a number")),
    }
}

fn not_found() -> Response {
    error(ErrorCode::NotFound, "Cashout not found")
}

/// The payout a request names: by `cashout_id` (checked against `external_id` when both are
/// given) or by `external_id` (the latest, should a faulty client have made several). Seed
/// 001: "You can opt to send this field or cashout_id".
fn locate(book: &Book, p: Provider, cashout_id: Option<&str>, external_id: Option<&str>) -> Result<usize, Response> {
    match (cashout_id, external_id) {
        (Some(id), ext) => {
            let i = book.find(p, id).ok_or_else(not_found)?;
            match ext {
                Some(e) if book.payouts[i].reference != e => Err(not_found()),
                _ => Ok(i),
            }
        }
        (None, Some(ext)) => book.by_reference(p, ext).last().copied().ok_or_else(not_found),
        (None, None) => Err(invalid("cashout_id", "or external_id is required")),
    }
}

/// Seed 001 "Cashout Status Response": `cashout_status` and `cashout_status_description`;
/// `rejection_code` and `rejection_reason` only on a rejection (lines 120–130).
#[derive(Serialize)]
struct StatusBody {
    cashout_status: u8,
    cashout_status_description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_reason: Option<&'static str>,
}

fn status_body(payout: &Payout) -> Response {
    let (status, code) = match &payout.detail {
        Detail::D24 {
            status, rejection_code, ..
        } => (*status, *rejection_code),
        Detail::Cascad(_) => (D24State::Pending, None),
    };
    let rejected = status == D24State::Rejected;
    pretty_json(
        StatusCode::OK,
        &StatusBody {
            cashout_status: status.code(),
            cashout_status_description: status.description(),
            rejection_code: code.filter(|_| rejected),
            rejection_reason: code.filter(|_| rejected).and_then(rejection_reason),
        },
    )
}

pub(super) async fn status(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_status(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

fn do_status(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    let cashout_id = cashout_id(&req.cashout_id)?;
    p.sim.read_book(|book, _| {
        let i = locate(book, p.name, cashout_id.as_deref(), req.external_id.as_deref())?;
        Ok(status_body(&book.payouts[i]))
    })
}

pub(super) async fn hold_or_release(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_hold_or_release(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

/// `PUT /v3/cashout/status` (PROVIDERS.md, "hold / release": "only PENDING → ON_HOLD,
/// ON_HOLD → PENDING"); 510 for any other transition. Tupay has no ON_HOLD (seed 002): 300.
fn do_hold_or_release(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    if !D24State::OnHold.exists_on(p.name) {
        return Err(invalid("status", "ON_HOLD is not available"));
    }
    let target = match req.status.as_deref() {
        Some("ON_HOLD") => D24State::OnHold,
        Some("PENDING") => D24State::Pending,
        _ => return Err(invalid("status", "must be PENDING or ON_HOLD")),
    };
    let cashout_id = cashout_id(&req.cashout_id)?.ok_or_else(|| invalid("cashout_id", "is required"))?;
    p.sim.with_book(|book, ctx| {
        let i = locate(book, p.name, Some(&cashout_id), None)?;
        let current = match &book.payouts[i].detail {
            Detail::D24 { status, .. } => *status,
            Detail::Cascad(_) => return Err(not_found()),
        };
        let allowed = matches!(
            (current, target),
            (D24State::Pending, D24State::OnHold) | (D24State::OnHold, D24State::Pending)
        );
        if !allowed {
            return Err(error(
                ErrorCode::InvalidTransition,
                format!("Invalid status transition: {} to {}", current.name(), target.name()),
            ));
        }
        let now = ctx.now;
        book.set_plan(i, Vec::new());
        book.apply(
            i,
            Change::D24 {
                status: target,
                rejection_code: None,
            },
            now,
            ctx,
        );
        if target == D24State::Pending {
            let trigger = Trigger::of(book.payouts[i].account_masked.as_deref());
            let steps = plan(trigger, now, ctx);
            book.set_plan(i, steps);
        }
        Ok(status_body(&book.payouts[i]))
    })
}

pub(super) async fn cancel(State(p): State<Profile>, headers: HeaderMap, body: Bytes) -> Response {
    let sim = p.sim.clone();
    sim.faulted(p.name, fault_body, async move {
        do_cancel(&p, &headers, &body).unwrap_or_else(|e| e)
    })
    .await
}

/// `DELETE /v3/cashout/cancel` with `cashout_id` **and** `external_id` (PROVIDERS.md, "cancel").
fn do_cancel(p: &Profile, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = &p.sim.config;
    check_request(headers, body, config, p.name)?;
    let req: StatusRequest = parse(body)?;
    check_credentials(req.login.as_deref(), req.pass.as_deref(), config, p.name)?;
    let cashout_id = cashout_id(&req.cashout_id)?.ok_or_else(|| invalid("cashout_id", "is required"))?;
    let external_id = req
        .external_id
        .clone()
        .ok_or_else(|| invalid("external_id", "is required"))?;
    p.sim.with_book(|book, ctx| {
        let i = locate(book, p.name, Some(&cashout_id), Some(&external_id))?;
        let current = match &book.payouts[i].detail {
            Detail::D24 { status, .. } => *status,
            Detail::Cascad(_) => return Err(not_found()),
        };
        // The digest: cancel "only while PENDING"; seed 001 item 3 lets an ON_HOLD cashout be
        // cancelled too ("It can still be CANCELLED"); item 5: once DELIVERED "it can't be
        // cancelled anymore".
        if !matches!(current, D24State::Pending | D24State::OnHold) {
            return Err(error(
                ErrorCode::CouldNotCancel,
                format!("Could not cancel the cashout: it is {}", current.name()),
            ));
        }
        let now = ctx.now;
        book.set_plan(i, Vec::new());
        book.apply(
            i,
            Change::D24 {
                status: D24State::Cancelled,
                rejection_code: None,
            },
            now,
            ctx,
        );
        Ok(status_body(&book.payouts[i]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cashout_ids_are_numbers_as_seed_001_documents() {
        assert_eq!(
            cashout_id(&Some(serde_json::json!(11954))).unwrap().as_deref(),
            Some("11954")
        );
        assert_eq!(cashout_id(&None).unwrap(), None);
        assert!(cashout_id(&Some(serde_json::json!("11954"))).is_err());
        assert!(cashout_id(&Some(serde_json::json!(-1))).is_err());
    }
}
