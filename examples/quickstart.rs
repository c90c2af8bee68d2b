//! Quickstart: one provider, list / assign / revoke, with per-item outcomes.
//!
//! Runs on the in-memory provider (no network, no credentials); swap the config for a vendor's
//! to do the same against Apple, Genesys or Salesforce.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use futures::TryStreamExt;
use licensekit::{
    AnyProvider, AssignmentFilter, HolderId, LicenseProvider, LicenseProviderExt, ProductId,
    ProviderConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "memory",
        "products": [
            {"id": "design-suite", "name": "Design Suite", "seats": 3},
            {"id": "chat", "name": "Team Chat"}
        ],
        "users": [
            {"id": "ada", "email": "ada@example.com", "name": "Ada"},
            {"id": "grace", "email": "grace@example.com", "name": "Grace"},
            {"id": "linus", "email": "linus@example.com", "name": "Linus"},
            {"id": "ken", "email": "ken@example.com", "name": "Ken", "active": false}
        ],
        "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    }))?;
    let provider = AnyProvider::from_config(config)?;

    println!("Products at {}:", provider.kind());
    for p in provider.products().await? {
        let total = match p.seats.total {
            licensekit::SeatTotal::Limited(n) => n.to_string(),
            licensekit::SeatTotal::Unlimited => "unlimited".into(),
            licensekit::SeatTotal::Unknown => "unknown".into(),
        };
        println!(
            "  {:<14} {:<12} total {:>9}  assigned {:>3}",
            p.id,
            p.name,
            total,
            p.seats.assigned.unwrap_or(0)
        );
    }

    let product = ProductId::new("design-suite");
    let holders = [
        HolderId::user("ada"),    // already has a seat
        HolderId::user("grace"),  // gets one
        HolderId::user("linus"),  // gets the last one
        HolderId::user("ken"),    // inactive: refused
        HolderId::user("nobody"), // unknown
    ];
    let report = provider.assign(&product, &holders).await?;
    println!("\nAssign {product}:");
    for item in &report.items {
        match item.outcome.error() {
            Some(err) => println!(
                "  {:<14} {:?}: {err}",
                item.holder.to_string(),
                item.outcome.status()
            ),
            None => println!(
                "  {:<14} {:?}",
                item.holder.to_string(),
                item.outcome.status()
            ),
        }
    }
    let counts = report.counts();
    println!(
        "  = {} applied, {} already so, {} pending, {} failed (of {})",
        counts.applied,
        counts.already_in_state,
        counts.pending,
        counts.failed,
        counts.total()
    );

    let revoke = provider.revoke(&product, &[HolderId::user("ada")]).await?;
    println!(
        "\nRevoke {product} from ada: {:?}",
        revoke.items[0].outcome.status()
    );

    println!("\nWho holds {product} now:");
    let mut stream = provider.assignments(AssignmentFilter::product(product.clone()));
    while let Some(a) = stream.try_next().await? {
        println!(
            "  {} <{}>",
            a.holder.display_name.as_deref().unwrap_or("?"),
            a.holder.email.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}
