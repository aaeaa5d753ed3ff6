//! The checks, once everything has settled: every invariant of the run (the module doc of
//! [`super`] lists them) against the providers' ledger, the requests' audit trails, what the
//! merchants saw, the receiver's log and the runner's logs. Each broken invariant is one line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;

use cashout_core::provider::ProviderName;
use cashout_provider_sim::{Ledger, LedgerPayout};
use cashout_system::receiver::Delivery;
use cashout_system::workload::sim_provider;
use rust_decimal::Decimal;
use serde_json::Value;

use super::merchant::{Outcome, Shared};
use super::plan::Plan;
use super::settle::{Snapshot, get_until_answered};
use super::truth::{ENDPOINTS, Endpoint, Expect, allowed, expect, payouts_of_request, request_of, subscribed};
use super::{MERCHANT_A, MERCHANT_B, OPERATOR_KEY};

/// What the checks found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    /// Every invariant broken.
    pub violations: Vec<String>,
    /// Final statuses.
    pub statuses: BTreeMap<String, usize>,
    /// Requests legitimately waiting, by reason.
    pub waiting: BTreeMap<String, usize>,
    /// Payouts at the providers, by provider and status.
    pub payouts: BTreeMap<String, usize>,
    /// References with more than one payout.
    pub double_payouts: usize,
    /// Requests with more than one payout, counted over every provider and every attempt's
    /// reference (`<id>`, `<id>.<n>`).
    pub requests_paid_twice: usize,
    /// The most payouts one request has, over every provider.
    pub max_payouts_per_request: usize,
    /// Status events in the audit trails.
    pub events: usize,
    /// Requests that left at least one provider (failed over).
    pub failed_over: usize,
    /// Provider attempts left, by `failover.kind`.
    pub failovers_by_reason: BTreeMap<String, usize>,
    /// Final statuses of the requests that failed over.
    pub failed_over_statuses: BTreeMap<String, usize>,
    /// Requests by the provider of their last attempt and how they were routed
    /// (`pinned d24`, `routed onspot`).
    pub final_providers: BTreeMap<String, usize>,
}

/// Every invariant, on the final snapshots.
pub(super) async fn check(
    shared: &Shared,
    snapshots: &HashMap<usize, Snapshot>,
    ledger: &Ledger,
    deliveries: &[Delivery],
) -> Verdict {
    let mut verdict = Verdict::default();
    check_payouts(shared, snapshots, ledger, &mut verdict);
    let by_request = deliveries_by_request(deliveries, &mut verdict.violations);
    for (n, p) in shared.plans.iter().enumerate() {
        let Some(s) = snapshots.get(&n) else {
            if shared.outcomes[n].lock().await.id.is_some() {
                verdict.violations.push(format!("request #{n} could not be read back"));
            }
            continue;
        };
        let id = s.request["id"].as_str().unwrap_or_default();
        let got = by_request.get(id).map(Vec::as_slice).unwrap_or_default();
        let outcome = shared.outcomes[n].lock().await;
        check_request(n, p, s, &outcome, got, ledger, &mut verdict);
    }
    check_one_request_per_key(shared, &mut verdict.violations).await;
    verdict
}

/// The providers: one payout per reference and one per request (over every provider and every
/// attempt's reference: `<id>` and `<id>.<n>` are the same request), each ours, each with the
/// request's amount, under one of the request's provider attempts.
fn check_payouts(shared: &Shared, snapshots: &HashMap<usize, Snapshot>, ledger: &Ledger, verdict: &mut Verdict) {
    let v = &mut verdict.violations;
    let double = ledger.double_payouts();
    for d in &double {
        v.push(format!(
            "DOUBLE PAYOUT: {} reference {} has {} payouts",
            d.provider, d.reference, d.payouts
        ));
    }
    verdict.double_payouts = double.len();
    let mut per_request: BTreeMap<&str, Vec<&LedgerPayout>> = BTreeMap::new();
    for p in &ledger.payouts {
        per_request.entry(request_of(&p.reference)).or_default().push(p);
    }
    verdict.max_payouts_per_request = per_request.values().map(Vec::len).max().unwrap_or(0);
    for (id, payouts) in per_request.iter().filter(|(_, ps)| ps.len() > 1) {
        verdict.requests_paid_twice += 1;
        let each: Vec<String> = payouts
            .iter()
            .map(|p| format!("{} {} ref {} ({})", p.provider, p.id, p.reference, p.status))
            .collect();
        v.push(format!(
            "DOUBLE PAYOUT: request {id} has {} payouts: {}",
            payouts.len(),
            each.join(", ")
        ));
    }
    let our_ids: HashMap<&str, usize> = snapshots
        .iter()
        .filter_map(|(n, s)| s.request["id"].as_str().map(|id| (id, *n)))
        .collect();
    for p in &ledger.payouts {
        *verdict
            .payouts
            .entry(format!(
                "{} {}",
                p.provider,
                p.status.split_whitespace().next().unwrap_or_default()
            ))
            .or_insert(0) += 1;
        match our_ids.get(request_of(&p.reference)) {
            None => v.push(format!(
                "payout {} at {} for unknown reference {}",
                p.id, p.provider, p.reference
            )),
            Some(n) => check_payout_of(&shared.plans[*n], &snapshots[n].request, p, v),
        }
    }
}

/// A payout of one of our requests: the request's amount, at a provider it may go to (the one
/// named, or one of the default BR/BRL routes), under the reference of one of its provider
/// attempts, and not one it left (a failover is allowed only when the provider provably holds
/// nothing).
fn check_payout_of(plan: &Plan, request: &Value, p: &LedgerPayout, v: &mut Vec<String>) {
    let requested = decimal(&request["requested_amount"]);
    let paid = Decimal::from_str(&p.amount).ok();
    if requested.is_none() || requested != paid {
        v.push(format!(
            "payout {} for {} is {} at {}; the request asked {}",
            p.id, p.reference, p.amount, p.provider, request["requested_amount"]
        ));
    }
    let may_go = if plan.pinned {
        vec![plan.provider]
    } else {
        vec![ProviderName::D24, ProviderName::Onspot]
    };
    if !may_go.iter().any(|m| sim_provider(*m) == p.provider) {
        v.push(format!(
            "payout for {} at {}, the request may go to {may_go:?} only",
            p.reference, p.provider
        ));
    }
    let attempts = request["provider_attempts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let attempt = attempts
        .iter()
        .find(|a| a["provider"] == p.provider.as_str() && a["reference"] == p.reference.as_str());
    match attempt {
        None => v.push(format!(
            "payout {} at {} under reference {}, which is none of the request's provider attempts {}",
            p.id, p.provider, p.reference, request["provider_attempts"]
        )),
        Some(a) if !a["failover"].is_null() => v.push(format!(
            "PAYOUT AT A LEFT PROVIDER: {} {} ({}) for reference {}, which the request left ({})",
            p.provider, p.id, p.status, p.reference, a["failover"]
        )),
        Some(_) => {}
    }
}

/// Failovers, from the request's provider attempts: counted by reason; a pinned request must
/// never leave its provider; a PAID request must be paid by the provider of its last attempt,
/// under that attempt's reference, and hold no other payout.
fn check_failover(id: &str, p: &Plan, request: &Value, payouts: &[&LedgerPayout], verdict: &mut Verdict) {
    let attempts = request["provider_attempts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let actual = request["status"].as_str().unwrap_or_default();
    let left: Vec<&Value> = attempts.iter().filter(|a| !a["failover"].is_null()).collect();
    if !left.is_empty() {
        verdict.failed_over += 1;
        *verdict.failed_over_statuses.entry(actual.to_owned()).or_insert(0) += 1;
    }
    for a in &left {
        let kind = a["failover"]["kind"].as_str().unwrap_or("?");
        *verdict
            .failovers_by_reason
            .entry(format!("{} {kind}", a["provider"].as_str().unwrap_or("?")))
            .or_insert(0) += 1;
    }
    let last = attempts.last();
    let last_provider = last.and_then(|a| a["provider"].as_str()).unwrap_or("none");
    *verdict
        .final_providers
        .entry(format!(
            "{} {last_provider}",
            if p.pinned { "pinned" } else { "routed" }
        ))
        .or_insert(0) += 1;
    let v = &mut verdict.violations;
    if p.pinned && !left.is_empty() {
        v.push(format!(
            "request {id} named its provider {} and yet failed over: {}",
            p.provider, request["provider_attempts"]
        ));
    }
    if actual != "PAID" {
        return;
    }
    let Some(last) = last else {
        v.push(format!("request {id} is PAID without any provider attempt"));
        return;
    };
    if request["provider"] != last["provider"] || !last["failover"].is_null() {
        v.push(format!(
            "request {id} is PAID at {} but its last provider attempt is {last}",
            request["provider"]
        ));
    }
    let paid_there = payouts.iter().any(|x| {
        x.provider.as_str() == last_provider
            && x.reference == last["reference"].as_str().unwrap_or_default()
            && matches!(x.status.split_whitespace().next(), Some("COMPLETED" | "processed"))
    });
    if !paid_there || payouts.len() != 1 {
        let each: Vec<String> = payouts
            .iter()
            .map(|x| format!("{} ref {} ({})", x.provider, x.reference, x.status))
            .collect();
        v.push(format!(
            "request {id} is PAID; its last attempt is {last_provider} {}, the providers hold [{}]",
            last["reference"],
            each.join(", ")
        ));
    }
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

/// The receiver's log by request; every delivery must have verified.
fn deliveries_by_request<'a>(deliveries: &'a [Delivery], v: &mut Vec<String>) -> HashMap<String, Vec<&'a Delivery>> {
    let mut by_request: HashMap<String, Vec<&Delivery>> = HashMap::new();
    for d in deliveries {
        if let Some(id) = d.body["cashout_request_id"].as_str() {
            by_request.entry(id.to_owned()).or_default().push(d);
        }
        if !d.verified {
            v.push(format!(
                "delivery {} at {} did not verify: {}",
                d.webhook_id,
                d.endpoint,
                d.verify_error.clone().unwrap_or_default()
            ));
        }
    }
    by_request
}

/// One request: its status against the truth, its audit trail, what was observed, its webhooks.
fn check_request(
    n: usize,
    p: &Plan,
    s: &Snapshot,
    outcome: &Outcome,
    got: &[&Delivery],
    ledger: &Ledger,
    verdict: &mut Verdict,
) {
    let id = s.request["id"].as_str().unwrap_or_default();
    let actual = s.request["status"].as_str().unwrap_or_default();
    *verdict.statuses.entry(actual.to_owned()).or_insert(0) += 1;
    verdict.events += s.events.len();
    let payouts_for = payouts_of_request(ledger, id);
    check_failover(id, p, &s.request, &payouts_for, verdict);
    let v = &mut verdict.violations;
    match expect(p, &payouts_for, actual) {
        Expect::Final(e) if e == actual => {}
        Expect::Waiting(e, why) if e == actual => *verdict.waiting.entry(why.to_owned()).or_insert(0) += 1,
        other => v.push(format!(
            "request {id} (#{n}, {}{} {:?}{}) is {actual}; the provider's truth ({}) implies {other:?}",
            if p.pinned { "" } else { "routed, first " },
            p.provider,
            p.trigger,
            if p.cancel_soon {
                ", cancelled by the merchant"
            } else {
                ""
            },
            payouts_for.first().map_or("no payout".to_owned(), |x| x.status.clone()),
        )),
    }
    // Money claims need money: PAID only with a paid payout at the provider.
    if actual == "PAID" && payouts_for.is_empty() {
        v.push(format!("request {id} is PAID but no provider holds a payout for it"));
    }
    check_trail(id, actual, &s.events, v);
    check_observed(id, &outcome.observed, &s.events, v);
    for ep in &ENDPOINTS {
        check_webhooks(id, p, ep, &s.events, got, v);
    }
}

/// The audit trail: gapless, starts with REQUESTED, every transition in the table, ends at the
/// current status.
fn check_trail(id: &str, actual: &str, events: &[Value], v: &mut Vec<String>) {
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["sequence"].as_u64()).collect();
    if seqs != (1..=events.len() as u64).collect::<Vec<_>>() {
        v.push(format!(
            "request {id}: audit trail sequences {seqs:?} are not 1..={}",
            events.len()
        ));
    }
    let mut status = None::<String>;
    for e in events {
        let data = &e["data"];
        match e["type"].as_str() {
            Some("cashout_request.created") => {
                if status.is_some() || data["status"] != "REQUESTED" {
                    v.push(format!("request {id}: created event out of place: {e}"));
                }
                status = Some("REQUESTED".into());
            }
            Some("cashout_request.status_update") => {
                let (from, to) = (
                    data["previous_status"].as_str().unwrap_or_default(),
                    data["status"].as_str().unwrap_or_default(),
                );
                if status.as_deref() != Some(from) {
                    v.push(format!(
                        "request {id}: event {} moves from {from}, the trail was at {status:?}",
                        e["sequence"]
                    ));
                }
                if !allowed(from, to) {
                    v.push(format!(
                        "request {id}: transition {from} → {to} is not in the status table"
                    ));
                }
                status = Some(to.to_owned());
            }
            _ => {}
        }
    }
    if status.as_deref() != Some(actual) {
        v.push(format!(
            "request {id}: the trail ends at {status:?}, the request is {actual}"
        ));
    }
}

/// Nothing moved backwards as the merchant saw it, and every status seen is in the trail.
fn check_observed(id: &str, observed: &[(u64, String)], events: &[Value], v: &mut Vec<String>) {
    for w in observed.windows(2) {
        if w[1].0 < w[0].0 || (w[1].0 == w[0].0 && w[1].1 != w[0].1) {
            v.push(format!(
                "request {id} went from version {} {} to {} {}",
                w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    let trail: HashSet<&str> = events.iter().filter_map(|e| e["data"]["status"].as_str()).collect();
    for (_, st) in observed {
        if !trail.contains(st.as_str()) {
            v.push(format!(
                "request {id} was seen {st}, which its audit trail never recorded"
            ));
        }
    }
}

/// Webhooks at one endpoint: every subscribed event, as recorded, in gapless sequences; nothing
/// it does not subscribe to; nothing at all at another merchant's endpoint.
fn check_webhooks(id: &str, p: &Plan, ep: &Endpoint, events: &[Value], got: &[&Delivery], v: &mut Vec<String>) {
    let here: Vec<&Delivery> = got.iter().copied().filter(|d| d.endpoint == ep.0).collect();
    if ep.1 != p.merchant_b {
        if !here.is_empty() {
            v.push(format!(
                "LEAK: {} of request {id} reached another merchant's endpoint {}",
                here.len(),
                ep.0
            ));
        }
        return;
    }
    let mut expected_seqs = Vec::new();
    for e in events {
        let event_type = e["type"].as_str().unwrap_or_default();
        let event_id = e["id"].as_str().unwrap_or_default();
        let seq = e["sequence"].as_u64().unwrap_or_default();
        if !subscribed(ep, p.merchant_b, event_type) {
            if here.iter().any(|d| d.webhook_id == event_id) {
                v.push(format!(
                    "{event_type} {event_id} delivered to {}, which does not subscribe to it",
                    ep.0
                ));
            }
            continue;
        }
        expected_seqs.push(seq);
        match here.iter().find(|d| d.webhook_id == event_id && d.accepted()) {
            None => v.push(format!(
                "event {event_id} (#{seq} of {id}, {event_type}) never reached {}",
                ep.0
            )),
            Some(d) => {
                if d.body["sequence"].as_u64() != Some(seq) || d.body["status"] != e["data"]["status"] {
                    v.push(format!(
                        "delivery of {event_id} at {} differs from the audit trail: {}",
                        ep.0, d.body
                    ));
                }
            }
        }
    }
    let mut seqs: Vec<u64> = here
        .iter()
        .filter(|d| d.accepted())
        .filter_map(|d| d.body["sequence"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    if seqs != expected_seqs {
        v.push(format!(
            "request {id} at {}: sequences {seqs:?}, expected {expected_seqs:?}",
            ep.0
        ));
    }
}

/// One request per idempotency key: each merchant's listing holds exactly its creates.
async fn check_one_request_per_key(shared: &Shared, v: &mut Vec<String>) {
    for (merchant_b, (name, key)) in [(false, MERCHANT_A), (true, MERCHANT_B)] {
        let mut listed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/cashout-requests?limit=100&cursor={c}"),
                None => "/v1/cashout-requests?limit=100".to_owned(),
            };
            let page = get_until_answered(&shared.api, &path, key).await;
            listed += page["data"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let planned = shared.plans.iter().filter(|p| p.merchant_b == merchant_b).count();
        if listed != planned {
            v.push(format!("{name} holds {listed} requests for {planned} idempotency keys"));
        }
    }
}

/// Accepted deliveries of an event already accepted at that endpoint (delivery is at least
/// once).
pub(super) fn duplicate_deliveries(deliveries: &[Delivery]) -> usize {
    let mut seen = HashSet::new();
    deliveries
        .iter()
        .filter(|d| d.accepted())
        .filter(|d| !seen.insert((d.endpoint.clone(), d.webhook_id.clone())))
        .count()
}

/// No full account number, API key or webhook secret in any log line of the runner.
pub(super) fn scan_logs(logs: &[PathBuf], plans: &[Plan], secrets: &HashMap<&str, String>) -> Vec<String> {
    let mut secret_words: Vec<String> = vec![
        MERCHANT_A.1.to_owned(),
        MERCHANT_B.1.to_owned(),
        OPERATOR_KEY.to_owned(),
    ];
    secret_words.extend(secrets.values().cloned());
    let accounts: HashSet<&str> = plans.iter().map(|p| p.account.as_str()).collect();
    let mut v = Vec::new();
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            // The "listening" line prints the local keys on stdout, never in the log.
            let leaked_secret = secret_words.iter().any(|s| line.contains(s.as_str()));
            let leaked_account = line
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| accounts.contains(run));
            if leaked_secret || leaked_account {
                v.push(format!(
                    "{}:{}: a secret or a full account number in the log: {}",
                    path.display(),
                    i + 1,
                    line.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    v.truncate(20);
    v
}
