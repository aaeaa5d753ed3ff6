//! Reading: authentication, requests, their history, payout methods.

use cashout_core::auth::Principal;
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::{CashoutRequestId, MerchantId};
use cashout_core::money::{Amount, Currency};
use cashout_core::party::Country;
use cashout_core::ports::{Cursor, ListQuery, PayoutMethodQuery, PayoutProvider, Store};
use cashout_core::status::CashoutStatus;

use crate::App;
use crate::access::ensure_visible;
use crate::error::AppError;
use crate::views::{CashoutRequestPage, CashoutRequestView, EventList, EventView, PayoutMethodList, PayoutMethodView};

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Loads a request the principal may see: its merchant's, or any for an operator. Another
    /// merchant's request is "not found".
    pub async fn visible_request(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
    ) -> Result<CashoutRequest, AppError> {
        let request = self.store.get_request(id).await?.ok_or(AppError::NotFound)?;
        ensure_visible(principal, &request)?;
        Ok(request)
    }

    /// One request.
    pub async fn get_cashout(
        &self,
        principal: &Principal,
        id: CashoutRequestId,
    ) -> Result<CashoutRequestView, AppError> {
        Ok(CashoutRequestView::from(&self.visible_request(principal, id).await?))
    }

    /// A merchant's requests, newest first. Operators name the merchant.
    pub async fn list_cashouts(
        &self,
        principal: &Principal,
        merchant: Option<&str>,
        status: Option<&str>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<CashoutRequestPage, AppError> {
        let named = merchant
            .map(|m| MerchantId::new(m).map_err(|e| AppError::BadParameter(e.to_string())))
            .transpose()?;
        let merchant = match (principal, named) {
            (Principal::Merchant { merchant_id }, None) => merchant_id.clone(),
            (Principal::Merchant { merchant_id }, Some(m)) if m == *merchant_id => m,
            (Principal::Merchant { .. }, Some(_)) => {
                return Err(AppError::Forbidden("a merchant key lists only its own requests"));
            }
            (Principal::Operator { .. }, Some(m)) => m,
            (Principal::Operator { .. }, None) => {
                return Err(AppError::BadParameter("operators must pass merchant_id".into()));
            }
        };
        let status = status
            .map(|s| {
                s.parse::<CashoutStatus>()
                    .map_err(|e| AppError::BadParameter(e.to_string()))
            })
            .transpose()?;
        let query = ListQuery {
            status,
            limit: page_limit(limit)?,
            cursor: cursor.map(Cursor),
        };
        let page = self.store.list_requests(&merchant, &query).await?;
        Ok(CashoutRequestPage {
            data: page.items.iter().map(CashoutRequestView::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.0),
        })
    }

    /// A request's status history.
    pub async fn list_events(&self, principal: &Principal, id: CashoutRequestId) -> Result<EventList, AppError> {
        self.visible_request(principal, id).await?;
        let events = self.store.list_events(id).await?;
        Ok(EventList {
            data: events.iter().map(EventView::from).collect(),
        })
    }
}

impl<S, Q, P: PayoutProvider, W> App<S, Q, P, W> {
    /// Which providers can pay `amount` of `currency` in `country`, with the beneficiary fields
    /// each needs. A provider that cannot answer now is left out (and logged).
    pub async fn payout_methods(
        &self,
        country: &str,
        currency: &str,
        amount: Option<&str>,
    ) -> Result<PayoutMethodList, AppError> {
        let country: Country = country
            .parse()
            .map_err(|e: cashout_core::party::UnknownCountry| AppError::BadParameter(e.to_string()))?;
        let currency: Currency = currency
            .parse()
            .map_err(|e: cashout_core::money::MoneyError| AppError::BadParameter(e.to_string()))?;
        let amount = match amount.map(|a| filter_amount(a, currency)).transpose()? {
            // nothing pays an amount of zero (in the currency's minor unit)
            Some(None) => return Ok(PayoutMethodList { data: Vec::new() }),
            Some(Some(amount)) => Some(amount),
            None => None,
        };
        let query = PayoutMethodQuery {
            country,
            currency,
            amount,
        };
        let mut data = Vec::new();
        for provider in self.config.coverage.candidates(country, currency) {
            match self.provider.payout_methods(provider, &query).await {
                Ok(methods) => data.extend(methods.iter().map(PayoutMethodView::from)),
                Err(e) => {
                    tracing::warn!(provider = %provider, error = %e, "payout methods unavailable")
                }
            }
        }
        Ok(PayoutMethodList { data })
    }
}

/// The `amount` filter of the payout-methods query, exactly as documented: `0` or up to 14
/// digits without a leading zero, and at most 4 decimals, rounded half-even to the currency's
/// minor unit (it only selects the methods whose limits hold it). `None`: it rounds to zero.
fn filter_amount(text: &str, currency: Currency) -> Result<Option<Amount>, AppError> {
    let refuse = || AppError::BadParameter("amount: a decimal such as 1500 or 1500.25 (at most 4 decimals)".into());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = int == "0" || (digits(int, 14) && !int.starts_with('0'));
    if !int_ok || frac.is_some_and(|f| !digits(f, 4)) {
        return Err(refuse());
    }
    let value = cashout_core::money::parse_decimal(text).map_err(|_| refuse())?;
    let rounded = value.round_dp_with_strategy(
        currency.minor_units(),
        rust_decimal::RoundingStrategy::MidpointNearestEven,
    );
    if rounded.is_zero() {
        return Ok(None);
    }
    Amount::new(rounded, currency)
        .map(Some)
        .map_err(|e| AppError::BadParameter(format!("amount: {e}")))
}

/// A page size: 1 to 100, default 20.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(AppError::BadParameter("limit must be between 1 and 100".into())),
    }
}

#[cfg(test)]
mod filter_amount_tests {
    use super::*;

    #[test]
    fn the_amount_filter_takes_exactly_the_documented_form_and_rounds_to_the_currency() {
        let shown = |t, c| filter_amount(t, c).unwrap().map(|a| a.to_string());
        assert_eq!(shown("1.5", Currency::JPY).as_deref(), Some("2"));
        assert_eq!(shown("2.5", Currency::JPY).as_deref(), Some("2"));
        assert_eq!(shown("0.4", Currency::JPY), None);
        assert_eq!(shown("0", Currency::USD), None);
        assert_eq!(shown("0.125", Currency::USD).as_deref(), Some("0.12"));
        assert_eq!(
            shown("99999999999999.9999", Currency::CLF).as_deref(),
            Some("99999999999999.9999")
        );
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "-1",
            "1e3",
            "1.23456",
            "+1",
            "100000000000000",
            " 1",
        ] {
            assert!(filter_amount(bad, Currency::USD).is_err(), "{bad:?}");
        }
    }
}
