//! The same code against whichever provider the configuration names.
//!
//! ```sh
//! cargo run --example switch_provider -- genesys
//! cargo run --example switch_provider -- salesforce
//! cargo run --example switch_provider -- memory
//! ```
//!
//! A provider whose cargo feature is off gives `FeatureNotEnabled`, naming the feature to enable.

use licensekit::{AnyProvider, LicenseProvider, LicenseProviderExt, ProviderConfig};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

/// Works with any provider: this is what tooling embedding licensekit writes once.
async fn show(provider: &dyn LicenseProvider) -> licensekit::Result<()> {
    let caps = provider.capabilities();
    println!(
        "{}: users {}, devices {}, seat totals reported {}, max batch {:?}",
        provider.kind(),
        caps.user_holders,
        caps.device_holders,
        caps.seat_totals_reported,
        caps.max_assign_batch
    );
    for p in provider.products().await? {
        let held = provider
            .all_assignments(licensekit::AssignmentFilter::product(p.id.clone()))
            .await?
            .len();
        println!(
            "  {:<32} {:>4} holders  seats {:?}",
            p.name, held, p.seats.total
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let choice = std::env::args().nth(1).unwrap_or_else(|| "genesys".into());
    let genesys_sim = GenesysSim::start(GenesysSeed::demo(30), GenesysSimConfig::default()).await?;
    let salesforce_sim =
        SalesforceSim::start(SalesforceSeed::demo(20, 10), SalesforceSimConfig::default()).await?;
    salesforce_sim.add_token("example-session");
    let config = match choice.as_str() {
        "genesys" => serde_json::json!({
            "provider": "genesys", "base_url": genesys_sim.base_url(), "client": {"allow_http": true},
            "client_id": "sim-client", "client_secret": "sim-secret"
        }),
        "salesforce" => serde_json::json!({
            "provider": "salesforce", "client": {"allow_http": true},
            "auth": {"flow": "access_token", "instance_url": salesforce_sim.base_url(), "access_token": "example-session"}
        }),
        "memory" => serde_json::json!({
            "provider": "memory",
            "products": [{"id": "app", "name": "App", "seats": 5}],
            "users": [{"id": "ada", "email": "ada@example.com"}],
            "assignments": [{"product": "app", "holder": {"kind": "user", "id": "ada"}}]
        }),
        other => {
            return Err(
                format!("unknown provider `{other}`: genesys, salesforce or memory").into(),
            );
        }
    };
    let config: ProviderConfig = serde_json::from_value(config)?;
    let provider = AnyProvider::from_config(config)?;
    show(&provider).await?;
    Ok(())
}
