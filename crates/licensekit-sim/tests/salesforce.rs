//! The Salesforce simulator answers what simple-salesforce and jsforce send (issue 15): trailing
//! slashes, queryAll, single-record resources, allOrNone, the SOQL forms admin scripts use,
//! versions and limits. Plain HTTP with reqwest, as a client would, not through the adapter.
#![cfg(feature = "salesforce")]

use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};
use serde_json::{Value, json};

const TOKEN: &str = "00DTEST!session";

struct Org {
    sim: SalesforceSim,
    http: reqwest::Client,
}

impl Org {
    async fn start() -> Org {
        // 10 users (user9 inactive), acme with 3 seats, crm_tools held by users 0, 2, 4.
        // acme expires; the other packages have no ExpirationDate (null).
        let mut seed = SalesforceSeed::demo(10, 3);
        seed.packages[0].expiration = Some("2027-01-01".into());
        let sim = SalesforceSim::start(seed, SalesforceSimConfig::default())
            .await
            .unwrap();
        sim.add_token(TOKEN);
        Org {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/services/data/{path}", self.sim.base_url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    /// `…/query/?q=` with the trailing slash simple-salesforce sends.
    async fn query(&self, q: &str) -> Value {
        let (status, body) = self
            .send(self.http.get(self.url("v60.0/query/")).query(&[("q", q)]))
            .await;
        assert_eq!(status, 200, "{q}: {body}");
        body
    }

    async fn query_error(&self, q: &str) -> String {
        let (status, body) = self
            .send(self.http.get(self.url("v60.0/query")).query(&[("q", q)]))
            .await;
        assert_eq!(status, 400, "{q}: {body}");
        body[0]["errorCode"].as_str().unwrap().to_owned()
    }

    async fn ids(&self, q: &str) -> Vec<String> {
        self.query(q).await["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn count(&self, q: &str) -> u64 {
        let body = self.query(q).await;
        assert_eq!(body["records"], json!([]), "COUNT() returns no records");
        body["totalSize"].as_u64().unwrap()
    }

    fn package(&self, ns: &str) -> String {
        self.sim.package_id(ns).unwrap()
    }

    fn user(&self, i: usize) -> String {
        self.sim
            .user_id(&format!("user{i}@example.com.sim"))
            .unwrap()
    }
}

#[tokio::test]
async fn trailing_slash_routes_answer_like_the_bare_ones() {
    let org = Org::start().await;
    let q = "SELECT Id FROM UserPackageLicense";
    let bare = org
        .send(org.http.get(org.url("v60.0/query")).query(&[("q", q)]))
        .await;
    let slashed = org.query(q).await;
    assert_eq!(bare.1["totalSize"], 3);
    assert_eq!(slashed["totalSize"], 3);
}

#[tokio::test]
async fn single_record_create_get_delete_and_describe() {
    let org = Org::start().await;
    let (acme, user) = (org.package("acme"), org.user(1));
    // Create, as simple-salesforce does (trailing slash): 201 {id, success, errors}.
    let (status, body) = org
        .send(
            org.http
                .post(org.url("v60.0/sobjects/UserPackageLicense/"))
                .json(&json!({"UserId": user, "PackageLicenseId": acme})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("051"));
    assert_eq!(org.sim.seats(&acme), Some((3, 1)));

    // Retrieve: every field, with attributes; or the fields asked for.
    let (status, record) = org
        .get(&format!("v60.0/sobjects/UserPackageLicense/{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["UserId"], json!(user));
    assert_eq!(record["PackageLicenseId"], json!(acme));
    assert_eq!(record["IsDeleted"], false);
    assert_eq!(record["attributes"]["type"], "UserPackageLicense");
    let (_, some) = org
        .get(&format!(
            "v60.0/sobjects/UserPackageLicense/{id}?fields=UserId,User.Email"
        ))
        .await;
    assert_eq!(some["User"]["Email"], "user1@example.com");
    assert!(some.get("PackageLicenseId").is_none());
    let (_, pkg) = org
        .get(&format!("v60.0/sobjects/PackageLicense/{acme}"))
        .await;
    assert_eq!(pkg["NamespacePrefix"], "acme");
    assert_eq!(pkg["UsedLicenses"], 1);
    let (_, u) = org.get(&format!("v60.0/sobjects/User/{user}")).await;
    assert_eq!(u["Username"], "user1@example.com.sim");
    let profile = u["ProfileId"].as_str().unwrap().to_owned();
    let (_, p) = org.get(&format!("v60.0/sobjects/Profile/{profile}")).await;
    assert_eq!(p["Name"], "Standard User");

    // A refused create: 400 with the error array; a duplicate pair is refused.
    let (status, body) = org
        .send(
            org.http
                .post(org.url("v60.0/sobjects/UserPackageLicense"))
                .json(&json!({"UserId": user, "PackageLicenseId": acme})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "DUPLICATE_VALUE");
    // PackageLicense is read-only.
    let (status, body) = org
        .send(
            org.http
                .post(org.url("v60.0/sobjects/PackageLicense/"))
                .json(&json!({"NamespacePrefix": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE_FOR_OPERATION");

    // Delete: 204 with no body; again: 404 ENTITY_IS_DELETED.
    let (status, body) = org
        .send(
            org.http
                .delete(org.url(&format!("v60.0/sobjects/UserPackageLicense/{id}"))),
        )
        .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(org.sim.seats(&acme), Some((3, 0)));
    let (status, body) = org
        .send(
            org.http
                .delete(org.url(&format!("v60.0/sobjects/UserPackageLicense/{id}"))),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body[0]["errorCode"], "ENTITY_IS_DELETED");

    // Describe of each object licensekit touches.
    for (object, createable) in [
        ("UserPackageLicense", true),
        ("PackageLicense", false),
        ("User", false),
        ("Profile", false),
    ] {
        let (status, d) = org.get(&format!("v60.0/sobjects/{object}/describe/")).await;
        assert_eq!(status, 200, "{object}");
        assert_eq!(d["name"], object);
        assert_eq!(d["createable"], createable, "{object}");
        let fields: Vec<&str> = d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&"Id"), "{object}");
    }
    let (_, d) = org.get("v60.0/sobjects/UserPackageLicense/describe").await;
    let user_field = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "UserId")
        .unwrap();
    assert_eq!(user_field["referenceTo"], json!(["User"]));
    assert_eq!(user_field["relationshipName"], "User");
}

#[tokio::test]
async fn query_all_returns_deleted_rows_and_query_does_not() {
    let org = Org::start().await;
    let rows = org
        .ids("SELECT Id FROM UserPackageLicense ORDER BY Id")
        .await;
    let (status, _) = org
        .send(
            org.http
                .delete(org.url(&format!("v60.0/sobjects/UserPackageLicense/{}", rows[0]))),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(org.count("SELECT COUNT() FROM UserPackageLicense").await, 2);
    let (status, all) = org
        .send(org.http.get(org.url("v60.0/queryAll/")).query(&[(
            "q",
            "SELECT Id, IsDeleted FROM UserPackageLicense ORDER BY Id",
        )]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(all["totalSize"], 3);
    let deleted: Vec<&Value> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["IsDeleted"] == true)
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["Id"], json!(rows[0]));
}

#[tokio::test]
async fn all_or_none_rolls_back_creates_and_deletes() {
    let org = Org::start().await;
    let (acme, crm) = (org.package("acme"), org.package("crm_tools"));
    // Create: user 9 is inactive, so the whole request is rolled back.
    let (status, body) = org
        .send(org.http.post(org.url("v60.0/composite/sobjects")).json(&json!({
            "allOrNone": true,
            "records": [
                {"attributes": {"type": "UserPackageLicense"}, "UserId": org.user(1), "PackageLicenseId": acme},
                {"attributes": {"type": "UserPackageLicense"}, "UserId": org.user(9), "PackageLicenseId": acme},
            ],
        })))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["success"], false);
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "INACTIVE_OWNER_OR_USER");
    assert_eq!(org.sim.seats(&acme), Some((3, 0)));
    // No trace, not even in queryAll.
    let (_, all) = org
        .send(org.http.get(org.url("v60.0/queryAll")).query(&[(
            "q",
            format!("SELECT Id FROM UserPackageLicense WHERE PackageLicenseId = '{acme}'").as_str(),
        )]))
        .await;
    assert_eq!(all["totalSize"], 0);

    // Delete: one good row and one unknown id; with allOrNone nothing is deleted (P-5).
    let held = org
        .ids(&format!(
            "SELECT Id FROM UserPackageLicense WHERE PackageLicenseId = '{crm}' ORDER BY Id"
        ))
        .await;
    let unknown = "051000000000999AAA";
    let (status, body) = org
        .send(
            org.http
                .delete(org.url("v60.0/composite/sobjects/"))
                .query(&[
                    ("ids", format!("{},{unknown}", held[0]).as_str()),
                    ("allOrNone", "true"),
                ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["success"], false);
    assert_eq!(body[0]["id"], json!(held[0]));
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["success"], false);
    assert_eq!(org.sim.seats(&crm), Some((5, 3)));
    assert_eq!(org.sim.holders_of(&crm).len(), 3);
    let (_, all) = org
        .send(org.http.get(org.url("v60.0/queryAll")).query(&[(
            "q",
            "SELECT Id FROM UserPackageLicense WHERE IsDeleted = true",
        )]))
        .await;
    assert_eq!(
        all["totalSize"], 0,
        "a rolled-back delete leaves nothing deleted"
    );
    // Without allOrNone the good row goes.
    let (_, body) = org
        .send(
            org.http
                .delete(org.url("v60.0/composite/sobjects"))
                .query(&[
                    ("ids", format!("{},{unknown}", held[0]).as_str()),
                    ("allOrNone", "false"),
                ]),
        )
        .await;
    assert_eq!(body[0]["success"], true);
    assert_eq!(org.sim.seats(&crm), Some((5, 2)));
}

#[tokio::test]
async fn counts_semi_joins_like_nulls_and_date_literals() {
    let org = Org::start().await;
    let crm = org.package("crm_tools");
    // COUNT() and COUNT(Id) [alias].
    assert_eq!(org.count("SELECT COUNT() FROM User").await, 10);
    assert_eq!(
        org.count("SELECT COUNT() FROM User WHERE IsActive = false")
            .await,
        1
    );
    let agg = org.query("SELECT COUNT(Id) FROM UserPackageLicense").await;
    assert_eq!(agg["totalSize"], 1);
    assert_eq!(agg["records"][0]["expr0"], 3);
    assert_eq!(agg["records"][0]["attributes"]["type"], "AggregateResult");
    let agg = org
        .query("SELECT COUNT(Id) seats FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'acme'")
        .await;
    assert_eq!(agg["records"][0]["seats"], 0);

    // Semi-join and anti-join: users holding crm_tools, and the others.
    let holders = org
        .ids(&format!(
            "SELECT Id FROM User WHERE Id IN (SELECT UserId FROM UserPackageLicense WHERE PackageLicenseId = '{crm}') ORDER BY Username"
        ))
        .await;
    assert_eq!(holders, [org.user(0), org.user(2), org.user(4)]);
    assert_eq!(
        org.count(&format!(
            "SELECT COUNT() FROM User WHERE Id NOT IN (SELECT UserId FROM UserPackageLicense WHERE PackageLicenseId = '{crm}')"
        ))
        .await,
        7
    );

    // LIKE: wildcards, case-insensitive; NOT.
    assert_eq!(
        org.count("SELECT COUNT() FROM User WHERE Email LIKE 'USER1%'")
            .await,
        1
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM User WHERE Username LIKE 'user_@%.sim'")
            .await,
        10
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM User WHERE NOT Profile.Name LIKE 'sales%'")
            .await,
        5
    );

    // NULLS FIRST (the default) / LAST: only acme has an ExpirationDate.
    let names = |body: Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["NamespacePrefix"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = org
        .query("SELECT NamespacePrefix FROM PackageLicense ORDER BY ExpirationDate NULLS FIRST, NamespacePrefix DESC")
        .await;
    assert_eq!(names(first), ["sitewide", "crm_tools", "acme"]);
    let cased = org
        .query(
            "SELECT NamespacePrefix FROM PackageLicense ORDER BY NamespacePrefix DESC NULLS LAST",
        )
        .await;
    assert_eq!(names(cased), ["sitewide", "crm_tools", "acme"]);

    // Date literals and datetimes: seeded packages were created 2026-01-05; seats just now.
    assert_eq!(
        org.count("SELECT COUNT() FROM PackageLicense WHERE CreatedDate < 2026-01-06T00:00:00Z")
            .await,
        3
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM PackageLicense WHERE CreatedDate = 2026-01-05")
            .await,
        3
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM PackageLicense WHERE CreatedDate > 2026-01-05")
            .await,
        0
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM UserPackageLicense WHERE CreatedDate = LAST_N_DAYS:1")
            .await,
        3
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM UserPackageLicense WHERE CreatedDate = TODAY")
            .await,
        3
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM UserPackageLicense WHERE CreatedDate < YESTERDAY")
            .await,
        0
    );
    assert_eq!(
        org.count("SELECT COUNT() FROM User WHERE LastLoginDate = LAST_N_DAYS:30")
            .await,
        0
    );
    assert_eq!(
        org.query_error("SELECT Id FROM User WHERE Email = TODAY")
            .await,
        "INVALID_FIELD"
    );
    assert_eq!(
        org.query_error("SELECT Id FROM User WHERE IsActive LIKE 'x'")
            .await,
        "INVALID_QUERY_FILTER_OPERATOR"
    );
}

#[tokio::test]
async fn versions_limits_and_old_api_versions() {
    let org = Org::start().await;
    // The list needs no session (trailing slash or not).
    for path in ["/services/data", "/services/data/"] {
        let list: Value = reqwest::get(format!("{}{path}", org.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.first().unwrap()["version"], "31.0");
        assert!(list.contains(
            &json!({"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"})
        ));
        assert!(list.contains(
            &json!({"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"})
        ));
    }
    let (status, limits) = org.get("v60.0/limits/").await;
    assert_eq!(status, 200);
    assert_eq!(limits["DailyApiRequests"]["Max"], 100_000);
    assert!(limits["DailyApiRequests"]["Remaining"].as_u64().unwrap() < 100_000);

    // 31.0 and up serve queries; 30.0 is retired (410); collections need 42.0.
    for v in ["v31.0", "v41.0", "v42.0", "v67.0"] {
        let (status, _) = org
            .send(
                org.http
                    .get(org.url(&format!("{v}/query")))
                    .query(&[("q", "SELECT Id FROM User LIMIT 1")]),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, body) = org
        .send(
            org.http
                .get(org.url("v30.0/query"))
                .query(&[("q", "SELECT Id FROM User")]),
        )
        .await;
    assert_eq!(status, 410, "{body}");
    let (status, _) = org
        .send(
            org.http
                .delete(org.url("v41.0/composite/sobjects"))
                .query(&[("ids", "051000000000001AAA")]),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn collections_retrieve_answers_in_id_order_with_nulls() {
    let org = Org::start().await;
    let (acme, crm) = (org.package("acme"), org.package("crm_tools"));
    let (status, body) = org
        .get(&format!(
            "v60.0/composite/sobjects/PackageLicense?ids={crm},050000000000999AAA,{acme}&fields=NamespacePrefix,UsedLicenses"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["NamespacePrefix"], "crm_tools");
    assert_eq!(body[0]["UsedLicenses"], 3);
    assert_eq!(body[1], Value::Null);
    assert_eq!(body[2]["NamespacePrefix"], "acme");
    let (status, _) = org
        .get(&format!(
            "v60.0/composite/sobjects/PackageLicense?ids={acme}"
        ))
        .await;
    assert_eq!(status, 400, "fields are required");
}
