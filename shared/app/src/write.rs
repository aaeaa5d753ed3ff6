//! The write loop every use case relies on.
//!
//! Every change goes through [`App::mutate`]: load, decide, write on the version just read
//! ([`Store::apply_change`], conditional), and on a lost race load again and decide again. After
//! a write its events are published ([`crate::outbox`]).

use cashout_core::cashout::{CashoutRequest, Change};
use cashout_core::ids::CashoutRequestId;
use cashout_core::ports::{Store, StoreError, TaskQueue};
use time::OffsetDateTime;

use crate::App;
use crate::error::AppError;

/// How many times a change is recomputed after losing a race before giving up.
const MAX_RACES: usize = 8;

/// The result of [`App::mutate`].
pub(crate) struct Mutation {
    /// The request after the write (or as loaded, when nothing changed).
    pub request: CashoutRequest,
    /// The change written, if any.
    pub change: Option<Change>,
}

impl<S: Store, Q: TaskQueue, P, W> App<S, Q, P, W> {
    /// Loads the request, asks `decide` for a change, and writes it conditionally; a lost race
    /// reloads and asks again. `decide` returning `Ok(None)` writes nothing.
    pub(crate) async fn mutate<F>(&self, id: CashoutRequestId, decide: F) -> Result<Mutation, AppError>
    where
        F: FnMut(&CashoutRequest, OffsetDateTime) -> Result<Option<Change>, AppError>,
    {
        let request = self.store.get_request(id).await?.ok_or(AppError::NotFound)?;
        self.mutate_from(request, decide).await
    }

    /// [`App::mutate`] starting from a snapshot the caller has just read or written, which saves
    /// a read: the write is conditional on the snapshot's version, so a stale one only costs a
    /// lost race and a reload.
    pub(crate) async fn mutate_from<F>(&self, snapshot: CashoutRequest, mut decide: F) -> Result<Mutation, AppError>
    where
        F: FnMut(&CashoutRequest, OffsetDateTime) -> Result<Option<Change>, AppError>,
    {
        let id = snapshot.id();
        let mut loaded = Some(snapshot);
        for _ in 0..MAX_RACES {
            let request = match loaded.take() {
                Some(request) => request,
                None => self.store.get_request(id).await?.ok_or(AppError::NotFound)?,
            };
            let now = self.now();
            let Some(change) = decide(&request, now)? else {
                return Ok(Mutation { request, change: None });
            };
            if self.write(&change).await? {
                return Ok(Mutation {
                    request: change.request.clone(),
                    change: Some(change),
                });
            }
        }
        Err(AppError::Contended)
    }

    /// Writes one change on its expected version: `false` if another writer changed the request
    /// first (nothing was written). After the write, see [`App::committed`].
    pub(crate) async fn write(&self, change: &Change) -> Result<bool, AppError> {
        let id = change.request.id();
        match self.store.apply_change(change).await {
            Ok(()) => {
                self.committed(change).await;
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => {
                tracing::debug!(cashout_request_id = %id, "lost a write race; deciding again");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a change is written: its events logged and published, its attention notes raised
    /// as alerts.
    pub(crate) async fn committed(&self, change: &Change) {
        let id = change.request.id();
        for e in &change.events {
            tracing::info!(cashout_request_id = %id, sequence = e.sequence, event = %e.event_type(), status = %change.request.status(), "status event");
        }
        for note in &change.new_attention {
            tracing::error!(alert = true, cashout_request_id = %id, status = %change.request.status(), reason = ?note.reason, "cashout request needs a person");
        }
        self.publish(&change.events).await;
    }
}
