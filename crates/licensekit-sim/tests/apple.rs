//! The Apple simulator behaves as Apple documents by default (issue 15): HTTP 200 + 9622 for an
//! unknown token, `tokenExpirationDate` and `websiteURL` always present, a complete
//! `service/config` pointing at this server, Apple's numbers for a wrong Content-Type or method,
//! the config echoed back, `idHash` on associated users, and one `versionId` per data set.
#![cfg(feature = "apple-vpp")]

use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimHolder, make_stoken};
use serde_json::{Value, json};

async fn start() -> (AppleSim, reqwest::Client) {
    let sim = AppleSim::start(AppleSeed::demo(5), AppleSimConfig::default())
        .await
        .unwrap();
    (sim, reqwest::Client::new())
}

async fn get(sim: &AppleSim, http: &reqwest::Client, path: &str) -> (u16, Value) {
    let r = http
        .get(format!("{}/{path}", sim.base_url()))
        .bearer_auth(sim.stoken())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(sim: &AppleSim, http: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{}/{path}", sim.base_url()))
        .bearer_auth(sim.stoken())
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_unknown_token_is_http_200_with_9622() {
    let (sim, http) = start().await;
    let stranger = make_stoken(
        "someone-else",
        chrono::Utc::now() + chrono::Duration::days(30),
        "Other Org",
    );
    let r = http
        .get(format!("{}/assets", sim.base_url()))
        .bearer_auth(stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorNumber"], 9622);
}

#[tokio::test]
async fn every_response_carries_token_expiration_and_client_config_its_website() {
    let (sim, http) = start().await;
    for path in ["assets", "assignments", "users", "client/config"] {
        let (status, body) = get(&sim, &http, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body["tokenExpirationDate"].is_string(), "{path}: {body}");
        assert!(body["uId"].is_string(), "{path}");
    }
    let (_, config) = get(&sim, &http, "client/config").await;
    assert_eq!(config["websiteURL"], "https://business.apple.com");
}

#[tokio::test]
async fn service_config_is_complete_and_points_here() {
    let (sim, http) = start().await;
    let config: Value = http
        .get(format!("{}/service/config", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let urls = config["urls"].as_object().unwrap();
    for key in [
        "invitationEmail",
        "clientConfig",
        "createUsers",
        "getAssignments",
        "revokeAssets",
        "contentMetadataLookup",
        "getUsers",
        "eventStatus",
        "associateAssets",
        "disassociateAssets",
        "updateUsers",
        "getAssets",
        "retireUsers",
    ] {
        assert!(urls.contains_key(key), "{key}");
    }
    assert_eq!(
        urls["getAssets"],
        json!(format!("{}/assets", sim.base_url()))
    );
    // Each API URL answers here.
    let assets_url = urls["getAssets"].as_str().unwrap();
    let r = http
        .get(assets_url)
        .bearer_auth(sim.stoken())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let numbers: Vec<i64> = config["errorCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errorNumber"].as_i64().unwrap())
        .collect();
    for n in [9601, 9621, 9622, 9646, 9709, 9721, 9726, 9727, 9728] {
        assert!(numbers.contains(&n), "{n}");
    }
}

#[tokio::test]
async fn wrong_content_type_and_method_get_apples_numbers() {
    let (sim, http) = start().await;
    let before = sim.holders_of("361309726", "STDQ").len();
    let r = http
        .post(format!("{}/assets/associate", sim.base_url()))
        .bearer_auth(sim.stoken())
        .header("content-type", "text/plain")
        .body(r#"{"assets":[{"adamId":"361309726","pricingParam":"STDQ"}],"clientUserIds":["client-0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorNumber"], 9727);
    assert_eq!(
        sim.holders_of("361309726", "STDQ").len(),
        before,
        "nothing was associated"
    );

    let r = http
        .delete(format!("{}/assets", sim.base_url()))
        .bearer_auth(sim.stoken())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorNumber"], 9726);
}

#[tokio::test]
async fn client_config_post_echoes_the_configuration() {
    let (sim, http) = start().await;
    let (status, body) = post(
        &sim,
        &http,
        "client/config",
        json!({
            "mdmInfo": {"id": "mdm-1", "name": "Our MDM", "metadata": "1.0"},
            "notificationUrl": "https://mdm.example.com/notify",
            "notificationAuthToken": "s3cret",
            "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mdmInfo"]["id"], "mdm-1");
    assert_eq!(body["notificationUrl"], "https://mdm.example.com/notify");
    assert_eq!(
        body["subscribedNotificationTypes"],
        json!(["ASSET_MANAGEMENT", "USER_MANAGEMENT"])
    );
    assert!(body["tokenExpirationDate"].is_string());
    assert!(body.get("notificationAuthToken").is_none());
    // GET names the same fields the same way (and keeps the token, as Apple's example does).
    let (_, config) = get(&sim, &http, "client/config").await;
    assert_eq!(
        config["subscribedNotificationTypes"],
        json!(["ASSET_MANAGEMENT", "USER_MANAGEMENT"])
    );
    assert!(config.get("notificationTypes").is_none());
    assert_eq!(config["notificationAuthToken"], "s3cret");
}

#[tokio::test]
async fn associated_users_have_an_id_hash() {
    let (sim, http) = start().await;
    let (status, _) = post(
        &sim,
        &http,
        "users/create",
        json!({"users": [
            {"clientUserId": "with-account", "email": "a@example.com", "managedAppleId": "a@example.com"},
            {"clientUserId": "without", "email": "b@example.com"},
        ]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, users) = get(&sim, &http, "users").await;
    let find = |id: &str| {
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["clientUserId"] == id)
            .cloned()
            .unwrap()
    };
    let associated = find("with-account");
    assert_eq!(associated["status"], "Associated");
    assert_eq!(associated["idHash"].as_str().unwrap().len(), 28);
    let registered = find("without");
    assert!(registered.get("idHash").is_none());
    assert!(registered["inviteCode"].is_string());
}

#[tokio::test]
async fn each_data_set_has_its_own_version() {
    let (sim, http) = start().await;
    let version = |body: &Value| body["versionId"].as_str().unwrap().to_owned();
    let (_, assets) = get(&sim, &http, "assets").await;
    let (_, assignments) = get(&sim, &http, "assignments").await;
    let (_, users) = get(&sim, &http, "users").await;
    // A user change moves the users' version only.
    post(
        &sim,
        &http,
        "users/create",
        json!({"users": [{"clientUserId": "new-user", "email": "n@example.com"}]}),
    )
    .await;
    let (_, assignments2) = get(&sim, &http, "assignments").await;
    let (_, assets2) = get(&sim, &http, "assets").await;
    let (_, users2) = get(&sim, &http, "users").await;
    assert_eq!(version(&assignments2), version(&assignments));
    assert_eq!(version(&assets2), version(&assets));
    assert_ne!(version(&users2), version(&users));
    // An assignment moves assignments (and the assets' counts), not users.
    sim.assign_directly("361309726", "STDQ", SimHolder::Serial("NEWIPAD".into()));
    let (_, assignments3) = get(&sim, &http, "assignments").await;
    let (_, assets3) = get(&sim, &http, "assets").await;
    let (_, users3) = get(&sim, &http, "users").await;
    assert_ne!(version(&assignments3), version(&assignments2));
    assert_ne!(version(&assets3), version(&assets2));
    assert_eq!(version(&users3), version(&users2));
    // A users versionId is no good for assignments.
    let (status, body) = get(
        &sim,
        &http,
        &format!("assignments?sinceVersionId={}", version(&users3)),
    )
    .await;
    assert_eq!((status, body["errorNumber"].clone()), (400, json!(9721)));
    // Deltas still work within a data set.
    let (_, delta) = get(
        &sim,
        &http,
        &format!("assignments?sinceVersionId={}", version(&assignments2)),
    )
    .await;
    assert_eq!(delta["assignments"].as_array().unwrap().len(), 1);
}
