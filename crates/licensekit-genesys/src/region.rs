//! Genesys Cloud regions and their hosts (spec §5 "Regions": api host = `api.{domain}`, login
//! host = `login.{domain}`; table from the official SDKs' region-host lists).

use serde::{Deserialize, Serialize};

macro_rules! regions {
    ($($variant:ident = $key:literal => $domain:literal),* $(,)?) => {
        /// A Genesys Cloud region, named by the SDKs' region key (e.g. `us_east_1`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Region {
            $(#[doc = concat!("`", $key, "`: `", $domain, "`")] #[serde(rename = $key)] $variant,)*
        }

        impl Region {
            /// Every known region.
            pub const ALL: &'static [Region] = &[$(Region::$variant,)*];

            /// The SDK region key.
            pub fn key(self) -> &'static str {
                match self { $(Region::$variant => $key,)* }
            }

            /// The region's domain (`mypurecloud.com`, `euw2.pure.cloud`, …).
            pub fn domain(self) -> &'static str {
                match self { $(Region::$variant => $domain,)* }
            }
        }
    };
}

regions! {
    UsEast1 = "us_east_1" => "mypurecloud.com",
    UsEast2 = "us_east_2" => "use2.us-gov-pure.cloud",
    UsWest2 = "us_west_2" => "usw2.pure.cloud",
    CaCentral1 = "ca_central_1" => "cac1.pure.cloud",
    SaEast1 = "sa_east_1" => "sae1.pure.cloud",
    MxCentral1 = "mx_central_1" => "mxc1.pure.cloud",
    EuWest1 = "eu_west_1" => "mypurecloud.ie",
    EuWest2 = "eu_west_2" => "euw2.pure.cloud",
    EuCentral1 = "eu_central_1" => "mypurecloud.de",
    EuCentral2 = "eu_central_2" => "euc2.pure.cloud",
    EuscDeEast1 = "eusc_de_east_1" => "edee1.eusc-pure.cloud",
    MeCentral1 = "me_central_1" => "mec1.pure.cloud",
    ApSouth1 = "ap_south_1" => "aps1.pure.cloud",
    ApNortheast1 = "ap_northeast_1" => "mypurecloud.jp",
    ApNortheast2 = "ap_northeast_2" => "apne2.pure.cloud",
    ApNortheast3 = "ap_northeast_3" => "apne3.pure.cloud",
    ApSoutheast1 = "ap_southeast_1" => "apse1.pure.cloud",
    ApSoutheast2 = "ap_southeast_2" => "mypurecloud.com.au",
}

impl Region {
    /// `https://api.{domain}`
    pub fn api_base_url(self) -> String {
        format!("https://api.{}", self.domain())
    }

    /// `https://login.{domain}`
    pub fn login_base_url(self) -> String {
        format!("https://login.{}", self.domain())
    }
}

impl Default for Region {
    /// us_east_1, the SDKs' default.
    fn default() -> Self {
        Region::UsEast1
    }
}

/// The login base for an API base URL, as the SDKs derive it (spec §5): `//api.` becomes
/// `//login.` (case-insensitively); a host without an `api.` label (a local simulator) is its own
/// login host.
pub fn login_base_for(api_base: &str) -> String {
    let lower = api_base.to_ascii_lowercase();
    match lower.find("//api.") {
        Some(i) => format!(
            "{}//login.{}",
            &api_base[..i],
            &api_base[i + "//api.".len()..]
        ),
        None => api_base.trim_end_matches('/').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_hosts() {
        assert_eq!(
            Region::UsEast1.api_base_url(),
            "https://api.mypurecloud.com"
        );
        assert_eq!(
            Region::EuWest2.login_base_url(),
            "https://login.euw2.pure.cloud"
        );
        assert_eq!(Region::ApSoutheast2.domain(), "mypurecloud.com.au");
        assert_eq!(Region::ALL.len(), 18);
        for r in Region::ALL {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json, serde_json::Value::String(r.key().into()));
            assert_eq!(serde_json::from_value::<Region>(json).unwrap(), *r);
        }
    }

    #[test]
    fn login_host_derivation_follows_the_sdks() {
        assert_eq!(
            login_base_for("https://api.mypurecloud.de"),
            "https://login.mypurecloud.de"
        );
        assert_eq!(
            login_base_for("https://API.usw2.pure.cloud/"),
            "https://login.usw2.pure.cloud/"
        );
        assert_eq!(
            login_base_for("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
    }
}
