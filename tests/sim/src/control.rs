//! The control endpoint under `/_sim`: the ledger (ground truth), faults and the time scale,
//! changeable while the simulator runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::Provider;
use crate::config::{FaultConfig, Faults};
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
  GET    /_sim/health               ok";

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/ledger", get(ledger))
        .route("/faults", get(faults).delete(clear_faults))
        .route("/faults/{provider}", put(set_faults))
        .route("/time-scale", get(time_scale).put(set_time_scale))
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
