//! The control endpoint under `/_sim`: the ledger (ground truth), faults and the time scale,
//! changeable while the simulator runs, and divergences for reconciliation tests (payouts
//! changed or made behind the client's back, [`crate::divergence`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::Provider;
use crate::config::{FaultConfig, Faults};
use crate::divergence::{ControlError, NewPayout, PayoutChange};
use crate::sim::Sim;

/// The control API, for `--help` and the README.
pub const CONTROL_HELP: &str = "\
CONTROL ENDPOINT (JSON)
  GET    /_sim/ledger               every payout; create attempts and payouts per reference
                                    (payouts > 1 = a double payout); every notification/callback
  GET    /_sim/faults               faults of every provider in force now (faults whose for_ms ran
                                    out show cleared)
  PUT    /_sim/faults/{provider}    set one provider's faults (d24, onspot, tupay, cascad, or all);
                                    body: {\"error_after\": 20, \"timeout\": 5, ...} (fields as in FAULTS);
                                    replaces that provider's faults whole; a for_ms counts from now
  DELETE /_sim/faults               no faults anywhere
  GET    /_sim/time-scale           {\"time_scale\": N}
  PUT    /_sim/time-scale           {\"time_scale\": N}: applies to lifecycles planned from now on
  PUT    /_sim/payouts/{provider}/{payout_id}
                                    change a payout behind the client's back, WITHOUT a notification
                                    or callback: {\"status\": \"REJECTED\", \"rejection_code\": 826} (D24 family:
                                    PENDING, DELIVERED, COMPLETED, REJECTED [+ rejection_code 800-826],
                                    CANCELLED, ON_HOLD (not tupay)), {\"status\": \"processed\", \"resolution\":
                                    \"ok\"} (cascad: its documented statuses), \"amount\": \"12.34\", \"currency\":
                                    \"USD\"; each optional, at least one. A status change stops the planned
                                    lifecycle. Recorded in the history. 200 with the ledger payout;
                                    404 unknown provider or payout; 400 a status the provider does not have
  DELETE /_sim/payouts/{provider}/{payout_id}
                                    the provider loses the payout, WITHOUT a notification: lookups,
                                    listings and the ledger no longer show it. 200 with the payout as
                                    it was; 404 unknown provider or payout
  POST   /_sim/payouts/{provider}   a payout the client never asked for (someone else on our account),
                                    WITHOUT a notification: {\"reference\": \"theirs-1\", \"amount\": \"10.00\",
                                    \"currency\": \"USD\", \"status\": \"processed\"} (status: PENDING / created unless
                                    given; rejection_code, resolution as above); no lifecycle. 201 with
                                    the ledger payout (its id); 409 if the provider holds the reference
  GET    /_sim/health               ok";

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/ledger", get(ledger))
        .route("/faults", get(faults).delete(clear_faults))
        .route("/faults/{provider}", put(set_faults))
        .route("/time-scale", get(time_scale).put(set_time_scale))
        .route("/payouts/{provider}", post(add_payout))
        .route(
            "/payouts/{provider}/{payout_id}",
            put(change_payout).delete(lose_payout),
        )
        .route("/health", get(|| async { "ok" }))
        .with_state(sim)
}

async fn ledger(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.ledger()).into_response()
}

async fn faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    Json(sim.faults())
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    sim.set_all_faults(&Faults::default());
    Json(sim.faults())
}

async fn set_faults(
    State(sim): State<Arc<Sim>>,
    Path(provider): Path<String>,
    Json(config): Json<FaultConfig>,
) -> Response {
    if provider == "all" {
        sim.set_all_faults(&Faults::all(config));
    } else {
        match provider.parse::<Provider>() {
            Ok(p) => sim.set_faults(p, config),
            Err(e) => return (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        }
    }
    Json(sim.faults()).into_response()
}

#[derive(Serialize, Deserialize)]
struct TimeScale {
    time_scale: u32,
}

async fn time_scale(State(sim): State<Arc<Sim>>) -> Json<TimeScale> {
    Json(TimeScale {
        time_scale: sim.time_scale(),
    })
}

async fn set_time_scale(State(sim): State<Arc<Sim>>, Json(t): Json<TimeScale>) -> Response {
    if t.time_scale == 0 {
        return (StatusCode::UNPROCESSABLE_ENTITY, "time_scale must be at least 1").into_response();
    }
    sim.set_time_scale(t.time_scale);
    Json(TimeScale {
        time_scale: sim.time_scale(),
    })
    .into_response()
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
        };
        (status, self.to_string()).into_response()
    }
}

/// A JSON body, or 400 saying what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(bytes).map_err(|e| ControlError::Invalid(format!("unreadable body: {e}")))
}

fn provider(name: &str) -> Result<Provider, ControlError> {
    name.parse::<Provider>()
        .map_err(|e| ControlError::NotFound(e.to_string()))
}

async fn change_payout(
    State(sim): State<Arc<Sim>>,
    Path((name, payout_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let changed = provider(&name).and_then(|p| {
        let change: PayoutChange = body(&bytes)?;
        sim.change_payout(p, &payout_id, &change)
    });
    match changed {
        Ok(payout) => Json(payout).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn lose_payout(State(sim): State<Arc<Sim>>, Path((name, payout_id)): Path<(String, String)>) -> Response {
    match provider(&name).and_then(|p| sim.lose_payout(p, &payout_id)) {
        Ok(payout) => Json(payout).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn add_payout(State(sim): State<Arc<Sim>>, Path(name): Path<String>, bytes: Bytes) -> Response {
    let added = provider(&name).and_then(|p| {
        let new: NewPayout = body(&bytes)?;
        sim.add_payout(p, &new)
    });
    match added {
        Ok(payout) => (StatusCode::CREATED, Json(payout)).into_response(),
        Err(e) => e.into_response(),
    }
}
