//! The example payloads of `shared/vendor-specs/apple-vpp-payloads.md` decode into the wire
//! models.

use licensekit_apple_vpp::testing::wire::{
    ClientConfig, Page, ResponseAsset, ResponseAssignment, ResponseUser, StatusResponse,
};

#[test]
fn p13_assets_page() {
    let page: Page<ResponseAsset> = serde_json::from_str(r#"{
    "assets": [
        {"adamId": "408709785", "assignedCount": 5000, "availableCount": 10000, "deviceAssignable": true,
         "pricingParam": "STDQ", "productType": "App", "retiredCount": 0, "revocable": true,
         "supportedPlatforms": ["iOS"], "totalCount": 15000}
    ],
    "currentPageIndex": 0, "size": 5, "tokenExpirationDate": "2030-11-08T22:33:22+0000",
    "totalPages": 1, "uId": "2049025000431439", "versionId": "70e8c740-514c-11eb-bb63-a90b882fcd52"
}"#).unwrap();
    assert_eq!(page.items[0].total_count, Some(15000));
    assert_eq!(
        page.next_page_index, None,
        "no nextPageIndex: the last page"
    );
    assert_eq!(
        page.version_id.as_deref(),
        Some("70e8c740-514c-11eb-bb63-a90b882fcd52")
    );
}

#[test]
fn p15_assignments_user_and_device() {
    let page: Page<ResponseAssignment> = serde_json::from_str(
        r#"{
    "assignments": [
        {"adamId": "408709785", "clientUserId": "client-1", "pricingParam": "STDQ"},
        {"adamId": "408709785", "serialNumber": "serial-1", "pricingParam": "STDQ"}
    ],
    "size": 2, "currentPageIndex": 0, "tokenExpirationDate": "2030-11-08T22:33:22+0000",
    "totalPages": 1, "uId": "2049025000431439", "versionId": "009061cb-87d1-4ea8-ae4c-7849dc49224e"
}"#,
    )
    .unwrap();
    assert_eq!(page.items[0].client_user_id.as_deref(), Some("client-1"));
    assert_eq!(page.items[1].serial_number.as_deref(), Some("serial-1"));
}

#[test]
fn p31_failed_event_and_p40_users_and_p11_client_config() {
    let status: StatusResponse = serde_json::from_str(r#"{
    "eventStatus": "FAILED", "eventType": "ASSOCIATE",
    "failures": [{"errorInfo": {"clientUserIds": ["client-4"]}, "errorNumber": 9609, "errorMessage": "Registered user not found"}],
    "numCompleted": 14, "numRequested": 16, "tokenExpirationDate": "2030-11-08T22:33:22+0000", "uId": "2049025000431439"
}"#).unwrap();
    assert_eq!(
        status.failures[0]
            .error_info
            .as_ref()
            .unwrap()
            .client_user_ids,
        vec!["client-4"]
    );
    assert_eq!(
        (status.num_completed, status.num_requested),
        (Some(14), Some(16))
    );

    let users: Page<ResponseUser> = serde_json::from_str(r#"{
    "currentPageIndex": 0, "size": 3, "totalPages": 1, "uId": "2049025000431439",
    "users": [
        {"clientUserId": "client-101", "email": "client-101@apple.com", "inviteCode": "46bc93ea3acd41e0a4919c02db0d7d3a", "status": "Registered"},
        {"clientUserId": "client-103", "email": "client-1031@apple.com", "status": "Retired"}
    ],
    "versionId": "021f10a0-7035-11eb-9f67-bd1df52e1e13"
}"#).unwrap();
    assert_eq!(users.items[1].status.as_deref(), Some("Retired"));

    let config: ClientConfig = serde_json::from_str(r#"{
    "countryISO2ACode": "US", "defaultPlatform": "volumestore", "locationName": "PS01",
    "mdmInfo": {"id": "522d5c43-44ca-4f7e-ba7a-53570cf60765", "name": "Apple Configurator 2", "metadata": "2.13.3"},
    "notificationAuthToken": "SUp3rS3Cr3t", "notificationUrl": "https://www.next.com/notification",
    "subscribedNotificationTypes": ["ASSET_COUNT", "ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED"],
    "tokenExpirationDate": "2030-11-08T22:33:22+0000", "uId": "2049025000431439", "websiteURL": "https://school.apple.com"
}"#).unwrap();
    assert_eq!(config.mdm_info.unwrap().name, "Apple Configurator 2");
    assert_eq!(config.location_name.as_deref(), Some("PS01"));
}
