//! [`ProviderKind`]: which provider an object came from, as an open name.
//!
//! Core lists no vendor: each adapter crate declares its own kind (`pub const KIND: ProviderKind =
//! ProviderKind::from_static("genesys")`) and the `licensekit` facade keeps the registry of the
//! vendors it knows. This module depends on nothing else in the crate, so the error and model
//! modules can both use it without importing each other.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest provider name accepted.
pub const MAX_NAME_LEN: usize = 40;

/// How many distinct names read at run time (configs, saved reports) are kept; beyond it a new
/// name is refused, so hostile input cannot grow the name table without bound.
const MAX_INTERNED: usize = 256;

/// Which provider an object came from: the provider's stable lowercase name (`genesys`,
/// `apple-vpp`, `memory`, …), used in configs, reports and the CLI.
///
/// An open newtype rather than an enum, so a new vendor needs no change to this crate: an adapter
/// declares its kind as a constant, and a name read from a file or a saved report is accepted
/// whether or not its adapter is compiled in. It stays `Copy` (it holds a `&'static str`): a name
/// read at run time is interned once per process, and at most 256 distinct such names are kept.
///
/// A name is 1 to 40 characters of `a`–`z`, `0`–`9` and `-`, starting with a letter.
///
/// ```
/// use licensekit_core::ProviderKind;
///
/// const TOY: ProviderKind = ProviderKind::from_static("toy");
/// let parsed: ProviderKind = "toy".parse().unwrap();
/// assert_eq!(parsed, TOY);
/// assert_eq!(TOY.to_string(), "toy");
/// assert_eq!(TOY.env_prefix(), "LICENSEKIT_TOY_");
/// assert!("Not A Name".parse::<ProviderKind>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderKind(&'static str);

impl ProviderKind {
    /// A kind from a name known at compile time; an invalid name fails the build when used in a
    /// `const` (and panics otherwise).
    pub const fn from_static(name: &'static str) -> ProviderKind {
        if !valid_name(name) {
            panic!(
                "a provider name is 1 to 40 characters of a-z, 0-9 and '-', starting with a letter"
            );
        }
        ProviderKind(name)
    }

    /// A kind from a name read at run time (a config, a saved report).
    pub fn new(name: &str) -> Result<ProviderKind, InvalidProviderName> {
        if !valid_name(name) {
            return Err(InvalidProviderName::Malformed(
                name.chars().take(60).collect(),
            ));
        }
        intern(name).map(ProviderKind)
    }

    /// The stable lowercase name used in configs, reports and the CLI.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The prefix of this provider's environment variables: `LICENSEKIT_`, the name in upper
    /// case with `-` as `_`, and `_` (`apple-vpp` → `LICENSEKIT_APPLE_VPP_`).
    pub fn env_prefix(self) -> String {
        let mut prefix = String::from("LICENSEKIT_");
        prefix.extend(self.0.chars().map(|c| match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        }));
        prefix.push('_');
        prefix
    }
}

const fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// The one `&'static str` per distinct run-time name.
fn intern(name: &str) -> Result<&'static str, InvalidProviderName> {
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        // Every mutation is one insert: a poisoned set is still consistent.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    intern_in(&mut names, name, MAX_INTERNED)
}

fn intern_in(
    names: &mut BTreeSet<&'static str>,
    name: &str,
    max: usize,
) -> Result<&'static str, InvalidProviderName> {
    if let Some(known) = names.get(name) {
        return Ok(known);
    }
    if names.len() >= max {
        return Err(InvalidProviderName::TooMany);
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    Ok(leaked)
}

/// Why a name is not a [`ProviderKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidProviderName {
    /// Not 1 to 40 characters of `a`–`z`, `0`–`9` and `-` starting with a letter (the text is
    /// cut to 60 characters).
    Malformed(String),
    /// More distinct provider names were read than a process keeps (256).
    TooMany,
}

impl fmt::Display for InvalidProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidProviderName::Malformed(name) => write!(
                f,
                "`{name}` is not a provider name (1 to 40 characters of a-z, 0-9 and '-', starting with a letter)"
            ),
            InvalidProviderName::TooMany => {
                write!(
                    f,
                    "more than {MAX_INTERNED} distinct provider names were read"
                )
            }
        }
    }
}

impl std::error::Error for InvalidProviderName {}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderKind({:?})", self.0)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}

impl AsRef<str> for ProviderKind {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = InvalidProviderName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::new(s)
    }
}

impl Serialize for ProviderKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        ProviderKind::new(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_compare_by_text() {
        const TOY: ProviderKind = ProviderKind::from_static("toy-2");
        let parsed: ProviderKind = "toy-2".parse().unwrap();
        assert_eq!(parsed, TOY);
        assert_eq!(
            serde_json::to_value(TOY).unwrap(),
            serde_json::Value::String("toy-2".into())
        );
        let read: ProviderKind = serde_json::from_str("\"toy-2\"").unwrap();
        assert_eq!(read, TOY);
        assert_eq!(
            ProviderKind::from_static("apple-vpp").env_prefix(),
            "LICENSEKIT_APPLE_VPP_"
        );
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in ["", "Vpp", "9x", "a b", "a_b", "é", &"x".repeat(41)] {
            assert!(ProviderKind::new(bad).is_err(), "{bad:?}");
            assert!(serde_json::from_value::<ProviderKind>(bad.into()).is_err());
        }
        assert!(ProviderKind::new(&"x".repeat(40)).is_ok());
    }

    #[test]
    fn interning_is_bounded() {
        // A table of its own: the process-wide one is shared with the other tests.
        let mut names = BTreeSet::new();
        for i in 0..3 {
            intern_in(&mut names, &format!("bounded-{i}"), 3).unwrap();
        }
        assert_eq!(
            intern_in(&mut names, "bounded-3", 3),
            Err(InvalidProviderName::TooMany)
        );
        // Names already known stay readable, as one string each.
        let again = intern_in(&mut names, "bounded-0", 3).unwrap();
        assert!(std::ptr::eq(again, *names.get("bounded-0").unwrap()));
    }
}
