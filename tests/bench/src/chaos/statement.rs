//! The statement against the providers' ledger: once everything has settled, the operator's
//! statement of the run's days (`GET /v1/statements`, every merchant) must say, per currency,
//! what the providers say was paid and what was paid and then reversed; and per reference, so
//! that a difference is explained, not only counted.
//!
//! What the ledger says (written here from the provider mappings in `cashout-core`, not from the
//! product's statement code):
//! - paid: a D24-family payout (D24, Onspot, Tupay) `COMPLETED`; a Cascad payout `processed`
//!   (paid when its resolution is `ok`: the ledger does not carry the resolution, and the chaos
//!   run never sets another one);
//! - reversed: a D24-family payout `REJECTED …` after it was `COMPLETED` (its history says so).
//!
//! A statement line carries its request's current attempt's reference (`<id>`, `<id>.<n>` after
//! a failover) and provider; a payout at a reference the request left has no line, so a paid one
//! shows as a difference. Ledger amounts are strings as the provider received them (compared as
//! decimals); a D24-family payout may have no currency, and then the line's is used.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use cashout_provider_sim::{Ledger, LedgerPayout, Provider};
use cashout_system::client::Api;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use time::{Date, OffsetDateTime};

use super::OPERATOR_KEY;

/// One currency's figures: the statement's totals, the same summed from its lines, and the
/// ledger's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CurrencyFigures {
    /// Lines of the statement in this currency.
    pub lines: u64,
    /// `totals.<currency>.paid` of the statement.
    pub statement_paid: String,
    /// Σ amounts of the ledger's paid payouts in this currency.
    pub ledger_paid: String,
    /// PAID lines, and the ledger's paid payouts.
    pub paid_lines: usize,
    /// See above.
    pub paid_payouts: usize,
    /// `totals.<currency>.reversed` of the statement.
    pub statement_reversed: String,
    /// Σ amounts of the ledger's payouts paid then reversed.
    pub ledger_reversed: String,
    /// Lines with a `reversed_amount`, and the ledger's reversed payouts.
    pub reversed_lines: usize,
    /// See above.
    pub reversed_payouts: usize,
    /// Both totals equal the ledger's.
    pub matches: bool,
}

/// What the statement check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatementCheck {
    /// The period asked for (the run's first and last day, UTC).
    pub from: String,
    pub to: String,
    /// Lines in the statement.
    pub lines: usize,
    /// Per currency.
    pub currencies: BTreeMap<String, CurrencyFigures>,
    /// Every difference, per reference (empty: the statement matches the ledger line by line).
    pub differences: Vec<String>,
    /// The statement could not be read (then nothing else is filled in).
    pub error: Option<String>,
}

impl StatementCheck {
    /// The violations: the statement unreadable, a currency whose totals differ, and every
    /// per-reference difference.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("the statement could not be read: {e}"));
        }
        for (currency, c) in &self.currencies {
            if !c.matches {
                out.push(format!(
                    "statement {currency}: paid {} vs the ledger's {} ({} PAID lines, {} paid payouts); reversed {} vs {} ({} lines, {} payouts)",
                    c.statement_paid,
                    c.ledger_paid,
                    c.paid_lines,
                    c.paid_payouts,
                    c.statement_reversed,
                    c.ledger_reversed,
                    c.reversed_lines,
                    c.reversed_payouts
                ));
            }
        }
        out.extend(self.differences.iter().map(|d| format!("statement vs ledger: {d}")));
        out
    }
}

/// `YYYY-MM-DD`.
fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn provider_name(p: Provider) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{p:?}"))
}

/// `d` with as many decimals as `like` (the statement's total), never dropping a digit.
fn shown(d: Decimal, like: Decimal) -> String {
    let mut d = d.normalize();
    d.rescale(d.scale().max(like.scale()));
    d.to_string()
}

fn decimal(v: &Value) -> Option<Decimal> {
    v.as_str().and_then(|s| Decimal::from_str(s).ok())
}

/// What the ledger says a payout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Paid,
    Reversed,
    Other,
}

fn truth(p: &LedgerPayout) -> Truth {
    let head = |s: &str| s.split_whitespace().next().unwrap_or_default().to_owned();
    if p.provider == Provider::Cascad {
        return if p.status == "processed" {
            Truth::Paid
        } else {
            Truth::Other
        };
    }
    match head(&p.status).as_str() {
        "COMPLETED" => Truth::Paid,
        "REJECTED" if p.history.iter().any(|(s, _)| head(s) == "COMPLETED") => Truth::Reversed,
        _ => Truth::Other,
    }
}

/// One statement line, as the check reads it.
struct Line<'a> {
    id: &'a str,
    provider: &'a str,
    status: &'a str,
    currency: &'a str,
    paid: Option<Decimal>,
    reversed: Option<Decimal>,
}

impl<'a> Line<'a> {
    fn of(v: &'a Value) -> Line<'a> {
        Line {
            id: v["cashout_request_id"].as_str().unwrap_or_default(),
            provider: v["provider"].as_str().unwrap_or_default(),
            status: v["status"].as_str().unwrap_or_default(),
            currency: v["currency"].as_str().unwrap_or_default(),
            paid: decimal(&v["paid_amount"]),
            reversed: decimal(&v["reversed_amount"]),
        }
    }

    fn describe(&self, reference: &str) -> String {
        format!(
            "line {} ({} {}, reference {reference}, paid_amount {}, reversed_amount {})",
            self.id,
            self.provider,
            self.status,
            self.paid.map_or("null".into(), |d| d.to_string()),
            self.reversed.map_or("null".into(), |d| d.to_string())
        )
    }
}

fn describe_payout(p: &LedgerPayout) -> String {
    format!(
        "{} payout {} ({}, {} {})",
        provider_name(p.provider),
        p.id,
        p.status,
        p.amount,
        p.currency.as_deref().unwrap_or("no currency")
    )
}

/// Reads the operator's statement from `first_day` to today (UTC) and compares it with `ledger`.
pub(super) async fn check_statement(api: &Api, first_day: Date, ledger: &Ledger) -> StatementCheck {
    let (from, to) = (day(first_day), day(OffsetDateTime::now_utc().date()));
    let mut out = StatementCheck {
        from: from.clone(),
        to: to.clone(),
        ..StatementCheck::default()
    };
    match api.statement(OPERATOR_KEY, &format!("from={from}&to={to}")).await {
        Ok(statement) => compare(&statement, ledger, &mut out),
        Err(e) => out.error = Some(e),
    }
    out
}

/// The per-currency figures and the per-reference differences.
fn compare(statement: &Value, ledger: &Ledger, out: &mut StatementCheck) {
    let lines: Vec<&Value> = statement["lines"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    out.lines = lines.len();
    let by_reference: HashMap<&str, Line<'_>> = lines
        .iter()
        .map(|v| (v["reference"].as_str().unwrap_or_default(), Line::of(v)))
        .collect();
    if by_reference.len() != lines.len() {
        out.differences.push(format!(
            "{} lines but {} distinct references",
            lines.len(),
            by_reference.len()
        ));
    }
    let mut sums: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    let mut figures: BTreeMap<String, CurrencyFigures> = BTreeMap::new();
    for line in by_reference.values() {
        let f = figures.entry(line.currency.to_owned()).or_default();
        f.lines += 1;
        if line.status == "PAID" {
            f.paid_lines += 1;
        }
        if line.reversed.is_some() {
            f.reversed_lines += 1;
        }
    }

    // The ledger's side, and each of its paid or reversed payouts against the line of its
    // reference.
    let mut ledger_refs: HashMap<&str, (&LedgerPayout, Truth)> = HashMap::new();
    for p in &ledger.payouts {
        let t = truth(p);
        if t == Truth::Other {
            continue;
        }
        ledger_refs.insert(p.reference.as_str(), (p, t));
        let line = by_reference.get(p.reference.as_str());
        let currency = p
            .currency
            .clone()
            .or_else(|| line.map(|l| l.currency.to_owned()))
            .unwrap_or_else(|| "?".into());
        let amount = Decimal::from_str(&p.amount).ok();
        let f = figures.entry(currency.clone()).or_default();
        let s = sums.entry(currency).or_default();
        match t {
            Truth::Paid => {
                f.paid_payouts += 1;
                s.0 += amount.unwrap_or_default();
            }
            Truth::Reversed => {
                f.reversed_payouts += 1;
                s.1 += amount.unwrap_or_default();
            }
            Truth::Other => {}
        }
        let why = match (t, line) {
            (_, None) => Some("no statement line has this reference".to_owned()),
            (_, Some(l)) if l.provider != provider_name(p.provider) => {
                Some(format!("the line is at another provider: {}", l.describe(&p.reference)))
            }
            (Truth::Paid, Some(l)) if l.status != "PAID" || l.paid != amount => {
                Some(format!("paid at the provider, but {}", l.describe(&p.reference)))
            }
            (Truth::Reversed, Some(l)) if l.reversed != amount => {
                Some(format!("reversed at the provider, but {}", l.describe(&p.reference)))
            }
            _ => None,
        };
        if let Some(why) = why {
            out.differences
                .push(format!("reference {}: {}: {why}", p.reference, describe_payout(p)));
        }
    }

    // The statement's side: each PAID or reversed line against the ledger (differences already
    // reported from the ledger's side are not repeated).
    let mut references: Vec<&&str> = by_reference.keys().collect();
    references.sort();
    for reference in references {
        let line = &by_reference[*reference];
        let paid_line = line.status == "PAID";
        if !paid_line && line.reversed.is_none() {
            continue;
        }
        let why = match ledger_refs.get(*reference) {
            None => Some(match ledger.payouts.iter().find(|p| p.reference == **reference) {
                Some(p) => format!("the provider's payout is {}", describe_payout(p)),
                None => "no payout at any provider has this reference".to_owned(),
            }),
            Some((_, Truth::Paid)) if !paid_line => Some("the provider's payout is paid".to_owned()),
            Some((_, Truth::Reversed)) if paid_line => Some("the provider's payout was reversed".to_owned()),
            // Amount or provider differences were reported from the ledger's side.
            Some(_) => None,
        };
        if let Some(why) = why {
            out.differences
                .push(format!("reference {reference}: {}: {why}", line.describe(reference)));
        }
    }

    // The statement's totals, against the ledger and against its own lines.
    let totals = &statement["totals"];
    for (currency, f) in &mut figures {
        let t = &totals[currency.as_str()];
        let (ledger_paid, ledger_reversed) = sums.get(currency).copied().unwrap_or_default();
        let statement_paid = decimal(&t["paid"]).unwrap_or_default();
        let statement_reversed = decimal(&t["reversed"]).unwrap_or_default();
        f.statement_paid = t["paid"].as_str().unwrap_or("absent").to_owned();
        f.statement_reversed = t["reversed"].as_str().unwrap_or("absent").to_owned();
        f.ledger_paid = shown(ledger_paid, statement_paid);
        f.ledger_reversed = shown(ledger_reversed, statement_reversed);
        f.matches = statement_paid == ledger_paid && statement_reversed == ledger_reversed;
        let (lines_paid, lines_reversed) = by_reference.values().filter(|l| l.currency == currency).fold(
            (Decimal::ZERO, Decimal::ZERO),
            |(p, r), l| {
                (
                    p + if l.status == "PAID" {
                        l.paid.unwrap_or_default()
                    } else {
                        Decimal::ZERO
                    },
                    r + l.reversed.unwrap_or_default(),
                )
            },
        );
        if lines_paid != statement_paid || lines_reversed != statement_reversed {
            out.differences.push(format!(
                "{currency}: the statement's totals (paid {statement_paid}, reversed {statement_reversed}) are not the sums of its lines (paid {lines_paid}, reversed {lines_reversed})"
            ));
        }
        if f.lines > 0 && t["count"].as_u64() != Some(f.lines) {
            out.differences.push(format!(
                "{currency}: the statement's count is {} but it has {} lines",
                t["count"], f.lines
            ));
        }
    }
    out.currencies = figures;
}
