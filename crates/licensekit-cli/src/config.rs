//! `licensekit.toml`: which providers to use, how to reach them, identity aliases.
//!
//! Each provider's HTTP client settings sit in its own `[providers.client]` table (after the
//! `[[providers]]` entry they belong to): `allow_http`, `ca_file`, `timeout = "30s"`,
//! `connect_timeout`, `max_concurrency`, `max_response_bytes`, `rate` (requests per minute,
//! `"10/1s"`, or `"off"`), `max_wait`, and `[providers.client.retry]` (`attempts`, `total_time`,
//! `initial_backoff`, `max_backoff`). Unknown keys are refused, naming the key and the file.
//!
//! Credentials are referenced from the environment: any key ending in `_env` names a variable
//! whose value becomes the key without the suffix (`client_secret_env = "GENESYS_SECRET"` gives
//! `client_secret`). Secrets may be written in the file directly, but never need to be.
//!
//! A `[[providers]]` table with `from_environment = true` (not `from_env`: keys ending in `_env`
//! are references) starts from the library's
//! `ProviderConfig::from_env`: the vendor's `LICENSEKIT_<VENDOR>_*` variables (each adapter's
//! README lists them); the keys written in the table are then set on top with the same string
//! keys (`ProviderConfig::with_config`; the `[providers.client]` keys as they are, its `retry`
//! table as `retry_attempts`, …), so the file wins over the environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use licensekit::ProviderConfig;
use serde_json::Value;

/// A configuration problem, naming the file and the key (exit code 2).
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The loaded configuration.
#[derive(Debug, Default)]
pub struct Config {
    pub providers: Vec<ProviderConfig>,
    pub aliases: HashMap<String, String>,
    /// `[[contracts]]` (see `contracts.rs`).
    pub contracts: crate::contracts::ContractsConfig,
    /// `(variable, value)` of every `*_env` reference, so messages can name the one, never the
    /// other.
    env_values: Vec<(String, String)>,
}

impl Config {
    /// `text` with the value of every `*_env` variable replaced by the variable's name.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.env_values)
    }

    /// The same redaction, kept after the config is consumed.
    pub fn redactor(&self) -> impl Fn(&str) -> String + Send + Sync + 'static {
        let values = self.env_values.clone();
        move |text: &str| redact(text, &values)
    }
}

/// Replaces env-sourced values in `text` by `<value of $VAR>`. Quoted occurrences (how serde and
/// most messages cite a value) are replaced whatever their length; bare ones from 4 characters
/// on, so a short value does not garble unrelated words.
fn redact(text: &str, values: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    let mut values: Vec<&(String, String)> = values.iter().filter(|(_, v)| !v.is_empty()).collect();
    // Longest first, so a value that contains another is replaced whole.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (var, value) in values {
        let name = format!("<value of ${var}>");
        for (open, close) in [("\"", "\""), ("`", "`"), ("'", "'")] {
            out = out.replace(&format!("{open}{value}{close}"), &name);
        }
        if value.chars().count() >= 4 {
            out = out.replace(value.as_str(), &name);
        }
    }
    out
}

/// The default location: `licensekit.toml` in the working directory.
pub fn default_path() -> PathBuf {
    PathBuf::from("licensekit.toml")
}

/// The process's environment, as `(name, value)` pairs (variables whose name or value is not
/// UTF-8 are left out, as if unset).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read {file}: {e}; create it (see the README's configuration section) or pass --config PATH, or use --sandbox"
        ))
    })?;
    parse(&text, &file.to_string(), env)
}

pub fn parse(text: &str, file: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError(format!("{file}: {e}")))?;
    let mut config = Config::default();
    for key in doc.keys() {
        if !["providers", "identity", "contracts"].contains(&key.as_str()) {
            return Err(ConfigError(format!(
                "{file}: unknown top-level key `{key}` (expected `providers`, `identity` or `contracts`)"
            )));
        }
    }
    if let Some(identity) = doc.get("identity") {
        let aliases = identity
            .get("aliases")
            .and_then(toml::Value::as_table)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{file}: `identity` must hold an `aliases` table of alias = canonical email"
                ))
            })?;
        for (alias, canonical) in aliases {
            let canonical = canonical.as_str().ok_or_else(|| {
                ConfigError(format!(
                    "{file}: identity.aliases.\"{alias}\" must be an email string"
                ))
            })?;
            config.aliases.insert(alias.clone(), canonical.to_owned());
        }
    }
    config.contracts = crate::contracts::parse(&doc, file)?;
    let providers = match doc.get("providers") {
        None => return Err(ConfigError(format!("{file}: no [[providers]] configured"))),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(ConfigError(format!(
                "{file}: `providers` must be an array of tables ([[providers]])"
            )));
        }
    };
    for (i, entry) in providers.iter().enumerate() {
        let mut json = serde_json::to_value(entry)
            .map_err(|e| ConfigError(format!("{file}: providers[{i}]: {e}")))?;
        resolve_env(
            &mut json,
            &format!("providers[{i}]"),
            file,
            env,
            &mut config.env_values,
        )?;
        let kind = json
            .get("provider")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        check_client_table(&json, &format!("{file}: providers[{i}] ({kind})"))
            .map_err(|e| ConfigError(redact(&e.0, &config.env_values)))?;
        let at = format!("{file}: providers[{i}] ({kind})");
        let provider = if json.get("from_environment").is_some() {
            from_env(json, &at, env, &mut config.env_values)?
        } else {
            serde_json::from_value(json).map_err(|e| {
                let e = redact(&e.to_string(), &config.env_values);
                ConfigError(format!("{at}: {e}"))
            })?
        };
        config.providers.push(provider);
    }
    Ok(config)
}

/// A `from_environment = true` table: the library's `from_env` for its vendor, then the table's own keys
/// on top as string keys. The vendor's variables are remembered for redaction.
fn from_env(
    json: Value,
    at: &str,
    env: &[(String, String)],
    found: &mut Vec<(String, String)>,
) -> Result<ProviderConfig, ConfigError> {
    let Value::Object(mut table) = json else {
        return Err(ConfigError(format!("{at}: must be a table")));
    };
    if table.remove("from_environment") != Some(Value::Bool(true)) {
        return Err(ConfigError(format!(
            "{at}: `from_environment` must be true (or left out)"
        )));
    }
    let Some(Value::String(name)) = table.remove("provider") else {
        return Err(ConfigError(format!(
            "{at}: `provider` must name the vendor"
        )));
    };
    if let Ok(kind) = name.parse::<licensekit::ProviderKind>() {
        let prefix = kind.env_prefix();
        found.extend(env.iter().filter(|(k, _)| k.starts_with(&prefix)).cloned());
    }
    let mut config = ProviderConfig::from_env_vars(&name, env.to_vec())
        .map_err(|e| ConfigError(format!("{at}: {}", redact(&e.to_string(), found))))?;
    let mut settings = Vec::new();
    for (key, value) in table {
        match value {
            Value::Object(client) if key == "client" => {
                for (key, value) in client {
                    match value {
                        Value::Object(retry) if key == "retry" => settings
                            .extend(retry.into_iter().map(|(k, v)| (format!("retry_{k}"), v))),
                        value => settings.push((key, value)),
                    }
                }
            }
            value => settings.push((key, value)),
        }
    }
    for (key, value) in settings {
        let text = match value {
            Value::String(s) => s,
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            _ => {
                return Err(ConfigError(format!(
                    "{at}: `{key}` cannot be combined with from_environment = true (only single values can; write the table without from_environment)"
                )));
            }
        };
        config = config
            .with_config(&key, &text)
            .map_err(|e| ConfigError(format!("{at}: {}", redact(&e.to_string(), found))))?;
    }
    Ok(config)
}

/// Reads the `client` table alone first, so its errors name `providers[i].client`.
fn check_client_table(entry: &Value, at: &str) -> Result<(), ConfigError> {
    let Some(client) = entry.get("client") else {
        return Ok(());
    };
    #[cfg(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
    if let Err(e) = serde_json::from_value::<licensekit::ClientOptions>(client.clone()) {
        let (key, e) = culprit(client, "", e.to_string());
        let hint = if e.contains("expected a duration") {
            " (write a duration such as \"30s\", \"500ms\" or \"2m\")"
        } else {
            ""
        };
        return Err(ConfigError(format!(
            "{at}: [providers.client]{key}: {e}{hint}"
        )));
    }
    #[cfg(not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")))]
    let _ = (client, at);
    Ok(())
}

/// The key of a `client` table whose value fails on its own (serde's errors name no field),
/// with its error; `("", error)` when no single key is to blame.
#[cfg(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
fn culprit(table: &Value, prefix: &str, error: String) -> (String, String) {
    let Some(map) = table.as_object() else {
        return (String::new(), error);
    };
    for (key, value) in map {
        let alone = if prefix.is_empty() {
            serde_json::json!({ key: value })
        } else {
            serde_json::json!({ "retry": { key: value } })
        };
        if let Err(e) = serde_json::from_value::<licensekit::ClientOptions>(alone) {
            if key == "retry" && prefix.is_empty() {
                return culprit(value, "retry.", e.to_string());
            }
            return (format!(" {prefix}{key}"), e.to_string());
        }
    }
    (String::new(), error)
}

/// Replaces every `x_env = "VAR"` with `x = $VAR`.
fn resolve_env(
    value: &mut Value,
    at: &str,
    file: &str,
    env: &[(String, String)],
    found: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if let Some(target) = key.strip_suffix("_env") {
            let var = map[&key]
                .as_str()
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{file}: {at}.{key} must name an environment variable"
                    ))
                })?
                .to_owned();
            let secret = lookup(env, &var).ok_or_else(|| {
                ConfigError(format!(
                    "{file}: {at}.{key} names the environment variable {var}, which is not set"
                ))
            })?;
            found.push((var, secret.clone()));
            map.remove(&key);
            map.insert(target.to_owned(), Value::String(secret));
        } else if let Some(child) = map.get_mut(&key) {
            resolve_env(child, &format!("{at}.{key}"), file, env, found)?;
        }
    }
    Ok(())
}

fn lookup(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_references_and_errors_name_the_key() {
        let env = vars(&[("SECRET", "s3cret")]);
        let text = r#"
[identity.aliases]
"ada.l@example.com" = "ada@example.com"

[[providers]]
provider = "memory"
"#;
        let c = parse(text, "licensekit.toml", &env).unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.aliases["ada.l@example.com"], "ada@example.com");

        let missing = "[[providers]]\nprovider = \"genesys\"\nclient_id = \"x\"\nclient_secret_env = \"NOPE\"\n";
        let err = parse(missing, "licensekit.toml", &env).unwrap_err().0;
        assert!(
            err.contains("providers[0].client_secret_env") && err.contains("NOPE"),
            "{err}"
        );

        // A value from the environment that fails to parse is named by its variable only.
        let canary = vars(&[("BATCH", "canary-7f3e9")]);
        let bad = "[[providers]]\nprovider = \"memory\"\npage_size_env = \"BATCH\"\n";
        let err = parse(bad, "licensekit.toml", &canary).unwrap_err().0;
        assert!(
            !err.contains("canary-7f3e9") && err.contains("$BATCH"),
            "{err}"
        );
        assert_eq!(
            redact(
                "bad url 'abc' in providers[1]",
                &[("X".into(), "abc".into()), ("Y".into(), "1".into())]
            ),
            "bad url <value of $X> in providers[1]"
        );

        let typo = "[[providers]]\nprovider = \"memory\"\nprodcts = []\n";
        let err = parse(typo, "licensekit.toml", &env).unwrap_err().0;
        assert!(
            err.contains("licensekit.toml: providers[0] (memory)") && err.contains("prodcts"),
            "{err}"
        );
    }

    /// `from_environment = true`: the vendor's variables through the library's `from_env`, the file's
    /// keys on top; errors name the file and the variable or key, never an env value.
    #[cfg(feature = "genesys")]
    #[test]
    fn from_env_tables_read_the_vendor_variables_and_the_file_wins() {
        use secrecy::ExposeSecret;
        let env = vars(&[
            ("LICENSEKIT_GENESYS_CLIENT_ID", "env-client"),
            ("LICENSEKIT_GENESYS_CLIENT_SECRET", "canary-env-secret-5d1"),
            ("LICENSEKIT_GENESYS_REGION", "us_east_1"),
            ("LICENSEKIT_GENESYS_PAGE_SIZE", "40"),
        ]);
        let text = "[[providers]]\nprovider = \"genesys\"\nfrom_environment = true\nregion = \"eu_west_1\"\n[providers.client]\ntimeout = \"5s\"\n[providers.client.retry]\nattempts = 2\n";
        let c = parse(text, "licensekit.toml", &env).unwrap_or_else(|e| panic!("{}", e.0));
        let g = c.providers[0]
            .vendor_config::<licensekit::genesys::GenesysConfig>()
            .unwrap();
        assert_eq!(g.client_id, "env-client");
        assert_eq!(g.client_secret.expose_secret(), "canary-env-secret-5d1");
        assert_eq!(
            g.region,
            licensekit::genesys::Region::EuWest1,
            "the file wins"
        );
        assert_eq!(g.page_size, 40);
        assert_eq!(g.client.timeout, std::time::Duration::from_secs(5));
        assert_eq!(g.client.retry.attempts, 2);
        assert_eq!(
            c.redact("token canary-env-secret-5d1 refused"),
            "token <value of $LICENSEKIT_GENESYS_CLIENT_SECRET> refused"
        );

        let bad = vars(&[("LICENSEKIT_GENESYS_MAX_BATCH", "canary-batch-9e2")]);
        let err = parse(
            "[[providers]]\nprovider = \"genesys\"\nfrom_environment = true\n",
            "lk.toml",
            &bad,
        )
        .unwrap_err()
        .0;
        assert!(
            err.contains("lk.toml: providers[0] (genesys)")
                && err.contains("LICENSEKIT_GENESYS_MAX_BATCH")
                && !err.contains("canary-batch-9e2"),
            "{err}"
        );
        let err = parse(
            "[[providers]]\nprovider = \"genesys\"\nfrom_environment = true\npage_sise = 3\n",
            "lk.toml",
            &env,
        )
        .unwrap_err()
        .0;
        assert!(
            err.contains("page_sise") && err.contains("page_size"),
            "{err}"
        );
    }

    const GENESYS: &str =
        "[[providers]]\nprovider = \"genesys\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";

    /// Every client option, for every vendor, in its nested table.
    #[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
    #[test]
    fn every_client_option_is_accepted_for_every_vendor() {
        let env = vars(&[]);
        let client = r#"
[providers.client]
allow_http = true
ca_file = "/etc/ssl/extra-ca.pem"
timeout = "30s"
connect_timeout = "5s"
max_concurrency = 8
max_response_bytes = 1048576
rate = "off"
max_wait = "45s"

[providers.client.retry]
attempts = 3
total_time = "1m 30s"
initial_backoff = "100ms"
max_backoff = "10s"
"#;
        let vendors = [
            GENESYS.to_owned(),
            "[[providers]]\nprovider = \"salesforce\"\napi_reserve_percent = 10\n[providers.auth]\nflow = \"access_token\"\ninstance_url = \"https://x.my.salesforce.com\"\naccess_token = \"t\"\n".to_owned(),
            "[[providers]]\nprovider = \"apple-vpp\"\nstoken = \"s\"\n".to_owned(),
        ];
        for vendor in vendors {
            let text = format!("{vendor}{client}");
            let c =
                parse(&text, "licensekit.toml", &env).unwrap_or_else(|e| panic!("{}\n{text}", e.0));
            let p = &c.providers[0];
            let options = None
                .or(p
                    .vendor_config::<licensekit::genesys::GenesysConfig>()
                    .map(|g| &g.client))
                .or(p
                    .vendor_config::<licensekit::salesforce::SalesforceConfig>()
                    .map(|s| &s.client))
                .or(p
                    .vendor_config::<licensekit::apple_vpp::AppleVppConfig>()
                    .map(|a| &a.client))
                .unwrap()
                .clone();
            assert!(options.allow_http);
            assert_eq!(options.rate, licensekit::Rate::Off);
            assert_eq!(options.timeout, std::time::Duration::from_secs(30));
            assert_eq!(options.retry.total_time, std::time::Duration::from_secs(90));
            assert_eq!(options.max_concurrency, Some(8));
        }
        // A rate as a number, or per duration.
        let c = parse(
            &format!("{GENESYS}[providers.client]\nrate = 120\n"),
            "licensekit.toml",
            &env,
        )
        .unwrap();
        let g = c.providers[0]
            .vendor_config::<licensekit::genesys::GenesysConfig>()
            .unwrap();
        assert_eq!(g.client.rate, licensekit::Rate::per_minute(120));
    }

    #[cfg(feature = "genesys")]
    #[test]
    fn client_table_errors_name_the_key_and_the_file() {
        let env = vars(&[]);
        let err = |text: String| parse(&text, "conf/licensekit.toml", &env).unwrap_err().0;
        let e = err(format!("{GENESYS}[providers.client]\ntimout = \"30s\"\n"));
        assert!(
            e.contains("conf/licensekit.toml: providers[0] (genesys): [providers.client]")
                && e.contains("timout"),
            "{e}"
        );
        let e = err(format!("{GENESYS}[providers.client.retry]\ntries = 2\n"));
        assert!(
            e.contains("conf/licensekit.toml") && e.contains("tries"),
            "{e}"
        );
        let e = err(format!("{GENESYS}[providers.client]\ntimeout = 30\n"));
        assert!(
            e.contains("conf/licensekit.toml") && e.contains("timeout"),
            "{e}"
        );
        let e = err(format!("{GENESYS}[providers.client]\nrate = 0\n"));
        assert!(e.contains("rate = \"off\""), "{e}");
        // The keys that moved say what to write instead.
        for (old, new) in [
            ("timeout_secs = 45", "timeout = \"45s\""),
            ("requests_per_minute = 120", "rate = 120"),
            ("max_concurrency = 4", "max_concurrency = 4"),
            ("allow_http = true", "allow_http = true"),
            ("max_response_bytes = 1000", "max_response_bytes = 1000"),
            ("honor_rate_limit_headers = false", "rate = \"off\""),
        ] {
            let e = err(format!("{GENESYS}{old}\n"));
            assert!(
                e.contains("conf/licensekit.toml: providers[0] (genesys)")
                    && e.contains(new)
                    && e.contains("[providers.client]"),
                "{old}: {e}"
            );
        }
    }
}
