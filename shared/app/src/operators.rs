//! Operators: named people with a role, their API keys, and revocation. Every operator call is
//! made by a named operator; the decisions they take name them (`actor`).

use cashout_core::auth::{ApiKey, ApiKeyHash, ApiKeyRecord, OperatorName, OperatorRecord, OperatorRole, Principal};
use cashout_core::ports::{Store, StoreError};

use crate::App;
use crate::access::require_admin;
use crate::error::AppError;
use crate::views::{OperatorKeyView, OperatorView};

/// Who created an operator outside the API (the administration tool, the local runner's flags).
pub const CREATED_OUTSIDE_THE_API: &str = "cashout-admin";

impl<S: Store, Q, P, W> App<S, Q, P, W> {
    /// Who holds this bearer key. An operator's role is read from its record on every call, so
    /// a role change or a revocation applies at once to every key of theirs.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        if bearer.is_empty() || bearer.len() > 256 {
            return Err(AppError::Unauthorized);
        }
        self.principal_for_key(&ApiKey::new(bearer).hash()).await
    }

    /// Who holds the key with this hash (a console session keeps the hash of the key it was
    /// opened with and asks again on every page).
    pub async fn principal_for_key(&self, hash: &ApiKeyHash) -> Result<Principal, AppError> {
        let record = self.store.get_api_key(hash).await?.ok_or(AppError::Unauthorized)?;
        match record.principal {
            Principal::Operator { name, role } => match self.store.get_operator(&name).await? {
                Some(op) if op.revoked_at.is_some() => Err(AppError::Unauthorized),
                Some(op) => Ok(Principal::Operator { name, role: op.role }),
                // A key stored before operators had records: the role it was stored with.
                None => Ok(Principal::Operator { name, role }),
            },
            merchant => Ok(merchant),
        }
    }

    /// Creates an operator and its first API key (shown once, here only). `by` names who asked
    /// (an admin's name, or [`CREATED_OUTSIDE_THE_API`]).
    pub async fn add_operator(
        &self,
        name: OperatorName,
        role: OperatorRole,
        key: &ApiKey,
        by: &str,
    ) -> Result<OperatorView, AppError> {
        let record = OperatorRecord::new(name.clone(), role, by, self.now());
        match self.store.put_operator(&record, 0).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AppError::Conflict(format!("an operator named `{name}` exists already")));
            }
            Err(e) => return Err(e.into()),
        }
        self.register_api_key(
            key,
            Principal::Operator { name, role },
            Some(format!("operator key ({by})")),
        )
        .await?;
        Ok(OperatorView::from(&record))
    }

    /// Makes sure an operator exists with this role and key (the local runner's flags, on every
    /// start): created if missing, its role set and its revocation lifted if it differs.
    pub async fn ensure_operator(&self, name: OperatorName, role: OperatorRole, key: &ApiKey) -> Result<(), AppError> {
        for _ in 0..3 {
            let stored = self.store.get_operator(&name).await?;
            let (record, expected) = match stored {
                Some(op) if op.role == role && op.revoked_at.is_none() => break,
                Some(op) => (
                    OperatorRecord {
                        role,
                        revoked_at: None,
                        version: op.version + 1,
                        ..op.clone()
                    },
                    op.version,
                ),
                None => (
                    OperatorRecord::new(name.clone(), role, CREATED_OUTSIDE_THE_API, self.now()),
                    0,
                ),
            };
            match self.store.put_operator(&record, expected).await {
                Ok(()) => break,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.register_api_key(key, Principal::Operator { name, role }, Some("local operator".into()))
            .await
    }

    /// Admin: creates an operator and its first key.
    pub async fn create_operator(
        &self,
        principal: &Principal,
        name: OperatorName,
        role: OperatorRole,
    ) -> Result<OperatorKeyView, AppError> {
        let admin = require_admin(principal)?.clone();
        let key = self.new_operator_key();
        let operator = self.add_operator(name, role, &key.0, admin.as_str()).await?;
        Ok(OperatorKeyView {
            operator,
            api_key: key.1,
        })
    }

    /// Admin: every operator, by name.
    pub async fn list_operators(&self, principal: &Principal) -> Result<Vec<OperatorView>, AppError> {
        require_admin(principal)?;
        let mut all = self.store.list_operators().await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all.iter().map(OperatorView::from).collect())
    }

    /// Admin: another key for an operator (shown once, here only). Their other keys stay valid.
    pub async fn create_operator_key(
        &self,
        principal: &Principal,
        name: &OperatorName,
    ) -> Result<OperatorKeyView, AppError> {
        require_admin(principal)?;
        let op = self.store.get_operator(name).await?.ok_or(AppError::NotFound)?;
        if op.revoked_at.is_some() {
            return Err(AppError::Conflict(format!("operator `{name}` is revoked")));
        }
        let key = self.new_operator_key();
        self.register_api_key(
            &key.0,
            Principal::Operator {
                name: name.clone(),
                role: op.role,
            },
            Some("operator key".into()),
        )
        .await?;
        Ok(OperatorKeyView {
            operator: OperatorView::from(&op),
            api_key: key.1,
        })
    }

    /// Admin: revokes an operator: none of their keys works any more, and their console
    /// sessions end at their next page. An admin cannot revoke themself (someone must remain).
    pub async fn revoke_operator(&self, principal: &Principal, name: &OperatorName) -> Result<OperatorView, AppError> {
        let admin = require_admin(principal)?;
        if admin == name {
            return Err(AppError::Conflict("an operator cannot revoke themself".into()));
        }
        self.revoke(name).await
    }

    /// Revokes an operator (idempotent; no principal: the administration tool, tests).
    pub async fn revoke(&self, name: &OperatorName) -> Result<OperatorView, AppError> {
        for _ in 0..3 {
            let stored = self.store.get_operator(name).await?;
            let Some((revoked, expected)) =
                OperatorRecord::revocation(name, stored.as_ref(), CREATED_OUTSIDE_THE_API, self.now())
            else {
                return Ok(OperatorView::from(&stored.ok_or(AppError::NotFound)?));
            };
            match self.store.put_operator(&revoked, expected).await {
                Ok(()) => {
                    tracing::info!(operator = %name, "operator revoked");
                    return Ok(OperatorView::from(&revoked));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contended)
    }

    /// A new random operator key and its text (`sk_op_…`).
    fn new_operator_key(&self) -> (ApiKey, String) {
        let text = format!("sk_op_{}", hex::encode(self.ids.secret_bytes()));
        (ApiKey::new(text.clone()), text)
    }

    /// Stores an API key (start-up seeding, administration).
    pub async fn register_api_key(
        &self,
        key: &ApiKey,
        principal: Principal,
        label: Option<String>,
    ) -> Result<(), AppError> {
        let record = ApiKeyRecord {
            hash: key.hash(),
            principal,
            label,
            created_at: self.now(),
        };
        self.store.put_api_key(&record).await?;
        Ok(())
    }
}
