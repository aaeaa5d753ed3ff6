//! The handlers of `/v1/statements` (merchants: their own; operators: any) and
//! `/v1/reconciliations` (operators).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cashout_core::ids::MerchantId;
use cashout_core::money::Currency;
use cashout_core::ports::Cursor;
use cashout_core::provider::ProviderName;
use cashout_core::reconcile::{Period, StatementLine, StatementTotals};
use futures::StreamExt as _;
use serde::Deserialize;
use time::Date;
use utoipa::{IntoParams, ToSchema};

use super::{Caller, Params, Segments, body, json};
use crate::access::require_operator;
use crate::error::AppError;
use crate::http::HttpApp;
use crate::http::problem::{ApiError, Problem};
use crate::reconcile::{MAX_STATEMENT_PAGE, StatementFilter};
use crate::views::{ReconciliationView, StatementLineView, StatementPageView, totals_view};

/// Lines read per store page while a whole statement streams.
const STREAM_PAGE: u32 = 500;

/// Query of `GET /v1/statements`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// First day, UTC (`YYYY-MM-DD`).
    #[param(format = Date, example = "2026-11-30")]
    from: String,
    /// Last day, UTC, included (`YYYY-MM-DD`): not before `from`, and at most 366 days from it
    /// (`400 invalid_parameter` otherwise).
    #[param(format = Date, example = "2026-11-30")]
    to: String,
    /// One merchant's requests. A merchant key reads only its own (another id: 403); an
    /// operator key without it reads every merchant's.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    merchant_id: Option<String>,
    /// Only requests whose current provider is this one.
    #[param(value_type = Option<crate::http::openapi::ProviderSchema>)]
    provider: Option<String>,
    /// Only this currency.
    #[param(value_type = Option<crate::http::openapi::CurrencySchema>)]
    currency: Option<String>,
    /// Page mode: at most this many lines (1 to 1000) and a `next_cursor`, no totals. Without
    /// it (and without `cursor`) the whole statement streams, totals last.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Page mode: from a previous page's `next_cursor`.
    cursor: Option<String>,
}

fn date(field: &str, text: &str) -> Result<Date, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).map_err(|_| {
        ApiError(AppError::BadParameter(format!(
            "{field}: `{text}` is not a date (YYYY-MM-DD)"
        )))
    })
}

fn period(from: &str, to: &str) -> Result<Period, ApiError> {
    Period::new(date("from", from)?, date("to", to)?).map_err(|e| ApiError(AppError::BadParameter(e.to_string())))
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("text/csv")))
}

impl StatementParams {
    fn filter(&self) -> Result<StatementFilter, ApiError> {
        let bad = |field: &str, e: &dyn std::fmt::Display| ApiError(AppError::BadParameter(format!("{field}: {e}")));
        Ok(StatementFilter {
            period: period(&self.from, &self.to)?,
            merchant_id: self
                .merchant_id
                .as_deref()
                .map(MerchantId::new)
                .transpose()
                .map_err(|e| bad("merchant_id", &e))?,
            provider: self
                .provider
                .as_deref()
                .map(str::parse::<ProviderName>)
                .transpose()
                .map_err(|e| bad("provider", &e))?,
            currency: self
                .currency
                .as_deref()
                .map(str::parse::<Currency>)
                .transpose()
                .map_err(|e| bad("currency", &e))?,
        })
    }
}

/// One CSV field (RFC 4180): quoted when it holds a separator, a quote or a line break; a
/// leading `=`, `+`, `@` or control character is prefixed with `'` so that a spreadsheet never
/// reads it as a formula.
fn csv_field(out: &mut String, value: &str) {
    let guarded = value.starts_with(['=', '+', '@', '\t', '\r']);
    if guarded || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if guarded {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

fn csv_lines(out: &mut String, lines: &[StatementLine]) {
    for line in lines {
        let record = line.csv_record();
        csv_row(out, record.iter().map(String::as_str));
    }
}

fn json_lines(out: &mut String, lines: &[StatementLine], first: &mut bool) {
    for line in lines {
        if !*first {
            out.push(',');
        }
        *first = false;
        out.push_str(&serde_json::to_string(&StatementLineView::from(line)).unwrap_or_default());
    }
}

/// Where a streaming statement stands.
enum Phase {
    /// Lines of the page already read, then the next page from this cursor (`None`: none).
    Lines(Vec<StatementLine>, Option<Cursor>),
    /// Every line sent: the totals (JSON) and the end.
    Totals,
    Done,
}

struct Streaming<A> {
    app: A,
    filter: StatementFilter,
    csv: bool,
    phase: Phase,
    totals: StatementTotals,
    first: bool,
}

impl<A: HttpApp> Streaming<A> {
    /// The next chunk of the body, or `None` at its end. A store failure mid-stream ends the
    /// body early with an error (the client sees a truncated transfer, never a statement that
    /// looks whole).
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        let mut out = String::new();
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Lines(lines, cursor) => {
                for line in &lines {
                    self.totals.add(line);
                }
                if self.csv {
                    csv_lines(&mut out, &lines);
                } else {
                    json_lines(&mut out, &lines, &mut self.first);
                }
                self.phase = match cursor {
                    None => Phase::Totals,
                    Some(c) => match self.app.app().statement_page(&self.filter, Some(c), STREAM_PAGE).await {
                        Ok((lines, next)) => Phase::Lines(lines, next),
                        Err(e) => {
                            tracing::error!(error = %e, "a statement stopped midway: the store failed");
                            return Some((Err(std::io::Error::other(e.to_string())), self));
                        }
                    },
                };
            }
            Phase::Totals => {
                if !self.csv {
                    out.push_str("],\"totals\":");
                    out.push_str(&serde_json::to_string(&totals_view(&self.totals)).unwrap_or_default());
                    out.push('}');
                }
                self.phase = Phase::Done;
                if out.is_empty() {
                    return None;
                }
            }
            Phase::Done => return None,
        }
        Some((Ok(Bytes::from(out)), self))
    }
}

/// A statement: one line per request that changed in the period (a status event in it), as
/// the request stands now, and totals per currency and status in exact decimals. JSON by
/// default, CSV with `Accept: text/csv` (the lines, with a header row; the totals are in the
/// JSON). Without `limit`/`cursor` the whole statement streams page by page (bounded memory,
/// totals last); with them, one page and a `next_cursor`.
#[utoipa::path(get, path = "/v1/statements", tag = "statements", params(StatementParams),
    responses(
        (status = 200, description = "The statement (or, with `limit`/`cursor`, one page of its lines)",
            content((crate::views::StatementAnswer = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, description = "`invalid_parameter`: a malformed date, a period over 366 days, a bad cursor"),
        (status = 403, body = Problem, description = "`forbidden`: a merchant key naming another merchant")),
    security(("bearer" = [])))]
pub(crate) async fn statement<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    headers: HeaderMap,
    Params(params): Params<StatementParams>,
) -> Result<Response, ApiError> {
    let filter = app.app().statement_filter(&principal, params.filter()?)?;
    let csv = wants_csv(&headers);
    if params.limit.is_some() || params.cursor.is_some() {
        let limit = params.limit.unwrap_or(100);
        if !(1..=MAX_STATEMENT_PAGE).contains(&limit) {
            return Err(ApiError(AppError::BadParameter("limit: 1 to 1000".into())));
        }
        let (lines, next) = app
            .app()
            .statement_page(&filter, params.cursor.map(Cursor), limit)
            .await?;
        if csv {
            let mut out = String::new();
            csv_row(&mut out, StatementLine::CSV_HEADER);
            csv_lines(&mut out, &lines);
            let mut response = csv_response(Body::from(out));
            if let Some(c) = next.and_then(|c| HeaderValue::from_str(&c.0).ok()) {
                response.headers_mut().insert("x-next-cursor", c);
            }
            return Ok(response);
        }
        return Ok(json(
            StatusCode::OK,
            &StatementPageView {
                lines: lines.iter().map(StatementLineView::from).collect(),
                next_cursor: next.map(|c| c.0),
            },
        ));
    }
    // The first page is read before answering, so that its errors are problems, not a cut body.
    let (lines, next) = app.app().statement_page(&filter, None, STREAM_PAGE).await?;
    let mut head = String::new();
    if csv {
        csv_row(&mut head, StatementLine::CSV_HEADER);
    } else {
        head.push_str(&format!(
            "{{\"from\":\"{}\",\"to\":\"{}\",\"lines\":[",
            filter.period.from, filter.period.to
        ));
    }
    let state = Streaming {
        app,
        filter,
        csv,
        phase: Phase::Lines(lines, next),
        totals: StatementTotals::default(),
        first: true,
    };
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) })
        .chain(futures::stream::unfold(state, Streaming::next_chunk));
    let body = Body::from_stream(stream);
    Ok(if csv {
        csv_response(body)
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    })
}

fn csv_response(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"statement.csv\""),
        ],
        body,
    )
        .into_response()
}

/// Body of `POST /v1/reconciliations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationBody {
    /// First day, UTC (`YYYY-MM-DD`).
    #[schema(example = "2026-11-30")]
    from: String,
    /// Last day, UTC, included; at most 366 days after `from`.
    #[schema(example = "2026-11-30")]
    to: String,
}

/// Starts a reconciliation of a period: every request that changed in it is compared with its
/// provider's own record (by our reference), and every provider with a list API (Cascad) is read
/// for payouts under our references that we do not know. Answers at once; follow it with
/// `GET /v1/reconciliations/{id}`.
#[utoipa::path(post, path = "/v1/reconciliations", tag = "reconciliation", request_body = ReconciliationBody,
    responses((status = 202, body = ReconciliationView), (status = 403, body = Problem, description = "`forbidden`: operator keys only"),
        (status = 400, body = Problem, description = "`invalid_parameter`: a malformed date or a period over 366 days")),
    security(("bearer" = [])))]
pub(crate) async fn start_reconciliation<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_operator(&principal)?;
    let bytes = body(bytes)?;
    let parsed: ReconciliationBody = serde_json::from_slice(&bytes).map_err(AppError::from)?;
    let period = period(&parsed.from, &parsed.to)?;
    let run = app.app().start_reconciliation(&principal, period).await?;
    Ok(json(StatusCode::ACCEPTED, &ReconciliationView::new(&run, &[], None)))
}

/// Query of `GET /v1/reconciliations/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DifferenceParams {
    /// Differences per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// From a previous answer's `next_cursor`.
    cursor: Option<String>,
}

/// A reconciliation: its status, counts and a page of its differences.
#[utoipa::path(get, path = "/v1/reconciliations/{id}", tag = "reconciliation",
    params(("id" = String, Path, description = "`recon_…`"), DifferenceParams),
    responses((status = 200, body = ReconciliationView), (status = 403, body = Problem, description = "`forbidden`: operator keys only"),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_reconciliation<A: HttpApp>(
    State(app): State<A>,
    Caller(principal): Caller,
    Segments(id): Segments<String>,
    Params(params): Params<DifferenceParams>,
) -> Result<Response, ApiError> {
    require_operator(&principal)?;
    let id = id.parse().map_err(|_| ApiError(AppError::NotFound))?;
    let cursor = params.cursor.map(Cursor);
    let (run, page) = app
        .app()
        .get_reconciliation(&principal, id, params.limit.unwrap_or(100), cursor.as_ref())
        .await?;
    Ok(json(
        StatusCode::OK,
        &ReconciliationView::new(&run, &page.items, page.next_cursor.map(|c| c.0)),
    ))
}
