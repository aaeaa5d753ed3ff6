//! Use-case tests over the embedded SQLite store (store and queue), a scripted provider and a
//! recording webhook sender, with a manual clock.

#![allow(clippy::unwrap_used)]

mod create;
mod delivery;
mod dispatch;
mod endpoints;
mod failover;
mod http_surface;
mod money_safety;
mod operators;
mod pipeline;
mod rate_limits;
mod reconcile;
mod selfservice;
pub(crate) mod support;
