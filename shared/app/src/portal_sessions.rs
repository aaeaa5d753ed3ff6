//! The merchant portal's links and sessions. A merchant's own system mints a short-lived,
//! single-use link with its API key (`POST /v1/portal-sessions`); the browser that opens it gets
//! a portal session of its own, so the merchant's staff never handle the key. Like console
//! sessions, only hashes are stored, and the key is resolved again on every use: revoking it ends
//! the links and sessions it minted.

use std::fmt;

use cashout_core::auth::{ApiKeyHash, Principal, SessionRecord, token_hash};
use cashout_core::ports::Store;
use time::{Duration, OffsetDateTime};

use crate::App;
use crate::error::AppError;
use crate::sessions::{OpenedSession, Session};

/// How long a portal link can be opened after it was minted (once).
pub const PORTAL_LINK_LIFETIME: Duration = Duration::minutes(10);

/// How long a portal session lasts from the link's opening, whatever is done in it (absolute).
pub const PORTAL_SESSION_LIFETIME: Duration = Duration::hours(1);

/// A link's token is 64 hex characters.
const LINK_TOKEN_LEN: usize = 64;

/// A link just minted: its clear token goes to the merchant's system once, in the URL.
pub struct PortalLink {
    /// The `token` of `/portal/enter?token=…`.
    pub token: String,
    /// After this it opens nothing.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for PortalLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalLink")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where a link is stored: its token's hash in a namespace of its own, so that a link's token
/// is never a session's cookie and a session's cookie never a link.
fn link_hash(token: &str) -> String {
    token_hash(&format!("portal-link:{token}"))
}

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Mints a single-use portal link for the merchant of `principal`, tied to the key that
    /// asked (`key`). Operators have no portal: [`AppError::Forbidden`].
    #[tracing::instrument(skip_all)]
    pub async fn mint_portal_link(&self, principal: &Principal, key: ApiKeyHash) -> Result<PortalLink, AppError> {
        let Principal::Merchant { merchant_id } = principal else {
            return Err(AppError::Forbidden("portal links are minted with a merchant key"));
        };
        let token = hex::encode(self.ids.secret_bytes());
        let now = self.now();
        let record = SessionRecord {
            token_hash: link_hash(&token),
            principal: principal.clone(),
            key_hash: key,
            // A link carries no forms.
            csrf_token: String::new(),
            created_at: now,
            expires_at: now + PORTAL_LINK_LIFETIME,
        };
        self.store.put_session(&record).await?;
        tracing::info!(merchant_id = %merchant_id, "portal link minted");
        Ok(PortalLink {
            token,
            expires_at: record.expires_at,
        })
    }

    /// Exchanges a link's token for a portal session lasting `lifetime`: the link is taken on
    /// the way (of two browsers opening it at once, one gets a session). An unknown, used or
    /// expired link, or one whose key no longer authenticates, is [`AppError::Unauthorized`].
    #[tracing::instrument(skip_all)]
    pub async fn open_portal_session(&self, link: &str, lifetime: Duration) -> Result<OpenedSession, AppError> {
        if link.len() != LINK_TOKEN_LEN || !link.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::Unauthorized);
        }
        let hash = link_hash(link);
        let record = self.store.get_session(&hash).await?.ok_or(AppError::Unauthorized)?;
        if !self.store.delete_session(&hash).await? || record.expires_at <= self.now() {
            return Err(AppError::Unauthorized);
        }
        let holder = self.principal_for_key(&record.key_hash).await?;
        if !matches!(holder, Principal::Merchant { .. }) || holder != record.principal {
            return Err(AppError::Unauthorized);
        }
        let token = hex::encode(self.ids.secret_bytes());
        let now = self.now();
        let session = SessionRecord {
            token_hash: token_hash(&token),
            principal: record.principal,
            key_hash: record.key_hash,
            csrf_token: hex::encode(self.ids.secret_bytes()),
            created_at: now,
            expires_at: now + lifetime,
        };
        self.store.put_session(&session).await?;
        if let Principal::Merchant { merchant_id } = &session.principal {
            tracing::info!(merchant_id = %merchant_id, "portal session opened");
        }
        Ok(OpenedSession { token, record: session })
    }

    /// The live portal session a cookie's token opens, if any (a merchant's; a console session's
    /// token opens none here).
    pub async fn portal_session(&self, token: &str) -> Result<Option<Session>, AppError> {
        self.live_session(token, |p| matches!(p, Principal::Merchant { .. }))
            .await
    }
}
