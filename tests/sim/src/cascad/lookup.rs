//! The lookups: `GET /payout-invoices/{id}` and `GET /payout-invoices` (by reference, or the
//! cursor list), on the private API (JSON:API) or the public one (flat invoices).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::errors::{self, fault_body, field_errors, not_found};
use super::invoice::{InvoiceResource, PublicInvoice, invoice_of, invoice_resource, public_invoice};
use super::{Api, CASCAD, Single, page_param, reader};
use crate::book::Payout;
use crate::sim::{Sim, pretty_json};

/// `GET /payout-invoices/{id}`: 404 when no invoice has the id (seed 003: "the transaction does
/// not exist (if the status request is valid)").
pub(super) async fn show(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        let api = match reader(&headers, &q, &sim2.config) {
            Ok(api) => api,
            Err(r) => return r,
        };
        sim2.read_book(|book, _| {
            let Some(p) = book.find(CASCAD, &id).map(|i| &book.payouts[i]) else {
                return not_found();
            };
            let Some(inv) = invoice_of(p) else {
                return not_found();
            };
            match api {
                Api::Private => pretty_json(
                    StatusCode::OK,
                    &Single {
                        data: invoice_resource(p, inv, false),
                    },
                ),
                Api::Public => pretty_json(
                    StatusCode::OK,
                    &Single {
                        data: public_invoice(p, inv),
                    },
                ),
            }
        })
    })
    .await
}

/// Seed 003 lines 628–757.
#[derive(Serialize)]
struct ListDoc<'a> {
    meta: ListMeta,
    links: ListLinks,
    data: Vec<InvoiceResource<'a>>,
}

#[derive(Serialize)]
struct ListMeta {
    count: usize,
    size: usize,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Serialize)]
struct ListLinks {
    prev: String,
    next: String,
}

/// `GET /payout-invoices`: by `filter[reference_id]`, or every invoice newest first with the
/// cursors `page[after]` / `page[before]` (ids) and `page[size]`. The public API answers the
/// reference filter only, with flat invoices.
pub(super) async fn list(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sim2 = sim.clone();
    sim.faulted(CASCAD, fault_body, async move {
        let api = match reader(&headers, &q, &sim2.config) {
            Ok(api) => api,
            Err(r) => return r,
        };
        let size = page_param(&q, "page[size]", 20).min(100);
        let empty_is_404 = sim2.faults().get(CASCAD).not_found_on_empty_filter;
        sim2.read_book(|book, _| {
            let mut all: Vec<&Payout> = book
                .payouts
                .iter()
                .filter(|p| p.provider == CASCAD && !p.lost)
                .collect();
            all.reverse();
            let filter = q.get("filter[reference_id]");
            if let Some(r) = filter {
                all.retain(|p| &p.reference == r);
                if all.is_empty() && empty_is_404 {
                    return not_found();
                }
            }
            match (api, filter) {
                (Api::Public, None) => errors::forbidden("The public API lists invoices by filter[reference_id] only."),
                (Api::Public, Some(_)) => {
                    let data: Vec<PublicInvoice<'_>> = all
                        .iter()
                        .filter_map(|p| invoice_of(p).map(|inv| public_invoice(p, inv)))
                        .collect();
                    pretty_json(StatusCode::OK, &Single { data })
                }
                (Api::Private, _) => match page_bounds(&all, &q, size) {
                    Ok((start, end)) => private_page(&all, start, end, size),
                    Err(r) => r,
                },
            }
        })
    })
    .await
}

/// Where the page starts and ends in `all` (newest first): after the `page[after]` cursor, or
/// the `size` invoices before the `page[before]` cursor, or from the top; 422 for a cursor that
/// names no invoice.
fn page_bounds(all: &[&Payout], q: &HashMap<String, String>, size: usize) -> Result<(usize, usize), Response> {
    let start = match (q.get("page[after]"), q.get("page[before]")) {
        (Some(after), _) => match all.iter().position(|p| &p.id == after) {
            Some(i) => i + 1,
            None => return Err(field_errors("page[after]", "Unknown cursor.")),
        },
        (None, Some(before)) => match all.iter().position(|p| &p.id == before) {
            Some(i) => i.saturating_sub(size),
            None => return Err(field_errors("page[before]", "Unknown cursor.")),
        },
        (None, None) => 0,
    };
    let end = match q.get("page[before]") {
        Some(before) if !q.contains_key("page[after]") => all.iter().position(|p| &p.id == before).unwrap_or(0),
        _ => (start + size).min(all.len()),
    };
    Ok((start, end))
}

/// The private API's page `start..end` of `all`, with its cursors and links.
fn private_page(all: &[&Payout], start: usize, end: usize, size: usize) -> Response {
    let page = &all[start.min(end)..end];
    let link = |k: &str, id: &str| format!("/api/payout-invoices?page[{k}]={id}&page[size]={size}");
    let data: Vec<InvoiceResource<'_>> = page
        .iter()
        .filter_map(|p| invoice_of(p).map(|inv| invoice_resource(p, inv, true)))
        .collect();
    let first = page.first().map(|p| p.id.clone());
    let last = page.last().map(|p| p.id.clone());
    let doc = ListDoc {
        meta: ListMeta {
            count: data.len(),
            size,
            before: first.clone(),
            after: last.clone(),
        },
        links: ListLinks {
            prev: match &first {
                Some(id) if start > 0 => link("before", id),
                _ => String::new(),
            },
            next: match &last {
                Some(id) if end < all.len() => link("after", id),
                _ => String::new(),
            },
        },
        data,
    };
    pretty_json(StatusCode::OK, &doc)
}
