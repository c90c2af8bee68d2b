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
    let notify = receiver(200).await;
    let (status, body) = post(
        &sim,
        &http,
        "client/config",
        json!({
            "mdmInfo": {"id": "mdm-1", "name": "Our MDM", "metadata": "1.0"},
            "notificationUrl": notify.url,
            "notificationAuthToken": "s3cret",
            "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mdmInfo"]["id"], "mdm-1");
    assert_eq!(body["notificationUrl"], json!(notify.url));
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

/// A notification receiver on a loopback port: what it was sent, and the status it answers.
struct Receiver {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    _running: licensekit_sim::Running,
}

async fn receiver(status: u16) -> Receiver {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    type Got = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;
    let got: Got = Default::default();
    let router = axum::Router::new()
        .route(
            "/notify",
            axum::routing::post(
                move |State(got): State<Got>, headers: HeaderMap, body: axum::Json<Value>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    got.lock().unwrap().push((auth, body.0));
                    StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(got.clone());
    let running = licensekit_sim::Running::serve(router).await.unwrap();
    Receiver {
        url: format!("{}/notify", running.base_url()),
        got,
        _running: running,
    }
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        if r.got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    r.got.lock().unwrap().clone()
}

#[tokio::test]
async fn notification_urls_are_validated_with_a_test_notification() {
    let (sim, http) = start().await;
    let config = |url: &str, token: Option<&str>| {
        let mut body = json!({"notificationUrl": url, "notificationTypes": ["ASSET_MANAGEMENT"]});
        if let Some(t) = token {
            body["notificationAuthToken"] = json!(t);
        }
        body
    };
    let (_, body) = post(
        &sim,
        &http,
        "client/config",
        config("https://mdm.example/n", None),
    )
    .await;
    assert_eq!(body["errorNumber"], 9710);
    let (_, body) = post(
        &sim,
        &http,
        "client/config",
        config("http://mdm.example/n", Some("t")),
    )
    .await;
    assert_eq!(body["errorNumber"], 9712);
    let long = format!("https://mdm.example/{}", "x".repeat(600));
    let (_, body) = post(&sim, &http, "client/config", config(&long, Some("t"))).await;
    assert_eq!(body["errorNumber"], 9711);

    // A receiver that refuses: 9728, and nothing is stored.
    let refusing = receiver(500).await;
    let (status, body) = post(
        &sim,
        &http,
        "client/config",
        config(&refusing.url, Some("t")),
    )
    .await;
    assert_eq!((status, body["errorNumber"].clone()), (400, json!(9728)));
    assert_eq!(
        wait_for(&refusing, 1).await.len(),
        1,
        "the test notification was tried"
    );
    let (_, stored) = get(&sim, &http, "client/config").await;
    assert!(stored.get("notificationUrl").is_none(), "{stored}");

    // One that accepts gets the TEST_NOTIFICATION with the token, and the config is stored.
    let ok = receiver(200).await;
    let (status, body) = post(
        &sim,
        &http,
        "client/config",
        config(&ok.url, Some("s3cret")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = wait_for(&ok, 1).await;
    assert_eq!(got[0].0, "Bearer s3cret");
    assert_eq!(got[0].1["notificationType"], "TEST_NOTIFICATION");
    assert_eq!(got[0].1["notification"], json!({}));
    assert!(got[0].1["notificationId"].is_string());
    assert!(got[0].1["uId"].is_string());
}

#[tokio::test]
async fn events_are_notified_in_batches_of_100_to_subscribers() {
    let (sim, http) = start().await;
    let ok = receiver(200).await;
    let (status, _) = post(
        &sim,
        &http,
        "client/config",
        json!({"notificationUrl": ok.url, "notificationAuthToken": "tok", "notificationTypes": ["ASSET_MANAGEMENT"]}),
    )
    .await;
    assert_eq!(status, 200);
    let serials: Vec<String> = (0..150).map(|i| format!("SER{i:04}")).collect();
    let (_, event) = post(
        &sim,
        &http,
        "assets/associate",
        json!({"assets": [{"adamId": "361309726", "pricingParam": "STDQ"}], "serialNumbers": serials}),
    )
    .await;
    let event_id = event["eventId"].as_str().unwrap().to_owned();
    // Not subscribed to USER_MANAGEMENT: no notification for this.
    post(
        &sim,
        &http,
        "users/create",
        json!({"users": [{"clientUserId": "quiet", "email": "q@example.com"}]}),
    )
    .await;
    let got = wait_for(&ok, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let got_all = ok.got.lock().unwrap().clone();
    assert_eq!(
        got_all.len(),
        3,
        "test + 2 asset notifications, no user one: {got:?}"
    );
    let assets: Vec<&Value> = got_all
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b["notificationType"] == "ASSET_MANAGEMENT")
        .collect();
    assert_eq!(assets.len(), 2);
    let mut sizes: Vec<usize> = assets
        .iter()
        .map(|b| b["notification"]["assignments"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100]);
    for b in &assets {
        assert_eq!(b["notification"]["eventId"], json!(event_id));
        assert_eq!(b["notification"]["type"], "ASSOCIATE");
        assert_eq!(b["notification"]["result"], "SUCCESS");
    }
    assert_eq!(sim.notifications_delivered()["ASSET_MANAGEMENT"], 2);
}
