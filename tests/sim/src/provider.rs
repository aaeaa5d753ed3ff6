//! The providers this simulator serves, by the names used in its URLs, ledger and fault
//! control. The simulator's own enum: it shares nothing with the adapters' crates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::listed::listed_enum;

listed_enum! {
    /// A simulated payout provider.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Provider {
        /// Directa24 (seed 001).
        D24,
        /// Onspot, D24 white-labelled (seed 001 names it in the field descriptions).
        Onspot,
        /// Tupay, the D24 API in Peru without ON_HOLD (seed 002).
        Tupay,
        /// Cascad, Corefy/PayCore payouts by reference (seed 003).
        Cascad,
    }
    /// Every provider, in the order the simulator mounts them.
    pub const ALL;
}

impl Provider {
    /// The name used in URLs (`/d24`), the ledger and `/_sim/faults/{provider}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::D24 => "d24",
            Provider::Onspot => "onspot",
            Provider::Tupay => "tupay",
            Provider::Cascad => "cascad",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the simulated providers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a simulated provider (d24, onspot, tupay, cascad)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert!("D24".parse::<Provider>().is_err());
        assert!("paypal".parse::<Provider>().is_err());
    }
}
