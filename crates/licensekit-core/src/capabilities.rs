//! What a provider can do. Operations outside its capabilities are refused with
//! [`Error::Unsupported`] before any I/O, never silently ignored (OpenDAL's rule).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{HolderId, HolderKind, ProviderKind};

/// A provider's declared abilities and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Licenses can be given to users.
    pub user_holders: bool,
    /// Licenses can be given to devices (serial numbers).
    pub device_holders: bool,
    /// The vendor reports total seats per product (otherwise totals are unknown or configured).
    pub seat_totals_reported: bool,
    /// The vendor enforces seat limits on assign (assigning past them fails per item).
    pub seat_limits_enforced: bool,
    /// Changes complete asynchronously at the vendor; outcomes may be `Pending`.
    pub async_completion: bool,
    /// Most holders one vendor call can assign (the adapter splits larger requests).
    pub max_assign_batch: Option<usize>,
    /// Most holders one vendor call can revoke.
    pub max_revoke_batch: Option<usize>,
    /// Items per page of the assignment listing, when fixed by the vendor or configured.
    pub list_page_size: Option<usize>,
    /// The vendor supports listing only what changed since a version (adapter-specific API).
    pub incremental_listing: bool,
    /// [`crate::LicenseProvider::holders`] lists the vendor's user directory.
    pub holder_directory: bool,
    /// Assignment listing can be filtered by holder at the vendor.
    pub filter_by_holder: bool,
}

impl Capabilities {
    /// Nothing supported; providers switch on what they have.
    pub const NONE: Capabilities = Capabilities {
        user_holders: false,
        device_holders: false,
        seat_totals_reported: false,
        seat_limits_enforced: false,
        async_completion: false,
        max_assign_batch: None,
        max_revoke_batch: None,
        list_page_size: None,
        incremental_listing: false,
        holder_directory: false,
        filter_by_holder: false,
    };

    /// Whether the provider can give licenses to holders of `kind`.
    pub fn supports_holder_kind(&self, kind: HolderKind) -> bool {
        match kind {
            HolderKind::User => self.user_holders,
            HolderKind::Device => self.device_holders,
        }
    }

    /// Refuses the whole request, before any I/O, when it names a holder kind the provider
    /// cannot serve.
    pub fn check_holders(&self, provider: ProviderKind, holders: &[HolderId]) -> Result<()> {
        for kind in [HolderKind::User, HolderKind::Device] {
            if !self.supports_holder_kind(kind) && holders.iter().any(|h| h.kind() == kind) {
                let what = match kind {
                    HolderKind::User => "user holders",
                    HolderKind::Device => "device holders",
                };
                return Err(Error::unsupported(provider, what));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn check_holders_refuses_unsupported_kinds() {
        let caps = Capabilities {
            user_holders: true,
            ..Capabilities::NONE
        };
        assert!(
            caps.check_holders(ProviderKind::from_static("genesys"), &[HolderId::user("u")])
                .is_ok()
        );
        let err = caps
            .check_holders(
                ProviderKind::from_static("genesys"),
                &[HolderId::user("u"), HolderId::device("SERIAL")],
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("device holders"), "{err}");
    }
}
