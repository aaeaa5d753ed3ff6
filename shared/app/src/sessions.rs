//! Browser sessions of the operator console: an operator signs in with their key once, the
//! browser then holds a random token in a cookie and the store keeps only the token's hash.
//! Every use asks again who the key belongs to, so a revoked key or operator (or a changed
//! role) applies to open sessions at once; a session also ends at its absolute expiry and on
//! sign-out.

use std::fmt;

use cashout_core::auth::{ApiKey, Principal, SessionRecord, token_hash};
use cashout_core::ports::Store;
use time::{Duration, OffsetDateTime};

use crate::App;
use crate::error::AppError;

/// How long a console session lasts from sign-in, whatever is done in it (absolute, not idle).
pub const SESSION_LIFETIME: Duration = Duration::hours(8);

/// A session just opened: the clear token goes to the browser once, in its cookie.
pub struct OpenedSession {
    /// The cookie's value (64 hex characters from 32 random bytes).
    pub token: String,
    /// What the store keeps (the token's hash only).
    pub record: SessionRecord,
}

impl fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSession")
            .field("token", &"[REDACTED]")
            .field("principal", &self.record.principal)
            .field("expires_at", &self.record.expires_at)
            .finish()
    }
}

/// A live session, as a page sees it.
#[derive(Clone)]
pub struct Session {
    /// Who is signed in, with the role read from their record just now.
    pub principal: Principal,
    /// The form token every state-changing request of the session carries.
    pub csrf_token: String,
    /// The stored hash of the session's token (what sign-out deletes).
    pub token_hash: String,
    /// When it ends.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Whether a key still names whom the session was opened for (the same operator, the same
/// merchant); a role may change.
fn same_party(now: &Principal, opened: &Principal) -> bool {
    match (now, opened) {
        (Principal::Operator { name: a, .. }, Principal::Operator { name: b, .. }) => a == b,
        (Principal::Merchant { merchant_id: a }, Principal::Merchant { merchant_id: b }) => a == b,
        (Principal::Operator { .. }, Principal::Merchant { .. })
        | (Principal::Merchant { .. }, Principal::Operator { .. }) => false,
    }
}

/// The longest token looked up (a cookie value longer than any token we make is no session).
const MAX_TOKEN_LEN: usize = 128;

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Opens a session for an operator key, lasting `lifetime`. A merchant key, an unknown or a
    /// revoked one is [`AppError::Unauthorized`].
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(&self, key: &str, lifetime: Duration) -> Result<OpenedSession, AppError> {
        let principal = self.authenticate(key).await?;
        if !matches!(principal, Principal::Operator { .. }) {
            return Err(AppError::Unauthorized);
        }
        let token = hex::encode(self.ids.secret_bytes());
        let now = self.now();
        let record = SessionRecord {
            token_hash: token_hash(&token),
            principal,
            key_hash: ApiKey::new(key).hash(),
            csrf_token: hex::encode(self.ids.secret_bytes()),
            created_at: now,
            expires_at: now + lifetime,
        };
        self.store.put_session(&record).await?;
        if let Principal::Operator { name, role } = &record.principal {
            tracing::info!(operator = %name, role = %role, "console session opened");
        }
        Ok(OpenedSession { token, record })
    }

    /// The live session a cookie's token opens, if any: `None` for an unknown token, an expired
    /// session (deleted on the way) or one whose key or operator no longer signs in (deleted
    /// too).
    pub async fn session(&self, token: &str) -> Result<Option<Session>, AppError> {
        self.live_session(token, |p| matches!(p, Principal::Operator { .. }))
            .await
    }

    /// The live session of `token` whose key still resolves to a principal that `belongs`
    /// (an operator for the console, the same merchant for the portal); any other is deleted.
    pub(crate) async fn live_session(
        &self,
        token: &str,
        belongs: impl Fn(&Principal) -> bool,
    ) -> Result<Option<Session>, AppError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash = token_hash(token);
        let Some(record) = self.store.get_session(&hash).await? else {
            return Ok(None);
        };
        if record.expires_at <= self.now() {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let principal = match self.principal_for_key(&record.key_hash).await {
            Ok(principal) if belongs(&principal) && same_party(&principal, &record.principal) => principal,
            Ok(_) | Err(AppError::Unauthorized) => {
                self.store.delete_session(&hash).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(Session {
            principal,
            csrf_token: record.csrf_token,
            token_hash: hash,
            expires_at: record.expires_at,
        }))
    }

    /// Ends a session, by its token's hash ([`Session::token_hash`]); idempotent.
    pub async fn end_session(&self, token_hash: &str) -> Result<(), AppError> {
        self.store.delete_session(token_hash).await?;
        Ok(())
    }
}
