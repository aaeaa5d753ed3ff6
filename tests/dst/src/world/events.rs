//! What the agenda's events do: a merchant creates, replays or cancels a request, an operator
//! acts, a provider's payout changes or it notifies, someone forges a notification, the sweep
//! ticks, the processes crash, the faults stop.

use std::time::Duration;

use cashout_core::auth::Principal;
use cashout_core::ids::{CashoutRequestId, InvoiceId};
use cashout_core::ports::InboundNotification;
use cashout_core::provider::{ProviderFamily, ProviderName};
use cashout_core::status::CashoutStatus;
use serde_json::json;

use super::World;
use crate::agenda::Event;
use crate::exec::Kind;
use crate::net;
use crate::store::short;

impl World {
    /// What a timed event does.
    pub(super) fn fire(&mut self, event: Event) {
        match event {
            Event::Transition {
                provider,
                payout_id,
                to,
            } => {
                if let Some(after) = self.net.transition(provider, &payout_id, to) {
                    self.net.notify_later(&after);
                }
            }
            Event::Notify { provider, payout_id } => self.notify(provider, &payout_id, 0),
            Event::Forged { provider, about } => self.forge(provider, about),
            Event::Create(n) | Event::Replay(n) => self.create(n),
            Event::Cancel(n) => self.cancel(n),
            Event::Operator => self.operate(),
            Event::Sweep => self.sweep(),
            Event::Reconcile => self.reconcile(),
            Event::Crash => {
                let killed = self.exec.kill_all(&self.ctx.waits);
                self.in_flight.clear();
                self.ctx.trace(|| format!("CRASH: {} processes lost", killed.len()));
                self.stat("crashes", 1);
            }
            Event::Heal => {
                self.ctx.heal();
                self.ctx.trace(|| "faults stop".to_owned());
            }
        }
    }

    /// The sweep's tick, every minute: a sweep starts when a check or an unpublished event is
    /// overdue and none is running.
    fn sweep(&mut self) {
        let now = self.ctx.now();
        self.agenda.at(now + time::Duration::minutes(1), Event::Sweep);
        let config = &self.app.config;
        let lag = |d: Duration| now - time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
        let due = self
            .memory
            .earliest_check()
            .is_some_and(|at| at <= lag(config.sweep_lag))
            || self
                .memory
                .oldest_unpublished()
                .is_some_and(|at| at < lag(config.outbox_lag));
        if due && self.exec.count(Kind::Sweep) == 0 {
            let app = self.app.clone();
            let ctx = self.ctx.clone();
            self.spawn("sweep".into(), Kind::Sweep, async move {
                if let Err(e) = app.sweep().await {
                    ctx.trace(|| format!("sweep failed: {e}"));
                }
            });
        }
    }

    /// An operator reconciles every day since the run began: its steps go through the poll
    /// queue like any task, under the same faults and crashes, and apply what they find through
    /// the normal status path.
    fn reconcile(&mut self) {
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let (from, to) = ((self.end - time::Duration::days(super::DAYS)).date(), ctx.now().date());
        self.stat("reconciliations started", 1);
        self.spawn("reconcile".into(), Kind::Api, async move {
            let period = match cashout_core::reconcile::Period::new(from, to) {
                Ok(p) => p,
                Err(e) => return ctx.trace(|| format!("reconcile refused: {e}")),
            };
            match app.start_reconciliation(&Principal::admin("ops"), period).await {
                Ok(run) => ctx.trace(|| format!("reconciliation {} started", run.id)),
                Err(e) => ctx.trace(|| format!("reconciliation could not start: {e}")),
            }
        });
    }

    fn create(&mut self, n: usize) {
        let Some(planned) = self.plan.get(n).cloned() else {
            return;
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let agenda = self.agenda.clone();
        let created = self.created.clone();
        self.stat("creates sent", 1);
        self.spawn(format!("create {}", planned.key), Kind::Api, async move {
            match app
                .create_cashout(&planned.merchant, Some(&planned.key), planned.body.as_bytes())
                .await
            {
                Ok(response) => {
                    let id = response.id();
                    crate::ctx::lock(&created).insert(n, id);
                    ctx.trace(|| {
                        format!(
                            "create {} answered {} {}",
                            planned.key,
                            response.answer().status,
                            short(id)
                        )
                    });
                }
                Err(e) => {
                    // A merchant retries a create that failed, with the same key and body.
                    ctx.trace(|| format!("create {} failed: {e}", planned.key));
                    if e.is_retryable() || e.status() >= 500 {
                        agenda.at(ctx.now() + time::Duration::seconds(30), Event::Replay(n));
                    }
                }
            }
        });
    }

    /// The request created for plan entry `n`, once its create answered.
    fn created(&self, n: usize) -> Option<CashoutRequestId> {
        crate::ctx::lock(&self.created).get(&n).copied()
    }

    fn cancel(&mut self, n: usize) {
        let Some(id) = self.created(n) else { return };
        let Some(merchant) = self.plan.get(n).map(|p| p.merchant.clone()) else {
            return;
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        self.spawn(format!("cancel {}", short(id)), Kind::Api, async move {
            let principal = Principal::Merchant { merchant_id: merchant };
            match app.cancel(&principal, id).await {
                Ok(view) => ctx.trace(|| format!("cancel {} answered {}", short(id), view.status)),
                Err(e) => ctx.trace(|| format!("cancel {} refused: {e}", short(id))),
            }
        });
    }

    /// An operator looks at what waits for a person and acts on one request.
    fn operate(&mut self) {
        let waiting: Vec<_> = self
            .memory
            .all_requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.status(),
                    CashoutStatus::UnderReview | CashoutStatus::PaymentProcessorError
                )
            })
            .collect();
        if waiting.is_empty() {
            return;
        }
        let r = waiting[self.ctx.rng(|g| g.index(waiting.len()))].clone();
        let id = r.id();
        let choice = self.ctx.rng(|g| g.below(100));
        let invoice: Option<InvoiceId> = r
            .invoices()
            .iter()
            .filter(|i| i.is_included())
            .map(|i| i.invoice_id.clone())
            .next();
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let status = r.status();
        self.spawn(format!("operator on {} ({status})", short(id)), Kind::Api, async move {
            let op = Principal::admin("ops");
            let result = match (status, choice) {
                (CashoutStatus::UnderReview, 0..=19) if r.included_invoice_count() > 1 && invoice.is_some() => {
                    let invoice = invoice.unwrap_or_else(|| r.invoices()[0].invoice_id.clone());
                    match app.exclude_invoice(&op, id, &invoice).await {
                        Ok(_) => app.approve(&op, id).await,
                        Err(e) => Err(e),
                    }
                }
                (CashoutStatus::UnderReview, 0..=69) => app.approve(&op, id).await,
                (CashoutStatus::PaymentProcessorError, 0..=59) => app.retry(&op, id).await,
                _ => app.reject(&op, id, "operator decision".into()).await,
            };
            match result {
                Ok(view) => ctx.trace(|| format!("operator on {} → {}", short(id), view.status)),
                Err(e) => ctx.trace(|| format!("operator on {} refused: {e}", short(id))),
            }
        });
    }

    /// A provider posts what it knows about a payout now.
    fn notify(&mut self, provider: ProviderName, payout_id: &str, attempt: u32) {
        let Some(payout) = self.truth.payout(provider, payout_id) else {
            return;
        };
        let notification = match provider.family() {
            ProviderFamily::Cascad => {
                let body = net::invoice_doc(&payout).into_bytes();
                let signature = net::cascad_signature(net::CASCAD_SECRETS.2, &body);
                InboundNotification {
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("x-signature".into(), signature),
                    ],
                    body,
                }
            }
            ProviderFamily::D24(_) => d24_hint(Some(&payout.id), Some(&payout.reference)),
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        let agenda = self.agenda.clone();
        let id = payout_id.to_owned();
        self.stat("notifications", 1);
        self.spawn(
            format!("{provider} notifies {payout_id}"),
            Kind::Notification,
            async move {
                if let Err(e) = app.receive_notification(provider, notification).await {
                    ctx.trace(|| format!("notification refused: {e}"));
                    if attempt < 5 {
                        // The provider tries again later.
                        agenda.at(
                            ctx.now() + time::Duration::minutes(2),
                            Event::Notify {
                                provider,
                                payout_id: id,
                            },
                        );
                    }
                }
            },
        );
    }

    /// Someone who is not the provider posts to `/webhooks/{provider}`.
    fn forge(&mut self, provider: ProviderName, about: Option<CashoutRequestId>) {
        let known: Vec<CashoutRequestId> = self.memory.all_requests().iter().map(|r| r.id()).collect();
        let (kind, about, fake_id) = self.ctx.rng(|r| {
            let about = about.or_else(|| (!known.is_empty() && r.chance(500)).then(|| *r.pick(&known)));
            (r.below(3), about, 9_000_000 + r.below(1_000_000))
        });
        let notification = match provider.family() {
            ProviderFamily::Cascad => {
                let body = json!({"data": {"id": "cpoi_forged", "type": "payout-invoice", "attributes": {"status": "processed", "resolution": "ok", "amount": 10, "currency": "USD", "reference_id": about.map(|a| a.to_string())}}})
                    .to_string()
                    .into_bytes();
                let headers = match kind {
                    0 => vec![],
                    _ => vec![("x-signature".to_owned(), net::cascad_signature("not-the-secret", &body))],
                };
                InboundNotification { headers, body }
            }
            ProviderFamily::D24(_) => {
                let reference = about.map(|a| a.to_string());
                match kind {
                    0 => d24_hint(Some(&fake_id.to_string()), None),
                    1 => d24_hint(
                        None,
                        Some(&reference.unwrap_or_else(|| uuid::Uuid::from_u128(u128::from(fake_id)).to_string())),
                    ),
                    _ => d24_hint(Some(&fake_id.to_string()), reference.as_deref()),
                }
            }
        };
        let app = self.app.clone();
        let ctx = self.ctx.clone();
        self.stat("forged notifications", 1);
        self.spawn(
            format!("forged {provider} notification"),
            Kind::Notification,
            async move {
                let result = app.receive_notification(provider, notification).await;
                ctx.trace(|| {
                    format!(
                        "forged notification answered: {}",
                        result.map_or_else(|e| e.to_string(), |()| "ok".into())
                    )
                });
            },
        );
    }
}

/// A D24 notification form (seed 001 / the digest: form-urlencoded, no status).
fn d24_hint(cashout_id: Option<&str>, external_id: Option<&str>) -> InboundNotification {
    let mut fields = vec![("date", "2026-11-01 00:00:00".to_owned()), ("control", "0".repeat(64))];
    if let Some(id) = cashout_id {
        fields.push(("cashout_id", id.to_owned()));
    }
    if let Some(r) = external_id {
        fields.push(("external_id", r.to_owned()));
    }
    InboundNotification {
        headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        body: serde_urlencoded::to_string(&fields).unwrap_or_default().into_bytes(),
    }
}
