//! Property tests: arbitrary and mutated vendor JSON fed to every decoder gives errors, never a
//! panic; untrusted strings are validated or escaped so SOQL keeps its meaning.

// Each test is gated on the providers it needs; imports serve whichever are compiled in.
#![allow(unused_imports)]

use proptest::prelude::*;

/// Documented payloads to mutate (from `shared/vendor-specs/*-payloads.md`).
const SEEDS: &[&str] = &[
    r#"{"entities":[{"id":"U1","licenses":["cloudCX2","gc2WEMupgrade"],"selfUri":"/api/v2/license/users/U1"}],"pageSize":2,"pageNumber":1,"total":3,"pageCount":2}"#,
    r#"[{"id":"cloudCX2","description":"Genesys Cloud CX 2","permissions":{"ids":["routing:queue:view"]},"prerequisites":[],"comprises":[],"selfUri":"/x"}]"#,
    r#"{"totalSize":4,"done":false,"nextRecordsUrl":"/services/data/v63.0/query/01gRO0000016PIAYA2-500","records":[{"attributes":{"type":"Account"},"Id":"001XX000003DGTYAA4"}]}"#,
    r#"[{"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]},{"id":"003RM0000068xVCYAY","success":true,"errors":[]}]"#,
    r#"{"assets":[{"adamId":"408709785","assignedCount":5000,"availableCount":10000,"deviceAssignable":true,"pricingParam":"STDQ","productType":"App","retiredCount":0,"revocable":true,"supportedPlatforms":["iOS"],"totalCount":15000}],"currentPageIndex":0,"size":5,"totalPages":1,"versionId":"70e8c740"}"#,
    r#"{"eventStatus":"FAILED","eventType":"ASSOCIATE","failures":[{"errorInfo":{"clientUserIds":["client-4"]},"errorNumber":9609,"errorMessage":"Registered user not found"}],"numCompleted":14,"numRequested":16}"#,
];

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..8),
        any::<usize>(),
    )
        .prop_map(|(seed, edits, cut)| {
            let mut bytes = SEEDS[seed].as_bytes().to_vec();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at % bytes.len();
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            let keep = if bytes.is_empty() {
                0
            } else {
                cut % (bytes.len() + 1)
            };
            bytes.truncate(keep.max(bytes.len() / 2));
            bytes
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![mutated(), prop::collection::vec(any::<u8>(), 0..256)]
}

/// Decodes into every wire type; the result does not matter, only that it returns.
fn decode_everything(body: &[u8]) {
    #[cfg(feature = "genesys")]
    {
        use licensekit_genesys::testing::wire::*;
        let _ = serde_json::from_slice::<UserLicensesEntityListing>(body);
        let _ = serde_json::from_slice::<Vec<LicenseDefinition>>(body);
        let _ = serde_json::from_slice::<Vec<LicenseUpdateStatus>>(body);
        let _ = serde_json::from_slice::<UserEntityListing>(body);
        let _ = serde_json::from_slice::<ErrorBody>(body);
    }
    #[cfg(feature = "salesforce")]
    {
        use licensekit_salesforce::testing::wire::*;
        let _ = serde_json::from_slice::<QueryPage<UserPackageLicenseRecord>>(body);
        let _ = serde_json::from_slice::<QueryPage<PackageLicenseRecord>>(body);
        let _ = serde_json::from_slice::<Vec<CollectionResult>>(body);
        let _ = serde_json::from_slice::<Vec<RestError>>(body);
        let _ = serde_json::from_slice::<TokenResponse>(body);
    }
    #[cfg(feature = "apple-vpp")]
    {
        use licensekit_apple_vpp::testing::wire::*;
        let _ = serde_json::from_slice::<Page<ResponseAsset>>(body);
        let _ = serde_json::from_slice::<Page<ResponseAssignment>>(body);
        let _ = serde_json::from_slice::<StatusResponse>(body);
        let _ = serde_json::from_slice::<ClientConfig>(body);
        let text = String::from_utf8_lossy(body).into_owned();
        let _ = licensekit_apple_vpp::testing::decode(&text.into());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(body in bytes()) {
        decode_everything(&body);
    }

    #[cfg(feature = "salesforce")]
    #[test]
    fn salesforce_ids_never_panic_and_valid_ones_are_18_chars(s in "\\PC{0,24}") {
        if let Ok(id) = licensekit_salesforce::testing::SalesforceId::parse(&s, None) {
            prop_assert_eq!(id.as_str().len(), 18);
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    /// Whatever the quoting accepts, the simulator's independent SOQL parser reads back as one
    /// literal equal to the input: the value can never become syntax.
    #[cfg(feature = "salesforce")]
    #[test]
    fn quoted_literals_round_trip_through_a_real_parser(value in "(\\PC|['\\\\\"\n\t\r])*") {
        use licensekit_sim::salesforce::soql::{Cond, Literal, Op, parse};
        if let Ok(quoted) = licensekit_salesforce::testing::soql::quote(&value) {
            let q = parse(&format!("SELECT Id FROM User WHERE Name = {quoted}")).expect("escaped SOQL parses");
            prop_assert_eq!(q.filter, Some(Cond::Cmp(vec!["Name".into()], Op::Eq, Literal::Str(value))));
        }
    }

    #[cfg(feature = "salesforce")]
    #[test]
    fn the_soql_parser_never_panics(q in "\\PC{0,120}") {
        let _ = licensekit_sim::salesforce::soql::parse(&q);
    }

    #[cfg(feature = "apple-vpp")]
    #[test]
    fn apple_product_ids_are_digits_and_a_pricing(s in "\\PC{0,30}") {
        if let Ok(asset) = licensekit_apple_vpp::testing::parse_product(&licensekit::ProductId::new(s)) {
            prop_assert!(asset.adam_id.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(asset.pricing_param == "STDQ" || asset.pricing_param == "PLUS");
        }
    }
}
