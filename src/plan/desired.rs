//! The desired-state file: who should hold what, per provider and product.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use licensekit_core::{Error, ProviderKind, Result};

use crate::report::ReclaimReason;

/// The desired-state schema version this licensekit reads and writes.
pub const DESIRED_STATE_VERSION: u32 = 1;

/// Who should hold what: a list of policies, each one provider + product + who.
///
/// Read from TOML (`version = 1`, then `[[policy]]` tables); every table refuses keys it does
/// not know, so a typo is an error naming the key rather than a rule silently ignored.
///
/// ```
/// use licensekit::plan::{DesiredState, Mode};
///
/// let desired = DesiredState::from_toml(
///     r#"
///     version = 1
///
///     [[policy]]
///     name = "crm-for-cx3"
///     provider = "salesforce"
///     product = "crm_tools"
///     mode = "ensure"
///     who.holders_of = [{ provider = "genesys", product = "cloudCX3" }]
///     max_changes = 50
///     "#,
///     "desired-state.toml",
/// )
/// .unwrap();
/// assert_eq!(desired.policies[0].mode, Mode::Ensure);
/// assert_eq!(desired.policies[0].display_name(), "crm-for-cx3");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// The schema version; must be [`DESIRED_STATE_VERSION`].
    pub version: u32,
    /// The blast-radius guard of every policy that sets none of its own: a policy that would
    /// change more holders than this is stopped (nothing of it is applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<usize>,
    /// The policies, in the order they are planned (which is also the order in which adds get
    /// free seats when a product is short of them).
    #[serde(default, rename = "policy")]
    pub policies: Vec<Policy>,
}

/// One provider + product + who, and how to get there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Names the policy in plans, conflicts and summaries; default `provider/product`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The vendor the product is at.
    pub provider: ProviderKind,
    /// The product: its id, a Salesforce namespace prefix, or an Apple adamId without its
    /// pricing parameter when the location owns one pricing of it.
    pub product: String,
    /// Exact, ensure or absent: see [`Mode`].
    pub mode: Mode,
    /// Who should (or, with `absent`, should not) hold the product.
    #[serde(default)]
    pub who: Who,
    /// Also remove holders the report gives one of these reasons (`holder_inactive`,
    /// `holder_unknown_to_directory`, `product_over_allocated`). Nothing is reclaimed unless
    /// named here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reclaim: Vec<ReclaimReason>,
    /// The most holders this policy may change in one apply; more stops the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<usize>,
    /// Seats owned, for the capacity check of a product whose vendor does not report them
    /// (Genesys). A total the vendor or the provider's configuration gives wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u64>,
}

/// What a policy does with the holders it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The selected holders and nobody else: add the missing, remove the rest.
    Exact,
    /// The selected holders hold it: add the missing, remove nobody (except `reclaim`).
    Ensure,
    /// The selected holders do not hold it: remove them.
    Absent,
}

impl Mode {
    /// The mode's name as written in policy files (`exact`, `ensure`, `absent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::Ensure => "ensure",
            Mode::Absent => "absent",
        }
    }
}

/// The holders a policy selects: explicit lists, and rules over the normalized model. The
/// selection is the explicit holders plus the holders the rules give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// User ids at the policy's provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Device serial numbers (providers with device holders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// A file of user ids (the CLI's `--users-file` format), relative to the desired-state
    /// file. Read by [`DesiredState::read_files`], which moves its ids into `users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_file: Option<PathBuf>,
    /// A file of device serial numbers, read like `users_file` into `devices`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices_file: Option<PathBuf>,
    /// People by email, matched to the provider's accounts as the report matches them
    /// (normalized, through the alias map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// Rule: everyone active in the provider's user directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_active: bool,
    /// Rule: the people who hold any of these products. At another provider, people are
    /// matched by email through the alias map; at the same provider, holders are taken as they
    /// are (devices included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders_of: Vec<ProductRef>,
    /// Narrows what the rules select to accounts whose email is in one of these domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_domains: Vec<String>,
}

impl Who {
    /// Whether any rule (`all_active`, `holders_of`) is set.
    pub fn has_rule(&self) -> bool {
        self.all_active || !self.holders_of.is_empty()
    }

    fn selects_anyone(&self) -> bool {
        self.has_rule()
            || !self.users.is_empty()
            || !self.devices.is_empty()
            || !self.emails.is_empty()
            || self.users_file.is_some()
            || self.devices_file.is_some()
    }
}

/// A product at a provider, as a rule names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductRef {
    /// The vendor the product is at.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product: String,
}

impl Policy {
    /// The policy's name: `name`, or `provider/product`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.provider, self.product))
    }
}

impl DesiredState {
    /// Parses and validates a desired-state TOML text; `name` (the file) prefixes every error.
    pub fn from_toml(text: &str, name: &str) -> Result<DesiredState> {
        // The version first, so a newer file says so instead of failing on a key it added.
        let table: toml::Table =
            toml::from_str(text).map_err(|e| Error::config(format!("{name}: {e}")))?;
        match table.get("version") {
            None => {
                return Err(Error::config(format!(
                    "{name}: missing `version = {DESIRED_STATE_VERSION}` (the desired-state schema version)"
                )));
            }
            Some(toml::Value::Integer(v)) if *v == i64::from(DESIRED_STATE_VERSION) => {}
            Some(v) => {
                return Err(Error::config(format!(
                    "{name}: version {v} is not a desired-state version this licensekit reads (it reads {DESIRED_STATE_VERSION})"
                )));
            }
        }
        let desired: DesiredState =
            toml::from_str(text).map_err(|e| Error::config(format!("{name}: {e}")))?;
        desired.validate().map_err(|e| match e {
            Error::Config { message, .. } => Error::config(format!("{name}: {message}")),
            other => other,
        })?;
        Ok(desired)
    }

    /// Checks what serde cannot: the version, unique policy names, rules that make sense.
    pub fn validate(&self) -> Result<()> {
        if self.version != DESIRED_STATE_VERSION {
            return Err(Error::config(format!(
                "version {} is not a desired-state version this licensekit reads (it reads {DESIRED_STATE_VERSION})",
                self.version
            )));
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.policies.iter().enumerate() {
            let at = format!("policy[{i}] ({})", p.display_name());
            let name = p.display_name();
            if name.trim().is_empty() {
                return Err(Error::config(format!("policy[{i}]: `name` is empty")));
            }
            if !names.insert(name.clone()) {
                return Err(Error::config(format!(
                    "{at}: another policy has the name `{name}`; give each policy on one product a `name`"
                )));
            }
            if p.product.trim().is_empty() {
                return Err(Error::config(format!("{at}: `product` is empty")));
            }
            if !p.who.email_domains.is_empty() && !p.who.has_rule() {
                return Err(Error::config(format!(
                    "{at}: `who.email_domains` narrows a rule; set `who.all_active` or `who.holders_of`"
                )));
            }
            if let Some(d) = p
                .who
                .email_domains
                .iter()
                .find(|d| d.trim().trim_start_matches('@').is_empty() || d.contains(' '))
            {
                return Err(Error::config(format!(
                    "{at}: `who.email_domains` holds `{d}`, which is not a domain"
                )));
            }
            if !p.who.selects_anyone() && p.reclaim.is_empty() && p.mode != Mode::Exact {
                return Err(Error::config(format!(
                    "{at}: selects nobody and reclaims nothing; set `who` or `reclaim`"
                )));
            }
            if p.mode == Mode::Absent && p.who.all_active {
                return Err(Error::config(format!(
                    "{at}: `absent` with `who.all_active` would remove the product from everyone active; use `mode = \"exact\"` with an empty `who` if that is meant"
                )));
            }
            for r in &p.who.holders_of {
                if r.product.trim().is_empty() {
                    return Err(Error::config(format!(
                        "{at}: `who.holders_of` names a product with an empty id"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads every `users_file` and `devices_file` with `read` (paths relative to `base`, the
    /// desired-state file's directory) and moves their ids into `users` and `devices`, so the
    /// desired state — and a plan that embeds it — no longer depends on the files.
    ///
    /// `read` returns the ids of one file or a message naming the file and line (the CLI
    /// passes its `--users-file` reader).
    pub fn read_files(
        &mut self,
        base: &Path,
        read: &dyn Fn(&Path) -> std::result::Result<Vec<String>, String>,
    ) -> Result<()> {
        for p in &mut self.policies {
            if let Some(file) = p.who.users_file.take() {
                let ids = read(&base.join(&file)).map_err(Error::config)?;
                p.who.users.extend(ids);
            }
            if let Some(file) = p.who.devices_file.take() {
                let ids = read(&base.join(&file)).map_err(Error::config)?;
                p.who.devices.extend(ids);
            }
        }
        Ok(())
    }

    /// The TOML text of this desired state.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the desired state serializes to TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        DesiredState::from_toml(text, "d.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_versions_and_bad_rules_are_named() {
        let e = err(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\nwho.all_actve = true\n",
        );
        assert!(e.contains("d.toml") && e.contains("all_actve"), "{e}");
        let e = err("version = 2\n");
        assert!(e.contains("version 2"), "{e}");
        let e = err("[[policy]]\n");
        assert!(e.contains("missing `version = 1`"), "{e}");
        let e = err(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"sometimes\"\nwho.all_active = true\n",
        );
        assert!(e.contains("sometimes"), "{e}");
        let e = err(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\nwho.email_domains = [\"x.io\"]\n",
        );
        assert!(e.contains("email_domains` narrows a rule"), "{e}");
        let e = err(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\n",
        );
        assert!(e.contains("selects nobody"), "{e}");
        let two = "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\nwho.users = [\"a\"]\n";
        let e = err(&format!("{two}{}", &two[12..]));
        assert!(
            e.contains("policy[1] (memory/app)") && e.contains("give each"),
            "{e}"
        );
        let e = err(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\nreclaim = [\"holder_bored\"]\n",
        );
        assert!(e.contains("holder_bored"), "{e}");
    }

    #[test]
    fn round_trips_through_toml_and_reads_files() {
        let text = r#"
version = 1
max_changes = 10

[[policy]]
provider = "memory"
product = "app"
mode = "exact"
reclaim = ["holder_inactive"]
who.users = ["a"]
who.users_file = "more.txt"
who.all_active = true
who.email_domains = ["example.com"]
"#;
        let mut d = DesiredState::from_toml(text, "d.toml").unwrap();
        assert_eq!(d.policies[0].reclaim, vec![ReclaimReason::HolderInactive]);
        d.read_files(Path::new("/base"), &|p| {
            assert_eq!(p, Path::new("/base/more.txt"));
            Ok(vec!["b".into()])
        })
        .unwrap();
        assert_eq!(d.policies[0].who.users, ["a", "b"]);
        assert!(d.policies[0].who.users_file.is_none());
        let again = DesiredState::from_toml(&d.to_toml(), "again.toml").unwrap();
        assert_eq!(again, d);
    }
}
