//! Who may do what: merchants act on their own requests and endpoints, operators review and
//! see everything. Every use case calls one of these before it reads or changes anything.

use cashout_core::auth::{OperatorName, OperatorRole, Principal};
use cashout_core::cashout::CashoutRequest;
use cashout_core::ids::MerchantId;

use crate::error::AppError;

/// Merchants see their own requests; operators see all.
pub(crate) fn ensure_visible(principal: &Principal, request: &CashoutRequest) -> Result<(), AppError> {
    match principal {
        Principal::Operator { .. } => Ok(()),
        Principal::Merchant { merchant_id } if merchant_id == request.merchant_id() => Ok(()),
        Principal::Merchant { .. } => Err(AppError::NotFound),
    }
}

/// Only operators review (reviewers and admins); the operator's name is who acts.
pub(crate) fn require_operator(principal: &Principal) -> Result<&OperatorName, AppError> {
    match principal {
        Principal::Operator { name, .. } => Ok(name),
        Principal::Merchant { .. } => Err(AppError::Forbidden("this action needs an operator key")),
    }
}

/// Only admin operators manage routing, policies, operators and keys, retry and redeliver.
pub(crate) fn require_admin(principal: &Principal) -> Result<&OperatorName, AppError> {
    match principal {
        Principal::Operator {
            name,
            role: OperatorRole::Admin,
        } => Ok(name),
        Principal::Operator { .. } => Err(AppError::Forbidden("this action needs an admin operator")),
        Principal::Merchant { .. } => Err(AppError::Forbidden("this action needs an operator key")),
    }
}

/// Only merchants create, cancel and manage endpoints.
pub(crate) fn require_merchant(principal: &Principal) -> Result<&MerchantId, AppError> {
    match principal {
        Principal::Merchant { merchant_id } => Ok(merchant_id),
        Principal::Operator { .. } => Err(AppError::Forbidden("this action needs a merchant key")),
    }
}
