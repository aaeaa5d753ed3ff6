//! The scenario a seed draws: the store's and the providers' faults, the merchants and their
//! webhook endpoints (with the receivers' bad days), the requests and when each is created,
//! replayed or cancelled, the operators' rounds, crashes and forged notifications.

use std::collections::BTreeMap;

use cashout_app::AppError;
use cashout_core::auth::Principal;
use cashout_core::ids::MerchantId;
use cashout_core::provider::ProviderName;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{HEAL_AT_DAYS, Planned, World, complete};
use crate::agenda::Event;
use crate::net::{ProviderFaults, Window};
use crate::receivers::{Behaviour, Plan};
use crate::rng::Rng;
use crate::store::StoreFaults;

pub(super) fn store_faults(level: u32) -> StoreFaults {
    StoreFaults {
        unavailable: 2 * level,
        lost_answer: 2 * level,
        spurious_conflict: 5 * level,
        duplicate: 10 + 10 * level,
        delay: 20 * level,
        send_fails: 2 * level,
    }
}

fn minutes(m: u64) -> time::Duration {
    time::Duration::minutes(i64::try_from(m).unwrap_or(0))
}

fn window(r: &mut Rng, start: OffsetDateTime, within_min: u64, len_min: (u64, u64)) -> Window {
    let from = start + minutes(r.between(0, within_min));
    Window {
        from,
        until: from + minutes(r.between(len_min.0, len_min.1)),
    }
}

pub(super) fn provider_faults(
    r: &mut Rng,
    start: OffsetDateTime,
    level: u32,
) -> BTreeMap<ProviderName, ProviderFaults> {
    ProviderName::ALL
        .into_iter()
        .map(|p| {
            let mut f = ProviderFaults {
                unique_references: !r.chance(300),
                not_sent: 5 * level,
                error_before: 5 * level,
                timeout_before: 3 * level,
                throttled: 5 * level,
                error_after_create: 15 * level,
                timeout_after_create: 15 * level,
                declines: 30,
                account_errors: 10,
                ..ProviderFaults::default()
            };
            if r.chance(250) {
                f.create_outages.push(window(r, start, 240, (5, 180)));
            }
            if r.chance(300) {
                // Lookups down for hours: what a dispatch must ride out without giving up.
                f.read_outages.push(window(r, start, 240, (10, 360)));
            }
            provider_outages(r, start, &mut f);
            (p, f)
        })
        .collect()
}

/// The outages that make requests fail over (issue 12), each seeded: the provider fully down
/// for a stretch (every call fails); creates refused for configuration; and flapping — down,
/// up, down — in short stretches around the circuit breaker's window and open time, so that
/// its circuit opens, half-opens and closes, maybe more than once.
fn provider_outages(r: &mut Rng, start: OffsetDateTime, f: &mut ProviderFaults) {
    if r.chance(200) {
        f.down.push(window(r, start, 240, (20, 300)));
    }
    if r.chance(150) {
        f.config_errors.push(window(r, start, 240, (10, 360)));
    }
    if r.chance(200) {
        let mut from = start + minutes(r.between(0, 180));
        for _ in 0..r.between(2, 5) {
            let until = from + time::Duration::seconds(i64::try_from(r.between(20, 900)).unwrap_or(60));
            f.down.push(Window { from, until });
            from = until + time::Duration::seconds(i64::try_from(r.between(30, 900)).unwrap_or(60));
        }
    }
}

impl World {
    /// Draws the scenario and puts its events on the agenda.
    pub(super) fn setup(&mut self, r: &mut Rng, start: OffsetDateTime) {
        let merchants: Vec<MerchantId> = (1..=r.between(1, 2))
            .filter_map(|m| MerchantId::new(format!("m{m}")).ok())
            .collect();
        for merchant in &merchants {
            for e in 1..=r.between(1, 2) {
                if !self.add_endpoint(r, merchant, e, start) {
                    self.ctx.violation("the endpoints could not be created");
                    return;
                }
            }
        }
        let requests = r.between(4, 14);
        for n in 0..usize::try_from(requests).unwrap_or(0) {
            self.plan_request(r, n, &merchants, start);
        }
        self.plan_people_and_faults(r, start);
    }

    /// The merchant's endpoint number `e`, and the receiver behind it with its bad windows;
    /// whether it could be created.
    fn add_endpoint(&mut self, r: &mut Rng, merchant: &MerchantId, e: u64, start: OffsetDateTime) -> bool {
        let url = format!("https://{merchant}-e{e}.example/hooks");
        let types = if r.chance(200) {
            json!(["cashout_request.status_update"])
        } else {
            json!([])
        };
        let body = json!({"url": url, "event_types": types}).to_string();
        let principal = Principal::Merchant {
            merchant_id: merchant.clone(),
        };
        // A careful merchant whose create got no answer removes what it may have made
        // (an endpoint whose secret it never saw) before it tries again.
        let created = (0..50).find_map(|_| {
            if !self.remove_endpoints(&principal, &url) {
                return None;
            }
            complete(self.app.create_endpoint(&principal, body.as_bytes())).and_then(Result::ok)
        });
        let Some(view) = created else {
            return false;
        };
        let plan = receiver_plan(r, start);
        self.receivers
            .add(&url, view.secret.as_deref().unwrap_or_default(), plan);
        self.ctx.trace(|| format!("endpoint {url} ({types})"));
        true
    }

    /// Deletes the merchant's endpoints at `url`; whether none is left.
    fn remove_endpoints(&mut self, principal: &Principal, url: &str) -> bool {
        let Some(Ok(list)) = complete(self.app.list_endpoints(principal)) else {
            return false;
        };
        list.data.iter().filter(|ep| ep.url == url).all(|ep| {
            ep.id.parse().is_ok_and(|id| {
                matches!(
                    complete(self.app.delete_endpoint(principal, id)),
                    Some(Ok(()) | Err(AppError::NotFound))
                )
            })
        })
    }

    /// Request `n`: its provider, merchant and body (sometimes with invoices of an earlier
    /// request), when it is created, and whether it is replayed or cancelled.
    fn plan_request(&mut self, r: &mut Rng, n: usize, merchants: &[MerchantId], start: OffsetDateTime) {
        let provider = match r.below(100) {
            0..=39 => ProviderName::D24,
            40..=54 => ProviderName::Onspot,
            55..=69 => ProviderName::Tupay,
            _ => ProviderName::Cascad,
        };
        let merchant = r.pick(merchants).clone();
        let mut body = body(r, provider, n);
        // Half of the BR/BRL requests name no provider: routed at approval to every provider
        // that covers them, D24 then Onspot, so that they can fail over.
        if matches!(provider, ProviderName::D24 | ProviderName::Onspot)
            && r.chance(500)
            && let Some(fields) = body.as_object_mut()
        {
            fields.remove("provider");
        }
        // Sometimes the merchant sends invoices of an earlier request again: refused while
        // that one holds them, accepted once it let them go (cancelled, rejected, excluded).
        let earlier: Vec<&Planned> = self.plan.iter().filter(|p| p.merchant == merchant).collect();
        if !earlier.is_empty() && r.chance(200) {
            let again: Value = serde_json::from_str(&r.pick(&earlier).body).unwrap_or_default();
            body["invoices"] = again["invoices"].clone();
        }
        self.plan.push(Planned {
            merchant,
            key: format!("order-{n}"),
            body: body.to_string(),
        });
        let at = start + time::Duration::seconds(i64::try_from(r.between(0, 3 * 3600)).unwrap_or(0));
        self.agenda.at(at, Event::Create(n));
        if r.chance(200) {
            self.agenda.at(
                at + time::Duration::seconds(i64::try_from(r.between(0, 600)).unwrap_or(0)),
                Event::Replay(n),
            );
        }
        if r.chance(150) {
            self.agenda.at(
                at + time::Duration::seconds(i64::try_from(r.between(0, 7200)).unwrap_or(0)),
                Event::Cancel(n),
            );
        }
    }

    /// The operators' rounds (two days), crashes, forged notifications, the sweep's first tick
    /// and the end of the faults.
    fn plan_people_and_faults(&mut self, r: &mut Rng, start: OffsetDateTime) {
        let mut at = start;
        while at < start + time::Duration::days(2) {
            at += minutes(r.between(20, 120));
            self.agenda.at(at, Event::Operator);
        }
        for _ in 0..r.between(0, 3) {
            self.agenda.at(start + minutes(r.between(1, 2 * 24 * 60)), Event::Crash);
        }
        let forged = if r.chance(300) { r.between(1, 20) } else { 0 };
        for _ in 0..forged {
            let provider = *r.pick(&ProviderName::ALL);
            self.agenda.at(
                start + minutes(r.between(0, 24 * 60)),
                Event::Forged { provider, about: None },
            );
        }
        self.agenda.at(start + time::Duration::minutes(1), Event::Sweep);
        self.agenda.at(start + time::Duration::days(HEAL_AT_DAYS), Event::Heal);
        // Reconciliations: one while faults and crashes go on, one after the faults stop.
        self.agenda
            .at(start + minutes(r.between(6 * 60, 30 * 60)), Event::Reconcile);
        self.agenda.at(
            start + time::Duration::days(HEAL_AT_DAYS) + minutes(r.between(60, 12 * 60)),
            Event::Reconcile,
        );
    }
}

/// The windows in which a receiver misbehaves, up to three in its first day.
fn receiver_plan(r: &mut Rng, start: OffsetDateTime) -> Plan {
    let mut plan = Plan::default();
    for _ in 0..r.between(0, 3) {
        let behaviour = match r.below(10) {
            0..=4 => Behaviour::Fails,
            5..=6 => Behaviour::Hangs,
            7..=8 => Behaviour::Hostile(*r.pick(&[u64::MAX, 1 << 40, 86_400 * 365])),
            _ => Behaviour::Gone,
        };
        let len = match behaviour {
            Behaviour::Fails => (10, 360),
            Behaviour::Hangs | Behaviour::Hostile(_) => (1, 120),
            Behaviour::Gone => (1, 2),
        };
        plan.windows.push((window(r, start, 24 * 60, len), behaviour));
    }
    plan
}

/// A valid request body for a provider.
fn body(r: &mut Rng, provider: ProviderName, n: usize) -> Value {
    let invoices: Vec<Value> = (0..r.between(1, 3))
        .map(|k| {
            let amount = if r.chance(120) {
                r.between(9_000, 30_000)
            } else {
                r.between(10, 4_000)
            };
            json!({
                "invoice_id": format!("INV-{n}-{k}"),
                "payer": {"tax_id": format!("{}", 11_222_333_000_100u64 + r.below(50)), "name": "Payer Co"},
                "amount": format!("{amount}.{:02}", r.below(100)),
                "advance_percentage": format!("{}", r.between(50, 100)),
            })
        })
        .collect();
    let account = format!("{:010}", r.below(10_000_000_000));
    let (currency, country, beneficiary) = match provider {
        ProviderName::D24 | ProviderName::Onspot => (
            "BRL",
            "BR",
            json!({"name": "Ana", "last_name": "Souza", "document_type": "CPF", "document_id": "12345678909",
                   "email": "ana@example.com", "bank_code": "001", "bank_branch": "1234", "bank_account": account, "account_type": "C"}),
        ),
        ProviderName::Tupay => (
            "PEN",
            "PE",
            json!({"name": "Luis", "last_name": "Quispe", "document_type": "DNI", "document_id": "12345678",
                   "bank_account": format!("{account}{account}"), "account_type": "S"}),
        ),
        ProviderName::Cascad => (
            "USD",
            "US",
            json!({"name": "Jo", "last_name": "Doe", "bank_account": account}),
        ),
    };
    let mut body = json!({
        "currency": currency, "country": country, "requested_by": "ops@merchant.example",
        "provider": provider.as_str(), "beneficiary": beneficiary, "invoices": invoices,
    });
    if provider == ProviderName::Cascad {
        // Cascad pays USD by card and by its test service: the test service, named.
        body["payout_method"] = json!("test");
    }
    body
}
