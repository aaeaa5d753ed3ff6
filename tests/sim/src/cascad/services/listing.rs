//! The service list and a service by id (private API): `GET /payout-services[/{id}]` (seed 003
//! lines 142–284).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;

use super::Service;
use super::catalogue::SERVICES;
use crate::cascad::errors::{fault_body, not_found};
use crate::cascad::{CASCAD, RelData, SelfLink, Single, authenticate, page_param};
use crate::sim::{Sim, number, pretty_json};

/// Seed 003 lines 167–203 and 246–284.
#[derive(Serialize)]
struct ServiceResource {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    attributes: ServiceAttributes,
    relationships: ServiceRelationships,
    links: SelfLink,
}

#[derive(Serialize)]
struct ServiceAttributes {
    service: &'static str,
    service_method: &'static str,
    service_currency: &'static str,
    available: bool,
    active: bool,
    enabled: bool,
    amount_min: Box<RawValue>,
    amount_max: Box<RawValue>,
    fee_min: u32,
    fee_max: u32,
    fee_rate: u32,
    fee_fix: u32,
    currency: &'static str,
    test_mode: bool,
}

#[derive(Serialize)]
struct ServiceRelationships {
    #[serde(rename = "payout-method")]
    payout_method: RelData,
    #[serde(rename = "payout-service")]
    payout_service: RelData,
}

fn service_resource(s: &Service) -> ServiceResource {
    ServiceResource {
        kind: "payout-services",
        id: s.id,
        attributes: ServiceAttributes {
            service: s.code,
            service_method: s.method.code,
            service_currency: s.currency,
            available: true,
            active: s.active,
            enabled: true,
            amount_min: number(s.amount_min),
            amount_max: number(s.amount_max),
            fee_min: 0,
            fee_max: 0,
            fee_rate: 0,
            fee_fix: 0,
            currency: s.account_currency,
            test_mode: true,
        },
        relationships: ServiceRelationships {
            payout_method: RelData::new("payout-methods", s.method.code),
            payout_service: RelData::new("payout-services", s.code),
        },
        links: SelfLink {
            this: format!("/api/payout-services/{}", s.id),
        },
    }
}

#[derive(Serialize)]
struct ServiceList {
    meta: ServiceListMeta,
    links: ServiceListLinks,
    data: Vec<ServiceResource>,
}

#[derive(Serialize)]
struct ServiceListMeta {
    total: usize,
    pages: usize,
    page: usize,
}

#[derive(Serialize)]
struct ServiceListLinks {
    first: String,
    next: String,
    last: String,
}

/// `GET /payout-services?page[number]=N&page[size]=M` (seed 003 lines 148–233).
pub(crate) async fn services(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let production = sim2.faults().get(CASCAD).production_services;
        let all: Vec<&Service> = SERVICES.iter().filter(|s| s.offered(production)).collect();
        let size = page_param(&q, "page[size]", 20).min(100);
        let number = page_param(&q, "page[number]", 1);
        let pages = all.len().div_ceil(size).max(1);
        let link = |n: usize| format!("/api/payout-services?page[number]={n}&page[size]={size}");
        let list = ServiceList {
            meta: ServiceListMeta {
                total: all.len(),
                pages,
                page: number,
            },
            links: ServiceListLinks {
                first: link(1),
                next: if number < pages {
                    link(number + 1)
                } else {
                    String::new()
                },
                last: link(pages),
            },
            data: all
                .iter()
                .skip((number - 1).saturating_mul(size))
                .take(size)
                .map(|s| service_resource(s))
                .collect(),
        };
        pretty_json(StatusCode::OK, &list)
    })
    .await
}

/// `GET /payout-services/{id}`, `id` "taken from the previous request" (seed 003 line 239): the
/// account service id, not the code.
pub(crate) async fn service(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        if let Err(r) = authenticate(&headers, &sim2.config) {
            return r;
        }
        let production = sim2.faults().get(CASCAD).production_services;
        match SERVICES.iter().find(|s| s.id == id && s.offered(production)) {
            Some(s) => pretty_json(
                StatusCode::OK,
                &Single {
                    data: service_resource(s),
                },
            ),
            None => not_found(),
        }
    })
    .await
}
