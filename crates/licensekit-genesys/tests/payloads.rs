//! The example payloads of `shared/vendor-specs/genesys-payloads.md` decode into the wire models.

use licensekit_genesys::testing::wire::{
    LicenseDefinition, LicenseOrgToggle, LicenseOrganization, LicenseUpdateStatus, LicenseUser,
    UserLicensesEntityListing,
};

#[test]
fn definitions_array() {
    let defs: Vec<LicenseDefinition> = serde_json::from_str(
        r#"[
  {"id": "cloudCX2", "description": "Genesys Cloud CX 2",
   "permissions": {"ids": ["routing:queue:view", "conversation:communication:accept"]},
   "prerequisites": [], "comprises": [], "selfUri": "/api/v2/license/definitions/cloudCX2"},
  {"id": "gc2WEMupgrade", "description": "Genesys Cloud CX 2 WEM Add-on",
   "permissions": {"ids": ["wfm:schedule:view"]},
   "prerequisites": [{"id": "cloudCX2", "selfUri": "/api/v2/license/definitions/cloudCX2"}],
   "comprises": [], "selfUri": "/api/v2/license/definitions/gc2WEMupgrade"}
]"#,
    )
    .unwrap();
    assert_eq!(defs[1].prerequisites[0].id, "cloudCX2");
    assert_eq!(defs[0].permissions.as_ref().unwrap().ids.len(), 2);
}

#[test]
fn users_listing_and_user() {
    let page: UserLicensesEntityListing = serde_json::from_str(
        r#"{
  "entities": [
    {"id": "U1", "licenses": ["cloudCX2", "gc2WEMupgrade"], "selfUri": "/api/v2/license/users/U1"},
    {"id": "U2", "licenses": ["cloudCX2"], "selfUri": "/api/v2/license/users/U2"}
  ],
  "pageSize": 2, "pageNumber": 1, "total": 3, "pageCount": 2
}"#,
    )
    .unwrap();
    assert_eq!(page.entities[0].licenses, vec!["cloudCX2", "gc2WEMupgrade"]);
    assert_eq!(
        (page.page_number, page.page_count, page.total),
        (Some(1), Some(2), Some(3))
    );
    let user: LicenseUser = serde_json::from_str(r#"{
  "id": "U1",
  "licenses": [
    {"id": "cloudCX2", "description": "Genesys Cloud CX 2", "permissions": {"ids": ["routing:queue:view"]}, "prerequisites": [], "comprises": [], "selfUri": "/api/v2/license/definitions/cloudCX2"}
  ],
  "selfUri": "/api/v2/license/users/U1"
}"#).unwrap();
    assert_eq!(user.licenses[0].id, "cloudCX2");
}

#[test]
fn batch_statuses_toggle_and_historical_organization() {
    let statuses: Vec<LicenseUpdateStatus> = serde_json::from_str(
        r#"[
  {"userId": "U1", "licenseId": "gc2WEMupgrade", "result": "<result>"},
  {"userId": "U2", "licenseId": "cloudCX1", "result": "<result>"}
]"#,
    )
    .unwrap();
    assert_eq!(statuses[1].license_id, "cloudCX1");
    let toggle: LicenseOrgToggle =
        serde_json::from_str(r#"{"featureName": "someFeature", "enabled": true}"#).unwrap();
    assert!(toggle.enabled);
    let org: LicenseOrganization = serde_json::from_str(
        r#"{
  "id": "<orgId>", "name": "<org name>",
  "licenses": {"cloudCX2": [{"id": "U1", "selfUri": "/api/v2/users/U1"}]},
  "selfUri": "/api/v2/license/organization"
}"#,
    )
    .unwrap();
    assert_eq!(org.licenses["cloudCX2"][0].id, "U1");
}

#[test]
fn unknown_fields_never_break_decoding() {
    let def: LicenseDefinition =
        serde_json::from_str(r#"{"id": "x", "brandNewField": {"a": 1}}"#).unwrap();
    assert_eq!(def.id, "x");
}

/// Issue 14, item 10: the documented shapes with an explicit `null` where a list (or a string)
/// is expected decode as empty instead of failing.
#[test]
fn explicit_null_lists_decode_as_empty() {
    let defs: Vec<LicenseDefinition> = serde_json::from_str(
        r#"[{"id": "cloudCX2", "description": "Genesys Cloud CX 2", "permissions": {"ids": null},
             "prerequisites": null, "comprises": null, "selfUri": "/api/v2/license/definitions/cloudCX2"}]"#,
    )
    .unwrap();
    assert!(defs[0].prerequisites.is_empty() && defs[0].comprises.is_empty());
    assert!(defs[0].permissions.as_ref().unwrap().ids.is_empty());

    let page: UserLicensesEntityListing = serde_json::from_str(
        r#"{"entities": [{"id": "U1", "licenses": null, "selfUri": "/api/v2/license/users/U1"}],
            "pageSize": 25, "pageNumber": 1, "total": 1, "pageCount": 1}"#,
    )
    .unwrap();
    assert!(page.entities[0].licenses.is_empty());
    let empty: UserLicensesEntityListing = serde_json::from_str(
        r#"{"entities": null, "pageSize": 25, "pageNumber": 1, "total": 0, "pageCount": 0}"#,
    )
    .unwrap();
    assert!(empty.entities.is_empty());

    let user: LicenseUser = serde_json::from_str(
        r#"{"id": "U1", "licenses": null, "selfUri": "/api/v2/license/users/U1"}"#,
    )
    .unwrap();
    assert!(user.licenses.is_empty());

    let statuses: Vec<LicenseUpdateStatus> =
        serde_json::from_str(r#"[{"userId": "U1", "licenseId": "cloudCX2", "result": null}]"#)
            .unwrap();
    assert_eq!(statuses[0].result, "");

    let org: LicenseOrganization =
        serde_json::from_str(r#"{"id": "org", "licenses": null}"#).unwrap();
    assert!(org.licenses.is_empty());
}
