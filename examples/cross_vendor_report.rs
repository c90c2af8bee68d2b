//! Several providers through `AnyProvider`, one cross-vendor report as JSON.
//!
//! Starts the Genesys and Salesforce simulators in-process, configures both providers from JSON
//! (as a tool would from its config file), and prints the report's totals and reclaim candidates.
//!
//! ```sh
//! cargo run --example cross_vendor_report
//! ```

use licensekit::report::{Report, ReportOptions};
use licensekit::{AnyProvider, LicenseProvider, ProviderConfig};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let genesys_sim = GenesysSim::start(GenesysSeed::demo(60), GenesysSimConfig::default()).await?;
    let salesforce_sim =
        SalesforceSim::start(SalesforceSeed::demo(40, 30), SalesforceSimConfig::default()).await?;
    salesforce_sim.add_token("example-session");

    let configs: Vec<ProviderConfig> = serde_json::from_value(serde_json::json!([
        {
            "provider": "genesys",
            "base_url": genesys_sim.base_url(),
            "client": {"allow_http": true},
            "client_id": "sim-client",
            "client_secret": "sim-secret",
            "seat_totals": {"cloudCX2": 25}
        },
        {
            "provider": "salesforce",
            "client": {"allow_http": true},
            "auth": {"flow": "access_token", "instance_url": salesforce_sim.base_url(), "access_token": "example-session"}
        }
    ]))?;
    let providers = configs
        .into_iter()
        .map(AnyProvider::from_config)
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&dyn LicenseProvider> = providers
        .iter()
        .map(|p| p as &dyn LicenseProvider)
        .collect();

    let report = Report::collect(&refs, &ReportOptions::default(), &|provider, n| {
        eprintln!("{provider}: {n} assignments read");
    })
    .await;
    let summary = serde_json::json!({
        "providers": report.providers,
        "products": report.products,
        "reclaim": report.reclaim,
        "people_matched": report.people.len(),
        "unmatched": report.unmatched.len(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
