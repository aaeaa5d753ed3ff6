//! Where a call comes from, for the rate limit of failed authentications
//! ([`crate::limits`]): the address a front end vouches for ([`ClientAddr`], set by the API
//! function from API Gateway's request context), else the peer of the connection (the local
//! runner serves with `ConnectInfo`). Never a header a client could write.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

/// The client's address as the front end saw it (API Gateway's `sourceIp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client's address, if the server knows it.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
}
