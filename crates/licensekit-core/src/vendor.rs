//! What a vendor adapter crate exports so that a registry (the `licensekit` facade) can parse its
//! configuration and build it without knowing the vendor: the [`Vendor`] descriptor, string
//! configuration keys ([`config_keys!`](crate::config_keys)) and the environment reading behind
//! every adapter's `from_env` ([`apply_env`]).
//!
//! Nothing here names a vendor. See `CONTRIBUTING.md` for the whole list of what a new vendor
//! touches.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::kind::ProviderKind;
use crate::provider::LicenseProvider;

/// A vendor's configuration with string keys, object_store style: [`set`](Self::set) one key
/// from its string form, and the provided [`with_config`](Self::with_config),
/// [`from_env`](Self::from_env) (the `LICENSEKIT_<VENDOR>_<KEY>` variables) and
/// [`from_env_vars`](Self::from_env_vars) (the same over given variables, for tests).
///
/// ```
/// use licensekit_core::vendor::VendorConfig;
/// use licensekit_core::{MemoryConfig, MemoryConfigKey};
///
/// let env = [("LICENSEKIT_MEMORY_PAGE_SIZE".to_string(), "7".to_string())];
/// let config = MemoryConfig::from_env_vars(env).unwrap();
/// assert_eq!(config.page_size, 7);
/// let config = config.with_config(MemoryConfigKey::DeviceHolders, "false").unwrap();
/// assert!(!config.device_holders);
/// ```
pub trait VendorConfig: Sized {
    /// The vendor's string keys (declared with [`config_keys!`](crate::config_keys)).
    type Key: FromStr<Err = UnknownKey>;

    /// Whose configuration this is: the stem of its variables ([`ProviderKind::env_prefix`]).
    const KIND: ProviderKind;

    /// The configuration `from_env` starts from: the defaults, with required values empty
    /// (reported when the provider is built).
    fn blank() -> Self;

    /// Sets one key from its string form. Errors name the key, never the value.
    fn set(&mut self, key: Self::Key, value: &str) -> Result<()>;

    /// [`set`](Self::set), builder style.
    fn with_config(mut self, key: Self::Key, value: &str) -> Result<Self> {
        self.set(key, value)?;
        Ok(self)
    }

    /// A configuration from the process's `LICENSEKIT_<VENDOR>_<KEY>` variables (variables that
    /// are not UTF-8 are left out, as if unset).
    fn from_env() -> Result<Self> {
        Self::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// [`from_env`](Self::from_env) over the given variables (a map in tests). Variables that
    /// name no key are ignored; a value that does not parse is an error naming the variable,
    /// never its value.
    fn from_env_vars<I>(vars: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut config = Self::blank();
        apply_env(Self::KIND, &mut config, vars, Self::set)?;
        Ok(config)
    }
}

/// The descriptor a vendor adapter exports: its name, its configuration and how to build it.
///
/// Implemented on a unit struct of the adapter crate (`licensekit_genesys::Genesys`); a registry
/// calls these functions through the type, so nothing outside the adapter needs a `match` on the
/// vendor.
///
/// ```
/// use licensekit_core::vendor::{Vendor, VendorConfig};
/// use licensekit_core::{InMemoryProvider, MemoryConfig, ProviderKind, Result};
///
/// /// A vendor whose provider is the in-memory one.
/// #[derive(Debug)]
/// struct Paged;
///
/// impl Vendor for Paged {
///     const KIND: ProviderKind = ProviderKind::from_static("paged");
///     type Config = MemoryConfig;
///     type Provider = InMemoryProvider;
///
///     fn build(config: MemoryConfig) -> Result<InMemoryProvider> {
///         InMemoryProvider::new(config)
///     }
/// }
///
/// let provider = Paged::build(MemoryConfig::default()).unwrap();
/// # let _ = provider;
/// ```
pub trait Vendor: fmt::Debug + Send + Sync + 'static {
    /// The vendor's name in configs, reports and the CLI; also the `provider` tag of its
    /// configuration.
    const KIND: ProviderKind;
    /// The vendor's configuration: serde (a `[[providers]]` table minus its `provider` tag), with
    /// a `Debug` that prints no secret, string keys and `from_env` ([`VendorConfig`]).
    type Config: VendorConfig + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static;
    /// The provider built from it.
    type Provider: LicenseProvider + 'static;

    /// Validates the configuration and builds the provider. No I/O.
    fn build(config: Self::Config) -> Result<Self::Provider>;
}

/// Applies every variable of `vars` whose name is `kind`'s prefix
/// ([`ProviderKind::env_prefix`]) plus a key of `K` — `LICENSEKIT_GENESYS_PAGE_SIZE` is key
/// `page_size` — to `config` with `set`, in name order (so the result does not depend on the
/// environment's order). Variables whose rest is not a key of `K` are ignored (another tool's, or
/// a later version's); an error from `set` is returned naming the variable, never its value.
pub fn apply_env<C, K, I>(
    kind: ProviderKind,
    config: &mut C,
    vars: I,
    set: impl Fn(&mut C, K, &str) -> Result<()>,
) -> Result<()>
where
    K: FromStr,
    I: IntoIterator<Item = (String, String)>,
{
    let prefix = kind.env_prefix();
    let mut matching: Vec<(K, String, String)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix(&prefix)?.to_ascii_lowercase();
            Some((K::from_str(&key).ok()?, name, value))
        })
        .collect();
    matching.sort_by(|a, b| a.1.cmp(&b.1));
    for (key, name, value) in matching {
        set(config, key, &value).map_err(|e| Error::Config {
            message: format!("{name}: {e}"),
            source: Some(Box::new(e)),
        })?;
    }
    Ok(())
}

/// A configuration error: `key` must be `expected` (names the key, never the value).
pub fn bad_value(key: impl fmt::Display, expected: &str) -> Error {
    Error::config(format!("`{key}` must be {expected}"))
}

/// Parses a whole number for `key`; the error names the key, never the value (it may have come
/// from the environment).
pub fn parse_number<T: std::str::FromStr>(key: impl fmt::Display, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| bad_value(key, "a whole number in range"))
}

/// Parses `true`/`false` (also `1`/`0`, `yes`/`no`, any case) for `key`.
pub fn parse_bool(key: impl fmt::Display, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad_value(key, "true or false")),
    }
}

/// When `key` of a vendor config is one of the client settings that moved into the `client`
/// table, what to write instead (given the value the old key had).
pub fn moved_key_hint(key: &str, value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let write = match key {
        "allow_http" => format!("allow_http = {shown}"),
        "max_concurrency" => format!("max_concurrency = {shown}"),
        "max_response_bytes" => format!("max_response_bytes = {shown}"),
        "timeout_secs" => match value.as_u64() {
            Some(n) => format!("timeout = \"{n}s\""),
            None => "timeout = \"60s\"".into(),
        },
        "requests_per_minute" => match value {
            Value::Null => "rate = \"off\"".into(),
            Value::Number(n) if n.as_u64() == Some(0) => "rate = \"off\"".into(),
            other => format!("rate = {other}"),
        },
        "honor_rate_limit_headers" => {
            return Some(
                "`honor_rate_limit_headers` was removed: the server's rate-limit headers are \
                 always followed; to stop pacing, write `rate = \"off\"` in the provider's \
                 `client` table (`[providers.client]` in licensekit.toml)"
                    .into(),
            );
        }
        _ => return None,
    };
    Some(format!(
        "`{key}` moved into the client options: write `{write}` in the provider's `client` \
         table (`[providers.client]` in licensekit.toml)"
    ))
}

/// The error a config key enum's `FromStr` gives for a name that is not one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The name that was given (cut to 60 characters).
    pub key: String,
    /// Every key the enum accepts.
    pub expected: Vec<&'static str>,
}

impl UnknownKey {
    /// `key` is not one of `expected`.
    pub fn new(key: &str, expected: impl IntoIterator<Item = &'static str>) -> Self {
        UnknownKey {
            key: key.chars().take(60).collect(),
            expected: expected.into_iter().collect(),
        }
    }
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown key `{}`; expected one of {}",
            self.key,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownKey {}

impl From<UnknownKey> for Error {
    fn from(e: UnknownKey) -> Self {
        Error::Config {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

/// Declares an adapter's string configuration keys, object_store style: a `Copy` enum with
/// `FromStr` (the key's name; an unknown name is an [`UnknownKey`] listing the keys there are),
/// `AsRef<str>`, `Display` and a `KEYS` list of every name. With `client` after the variants
/// (feature `http`) it gains a `Client(ClientConfigKey)` variant for the shared HTTP client
/// settings (`timeout`, `allow_http`, `rate`, …), tried after the adapter's own names.
///
/// ```
/// licensekit_core::config_keys! {
///     /// The keys of a toy vendor's config.
///     pub enum ToyConfigKey {
///         /// `products`: comma-separated product ids.
///         Products = "products",
///         /// `max_batch`: holders per call.
///         MaxBatch = "max_batch",
///     }
/// }
///
/// let key: ToyConfigKey = "max_batch".parse().unwrap();
/// assert_eq!(key, ToyConfigKey::MaxBatch);
/// assert_eq!(key.as_ref(), "max_batch");
/// let err = "max_btach".parse::<ToyConfigKey>().unwrap_err();
/// assert!(err.to_string().contains("products, max_batch"), "{err}");
/// ```
#[macro_export]
macro_rules! config_keys {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $key:literal ),* $(,)?
        }
        $($client:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            $(
                #[doc = concat!(
                    "One of the shared HTTP ", stringify!($client),
                    " settings (`[providers.client]`)."
                )]
                Client($crate::raw::client::ClientConfigKey),
            )?
        }

        impl $name {
            /// The names of this enum's own keys (with `client`, the client keys are
            /// `ClientConfigKey::KEYS`).
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                match self {
                    $( $name::$variant => $key, )*
                    $( $name::Client(key) => {
                        let _ = stringify!($client);
                        key.as_ref()
                    } )?
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(::std::convert::AsRef::<str>::as_ref(self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vendor::UnknownKey;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $( $key => return Ok($name::$variant), )*
                    _ => {}
                }
                #[allow(unused_mut)]
                let mut expected: ::std::vec::Vec<&'static str> = Self::KEYS.to_vec();
                $(
                    let _ = stringify!($client);
                    if let Ok(key) = s.parse() {
                        return Ok($name::Client(key));
                    }
                    expected.extend_from_slice($crate::raw::client::ClientConfigKey::KEYS);
                )?
                Err($crate::vendor::UnknownKey::new(s, expected))
            }
        }
    };
}
