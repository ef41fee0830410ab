//! The JSON API and the status page against a running daemon watching a real
//! nats-server: every endpoint, bad paths and parameters, the bearer token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use common::{Daemon, Nats};
use serde_json::Value;

const TOKEN: &str = "t0ken-for-the-tests";

async fn setup(nats: &Nats) {
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    for (name, consumers) in [
        ("ORDERS", &["billing", "shipping"][..]),
        ("AUDIT", &["billing"][..]),
    ] {
        let s = js
            .create_stream(stream::Config {
                name: name.into(),
                subjects: vec![format!("{name}.>")],
                ..Default::default()
            })
            .await
            .unwrap();
        for c in consumers {
            s.create_consumer(consumer::pull::Config {
                durable_name: Some((*c).into()),
                ..Default::default()
            })
            .await
            .unwrap();
        }
    }
    for i in 0..5 {
        js.publish(format!("ORDERS.e{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn start(nats: &Nats, token: bool) -> Daemon {
    let auth = if token {
        format!("  api_token: \"{TOKEN}\"\n")
    } else {
        String::new()
    };
    let d = Daemon::start(&format!(
        "http:\n  listen: 127.0.0.1:0\n{auth}poll_interval: 1s\nsources:\n  - name: js\n    jetstream:\n      servers: [\"{}\"]\n",
        nats.url()
    ));
    d.wait_metric(
        r#"lagwatch_group_lag_messages{source="js",system="jetstream",group="billing",topic="ORDERS"}"#,
        "5",
        Duration::from_secs(10),
    );
    d
}

async fn get(d: &Daemon, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("http://{}{path}", d.addr));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/json"),
        "{path}: content-type {ct}"
    );
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn every_endpoint_answers_json_and_bad_requests_get_a_message() {
    let nats = Nats::start();
    setup(&nats).await;
    let d = start(&nats, false);

    let (st, v) = get(&d, "/api/v1/sources", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["sources"][0]["name"], "js");
    assert_eq!(v["sources"][0]["system"], "jetstream");
    assert_eq!(v["sources"][0]["up"], true);
    assert_eq!(v["sources"][0]["groups"], 3);

    let (st, v) = get(&d, "/api/v1/groups?sort=lag", None).await;
    assert_eq!(st, 200);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0]["lag"], 5, "sorted by lag, largest first: {v}");
    assert!(!groups[0]["trend"].as_array().unwrap().is_empty());
    assert_eq!(groups[2]["lag"], 0);
    assert_eq!(groups[2]["stream"], "AUDIT");

    let (_, v) = get(&d, "/api/v1/groups?sort=name&limit=1", None).await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    let (_, v) = get(&d, "/api/v1/groups?system=kafka", None).await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 0);
    let (_, v) = get(&d, "/api/v1/groups?status=ok&source=js", None).await;
    for g in v["groups"].as_array().unwrap() {
        assert_eq!(g["status"], "OK");
    }

    let (st, v) = get(&d, "/api/v1/groups/js/shipping", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["group"]["stream"], "ORDERS");
    assert_eq!(v["partitions"][0]["lag"], 5);
    assert_eq!(v["partitions"][0]["jetstream"]["num_pending"], 5);

    // `billing` exists in two streams: the API says so and how to choose.
    let (st, v) = get(&d, "/api/v1/groups/js/billing", None).await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("?stream="), "{v}");
    let (st, v) = get(&d, "/api/v1/groups/js/billing?stream=AUDIT", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["group"]["lag"], 0);

    for (path, status, needle) in [
        ("/api/v1/groups/js/nope", 404, "has no group `nope`"),
        ("/api/v1/groups/nope/billing", 404, "no source named `nope`"),
        ("/api/v1/groups?source=nope", 404, "no source named `nope`"),
        (
            "/api/v1/groups?sort=size",
            400,
            "sort: unknown variant `size`, expected one of `lag_seconds`",
        ),
        (
            "/api/v1/groups?order=up",
            400,
            "order: unknown variant `up`",
        ),
        ("/api/v1/groups?status=BAD", 400, "unknown status `BAD`"),
        (
            "/api/v1/groups?system=rabbit",
            400,
            "system: unknown variant `rabbit`, expected `kafka` or `jetstream`",
        ),
        ("/api/v1/groups?limit=-3", 400, "bad query"),
        ("/api/v1/groups?colour=red", 400, "bad query"),
        ("/api/v1/nothing", 404, "no such API path"),
        ("/api/v2/groups", 404, "no such API path"),
    ] {
        let (st, v) = get(&d, path, None).await;
        assert_eq!(st, status, "{path}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{path}: `{msg}` lacks `{needle}`");
    }
}

#[tokio::test]
async fn the_api_requires_the_token_when_set_but_metrics_and_health_stay_open() {
    let nats = Nats::start();
    setup(&nats).await;
    let d = start(&nats, true);
    let (st, v) = get(&d, "/api/v1/groups", None).await;
    assert_eq!(st, 401, "{v}");
    let (st, _) = get(&d, "/api/v1/groups", Some("wrong-token-xx")).await;
    assert_eq!(st, 401);
    let (st, _) = get(&d, "/api/v1/groups", Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert_eq!(d.get("/metrics").0, 200);
    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.get("/readyz").0, 200);
    let (st, page) = d.get("/");
    assert_eq!(st, 200);
    assert!(page.contains("<title>lagwatch</title>"));
    // Script and style are lagwatch's own files (no CDN), served without the
    // token like the page, and never inline (the CSP forbids inline script).
    assert!(
        page.contains("<script src=\"page.js\">") && !page.contains("<script>"),
        "{page}"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from elsewhere"
    );
    for asset in ["/page.js", "/page.css"] {
        assert_eq!(d.get(asset).0, 200, "{asset}");
    }
}

/// Every key the API returns is documented in docs/openapi.yaml, and every
/// required key of the document is returned.
#[tokio::test]
async fn responses_match_the_openapi_document() {
    let doc: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
            .unwrap(),
    )
    .unwrap();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let check = |name: &str, obj: &Value| {
        let s = schema(name);
        let props = s["properties"].as_mapping().unwrap();
        for k in obj.as_object().unwrap().keys() {
            assert!(
                props.contains_key(serde_yaml::Value::from(k.as_str())),
                "{name}.{k} is returned but not documented"
            );
        }
        for r in s["required"].as_sequence().unwrap() {
            assert!(
                obj.get(r.as_str().unwrap()).is_some(),
                "{name}.{r:?} is documented as required but missing"
            );
        }
    };
    for path in [
        "/api/v1/sources",
        "/api/v1/groups",
        "/api/v1/groups/{source}/{group}",
        "/api/v1/dead_letters",
        "/api/v1/dead_letter_queues",
    ] {
        assert!(
            doc["paths"][path]["get"].is_mapping(),
            "{path} is not in the OpenAPI document"
        );
    }
    let nats = Nats::start();
    setup(&nats).await;
    let d = start(&nats, false);
    let (_, v) = get(&d, "/api/v1/sources", None).await;
    check("Source", &v["sources"][0]);
    let (_, v) = get(&d, "/api/v1/groups/js/shipping", None).await;
    check("Group", &v["group"]);
    check("Partition", &v["partitions"][0]);
    check("Recommendation", &v["group"]["recommendation"]);
    check("TimeLag", &v["group"]["lag_seconds"]);
    let (_, v) = get(&d, "/api/v1/groups?sort=bogus", None).await;
    check("Error", &v);
    let (status, v) = get(&d, "/api/v1/dead_letters", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["dead_letters"], serde_json::json!([]));
    // Dead letters: the consumer's (JetStream advisories, none yet) and the
    // queue list, as documented.
    let (_, v) = get(&d, "/api/v1/groups/js/shipping", None).await;
    check("GroupDeadLetters", &v["group"]["dead_letters"]);
    let (status, v) = get(&d, "/api/v1/dead_letter_queues", None).await;
    assert_eq!(status, 200);
    let queue = v["dead_letter_queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["group"] == "shipping")
        .unwrap_or_else(|| panic!("no advisory count for shipping: {v}"));
    check("DeadLetterQueue", queue);
    assert_eq!(queue["total"], 0, "{queue}");
}
