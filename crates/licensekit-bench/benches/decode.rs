//! Decode throughput of one listing page per adapter (criterion), so regressions in the wire
//! models show up. Pages are built at each vendor's page size in its documented shape.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn genesys_page() -> Vec<u8> {
    let entities: Vec<_> = (0..100)
        .map(|i| json!({"id": format!("{i:08x}-0000-4000-8000-{i:012x}"), "licenses": ["cloudCX2", "gc2WEMupgrade"], "selfUri": format!("/api/v2/license/users/{i}")}))
        .collect();
    serde_json::to_vec(&json!({"entities": entities, "pageSize": 100, "pageNumber": 1, "total": 100_000, "pageCount": 1000})).unwrap()
}

fn salesforce_page() -> Vec<u8> {
    let records: Vec<_> = (0..2000)
        .map(|i| json!({
            "attributes": {"type": "UserPackageLicense", "url": format!("/services/data/v66.0/sobjects/UserPackageLicense/051{i:015}")},
            "Id": format!("051{i:015}"), "PackageLicenseId": "05000000000003HAAQ", "UserId": format!("005{i:015}"),
            "CreatedDate": "2026-11-24T10:00:00.000+0000",
            "User": {"attributes": {"type": "User", "url": "/x"}, "Username": format!("user{i}@example.com.sandbox"),
                     "Email": format!("user{i}@example.com"), "Name": format!("User {i}"), "IsActive": true}
        }))
        .collect();
    serde_json::to_vec(&json!({"totalSize": 1_000_000, "done": false, "nextRecordsUrl": "/services/data/v66.0/query/01gSIM-2000", "records": records})).unwrap()
}

fn apple_page() -> Vec<u8> {
    let assignments: Vec<_> = (0..1000)
        .map(|i| if i % 2 == 0 {
            json!({"adamId": "361309726", "pricingParam": "STDQ", "clientUserId": format!("user-{i:06}")})
        } else {
            json!({"adamId": "361309726", "pricingParam": "STDQ", "serialNumber": format!("DMP{i:09}")})
        })
        .collect();
    serde_json::to_vec(&json!({"assignments": assignments, "currentPageIndex": 0, "nextPageIndex": 1, "size": 1000, "totalPages": 1000, "versionId": "0000002a-5a7b-11eb-b9e4-00000000002a", "uId": "2049025000431439"})).unwrap()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_page");
    let genesys = genesys_page();
    group.throughput(Throughput::Elements(100));
    group.bench_function("genesys_users_100", |b| {
        b.iter(|| {
            serde_json::from_slice::<licensekit_genesys::testing::wire::UserLicensesEntityListing>(
                &genesys,
            )
            .unwrap()
        })
    });
    let salesforce = salesforce_page();
    group.throughput(Throughput::Elements(2000));
    group.bench_function("salesforce_upl_2000", |b| {
        b.iter(|| {
            serde_json::from_slice::<
                licensekit_salesforce::testing::wire::QueryPage<
                    licensekit_salesforce::testing::wire::UserPackageLicenseRecord,
                >,
            >(&salesforce)
            .unwrap()
        })
    });
    let apple = apple_page();
    group.throughput(Throughput::Elements(1000));
    group.bench_function("apple_assignments_1000", |b| {
        b.iter(|| {
            serde_json::from_slice::<
                licensekit_apple_vpp::testing::wire::Page<
                    licensekit_apple_vpp::testing::wire::ResponseAssignment,
                >,
            >(&apple)
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
