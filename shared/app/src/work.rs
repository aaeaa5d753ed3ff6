//! What operators work through, across every merchant: the review queue, processor errors,
//! flagged requests, dead letters, a search, and the deliveries of one event.

use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, EventId, MerchantId};
use cashout_core::money::Currency;
use cashout_core::ports::{ChangedQuery, Cursor, Store, WorkList};
use cashout_core::provider::ProviderName;
use cashout_core::status::CashoutStatus;
use cashout_core::webhook::AttemptOutcome;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::App;
use crate::access::require_operator;
use crate::error::AppError;
use crate::query::page_limit;
use crate::views::{AttemptView, CashoutRequestView};

/// A search of requests across merchants (operators). With `id`, that request only; otherwise
/// the requests with a status change between `from` and `to` (UTC days, inclusive; default the
/// last 7 days, at most 366), narrowed by the other fields.
#[derive(Debug, Clone, Default)]
pub struct RequestSearch {
    /// One request by id.
    pub id: Option<CashoutRequestId>,
    /// Only this status.
    pub status: Option<CashoutStatus>,
    /// Only this merchant's.
    pub merchant_id: Option<MerchantId>,
    /// Only this provider's.
    pub provider: Option<ProviderName>,
    /// Only this currency.
    pub currency: Option<Currency>,
    /// First day.
    pub from: Option<Date>,
    /// Last day.
    pub to: Option<Date>,
    /// Results per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// A page of requests for operators.
#[derive(Debug, Clone)]
pub struct WorkPage {
    /// The requests.
    pub items: Vec<CashoutRequestView>,
    /// The next page, if any.
    pub next_cursor: Option<String>,
}

/// The store pages a search reads at most per answer (each up to 100 requests), so that a
/// search matching little still answers quickly, with a cursor to read on.
const SEARCH_READS: usize = 5;
/// The longest search period, in days.
const MAX_SEARCH_DAYS: i64 = 366;

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Operator: the requests of a work list, oldest first, every merchant.
    pub async fn work_list(
        &self,
        principal: &Principal,
        list: WorkList,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<WorkPage, AppError> {
        require_operator(principal)?;
        let page = self
            .store
            .list_work(list, page_limit(limit)?, cursor.map(Cursor).as_ref())
            .await?;
        Ok(WorkPage {
            items: page.items.iter().map(CashoutRequestView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.0),
        })
    }

    /// Operator: requests across merchants ([`RequestSearch`]).
    pub async fn search_requests(&self, principal: &Principal, search: RequestSearch) -> Result<WorkPage, AppError> {
        require_operator(principal)?;
        let limit = page_limit(search.limit)?;
        if let Some(id) = search.id {
            let found = self.store.get_request(id).await?;
            return Ok(WorkPage {
                items: found.iter().map(CashoutRequestView::from).collect(),
                next_cursor: None,
            });
        }
        let today = self.now().date();
        let to = search.to.unwrap_or(today);
        let from = match search.from {
            Some(from) => from,
            None => to.checked_sub(Duration::days(6)).unwrap_or(Date::MIN),
        };
        if from > to {
            return Err(AppError::BadParameter("`from` is after `to`".into()));
        }
        if (to - from).whole_days() >= MAX_SEARCH_DAYS {
            return Err(AppError::BadParameter(format!(
                "a search covers at most {MAX_SEARCH_DAYS} days"
            )));
        }
        let start = OffsetDateTime::new_utc(from, Time::MIDNIGHT);
        let end = to
            .next_day()
            .map_or(OffsetDateTime::new_utc(Date::MAX, Time::MAX), |d| {
                OffsetDateTime::new_utc(d, Time::MIDNIGHT)
            });
        let mut cursor = search.cursor.map(Cursor);
        let mut items = Vec::new();
        for _ in 0..SEARCH_READS {
            let page = self
                .store
                .list_changed_requests(&ChangedQuery {
                    from: start,
                    to: end,
                    merchant_id: search.merchant_id.clone(),
                    limit: 100,
                    cursor: cursor.clone(),
                })
                .await?;
            items.extend(
                page.items
                    .iter()
                    .filter(|r| search.status.is_none_or(|s| r.status() == s))
                    .filter(|r| search.provider.is_none_or(|p| r.provider() == p))
                    .filter(|r| search.currency.is_none_or(|c| r.currency() == c))
                    .map(CashoutRequestView::from),
            );
            cursor = page.next_cursor;
            if cursor.is_none() || items.len() >= limit as usize {
                break;
            }
        }
        Ok(WorkPage {
            items,
            next_cursor: cursor.map(|c| c.0),
        })
    }

    /// Operator: deliveries given up, newest first, every merchant; those a later redelivery
    /// got through are left out.
    pub async fn dead_letters(
        &self,
        principal: &Principal,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<(Vec<AttemptView>, Option<String>), AppError> {
        require_operator(principal)?;
        let page = self
            .store
            .list_dead_letters(page_limit(limit)?, cursor.map(Cursor).as_ref())
            .await?;
        let mut out = Vec::with_capacity(page.items.len());
        for dead in &page.items {
            let later = self.store.list_event_attempts(dead.event_id).await?;
            let delivered_since = later.iter().any(|a| {
                a.endpoint_id == dead.endpoint_id && a.attempt > dead.attempt && a.outcome == AttemptOutcome::Delivered
            });
            if !delivered_since {
                out.push(AttemptView::from(dead));
            }
        }
        Ok((out, page.next_cursor.map(|c| c.0)))
    }

    /// The webhook deliveries of one event (a merchant's own, or any for an operator), in
    /// attempt order.
    pub async fn event_attempts(&self, principal: &Principal, event_id: EventId) -> Result<Vec<AttemptView>, AppError> {
        self.visible_request(principal, event_id.cashout_request_id()).await?;
        let attempts = self.store.list_event_attempts(event_id).await?;
        Ok(attempts.iter().map(AttemptView::from).collect())
    }
}
