//! The Genesys simulator answers as the official SDKs expect (issue 15): Users API listings
//! linked by `nextUri` & co. with the required `User.version`, waits rounded up, and the
//! response's correlation id in every error body. Plain HTTP, as an SDK would send it.
#![cfg(feature = "genesys")]

use std::time::Duration;

use licensekit_sim::faults::{Fault, Faults};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser};
use serde_json::Value;

async fn start(users: usize, config: GenesysSimConfig) -> (GenesysSim, reqwest::Client, String) {
    let mut seed = GenesysSeed::demo(0);
    for i in 0..users {
        let id = licensekit_sim::genesys::user_id(i);
        seed.users.push((id.clone(), vec![]));
        seed.directory.push(SimDirectoryUser {
            id,
            name: format!("User {i}"),
            email: format!("user{i}@example.com"),
            state: "active".into(),
            date_last_login: None,
        });
    }
    let sim = GenesysSim::start(seed, config).await.unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth("sim-client", Some("sim-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    (sim, http, token)
}

#[tokio::test]
async fn users_listing_is_linked_page_to_page_and_users_have_a_version() {
    let (sim, http, token) = start(50, GenesysSimConfig::default()).await;
    // An SDK-style loop: follow nextUri until there is none.
    let mut uri = "/api/v2/users".to_owned();
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page: Value = http
            .get(format!("{}{uri}", sim.base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for user in page["entities"].as_array().unwrap() {
            assert_eq!(user["version"], 1, "{user}");
            seen.push(user["id"].as_str().unwrap().to_owned());
        }
        pages.push(page.clone());
        match page["nextUri"].as_str() {
            Some(next) => uri = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 50);
    assert_eq!(pages.len(), 2);
    let (first, last) = (&pages[0], &pages[1]);
    assert_eq!(first["selfUri"], "/api/v2/users?pageSize=25&pageNumber=1");
    assert_eq!(first["firstUri"], "/api/v2/users?pageSize=25&pageNumber=1");
    assert_eq!(first["lastUri"], "/api/v2/users?pageSize=25&pageNumber=2");
    assert_eq!(first["nextUri"], "/api/v2/users?pageSize=25&pageNumber=2");
    assert!(first.get("previousUri").is_none());
    assert_eq!(
        last["previousUri"],
        "/api/v2/users?pageSize=25&pageNumber=1"
    );
    assert!(last.get("nextUri").is_none());
    // The state filter is carried along.
    let page: Value = http
        .get(format!(
            "{}/api/v2/users?state=active&pageSize=10",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["nextUri"],
        "/api/v2/users?pageSize=10&pageNumber=2&state=active"
    );
}

#[tokio::test]
async fn rate_limit_waits_are_rounded_up() {
    let config = GenesysSimConfig {
        rate_limit_per_minute: Some(2),
        rate_limit_window: Duration::from_millis(1500),
        ..GenesysSimConfig::default()
    };
    let (sim, http, token) = start(1, config).await;
    let url = format!("{}/api/v2/license/definitions", sim.base_url());
    let ok = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // 1.5 s left in the window: 2, not 1.
    assert_eq!(ok.headers()["inin-ratelimit-reset"], "2");
    let _ = http.get(&url).bearer_auth(&token).send().await.unwrap();
    let refused = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "2");
    // Waiting exactly as told is enough.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn every_fault_body_carries_the_responses_correlation_id() {
    let (sim, http, token) = start(1, GenesysSimConfig::default()).await;
    sim.set_faults(Some(Faults::new(
        7,
        1.0,
        &[
            Fault::ThrottleSeconds,
            Fault::ThrottleHttpDate,
            Fault::ServerError,
            Fault::Unavailable,
            Fault::TokenExpired,
        ],
    )));
    let mut statuses = std::collections::BTreeSet::new();
    for page in 1..=40 {
        let response = http
            .get(format!(
                "{}/api/v2/license/users?pageNumber={page}",
                sim.base_url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        statuses.insert(status);
        let correlation = response.headers()["inin-correlation-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["contextId"], correlation, "{body}");
        assert_eq!(body["status"], status);
        if status == 429 {
            // Whole seconds only, as Genesys documents; never an HTTP-date.
            let seconds: u64 = retry_after.unwrap().parse().unwrap();
            assert!((1..=2).contains(&seconds));
        }
    }
    assert!(statuses.len() >= 4, "{statuses:?}");
}
