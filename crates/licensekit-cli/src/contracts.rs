//! `[[contracts]]` in `licensekit.toml`: what was bought of each product (seats, price per seat
//! and period, currency, renewal, notes), and the deprecated Genesys `seat_totals` folded into
//! it. Kept apart from `config.rs` (providers and identity) so each can change on its own.
//!
//! ```toml
//! [[contracts]]
//! provider = "genesys"
//! product = "cloudCX2"          # the vendor's product id (Salesforce: id or namespace)
//! seats = 250                   # purchased; overrides or fills the vendor's figure
//! price_per_seat = "75.00"      # exact decimal; a TOML number works too
//! currency = "EUR"
//! period = "month"              # or "year"
//! renewal = 2027-03-31          # a TOML date or "2027-03-31"
//! notes = "3-year deal, 5 % uplift"
//! ```

use licensekit::{Contract, ProviderKind};
use serde_json::Value;

use crate::config::ConfigError;

/// Contracts and what the reader should be told about them.
#[derive(Debug, Default)]
pub struct ContractsConfig {
    pub contracts: Vec<Contract>,
    /// Deprecations and the like, for stderr.
    pub warnings: Vec<String>,
}

/// Reads `[[contracts]]` from the parsed file, then folds each Genesys provider's
/// `seat_totals` (deprecated) into seat-only contracts where no contract names the product.
pub fn parse(doc: &toml::Table, file: &str) -> Result<ContractsConfig, ConfigError> {
    let mut out = ContractsConfig::default();
    match doc.get("contracts") {
        None => {}
        Some(toml::Value::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                let json = to_json(entry);
                let contract: Contract = serde_json::from_value(json)
                    .map_err(|e| ConfigError(format!("{file}: contracts[{i}]: {e}")))?;
                contract
                    .check()
                    .map_err(|e| ConfigError(format!("{file}: contracts[{i}]: {e}")))?;
                if let Some(j) = out
                    .contracts
                    .iter()
                    .position(|c| c.provider == contract.provider && c.product == contract.product)
                {
                    return Err(ConfigError(format!(
                        "{file}: contracts[{i}]: {} product `{}` already has contracts[{j}]",
                        contract.provider, contract.product
                    )));
                }
                out.contracts.push(contract);
            }
        }
        Some(_) => {
            return Err(ConfigError(format!(
                "{file}: `contracts` must be an array of tables ([[contracts]])"
            )));
        }
    }
    let providers = doc.get("providers").and_then(toml::Value::as_array);
    for (i, provider) in providers.into_iter().flatten().enumerate() {
        let is_genesys = provider.get("provider").and_then(toml::Value::as_str) == Some("genesys");
        let Some(totals) = provider.get("seat_totals").and_then(toml::Value::as_table) else {
            continue;
        };
        if !is_genesys {
            continue;
        }
        out.warnings.push(format!(
            "{file}: providers[{i}].seat_totals is deprecated: write the seats in [[contracts]] (provider = \"genesys\", product = …, seats = …)"
        ));
        for (product, seats) in totals {
            let Some(seats) = seats.as_integer().and_then(|n| u64::try_from(n).ok()) else {
                continue; // the provider's own parsing names this error
            };
            let named = out.contracts.iter().any(|c| {
                c.provider == ProviderKind::from_static("genesys") && c.product == *product
            });
            if !named {
                out.contracts.push(
                    Contract::new(ProviderKind::from_static("genesys"), product.clone())
                        .with_seats(seats),
                );
            }
        }
    }
    Ok(out)
}

/// TOML to JSON, with dates as their text (serde_json has no date type).
fn to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        // Through its text, so `75.1` stays 75.1 in the decimal.
        toml::Value::Float(f) => Value::String(f.to_string()),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn contracts_are_read_with_dates_decimals_and_errors_naming_the_key() {
        let c = parse(
            &doc(r#"
[[contracts]]
provider = "genesys"
product = "cloudCX2"
seats = 250
price_per_seat = 75.10
currency = "eur"
period = "month"
renewal = 2027-03-31
notes = "3-year deal"

[[contracts]]
provider = "salesforce"
product = "acme"
price_per_seat = "1200"
currency = "USD"
period = "year"
"#),
            "lk.toml",
        )
        .unwrap();
        assert_eq!(c.contracts.len(), 2);
        let g = &c.contracts[0];
        let dec = |s: &str| s.parse::<licensekit::Decimal>().unwrap();
        assert_eq!(
            g.price_per_seat,
            Some(dec("75.10")),
            "a TOML float through its text"
        );
        assert_eq!(g.annual_price_per_seat(), Some(dec("901.2")));
        assert_eq!(g.currency.as_deref(), Some("EUR"));
        assert_eq!(g.renewal.unwrap().to_string(), "2027-03-31");

        for (text, expected) in [
            (
                "[[contracts]]\nprovider = \"genesys\"\nproduct = \"x\"\nprice_per_seat = 1\nperiod = \"year\"\n",
                "contracts[0]: contract genesys x: `price_per_seat` needs a `currency`",
            ),
            (
                "[[contracts]]\nprovider = \"genesys\"\nproduct = \"x\"\nseat = 1\n",
                "contracts[0]: unknown field `seat`",
            ),
            (
                "[[contracts]]\nprovider = \"genesys\"\nproduct = \"x\"\nperiod = \"week\"\n",
                "contracts[0]: unknown variant `week`",
            ),
            (
                "[[contracts]]\nprovider = \"genesys\"\nproduct = \"x\"\n[[contracts]]\nprovider = \"genesys\"\nproduct = \"x\"\n",
                "contracts[1]: genesys product `x` already has contracts[0]",
            ),
            ("contracts = 3\n", "`contracts` must be an array of tables"),
        ] {
            let err = parse(&doc(text), "lk.toml").unwrap_err().0;
            assert!(
                err.starts_with("lk.toml: ") && err.contains(expected),
                "{err}"
            );
        }
    }

    #[test]
    fn genesys_seat_totals_fold_into_contracts_with_a_deprecation() {
        let c = parse(
            &doc(r#"
[[providers]]
provider = "genesys"
seat_totals = { cloudCX2 = 250, cloudCX3 = 10 }

[[contracts]]
provider = "genesys"
product = "cloudCX3"
seats = 12
"#),
            "lk.toml",
        )
        .unwrap();
        let seats: Vec<(&str, Option<u64>)> = c
            .contracts
            .iter()
            .map(|c| (c.product.as_str(), c.seats))
            .collect();
        assert_eq!(
            seats,
            vec![("cloudCX3", Some(12)), ("cloudCX2", Some(250))],
            "the contract wins"
        );
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains("providers[0].seat_totals is deprecated"),
            "{:?}",
            c.warnings
        );
    }
}
