//! Every route of the management API and every error status, through the real router.
//! Scenarios that persist run over the in-memory store and over DynamoDB/SQS on moto.

use herald_shared::secret::Secret;
use herald_shared::signing;
use herald_tests::port::free_port;
use herald_tests::receiver::Receiver;
use herald_tests::stack::{Stack, KEY, TENANT};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN: &str = "admin-key-for-tests-0123456789";

fn admin(config: &mut herald_shared::Config) {
    config.admin_key = Some(Secret::new(ADMIN));
}

/// An RFC 9457 answer with the given status.
#[track_caller]
fn assert_problem(answer: &(StatusCode, HeaderMap, Value), status: u16) {
    let (code, headers, body) = answer;
    assert_eq!(code.as_u16(), status, "{body}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem without {member}: {body}");
    }
}

/// Follows `next_cursor` from `first` to the end; returns every item and the number of pages.
async fn walk(stack: &Stack, first: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut path) = (Vec::new(), 0, first.to_string());
    loop {
        let (status, _, page) = stack.call("GET", &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{first}&cursor={cursor}"),
            None => return (items, pages),
        }
    }
}

/// The fields a 422 names.
/// A tenant made with the admin key: its id and first key.
async fn new_tenant(stack: &Stack, name: &str) -> Value {
    let (status, _, tenant) = stack
        .call(
            "POST",
            "/v1/tenants",
            Some(json!({ "name": name })),
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    tenant
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

async fn webhook_lifecycle(stack: Stack) {
    let (status, headers, created) = stack
        .call("POST", "/v1/webhooks", Some(json!({
            "url": "http://127.0.0.1:9/a", "events": ["experiments.done"], "name": "ml",
            "filters": {"project_names": ["prod-*"]},
            "headers": [{"key": "Authorization", "value": "Token 123", "protected": true}, {"key": "X-Team", "value": "ml"}]
        })), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(headers["location"], format!("/v1/webhooks/{id}"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let path = format!("/v1/webhooks/{id}");

    let (status, _, got) = stack.call("GET", &path, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "the secret is only in the create answer"
    );
    assert_eq!(
        got["headers"],
        json!([{"key": "Authorization", "value": null, "protected": true}, {"key": "X-Team", "value": "ml", "protected": false}])
    );
    assert_eq!(got["enabled"], true);
    assert_eq!(got["disabled_reason"], Value::Null);

    // PUT replaces; the protected header named without a value keeps its stored value.
    let secrets_before = stack
        .store
        .get_webhook(TENANT, &id)
        .await
        .unwrap()
        .unwrap()
        .secrets;
    let (status, _, put) = stack
        .call(
            "PUT",
            &path,
            Some(json!({"url": "http://127.0.0.1:9/b", "events": ["jobs.*"],
            "headers": [{"key": "Authorization", "protected": true}]})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(
        (
            put["name"].as_str(),
            put["events"].clone(),
            put["filters"].clone()
        ),
        (Some("127.0.0.1"), json!(["jobs.*"]), json!({}))
    );
    let stored = stack.store.get_webhook(TENANT, &id).await.unwrap().unwrap();
    assert_eq!(stored.spec.headers.len(), 1);
    assert_eq!(stored.spec.headers[0].value.expose(), "Token 123");
    assert_eq!(stored.secrets, secrets_before, "secrets survive updates");

    // PATCH merges.
    let (status, _, patched) = stack
        .call(
            "PATCH",
            &path,
            Some(json!({"enabled": false, "filters": {"environment_types": ["PRODUCTION"]}})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["enabled"], false);
    assert_eq!(
        patched["filters"],
        json!({"environment_types": ["PRODUCTION"]})
    );
    assert_eq!(
        patched["events"],
        json!(["jobs.*"]),
        "fields not in the patch stay"
    );
    assert!(
        stack
            .store
            .subscribed_webhooks(TENANT)
            .await
            .unwrap()
            .iter()
            .all(|w| !w.spec.enabled),
        "the webhook is disabled for dispatch too"
    );

    let mut auto_disabled = stack.store.get_webhook(TENANT, &id).await.unwrap().unwrap();
    auto_disabled.disabled_reason = Some("410 Gone".into());
    stack.store.update_webhook(&auto_disabled).await.unwrap();
    let (_, _, on) = stack
        .call("PATCH", &path, Some(json!({"enabled": true})), None)
        .await;
    assert_eq!(
        (on["enabled"].clone(), on["disabled_reason"].clone()),
        (json!(true), Value::Null)
    );

    let answer = stack
        .call("PATCH", &path, Some(json!({"events": ["nope"]})), None)
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["events[0]"]);
    assert_problem(
        &stack.call("PATCH", &path, Some(json!([1, 2])), None).await,
        400,
    );
    assert_problem(
        &stack
            .call("PUT", &path, Some(json!({"events": ["*"]})), None)
            .await,
        422,
    );

    // Listing pages with an opaque cursor.
    let mut ids = vec![id.clone()];
    for i in 0..2 {
        ids.push(
            stack
                .create_webhook(json!({"url": format!("http://127.0.0.1:9/{i}"), "events": ["*"]}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (listed, pages) = walk(&stack, "/v1/webhooks?limit=2").await;
    let listed: Vec<&str> = listed.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    assert_eq!(pages, 2);
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks?limit=500", None, None)
            .await,
        422,
    );
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks?cursor=bm9wZQ", None, None)
            .await,
        422,
    );

    let (status, _, body) = stack.call("DELETE", &path, None, None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_problem(&stack.call("GET", &path, None, None).await, 404);
    assert_problem(&stack.call("DELETE", &path, None, None).await, 404);
}

async fn deliveries_and_redelivery(stack: Stack) {
    let rx = Receiver::start(500).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["jobs.*"]}))
        .await;
    let wh = webhook["id"].as_str().unwrap();
    stack
        .post_event(json!({"id": "evt-1", "type": "jobs.failed"}))
        .await;
    assert!(stack.drain().await.is_empty());

    let (status, _, log) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = &log["data"][0];
    assert_eq!(
        (listed["status"].as_str(), listed["event_id"].as_str()),
        (Some("failed"), Some("evt-1"))
    );
    assert!(listed.get("tenant_id").is_none());
    let dl = listed["id"].as_str().unwrap().to_string();
    let (status, _, one) = stack
        .call("GET", &format!("/v1/deliveries/{dl}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["attempts"][0]["status_code"], 500);
    assert_eq!(one["attempts"][0]["response_body"], "receiver says hi");
    assert_eq!(one["next_attempt_at"], Value::Null);

    // Redelivery: a new attempt on the same delivery, to the receiver that now works.
    rx.set_status(200);
    let (status, _, queued) = stack
        .call(
            "POST",
            &format!("/v1/deliveries/{dl}/redeliver"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "pending");
    assert!(stack.drain().await.is_empty());
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "same message id on redelivery"
    );
    assert_eq!(got[0].body, got[1].body);
    let (_, _, after) = stack
        .call("GET", &format!("/v1/deliveries/{dl}"), None, None)
        .await;
    assert_eq!(after["status"], "succeeded");
    let codes: Vec<_> = after["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(200)]);

    // The log pages newest first.
    for i in 2..5 {
        stack
            .post_event(json!({"id": format!("evt-{i}"), "type": "jobs.started"}))
            .await;
    }
    assert!(stack.drain().await.is_empty());
    let (log, pages) = walk(&stack, &format!("/v1/webhooks/{wh}/deliveries?limit=3")).await;
    let events: Vec<&str> = log
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!((events.len(), pages), (4, 2));
    assert_eq!(events[3], "evt-1", "oldest last");

    // Redelivery needs an enabled, existing webhook.
    stack
        .call(
            "PATCH",
            &format!("/v1/webhooks/{wh}"),
            Some(json!({"enabled": false})),
            None,
        )
        .await;
    assert_problem(
        &stack
            .call(
                "POST",
                &format!("/v1/deliveries/{dl}/redeliver"),
                None,
                None,
            )
            .await,
        409,
    );
    stack
        .call("DELETE", &format!("/v1/webhooks/{wh}"), None, None)
        .await;
    assert_problem(
        &stack
            .call(
                "POST",
                &format!("/v1/deliveries/{dl}/redeliver"),
                None,
                None,
            )
            .await,
        409,
    );
    assert_problem(
        &stack
            .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
            .await,
        404,
    );
    assert_problem(
        &stack
            .call("GET", "/v1/deliveries/dl_missing", None, None)
            .await,
        404,
    );
    assert_problem(
        &stack
            .call("POST", "/v1/deliveries/dl_missing/redeliver", None, None)
            .await,
        404,
    );
}

async fn secrets_and_rotation(stack: Stack) {
    let rx = Receiver::start(204).await;
    let created = stack
        .create_webhook(json!({"url": rx.url, "events": ["builds.*"]}))
        .await;
    let wh = created["id"].as_str().unwrap();
    let (status, _, secret) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/secret"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(secret["secret"], created["secret"]);
    let (status, _, rotated) = stack
        .call(
            "POST",
            &format!("/v1/webhooks/{wh}/secret/rotate"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["secret"], created["secret"]);
    let (_, _, now) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/secret"), None, None)
        .await;
    assert_eq!(now["secret"], rotated["secret"]);

    stack.post_event(json!({"type": "builds.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let req = &rx.wait_for(1).await[0];
    let signature = req.header("webhook-signature");
    assert_eq!(
        signature.split(' ').count(),
        2,
        "old and new secret both sign during the overlap"
    );
    let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
    for s in [&created["secret"], &rotated["secret"]] {
        signing::verify(
            &Secret::new(s.as_str().unwrap()),
            req.header("webhook-id"),
            ts,
            signature,
            &req.body,
            ts,
            0,
        )
        .unwrap();
    }
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks/wh_missing/secret", None, None)
            .await,
        404,
    );
    assert_problem(
        &stack
            .call("POST", "/v1/webhooks/wh_missing/secret/rotate", None, None)
            .await,
        404,
    );
}

async fn tenants_and_keys(stack: Stack) {
    assert_problem(
        &stack
            .call(
                "POST",
                "/v1/tenants",
                Some(json!({"name": "Acme"})),
                Some("wrong"),
            )
            .await,
        401,
    );
    assert_problem(
        &stack
            .call(
                "POST",
                "/v1/tenants",
                Some(json!({"name": "Acme"})),
                Some(KEY),
            )
            .await,
        401,
    );
    assert_problem(
        &stack
            .call(
                "POST",
                "/v1/tenants",
                Some(json!({"name": ""})),
                Some(ADMIN),
            )
            .await,
        422,
    );
    let (status, _, tenant) = stack
        .call(
            "POST",
            "/v1/tenants",
            Some(json!({"name": "Acme"})),
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    assert_eq!(tenant["name"], "Acme");
    let first = tenant["key"].as_str().unwrap();
    let (status, _, list) = stack.call("GET", "/v1/webhooks", None, Some(first)).await;
    assert_eq!(
        (status, list["data"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );

    let (status, _, second) = stack.call("POST", "/v1/keys", None, Some(first)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (second_id, second_key) = (
        second["id"].as_str().unwrap(),
        second["key"].as_str().unwrap(),
    );
    assert_eq!(
        stack
            .call("GET", "/v1/webhooks", None, Some(second_key))
            .await
            .0,
        StatusCode::OK
    );
    assert_problem(
        &stack
            .call("DELETE", &format!("/v1/keys/{second_id}"), None, None)
            .await,
        404,
    );
    let (status, _, _) = stack
        .call(
            "DELETE",
            &format!("/v1/keys/{second_id}"),
            None,
            Some(first),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks", None, Some(second_key))
            .await,
        401,
    );
    assert_eq!(
        stack.call("GET", "/v1/webhooks", None, Some(first)).await.0,
        StatusCode::OK
    );
}

/// Tenant B can neither read, change, test, delete nor see deliveries of tenant A's webhooks.
async fn tenant_isolation(stack: Stack) {
    let rx = Receiver::start(200).await;
    let a = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"], "name": "tenant-a"}))
        .await;
    let wh = a["id"].as_str().unwrap();
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, log) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
        .await;
    let dl = log["data"][0]["id"].as_str().unwrap();

    let b = new_tenant(&stack, "B").await;
    let b_key = b["key"].as_str().unwrap();
    let body = json!({"url": rx.url, "events": ["*"]});
    for (method, path, body) in routes_with_ids(wh, dl, &body) {
        let answer = stack.call(method, &path, body, Some(b_key)).await;
        assert_eq!(
            answer.0,
            StatusCode::NOT_FOUND,
            "{method} {path} as tenant B: {}",
            answer.2
        );
    }
    let (_, _, b_list) = stack.call("GET", "/v1/webhooks", None, Some(b_key)).await;
    assert_eq!(b_list["data"], json!([]));
    let (_, _, still) = stack
        .call("GET", &format!("/v1/webhooks/{wh}"), None, None)
        .await;
    assert_eq!(
        (still["name"].as_str(), still["enabled"].as_bool()),
        (Some("tenant-a"), Some(true))
    );
    assert_eq!(
        rx.requests().len(),
        1,
        "B's test send did not reach A's receiver"
    );
    let (_, _, secret) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/secret"), None, None)
        .await;
    assert_eq!(secret["secret"], a["secret"], "B's rotate did not happen");
}

/// Secrets a user brings (as `herald apply` does) and metadata labels.
async fn brought_secrets_and_metadata(stack: Stack) {
    let first = "whsec_".to_string() + &"A".repeat(32);
    let second = "whsec_".to_string() + &"B".repeat(40);
    let rx = Receiver::start(204).await;
    let created = stack
        .create_webhook(
            json!({"url": rx.url, "events": ["builds.*"], "secret": first,
            "metadata": {"managed-by": "herald-apply", "team": "ml"}}),
        )
        .await;
    let wh = created["id"].as_str().unwrap();
    assert_eq!(created["secret"], first.as_str());
    assert_eq!(
        created["metadata"],
        json!({"managed-by": "herald-apply", "team": "ml"})
    );
    let path = format!("/v1/webhooks/{wh}");
    let (_, _, got) = stack.call("GET", &path, None, None).await;
    assert_eq!(got["metadata"]["team"], "ml");
    assert!(got.get("secret").is_none(), "{got}");

    // The same secret again changes nothing; a new one signs beside the old for the overlap.
    let body = json!({"url": rx.url, "events": ["builds.*"], "secret": first});
    let (status, _, put) = stack.call("PUT", &path, Some(body), None).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["metadata"], json!({}), "PUT replaces metadata too");
    assert!(put.get("secret").is_none(), "{put}");
    stack.post_event(json!({"type": "builds.failed"})).await;
    assert!(stack.drain().await.is_empty());
    assert_eq!(
        rx.wait_for(1).await[0]
            .header("webhook-signature")
            .split(' ')
            .count(),
        1
    );
    let (status, _, patched) = stack
        .call(
            "PATCH",
            &path,
            Some(json!({"secret": second, "metadata": {"team": "infra"}})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"], json!({"team": "infra"}));
    let (_, _, current) = stack
        .call("GET", &format!("{path}/secret"), None, None)
        .await;
    assert_eq!(current["secret"], second.as_str());
    stack.post_event(json!({"type": "builds.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let req = &rx.wait_for(2).await[1];
    let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
    for s in [&first, &second] {
        signing::verify(
            &Secret::new(s.as_str()),
            req.header("webhook-id"),
            ts,
            req.header("webhook-signature"),
            &req.body,
            ts,
            0,
        )
        .unwrap();
    }

    for (body, field) in [
        (json!({"secret": "whsec_c2hvcnQ="}), "secret"),
        (
            json!({"secret": first.trim_start_matches("whsec_")}),
            "secret",
        ),
        (json!({"secret": 7}), "secret"),
        (json!({"metadata": ["a"]}), "metadata"),
        (json!({"metadata": {"a": 1}}), "metadata.a"),
        (json!({"metadata": {"k": "v".repeat(257)}}), "metadata.k"),
    ] {
        let mut create = json!({"url": rx.url, "events": ["builds.*"]});
        create
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let answer = stack.call("POST", "/v1/webhooks", Some(create), None).await;
        assert_problem(&answer, 422);
        assert_eq!(fields(&answer.2), vec![field.to_string()], "{}", answer.2);
    }
}

/// Every route that takes a webhook or delivery id, with a body where it needs one (`put` for
/// PUT).
fn routes_with_ids(wh: &str, dl: &str, put: &Value) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", format!("/v1/webhooks/{wh}"), None),
        ("PUT", format!("/v1/webhooks/{wh}"), Some(put.clone())),
        (
            "PATCH",
            format!("/v1/webhooks/{wh}"),
            Some(json!({"enabled": false})),
        ),
        ("GET", format!("/v1/webhooks/{wh}/secret"), None),
        ("POST", format!("/v1/webhooks/{wh}/secret/rotate"), None),
        ("POST", format!("/v1/webhooks/{wh}/test"), None),
        ("GET", format!("/v1/webhooks/{wh}/deliveries"), None),
        ("GET", format!("/v1/deliveries/{dl}"), None),
        ("POST", format!("/v1/deliveries/{dl}/redeliver"), None),
        (
            "POST",
            format!("/v1/webhooks/{wh}/recover"),
            Some(json!({"since": "2026-12-01T00:00:00Z"})),
        ),
        ("DELETE", format!("/v1/webhooks/{wh}"), None),
    ]
}

/// A recovery's window and status are validated, each refusal naming its field, before any
/// job exists; a disabled webhook's recovery is a 409 saying how to enable it; a job is
/// readable by its id by its own tenant only.
async fn recovery_requests_are_validated_and_scoped(stack: Stack) {
    let rx = Receiver::start(200).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let wh = webhook["id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{wh}/recover");
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (
            json!({"since": "2026-12-01T00:00:00Z", "status": "lost"}),
            "status",
        ),
        (
            json!({"since": "2026-12-01T00:00:00Z", "until": "2026-11-30T00:00:00Z"}),
            "until",
        ),
        (
            json!({"since": "2026-12-01T00:00:00Z", "webhook": "x"}),
            "webhook",
        ),
    ] {
        let (status, _, problem) = stack.call("POST", &path, Some(body.clone()), None).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (_, _, lost) = stack
        .call(
            "POST",
            &path,
            Some(json!({"since": "2026-12-01T00:00:00Z", "status": "lost"})),
            None,
        )
        .await;
    assert!(lost["errors"][0]["valid"]
        .as_array()
        .unwrap()
        .contains(&json!("held")));
    let (status, _, _) = stack
        .call(
            "POST",
            "/v1/webhooks/wh_none/recover",
            Some(json!({"since": "2026-12-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, job) = stack
        .call(
            "POST",
            &path,
            Some(json!({"since": "2026-12-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(
        (&job["state"], &job["scanned"]),
        (&json!("done"), &json!(0))
    );
    let job_path = format!("/v1/recoveries/{}", job["id"].as_str().unwrap());
    let (status, _, read) = stack.call("GET", &job_path, None, None).await;
    assert_eq!((status, &read["id"]), (StatusCode::OK, &job["id"]));
    let b = new_tenant(&stack, "B").await;
    let (status, _, _) = stack
        .call("GET", &job_path, None, Some(b["key"].as_str().unwrap()))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's job is not found"
    );
    stack
        .call(
            "PATCH",
            &format!("/v1/webhooks/{wh}"),
            Some(json!({"enabled": false})),
            None,
        )
        .await;
    let (status, _, problem) = stack
        .call(
            "POST",
            &path,
            Some(json!({"since": "2026-12-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        problem["detail"].as_str().unwrap().contains("recover"),
        "{problem}"
    );
}

/// Deleting a webhook leaves its delivery log (what SECURITY.md and the console say): each
/// entry stays readable by its id until it expires; the webhook's listing is gone with it.
async fn a_deleted_webhooks_log_stays_readable_by_id_until_it_expires(stack: Stack) {
    let rx = Receiver::start(200).await;
    let webhook = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await;
    let wh = webhook["id"].as_str().unwrap();
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, log) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
        .await;
    let dl = log["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _, _) = stack
        .call("DELETE", &format!("/v1/webhooks/{wh}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        &stack
            .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
            .await,
        404,
    );
    let (status, _, one) = stack
        .call("GET", &format!("/v1/deliveries/{dl}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["webhook_id"], wh);
}

/// An id longer than any Herald makes names nothing: 404 on every route that takes one, on
/// moto too, where DynamoDB would refuse the key (a 4xx either way, never a retryable 503).
async fn ids_longer_than_any_herald_makes_are_not_found(stack: Stack) {
    let long = "x".repeat(2_000);
    let body = json!({"url": "https://hooks.example.com/x", "events": ["*"]});
    let mut routes = routes_with_ids(&long, &long, &body);
    routes.push(("DELETE", format!("/v1/keys/{long}"), None));
    for (method, path, body) in routes {
        let answer = stack.call(method, &path, body, None).await;
        assert_eq!(
            answer.0,
            StatusCode::NOT_FOUND,
            "{method} {}: {}",
            &path[..20],
            answer.2
        );
        assert_problem(&answer, 404);
    }
    let id_sized = "x".repeat(herald_shared::web::MAX_ID_LEN);
    assert_problem(
        &stack
            .call("GET", &format!("/v1/webhooks/{id_sized}"), None, None)
            .await,
        404,
    );
}

/// Ten creates at once against a limit of three: three webhooks, seven 409s.
async fn the_webhook_limit_holds_under_concurrent_creates(stack: Stack) {
    let create_at_once = |names: Vec<String>| {
        futures::future::join_all(names.into_iter().map(|name| {
            stack.call(
                "POST",
                "/v1/webhooks",
                Some(json!({"url": format!("https://hooks.example.com/{name}"), "events": ["*"]})),
                None,
            )
        }))
    };
    let answers = create_at_once((0..10).map(|i| i.to_string()).collect()).await;
    let created = answers
        .iter()
        .filter(|a| a.0 == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.0 != StatusCode::CREATED)
        .collect();
    assert_eq!(created, 3, "{answers:?}");
    for answer in &refused {
        assert_problem(answer, 409);
    }
    let (_, _, listed) = stack.call("GET", "/v1/webhooks", None, None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    // A delete frees a place, and only one.
    let first = listed["data"][0]["id"].as_str().unwrap();
    stack
        .call("DELETE", &format!("/v1/webhooks/{first}"), None, None)
        .await;
    let answers = create_at_once(vec!["again0".into(), "again1".into()]).await;
    let mut codes: Vec<u16> = answers.iter().map(|a| a.0.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [201, 409]);
}

fn limit_of_three(config: &mut herald_shared::Config) {
    admin(config);
    config.max_webhooks = 3;
}

#[tokio::test]
async fn the_webhook_limit_holds_under_concurrent_creates_in_memory() {
    the_webhook_limit_holds_under_concurrent_creates(Stack::memory_with(limit_of_three).await)
        .await;
}

// Not on moto: moto 5.2.5 checks a transaction's conditions without holding a lock, so of ten
// concurrent `TransactWriteItems` under `n < 3` four can pass (a probe with boto3 threads
// against moto_server saw 4 and 3 in two runs). DynamoDB runs transactions serializably. The
// limit's semantics on DynamoDB (count, refusal, a delete freeing one place) are in the store
// contract, which runs on moto.

macro_rules! on_both_backends {
    ($($scenario:ident),*) => {
        mod memory { $( #[tokio::test] async fn $scenario() { super::$scenario(herald_tests::stack::Stack::memory_with(super::admin).await).await } )* }
        mod moto { $( #[tokio::test] async fn $scenario() { super::$scenario(herald_tests::stack::Stack::moto_with(super::admin).await).await } )* }
    };
}

on_both_backends!(
    webhook_lifecycle,
    deliveries_and_redelivery,
    secrets_and_rotation,
    brought_secrets_and_metadata,
    tenants_and_keys,
    tenant_isolation,
    keys_cannot_widen,
    keys_are_listed_without_secrets,
    a_deleted_webhooks_log_stays_readable_by_id_until_it_expires,
    ids_longer_than_any_herald_makes_are_not_found,
    recovery_requests_are_validated_and_scoped
);

/// A saved webhook's test send goes to its stored URL and nowhere else: a URL (or anything
/// but `event_type`) in the body is refused, naming it, and nothing is sent.
#[tokio::test]
async fn a_saved_webhooks_test_send_posts_only_to_its_stored_url() {
    let stack = Stack::memory().await;
    let (stored, elsewhere) = (Receiver::start(200).await, Receiver::start(200).await);
    let created = stack
        .create_webhook(json!({"url": stored.url, "events": ["jobs.*"]}))
        .await;
    let path = format!("/v1/webhooks/{}/test", created["id"].as_str().unwrap());
    for body in [
        json!({"url": elsewhere.url}),
        json!({"event_type": "jobs.failed", "url": elsewhere.url}),
        json!({"headers": [{"key": "X-Echo", "value": "1"}]}),
    ] {
        let answer = stack.call("POST", &path, Some(body), None).await;
        assert_problem(&answer, 422);
        assert_eq!(answer.2["errors"][0]["valid"], json!(["event_type"]));
    }
    assert!(elsewhere.requests().is_empty() && stored.requests().is_empty());
    let (status, _, sent) = stack
        .call(
            "POST",
            &path,
            Some(json!({"event_type": "jobs.failed"})),
            None,
        )
        .await;
    assert_eq!(
        (status, sent["delivered"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_eq!(stored.requests().len(), 1);
    assert!(elsewhere.requests().is_empty());
}

#[tokio::test]
async fn test_sends_report_what_the_receiver_did() {
    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    let created = stack
        .create_webhook(json!({"url": rx.url, "events": ["experiments.done", "jobs.*"]}))
        .await;
    let wh = created["id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{wh}/test");

    let (status, _, result) = stack.call_raw("POST", &path, None, vec![], Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["delivered"], true);
    assert_eq!(result["status_code"], 200);
    assert_eq!(
        result["event_type"], "experiments.succeeded",
        "the first subscription's first type"
    );
    assert_eq!(result["response_body"], "receiver says hi");
    assert_eq!(result["error"], Value::Null);
    let req = &rx.wait_for(1).await[0];
    let body = req.json();
    assert_eq!(
        (body["test"].clone(), body["type"].clone()),
        (json!(true), json!("experiments.succeeded"))
    );
    assert_eq!(
        body["data"]["experiment"]["state"], "COMPLETED",
        "the catalog sample"
    );
    let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
    let secret = Secret::new(created["secret"].as_str().unwrap());
    signing::verify(
        &secret,
        req.header("webhook-id"),
        ts,
        req.header("webhook-signature"),
        &req.body,
        ts,
        0,
    )
    .expect("signed like a delivery");

    let (_, _, chosen) = stack
        .call(
            "POST",
            &path,
            Some(json!({"event_type": "deployments.failed"})),
            None,
        )
        .await;
    assert_eq!(chosen["event_type"], "deployments.failed");
    assert_problem(
        &stack
            .call(
                "POST",
                &path,
                Some(json!({"event_type": "deployments.exploded"})),
                None,
            )
            .await,
        422,
    );
    assert_problem(
        &stack
            .call("POST", &path, Some(json!({"colour": "red"})), None)
            .await,
        422,
    );
    assert_problem(
        &stack
            .call_raw("POST", &path, Some("text/plain"), b"hi".to_vec(), Some(KEY))
            .await,
        415,
    );
    assert_problem(
        &stack
            .call("POST", "/v1/webhooks/wh_missing/test", None, None)
            .await,
        404,
    );

    rx.set_status(503);
    let (_, _, failed) = stack.call("POST", &path, None, None).await;
    assert_eq!(
        (failed["delivered"].clone(), failed["status_code"].clone()),
        (json!(false), json!(503))
    );

    // An unsaved configuration: nothing is created.
    let (status, _, unsaved) = stack
        .test_unsaved(json!({"url": rx.url, "kind": "slack", "events": ["jobs.*"], "event_type": "jobs.failed"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{unsaved}");
    assert_eq!(unsaved["event_type"], "jobs.failed");
    let slack = rx.requests().last().unwrap().json();
    assert!(slack["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("[TEST]"));
    let (_, _, list) = stack.call("GET", "/v1/webhooks", None, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let answer = stack
        .test_unsaved(json!({"url": "ftp://x", "events": ["*"]}))
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["url"]);
}

#[tokio::test]
async fn test_sends_report_refused_timeouts_and_ssrf_blocks() {
    // Refused: nothing listens on the port.
    let stack = Stack::memory().await;
    let closed = free_port();
    let (_, _, refused) = stack
        .test_unsaved(json!({"url": format!("http://127.0.0.1:{closed}/x"), "events": ["*"]}))
        .await;
    assert_eq!(
        (refused["delivered"].clone(), refused["status_code"].clone()),
        (json!(false), Value::Null)
    );
    assert!(
        refused["error"].as_str().unwrap().starts_with("connect:"),
        "{refused}"
    );

    // Timeout: the receiver answers after the delivery timeout.
    let stack = Stack::memory_with(|c| c.delivery_timeout = Duration::from_millis(300)).await;
    let slow = Receiver::start(200).await;
    slow.set_delay(Duration::from_secs(3));
    let (_, _, timed_out) = stack
        .test_unsaved(json!({"url": slow.url, "events": ["*"]}))
        .await;
    assert!(
        timed_out["error"].as_str().unwrap().starts_with("timeout:"),
        "{timed_out}"
    );
    assert_eq!(timed_out["delivered"], false);

    // SSRF: under the public policy `localhost` and a literal loopback address are refused at
    // validation (names resolving to loopback are blocked at send time: tests/security.rs).
    let public =
        Stack::memory_with(|c| c.target_policy = herald_shared::url_policy::TargetPolicy::Public)
            .await;
    let rx = Receiver::start(200).await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let answer = public
        .test_unsaved(json!({"url": format!("http://localhost:{port}/x"), "events": ["*"]}))
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["url"]);
    let answer = public
        .test_unsaved(json!({"url": rx.url, "events": ["*"]}))
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["url"]);
}

#[tokio::test]
async fn every_error_status_is_a_problem() {
    let stack = Stack::memory_with(|c| c.max_webhooks = 1).await;
    let webhook = json!({"url": "http://127.0.0.1:9/", "events": ["*"]});

    // 400: not JSON.
    let answer = stack
        .call_raw(
            "POST",
            "/v1/webhooks",
            Some("application/json"),
            b"{not json".to_vec(),
            Some(KEY),
        )
        .await;
    assert_problem(&answer, 400);
    assert_eq!(answer.2["type"], "urn:herald:problem:malformed");
    // 401: no key, wrong key, wrong scheme.
    for key in [None, Some("wrong-key")] {
        let answer = stack
            .call_raw("GET", "/v1/webhooks", None, vec![], key)
            .await;
        assert_problem(&answer, 401);
        assert_eq!(answer.1["www-authenticate"], "Bearer");
    }
    let basic = axum::http::Request::builder()
        .uri("/v1/webhooks")
        .header("authorization", format!("Basic {KEY}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        tower::ServiceExt::oneshot(stack.router.clone(), basic)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // 404: unknown route, unknown id, admin routes without an admin key configured.
    assert_problem(&stack.call("GET", "/v1/nothing", None, None).await, 404);
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks/wh_missing", None, None)
            .await,
        404,
    );
    assert_problem(
        &stack
            .call(
                "POST",
                "/v1/tenants",
                Some(json!({"name": "x"})),
                Some("anything"),
            )
            .await,
        404,
    );
    assert_problem(
        &stack
            .call("DELETE", "/v1/keys/key_missing", None, None)
            .await,
        404,
    );
    // 405: a route that exists with another method.
    assert_problem(&stack.call("DELETE", "/v1/webhooks", None, None).await, 405);
    assert_problem(&stack.call("GET", "/v1/events", None, None).await, 405);
    // 409: the per-tenant webhook limit.
    stack.create_webhook(webhook.clone()).await;
    let answer = stack
        .call("POST", "/v1/webhooks", Some(webhook.clone()), None)
        .await;
    assert_problem(&answer, 409);
    assert!(answer.2["detail"].as_str().unwrap().contains("limit of 1"));
    // 413: each router's own limit.
    let big = json!({"url": "http://127.0.0.1:9/", "events": ["*"], "description": "x".repeat(70 * 1024)});
    assert_problem(
        &stack.call("POST", "/v1/webhooks", Some(big), None).await,
        413,
    );
    let event = json!({"type": "jobs.failed", "data": {"blob": "x".repeat(200 * 1024)}});
    assert_eq!(
        stack.call("POST", "/v1/events", Some(event), None).await.0,
        StatusCode::ACCEPTED,
        "ingest takes up to 256 KiB"
    );
    let huge = json!({"type": "jobs.failed", "data": {"blob": "x".repeat(257 * 1024)}});
    assert_problem(
        &stack.call("POST", "/v1/events", Some(huge), None).await,
        413,
    );
    // 415: not JSON, or no content type.
    assert_problem(
        &stack
            .call_raw(
                "POST",
                "/v1/events",
                Some("text/plain"),
                b"{}".to_vec(),
                Some(KEY),
            )
            .await,
        415,
    );
    assert_problem(
        &stack
            .call_raw("POST", "/v1/webhooks", None, b"{}".to_vec(), Some(KEY))
            .await,
        415,
    );
    // 422: each bad field named, with the valid values where there is a set.
    let answer = stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"type": "jobs.exploded", "environment_type": "prod"})),
            None,
        )
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["type", "environment_type"]);
    assert_eq!(answer.2["errors"][0]["valid"].as_array().unwrap().len(), 23);
}

/// What the OpenAPI document closes, the API closes: a batch's body, a header entry, an event's
/// `object`; and a test send takes an object or no body, nothing else.
#[tokio::test]
async fn bodies_take_no_field_the_document_does_not_name() {
    let stack = Stack::memory().await;
    let batch = json!({"events": [{"type": "jobs.failed"}], "event": []});
    let answer = stack
        .call("POST", "/v1/events/batch", Some(batch), None)
        .await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["event"]);
    assert_eq!(answer.2["errors"][0]["valid"], json!(["events"]));
    let event = json!({"type": "jobs.failed", "object": {"kind": "job", "name": "j", "size": 1}});
    let answer = stack.call("POST", "/v1/events", Some(event), None).await;
    assert_eq!(fields(&answer.2), ["object.size"]);
    let header = json!({"url": "http://127.0.0.1:9/", "events": ["*"],
        "headers": [{"key": "Authorization", "value": "Token 1", "protect": true}]});
    let answer = stack.call("POST", "/v1/webhooks", Some(header), None).await;
    assert_problem(&answer, 422);
    assert_eq!(fields(&answer.2), ["headers[0].protect"]);

    let webhook = stack
        .create_webhook(json!({"url": "http://127.0.0.1:9/", "events": ["*"]}))
        .await;
    let test = format!("/v1/webhooks/{}/test", webhook["id"].as_str().unwrap());
    assert_problem(
        &stack.call("POST", &test, Some(json!([null])), None).await,
        400,
    );
    assert_eq!(
        stack.call("POST", &test, Some(Value::Null), None).await.0,
        StatusCode::OK,
        "null is no body"
    );
}

#[tokio::test]
async fn catalog_health_and_openapi() {
    let stack = Stack::memory().await;
    let (status, _, types) = stack.call("GET", "/v1/event-types", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(types["data"].as_array().unwrap().len(), 23);
    assert!(types["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pattern"] == "requests.finished"));
    assert_problem(
        &stack
            .call_raw("GET", "/v1/event-types", None, vec![], None)
            .await,
        401,
    );

    let (status, _, health) = stack
        .call_raw("GET", "/v1/health", None, vec![], None)
        .await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, headers, doc) = stack
        .call_raw("GET", "/v1/openapi.json", None, vec![], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(herald_shared::web::openapi::document()).unwrap()
    );
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_and_others_do_not() {
    let stack = Stack::memory_with(|c| {
        c.rate_limit = 1;
        admin(c);
    })
    .await;
    let other = new_tenant(&stack, "other").await;
    // A burst of twice the rate passes, then the bucket is empty.
    for _ in 0..2 {
        assert_eq!(
            stack.call("GET", "/v1/webhooks", None, None).await.0,
            StatusCode::OK
        );
    }
    let answer = stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"type": "jobs.failed"})),
            None,
        )
        .await;
    assert_problem(&answer, 429);
    assert_eq!(answer.1["retry-after"], "1");
    let (status, _, _) = stack
        .call("GET", "/v1/webhooks", None, other["key"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK, "buckets are per tenant");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        stack.call("GET", "/v1/webhooks", None, None).await.0,
        StatusCode::OK,
        "the bucket refills"
    );
}

// ---------------------------------------------------------------------------------------------
// Key scopes: `ingest`, `read`, `manage`, `admin`.

const SCOPES: [&str; 4] = ["ingest", "read", "manage", "admin"];

/// Makes a key with `scopes` (and `name`, none when empty) with the stack's first key; answers
/// (id, key).
async fn mint(stack: &Stack, name: &str, scopes: &[&str]) -> (String, String) {
    let body = if name.is_empty() {
        json!({"scopes": scopes})
    } else {
        json!({"name": name, "scopes": scopes})
    };
    let (status, _, made) = stack.call("POST", "/v1/keys", Some(body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["scopes"], json!(scopes), "{made}");
    (
        made["id"].as_str().unwrap().to_string(),
        made["key"].as_str().unwrap().to_string(),
    )
}

/// The UTC day as keys show it.
fn today() -> String {
    time::OffsetDateTime::now_utc()
        .date()
        .format(herald_shared::store::DAY)
        .unwrap()
}

/// One operation: the route template as the OpenAPI document names it, the request, the one
/// scope it needs, and the status it answers a key holding that scope.
struct Operation {
    method: &'static str,
    template: &'static str,
    path: String,
    body: Option<Value>,
    scope: &'static str,
    ok: u16,
}

/// Every keyed route against a key of each single scope and against a key of every scope but
/// the one it needs: 403 (a problem naming the scope) unless the key holds it, and then the
/// route's success. 401 stays for a missing or unknown key. The table is checked against the
/// OpenAPI document, so a route added without a row here fails.
#[tokio::test]
async fn every_route_needs_its_scope() {
    let stack = Stack::memory().await;
    let rx = Receiver::start(200).await;
    let wh = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doomed = stack
        .create_webhook(json!({"url": rx.url, "events": ["*"]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    stack.post_event(json!({"type": "jobs.failed"})).await;
    assert!(stack.drain().await.is_empty());
    let (_, _, log) = stack
        .call("GET", &format!("/v1/webhooks/{wh}/deliveries"), None, None)
        .await;
    let dl = log["data"][0]["id"].as_str().unwrap().to_string();
    let (_, _, job) = stack
        .call(
            "POST",
            &format!("/v1/webhooks/{wh}/recover"),
            Some(json!({"since": "2026-12-01T00:00:00Z"})),
            None,
        )
        .await;
    let rc = job["id"].as_str().unwrap().to_string();
    let (revocable, _) = mint(&stack, "to revoke", &["admin"]).await;

    let mut single = std::collections::HashMap::new();
    let mut all_but = std::collections::HashMap::new();
    for scope in SCOPES {
        single.insert(scope, mint(&stack, scope, &[scope]).await.1);
        let others: Vec<&str> = SCOPES.into_iter().filter(|s| *s != scope).collect();
        all_but.insert(
            scope,
            mint(&stack, &format!("all but {scope}"), &others).await.1,
        );
    }

    let hook = json!({"url": rx.url, "events": ["*"]});
    let op = |method, template, path: String, body: Option<Value>, scope, ok| Operation {
        method,
        template,
        path,
        body,
        scope,
        ok,
    };
    // In the order the successful calls can run: what deletes comes last.
    let operations = [
        op(
            "POST",
            "/v1/events",
            "/v1/events".into(),
            Some(json!({"type": "jobs.failed"})),
            "ingest",
            202,
        ),
        op(
            "POST",
            "/v1/events/batch",
            "/v1/events/batch".into(),
            Some(json!({"events": [{"type": "jobs.failed"}]})),
            "ingest",
            200,
        ),
        op(
            "GET",
            "/v1/event-types",
            "/v1/event-types".into(),
            None,
            "read",
            200,
        ),
        op(
            "GET",
            "/v1/webhooks",
            "/v1/webhooks".into(),
            None,
            "read",
            200,
        ),
        op(
            "GET",
            "/v1/webhooks/{id}",
            format!("/v1/webhooks/{wh}"),
            None,
            "read",
            200,
        ),
        op(
            "GET",
            "/v1/webhooks/{id}/deliveries",
            format!("/v1/webhooks/{wh}/deliveries"),
            None,
            "read",
            200,
        ),
        op(
            "GET",
            "/v1/deliveries/{id}",
            format!("/v1/deliveries/{dl}"),
            None,
            "read",
            200,
        ),
        op(
            "GET",
            "/v1/webhooks/{id}/stats",
            format!("/v1/webhooks/{wh}/stats"),
            None,
            "read",
            200,
        ),
        op(
            "POST",
            "/v1/webhooks",
            "/v1/webhooks".into(),
            Some(hook.clone()),
            "manage",
            201,
        ),
        op(
            "PUT",
            "/v1/webhooks/{id}",
            format!("/v1/webhooks/{wh}"),
            Some(hook.clone()),
            "manage",
            200,
        ),
        op(
            "PATCH",
            "/v1/webhooks/{id}",
            format!("/v1/webhooks/{wh}"),
            Some(json!({"description": "x"})),
            "manage",
            200,
        ),
        op(
            "GET",
            "/v1/webhooks/{id}/secret",
            format!("/v1/webhooks/{wh}/secret"),
            None,
            "manage",
            200,
        ),
        op(
            "POST",
            "/v1/webhooks/{id}/secret/rotate",
            format!("/v1/webhooks/{wh}/secret/rotate"),
            None,
            "manage",
            200,
        ),
        op(
            "POST",
            "/v1/webhooks/{id}/test",
            format!("/v1/webhooks/{wh}/test"),
            None,
            "manage",
            200,
        ),
        op(
            "POST",
            "/v1/webhooks/test",
            "/v1/webhooks/test".into(),
            Some(hook.clone()),
            "manage",
            200,
        ),
        op(
            "POST",
            "/v1/deliveries/{id}/redeliver",
            format!("/v1/deliveries/{dl}/redeliver"),
            None,
            "manage",
            202,
        ),
        op(
            "POST",
            "/v1/webhooks/{id}/recover",
            format!("/v1/webhooks/{wh}/recover"),
            Some(json!({"since": "2026-12-01T00:00:00Z", "status": "held"})),
            "manage",
            202,
        ),
        op(
            "GET",
            "/v1/recoveries/{id}",
            format!("/v1/recoveries/{rc}"),
            None,
            "read",
            200,
        ),
        op(
            "DELETE",
            "/v1/webhooks/{id}",
            format!("/v1/webhooks/{doomed}"),
            None,
            "manage",
            204,
        ),
        op("GET", "/v1/keys", "/v1/keys".into(), None, "admin", 200),
        op(
            "POST",
            "/v1/keys",
            "/v1/keys".into(),
            Some(json!({"scopes": ["admin"]})),
            "admin",
            201,
        ),
        op(
            "DELETE",
            "/v1/keys/{id}",
            format!("/v1/keys/{revocable}"),
            None,
            "admin",
            204,
        ),
    ];

    // The table is the document's: every operation taking a tenant key, with its scope.
    let doc: Value = serde_json::from_str(herald_shared::web::openapi::document()).unwrap();
    let mut documented = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bearer = operation["security"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|r| r.get("bearer"));
            if let Some(scopes) = bearer {
                documented.push(format!("{} {template} {scopes}", method.to_uppercase()));
            }
        }
    }
    let mut tabled: Vec<String> = operations
        .iter()
        .map(|o| format!("{} {} {}", o.method, o.template, json!([o.scope])))
        .collect();
    documented.sort();
    tabled.sort();
    assert_eq!(tabled, documented);

    for o in &operations {
        let what = format!("{} {}", o.method, o.template);
        for key in [None, Some("hk_unknown")] {
            let answer = stack.call_raw(o.method, &o.path, None, vec![], key).await;
            assert_problem(&answer, 401);
        }
        let denied = SCOPES
            .into_iter()
            .filter(|s| *s != o.scope)
            .map(|s| (s.to_string(), &single[s]))
            .chain([(format!("all but {}", o.scope), &all_but[o.scope])]);
        for (holder, key) in denied {
            let answer = stack
                .call(o.method, &o.path, o.body.clone(), Some(key))
                .await;
            assert_eq!(
                answer.0,
                StatusCode::FORBIDDEN,
                "{what} with a {holder} key: {}",
                answer.2
            );
            assert_problem(&answer, 403);
            assert_eq!(answer.2["type"], "urn:herald:problem:forbidden");
            let detail = answer.2["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("`{}`", o.scope)),
                "{what}: {detail}"
            );
        }
    }
    assert_eq!(
        rx.requests().len(),
        2,
        "the event's two deliveries only: no refused send reached the receiver"
    );
    for o in &operations {
        let answer = stack
            .call(o.method, &o.path, o.body.clone(), Some(&single[o.scope]))
            .await;
        assert_eq!(
            answer.0.as_u16(),
            o.ok,
            "{} {} with a {} key: {}",
            o.method,
            o.template,
            o.scope,
            answer.2
        );
    }
}

/// A key can only make and revoke keys within its own scopes; asking for more is a 403 naming
/// `scopes` (with the scopes it could grant), and makes nothing.
async fn keys_cannot_widen(stack: Stack) {
    let (_, read_admin) = mint(&stack, "delegate", &["read", "admin"]).await;
    let before = walk(&stack, "/v1/keys?limit=100").await.0.len();
    for scopes in [json!(["read", "manage"]), json!(["ingest"]), json!(SCOPES)] {
        let answer = stack
            .call(
                "POST",
                "/v1/keys",
                Some(json!({"name": "wider", "scopes": scopes})),
                Some(&read_admin),
            )
            .await;
        assert_problem(&answer, 403);
        assert_eq!(fields(&answer.2), ["scopes"], "{}", answer.2);
        assert_eq!(answer.2["errors"][0]["valid"], json!(["read", "admin"]));
    }
    assert_eq!(
        walk(&stack, "/v1/keys?limit=100").await.0.len(),
        before,
        "a refused key is not made"
    );

    // Without `scopes`, a new key gets the scopes of the key asking, no more.
    let (status, _, defaulted) = stack
        .call("POST", "/v1/keys", None, Some(&read_admin))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{defaulted}");
    assert_eq!(defaulted["scopes"], json!(["read", "admin"]));
    assert_eq!(defaulted["name"], "");
    let (status, _, reader) = stack
        .call(
            "POST",
            "/v1/keys",
            Some(json!({"name": "reader", "scopes": ["read"]})),
            Some(&read_admin),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");
    let reader_key = reader["key"].as_str().unwrap();
    assert_eq!(
        stack
            .call("GET", "/v1/webhooks", None, Some(reader_key))
            .await
            .0,
        StatusCode::OK
    );
    for (method, path, body) in [
        (
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/", "events": ["*"]})),
        ),
        ("POST", "/v1/keys", Some(json!({"scopes": ["read"]}))),
        ("POST", "/v1/events", Some(json!({"type": "jobs.failed"}))),
    ] {
        assert_problem(&stack.call(method, path, body, Some(reader_key)).await, 403);
    }

    // Revoking: not a key holding scopes the revoker lacks; the first key still works.
    let (_, _, listed) = stack.call("GET", "/v1/keys", None, None).await;
    let first = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "first key")
        .expect("the stack's key is listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_problem(
        &stack
            .call(
                "DELETE",
                &format!("/v1/keys/{first}"),
                None,
                Some(&read_admin),
            )
            .await,
        403,
    );
    assert_eq!(
        stack.call("GET", "/v1/keys", None, None).await.0,
        StatusCode::OK
    );
    let (status, _, _) = stack
        .call(
            "DELETE",
            &format!("/v1/keys/{}", reader["id"].as_str().unwrap()),
            None,
            Some(&read_admin),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        &stack
            .call("GET", "/v1/webhooks", None, Some(reader_key))
            .await,
        401,
    );

    // Bad bodies name their fields.
    for (body, named) in [
        (json!({"scopes": ["root"]}), vec!["scopes[0]"]),
        (json!({"scopes": []}), vec!["scopes"]),
        (json!({"name": 5}), vec!["name"]),
        (json!({"name": "x".repeat(129)}), vec!["name"]),
        (json!({"expires": "never"}), vec!["expires"]),
    ] {
        let answer = stack.call("POST", "/v1/keys", Some(body), None).await;
        assert_problem(&answer, 422);
        assert_eq!(fields(&answer.2), named, "{}", answer.2);
    }
    assert_problem(
        &stack.call("POST", "/v1/keys", Some(json!([])), None).await,
        400,
    );
}

/// `GET /v1/keys` pages through the tenant's keys with their names, scopes, creation time and
/// day of last use, and never a key or its hash; another tenant sees only its own.
async fn keys_are_listed_without_secrets(stack: Stack) {
    let day_before = today();
    let mut made = vec![(String::new(), KEY.to_string())];
    for (name, scopes) in [
        ("ci producer", &["ingest"][..]),
        ("dashboard", &["read"]),
        ("ops", &["read", "manage"]),
        ("", &["admin"]),
    ] {
        made.push(mint(&stack, name, scopes).await);
    }
    let producer = made[1].1.clone();
    stack
        .call(
            "POST",
            "/v1/events",
            Some(json!({"type": "jobs.failed"})),
            Some(&producer),
        )
        .await;

    let mut pages = Vec::new();
    let mut path = "/v1/keys?limit=2".to_string();
    loop {
        let (status, _, page) = stack.call("GET", &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(page.clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/keys?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    let text = serde_json::to_string(&pages).unwrap();
    for (_, key) in &made {
        let hash = herald_shared::secret::hash_key(key);
        assert!(!text.contains(key.as_str()), "a key is listed");
        assert!(!text.contains(&hash), "a key's hash is listed");
    }
    let listed: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().clone())
        .collect();
    for key in &listed {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort();
        assert_eq!(
            members,
            ["created_at", "id", "last_used", "name", "scopes"],
            "{key}"
        );
        time::OffsetDateTime::parse(
            key["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
    }
    let summary: Vec<(Value, Value)> = listed
        .iter()
        .map(|k| (k["name"].clone(), k["scopes"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("first key"), json!(SCOPES)),
            (json!("ci producer"), json!(["ingest"])),
            (json!("dashboard"), json!(["read"])),
            (json!("ops"), json!(["read", "manage"])),
            (json!(""), json!(["admin"])),
        ]
    );
    let ids: Vec<&str> = listed.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(
        &ids[1..],
        made[1..]
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
    );
    let day_after = today();
    let used_today = |v: &Value| v == &json!(day_before) || v == &json!(day_after);
    assert!(used_today(&listed[0]["last_used"]), "{}", listed[0]);
    assert!(used_today(&listed[1]["last_used"]), "{}", listed[1]);
    for never in &listed[2..] {
        assert_eq!(never["last_used"], Value::Null, "{never}");
    }

    let other = new_tenant(&stack, "Other").await;
    let (_, _, theirs) = stack
        .call("GET", "/v1/keys", None, other["key"].as_str())
        .await;
    let theirs = theirs["data"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(
        (theirs[0]["name"].clone(), theirs[0]["scopes"].clone()),
        (json!("first key"), json!(SCOPES))
    );
    assert_problem(
        &stack
            .call(
                "DELETE",
                &format!("/v1/keys/{}", made[1].0),
                None,
                other["key"].as_str(),
            )
            .await,
        404,
    );
}

/// The day of a key's last use is written by the first request of a day only: later requests
/// that day write nothing, and a stored earlier day is moved to today by the next request.
async fn last_use_is_written_once_a_day(
    store: std::sync::Arc<dyn herald_shared::store::Store>,
    queue: std::sync::Arc<dyn herald_shared::queue::Queue>,
) {
    use herald_shared::secret::hash_key;
    use herald_tests::faults::{Faults, FlakyStore};
    let faults = std::sync::Arc::new(Faults::default());
    let store: std::sync::Arc<dyn herald_shared::store::Store> = std::sync::Arc::new(FlakyStore {
        inner: store,
        faults: faults.clone(),
    });
    let stack = Stack::with_config(
        herald_tests::stack::local_config(),
        store.clone(),
        queue,
        Duration::ZERO,
    )
    .await;
    let (id, key) = mint(&stack, "reader", &["read"]).await;
    let hash = hash_key(&key);
    let writes = || {
        faults
            .touched
            .lock()
            .unwrap()
            .iter()
            .filter(|h| **h == hash)
            .count()
    };
    let last_used = || async {
        store
            .get_api_key(TENANT, &id)
            .await
            .unwrap()
            .unwrap()
            .last_used
    };
    assert_eq!((writes(), last_used().await), (0, None));

    let before = time::OffsetDateTime::now_utc().date();
    for _ in 0..5 {
        assert_eq!(
            stack.call("GET", "/v1/webhooks", None, Some(&key)).await.0,
            StatusCode::OK
        );
    }
    let after = time::OffsetDateTime::now_utc().date();
    // One write per UTC day the requests ran in: one, unless they straddled midnight.
    assert_eq!(writes(), if before == after { 1 } else { 2 });
    assert_eq!(last_used().await, Some(after));

    let mut stored = store.api_key(&hash).await.unwrap().unwrap();
    stored.last_used = Some(after.previous_day().unwrap());
    store.put_api_key(&stored).await.unwrap();
    let written = writes();
    stack.call("GET", "/v1/webhooks", None, Some(&key)).await;
    assert_eq!(
        writes(),
        written + 1,
        "a stored earlier day is moved to today"
    );
    assert!(last_used().await >= Some(after));
}

#[tokio::test]
async fn last_use_is_written_once_a_day_in_memory() {
    last_use_is_written_once_a_day(
        std::sync::Arc::new(herald_shared::store::MemoryStore::new()),
        std::sync::Arc::new(herald_shared::queue::MemoryQueue::default()),
    )
    .await;
}

#[tokio::test]
async fn last_use_is_written_once_a_day_on_moto() {
    let moto = herald_tests::moto::moto();
    last_use_is_written_once_a_day(
        std::sync::Arc::new(moto.store().await),
        std::sync::Arc::new(moto.queue(5).await),
    )
    .await;
}

/// Deliveries with `MAX_ATTEMPTS` attempts of the largest snippets the client records, under
/// one webhook: the largest a delivery log gets.
async fn largest_deliveries(stack: &Stack, count: u64) -> String {
    use herald_shared::delivery::{Attempt, Delivery, MAX_ATTEMPTS};
    let wh = stack
        .create_webhook(json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}))
        .await;
    let wh_id = wh["id"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc();
    for i in 0..count {
        let id = format!("dl_{}", ulid::Ulid::from_parts(1_796_000_000_000 + i, 1));
        let mut d = Delivery::new(id.into(), TENANT, "evt", "jobs.failed", &*wh_id, now);
        for n in 0..MAX_ATTEMPTS {
            let attempt = Attempt {
                at: now,
                status_code: Some(500),
                duration_ms: 10,
                error: Some("e".repeat(200)),
                response_body: Some(
                    "\u{1}".repeat(herald_shared::http::client::RESPONSE_SNIPPET_BYTES),
                ),
            };
            d.record(attempt, (n + 1 < MAX_ATTEMPTS).then_some(now));
        }
        stack.store.put_delivery(&d).await.unwrap();
    }
    wh_id
}

/// A page of the delivery log stays inside Lambda's 6 MB response however large its
/// deliveries are: it stops short of its limit, and its cursor walks the rest.
#[tokio::test]
async fn a_page_of_large_deliveries_stays_under_the_lambda_response_limit() {
    let stack = Stack::memory().await;
    let wh_id = largest_deliveries(&stack, 100).await;
    let mut seen = std::collections::BTreeSet::new();
    let mut path = format!("/v1/webhooks/{wh_id}/deliveries?limit=100");
    let mut pages = 0;
    loop {
        let (status, _, page) = stack.call("GET", &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let bytes = serde_json::to_vec(&page).unwrap().len();
        assert!(bytes < 6_000_000, "a page of {bytes} bytes");
        pages += 1;
        for d in page["data"].as_array().unwrap() {
            assert!(
                seen.insert(d["id"].as_str().unwrap().to_string()),
                "seen twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/webhooks/{wh_id}/deliveries?limit=100&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 100, "every delivery, once");
    assert!(pages > 1, "one page would have passed the limit");
}

/// A redelivery never takes a delivery past the attempts it may keep: refused with 409 and
/// the reason, nothing queued.
#[tokio::test]
async fn a_redelivery_past_the_attempts_a_delivery_keeps_is_refused() {
    let stack = Stack::memory().await;
    let wh_id = largest_deliveries(&stack, 1).await;
    let (_, _, page) = stack
        .call(
            "GET",
            &format!("/v1/webhooks/{wh_id}/deliveries"),
            None,
            None,
        )
        .await;
    let id = page["data"][0]["id"].as_str().unwrap();
    let answer = stack
        .call(
            "POST",
            &format!("/v1/deliveries/{id}/redeliver"),
            None,
            None,
        )
        .await;
    assert_problem(&answer, 409);
    let detail = answer.2["detail"].as_str().unwrap();
    assert!(detail.contains("keeps at most 100"), "{detail}");
    assert!(stack.drain().await.is_empty());
}

/// `status` filters the log: a page reads at most `FILTER_SCAN_PAGES` pages of it, so a status
/// few deliveries are in answers short pages, empty ones even, whose cursors still walk every
/// match, each once, newest first. A status that is none is a 422 naming `status`.
#[tokio::test]
async fn the_log_filters_by_status_and_reads_a_bounded_part_of_it_per_page() {
    use herald_shared::delivery::{delivery_id, Delivery, DeliveryStatus};
    use herald_shared::service::api::FILTER_SCAN_PAGES;
    let stack = Stack::memory().await;
    let wh = stack
        .create_webhook(json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}))
        .await;
    let wh_id = wh["id"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc();
    // The oldest 20 failed, the 600 after them succeeded: the newest 500 hold no failure.
    let scanned = FILTER_SCAN_PAGES * 100;
    for i in 0..620u64 {
        let envelope = ulid::Ulid::from_parts(1_796_000_000_000 + i, 7);
        let id = delivery_id(envelope, &wh_id);
        let mut d = Delivery::new(id, TENANT, format!("evt-{i}"), "jobs.failed", &*wh_id, now);
        d.status = if i < 20 {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Succeeded
        };
        stack.store.put_delivery(&d).await.unwrap();
    }
    let path = format!("/v1/webhooks/{wh_id}/deliveries?limit=15&status=failed");
    let (_, _, first) = stack.call("GET", &path, None, None).await;
    assert_eq!(first["data"], json!([]), "the newest {scanned} hold none");
    assert!(first["next_cursor"].is_string(), "{first}");
    let (failed, pages) = walk(&stack, &path).await;
    let events: Vec<&str> = failed
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..20).rev().map(|i| format!("evt-{i}")).collect();
    assert_eq!(events, expected, "every failure once, newest first");
    assert_eq!(pages, 3, "an empty page, a full one, the rest");
    assert!(failed.iter().all(|d| d["status"] == "failed"));
    let (succeeded, _) = walk(
        &stack,
        &format!("/v1/webhooks/{wh_id}/deliveries?limit=100&status=succeeded"),
    )
    .await;
    assert_eq!(succeeded.len(), 600);

    let answer = stack
        .call(
            "GET",
            &format!("/v1/webhooks/{wh_id}/deliveries?status=lost"),
            None,
            None,
        )
        .await;
    assert_problem(&answer, 422);
    assert_eq!(answer.2["errors"][0]["field"], "status");
    assert_eq!(
        answer.2["errors"][0]["valid"],
        json!(["pending", "retrying", "succeeded", "failed", "held"])
    );
}
