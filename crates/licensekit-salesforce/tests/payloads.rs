//! The example payloads of `shared/vendor-specs/salesforce-payloads.md` decode into the wire
//! models.

use licensekit_salesforce::testing::wire::{CollectionResult, QueryPage, RestError, TokenResponse};

#[test]
fn p1_query_page() {
    let page: QueryPage<serde_json::Value> = serde_json::from_str(r#"{
  "done": false,
  "totalSize": 4,
  "nextRecordsUrl": "/services/data/v63.0/query/01gRO0000016PIAYA2-500",
  "records": [
    {"attributes": {"type": "Account"}, "Id": "001XX000003DGTYAA4", "Name": "Test Account 1", "Industry": "Technology"},
    {"attributes": {"type": "Account"}, "Id": "001XX000003DGTZBZ4", "Name": "Test Account 2", "Industry": "Healthcare"}
  ]
}"#).unwrap();
    assert!(!page.done);
    assert_eq!(page.total_size, 4);
    assert_eq!(
        page.next_records_url.as_deref(),
        Some("/services/data/v63.0/query/01gRO0000016PIAYA2-500")
    );
    assert_eq!(page.records.len(), 2);
}

#[test]
fn p4_p5_collection_results() {
    let rows: Vec<CollectionResult> = serde_json::from_str(r#"[
   {"success" : false, "errors" : [{"statusCode" : "DUPLICATES_DETECTED", "message" : "Use one of these records?", "fields" : [ ]}]},
   {"id" : "003RM0000068xVCYAY", "success" : true, "errors" : [ ]}
]"#).unwrap();
    assert!(!rows[0].success && rows[0].id.is_none());
    assert_eq!(rows[0].errors[0].status_code, "DUPLICATES_DETECTED");
    assert_eq!(rows[1].id.as_deref(), Some("003RM0000068xVCYAY"));
    let deleted: Vec<CollectionResult> = serde_json::from_str(
        r#"[
   {"id" : "001RM000003oLrHYAU", "success" : true, "errors" : [ ]},
   {"id" : "001RM000003oLraYAE", "success" : true, "errors" : [ ]}
]"#,
    )
    .unwrap();
    assert!(deleted.iter().all(|r| r.success));
}

#[test]
fn p6_errors_and_p9_token() {
    let errors: Vec<RestError> = serde_json::from_str(r#"[
{"fields" : [ "Id" ], "message" : "Account ID: id value of incorrect type: 001900K0001pPuOAAU", "errorCode" : "MALFORMED_ID"}
]"#).unwrap();
    assert_eq!(errors[0].error_code, "MALFORMED_ID");
    let token: TokenResponse = serde_json::from_str(r#"{
"access_token": "00Dxxxxxxxxxxxxxxx!AQMAQHNT2NhUqx5X6QC3BJninCLmgpbsGfDA48YqmeLBCoPGSTyYNYgcjuKgfktx.XPKF_sQt4w2c7UHTFzisjoBUDBp6dfL",
"signature": "HfBA4xxxxSOUcg8ndBMnw4GuvDY1M+oWUQ8PU1l0HWbc=",
"scope": "visualforce refresh_token wave_api custom_permissions web openid chatter_api api id full",
"instance_url": "https://xxxx.my.salesforce.com",
"id": "https://login.salesforce.com/id/00Dxxxxxxxxxxxx/005xxxxxxxxxxx",
"token_type": "Bearer",
"issued_at": "1708058728442"
}"#).unwrap();
    assert_eq!(token.instance_url, "https://xxxx.my.salesforce.com");
    assert_eq!(token.issued_at.as_deref(), Some("1708058728442"));
}
