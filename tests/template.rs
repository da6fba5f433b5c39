//! The SAM template and the code agree: every variable the code reads in Lambda is set by
//! `template.yaml` and nothing else is; capacity, timeouts, throttles and defaults hold what
//! the code promises. (Each function's IAM grant is checked against its calls in grants.rs.)

use herald_tests::template::{self, reference, Template};
use herald_tests::workspace_root;
use std::collections::BTreeSet;
use std::time::Duration;
use yaml_serde::Value;

/// Read only outside Lambda: Lambda gets the queue by URL, has no built-in tenant, and reads
/// the admin key from Secrets Manager (`HERALD_ADMIN_KEY_SECRET`), never from its environment.
const LOCAL_ONLY: [&str; 3] = ["HERALD_ADMIN_KEY", "HERALD_API_KEY", "HERALD_QUEUE_NAME"];

fn quoted_names(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("HERALD_") && s[7..].chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

fn template_variables(template: &str) -> BTreeSet<String> {
    template
        .lines()
        .filter_map(|line| line.trim_start().split_once(':').map(|(key, _)| key))
        .filter(|key| key.starts_with("HERALD_") || *key == "RUST_LOG")
        .map(str::to_string)
        .collect()
}

#[test]
fn template_sets_exactly_what_the_code_reads() {
    let root = workspace_root();
    let config = std::fs::read_to_string(root.join("shared/src/config.rs")).unwrap();
    let code_part = config.split("#[cfg(test)]").next().unwrap();
    let mut read = quoted_names(code_part);
    assert!(
        read.len() >= 10,
        "the config reader was not understood: {read:?}"
    );
    for local in LOCAL_ONLY {
        assert!(
            read.remove(local),
            "{local} is no longer read; update LOCAL_ONLY"
        );
    }
    read.insert("RUST_LOG".into());

    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let set = template_variables(&template);
    let missing: Vec<_> = read.difference(&set).collect();
    let unused: Vec<_> = set.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "read by the code but not set in template.yaml: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "set in template.yaml but read by no code: {unused:?}"
    );
}

#[test]
fn the_readers_see_what_they_should() {
    assert_eq!(
        quoted_names(r#"get("HERALD_A"); number("HERALD_B_C", 1); "HERALD_x"; "OTHER""#),
        ["HERALD_A", "HERALD_B_C"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let yaml = "Environment:\n  Variables:\n    HERALD_A: x\n    RUST_LOG: info\n    Description: HERALD_B is documented\n";
    assert_eq!(
        template_variables(yaml),
        ["HERALD_A", "RUST_LOG"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

/// A function's property, or the Globals' when the function sets none.
fn property<'a>(template: &'a Template, function: &str, name: &str) -> &'a Value {
    let own = &template.function(function).0[name];
    if own.is_null() {
        &template.globals()[name]
    } else {
        own
    }
}

#[test]
fn dispatch_keeps_executions_for_its_event_source_and_the_others_have_limits_of_their_own() {
    let t = template::load();
    let dispatch = t.function("DispatchFunction").0;
    let reserved = &dispatch["ReservedConcurrentExecutions"];
    let maximum =
        &dispatch["Events"]["EventsQueue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
    // The same parameter, or numbers: either way reserved >= maximum for every value deployed.
    match (reference(reserved), reference(maximum)) {
        (Some(a), Some(b)) => {
            assert_eq!(a, b, "reserved concurrency and MaximumConcurrency differ")
        }
        _ => assert!(t.number(reserved) >= t.number(maximum)),
    }
    assert!(
        dispatch["Events"]["Sweep"].is_null(),
        "the sweep runs in a function of its own, not in dispatch's reserved executions"
    );
    for function in ["IngestFunction", "ApiFunction", "SweepFunction"] {
        let limit = &t.function(function).0["ReservedConcurrentExecutions"];
        assert!(
            t.number(limit) >= 1,
            "{function} has no concurrency limit of its own"
        );
    }
}

#[test]
fn a_test_send_to_a_hanging_receiver_ends_inside_the_api_function_timeout() {
    let t = template::load();
    let delivery = t.globals()["Environment"]["Variables"]["HERALD_DELIVERY_TIMEOUT"]
        .as_str()
        .expect("the delivery timeout is set in Globals");
    let delivery = humantime::parse_duration(delivery).unwrap();
    let api = Duration::from_secs(t.number(property(&t, "ApiFunction", "Timeout")));
    assert!(
        api >= delivery + Duration::from_secs(5),
        "api Timeout {api:?} is under the delivery timeout {delivery:?} + 5 s"
    );
    // API Gateway's HTTP API waits 30 s at most for an integration.
    assert!(api <= Duration::from_secs(30));
}

#[test]
fn ingest_and_management_routes_are_throttled_apart_and_every_request_is_logged_with_its_address() {
    let t = template::load();
    let api = &t.resource("HttpApi")["Properties"];
    let defaults = &api["DefaultRouteSettings"];
    let default_refs: BTreeSet<_> = ["ThrottlingBurstLimit", "ThrottlingRateLimit"]
        .iter()
        .map(|k| reference(&defaults[*k]).expect("default throttles are parameters"))
        .collect();
    let events = t.function("IngestFunction").0["Events"]
        .as_mapping()
        .expect("ingest has events");
    assert_eq!(events.len(), 2, "POST /v1/events and /v1/events/batch");
    for (name, event) in events {
        let settings = &event["Properties"]["RouteSettings"];
        for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
            let parameter = reference(&settings[limit])
                .unwrap_or_else(|| panic!("{name:?} has no {limit} of its own"));
            assert!(
                !default_refs.contains(parameter),
                "{name:?} shares {parameter} with the management routes"
            );
        }
    }
    let format = api["AccessLogSettings"]["Format"]
        .as_str()
        .expect("access logs");
    let line: serde_json::Value =
        serde_json::from_str(format).expect("the access log format is one JSON object");
    assert_eq!(line["ip"], "$context.identity.sourceIp");
    assert!(line.get("requestId").is_some() && line.get("status").is_some());
    assert!(
        !format.contains("header") && !format.contains("authorizer"),
        "no request header (the key travels in one) is logged: {format}"
    );
}

#[test]
fn production_defaults_take_only_https_on_443() {
    let t = template::load();
    assert_eq!(t.default_of("RequireHttps"), "true");
    assert_eq!(t.default_of("AllowedPorts"), "443");
    let variables = &t.globals()["Environment"]["Variables"];
    assert_eq!(
        reference(&variables["HERALD_REQUIRE_HTTPS"]),
        Some("RequireHttps")
    );
    assert_eq!(
        reference(&variables["HERALD_ALLOWED_PORTS"]),
        Some("AllowedPorts")
    );
}

#[test]
fn both_queues_take_the_largest_message_the_code_sends() {
    let t = template::load();
    for queue in ["EventsQueue", "DeadLetterQueue"] {
        let size = &t.resource(queue)["Properties"]["MaximumMessageSize"];
        assert_eq!(
            t.number(size),
            herald_shared::queue::MAX_MESSAGE_BYTES as u64,
            "{queue}"
        );
    }
}

#[test]
fn the_admin_key_is_read_from_its_secret_by_the_api_alone() {
    let t = template::load();
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    assert!(
        !text.contains("{{resolve:secretsmanager"),
        "a dynamic reference puts the secret's value into the function's configuration"
    );
    let api = &t.function("ApiFunction").0["Environment"]["Variables"];
    assert_eq!(
        reference(&api["HERALD_ADMIN_KEY_SECRET"]),
        Some("AdminKeySecret")
    );
    for function in ["IngestFunction", "DispatchFunction"] {
        let actions = t.function(function).policy_actions();
        assert!(
            !actions.iter().any(|a| a.starts_with("secretsmanager:")),
            "{function} may read secrets: {actions:?}"
        );
        assert!(t.function(function).0["Environment"].is_null());
    }
}

#[test]
fn the_queue_settings_are_the_codes_and_outlast_any_lease() {
    let t = template::load();
    let queue = &t.resource("EventsQueue")["Properties"];
    assert_eq!(
        Duration::from_secs(t.number(&queue["VisibilityTimeout"])),
        herald_shared::queue::VISIBILITY_TIMEOUT
    );
    assert_eq!(
        t.number(&queue["RedrivePolicy"]["maxReceiveCount"]),
        u64::from(herald_shared::queue::MAX_RECEIVES)
    );
    // The longest lease: the largest delivery timeout config accepts, and the margin.
    let longest_lease = herald_shared::config::MAX_DELIVERY_TIMEOUT
        + herald_shared::service::dispatch::LEASE_MARGIN;
    assert!(herald_shared::queue::VISIBILITY_TIMEOUT > longest_lease);
    let dispatch = Duration::from_secs(t.number(property(&t, "DispatchFunction", "Timeout")));
    // And any lease (a delivery timeout of at least a second, and the margin) outlasts the
    // dispatch function, so no live run loses its lease.
    assert!(herald_shared::service::dispatch::LEASE_MARGIN >= dispatch);
}

/// A batch never runs into the dispatch function's timeout: no job starts that could not finish
/// before the invocation's deadline, so what the batch size, the webhook cap and the concurrency
/// allow only decides how many jobs come back for the next receive. That holds only if one job,
/// at the longest delivery timeout the configuration takes and the template's own, fits the
/// timeout; else no job would ever start and every message would end in the dead-letter queue.
#[test]
fn one_delivery_job_fits_the_dispatch_function_timeout() {
    let t = template::load();
    let dispatch = Duration::from_secs(t.number(property(&t, "DispatchFunction", "Timeout")));
    let around = herald_shared::runtime::SDK_OPERATION_TIMEOUT * herald_shared::runtime::JOB_CALLS;
    let longest = herald_shared::config::MAX_DELIVERY_TIMEOUT + around;
    assert!(
        longest <= dispatch,
        "a job may take {longest:?}, the dispatch function has {dispatch:?}"
    );
    let configured = t.resource("DispatchFunction")["Properties"]["Environment"]["Variables"]
        ["HERALD_DELIVERY_TIMEOUT"]
        .as_str()
        .map(|v| humantime::parse_duration(v).expect("a duration"));
    let globals = t.globals()["Environment"]["Variables"]["HERALD_DELIVERY_TIMEOUT"]
        .as_str()
        .map(|v| humantime::parse_duration(v).expect("a duration"));
    let delivery = configured
        .or(globals)
        .expect("the template sets a delivery timeout");
    assert!(delivery <= herald_shared::config::MAX_DELIVERY_TIMEOUT);
    assert!(delivery + around <= dispatch);
}

/// The template's schedule runs the sweep as often as its lead needs, with the input that asks
/// the dispatch function for a sweep rather than a batch.
#[test]
fn the_sweep_is_scheduled_as_the_code_expects() {
    use herald_shared::service::sweep::SWEEP_EVERY;
    let t = template::load();
    let function = t.function("SweepFunction").0;
    assert_eq!(
        t.number(&function["ReservedConcurrentExecutions"]),
        1,
        "one sweep at a time, and none of dispatch's executions"
    );
    let sweep = &function["Events"]["Sweep"];
    assert_eq!(sweep["Type"].as_str(), Some("Schedule"));
    let rate = sweep["Properties"]["Schedule"]
        .as_str()
        .expect("a schedule");
    let minutes: u64 = rate
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(" minutes)"))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("not a rate in minutes: {rate}"));
    assert_eq!(Duration::from_secs(minutes * 60), SWEEP_EVERY);
    let input: serde_json::Value =
        serde_json::from_str(sweep["Properties"]["Input"].as_str().expect("an input")).unwrap();
    assert_eq!(input, serde_json::json!({"sweep": true}));
}

/// Both queues alarm on the age of their oldest message: the events queue once a message is
/// older than any wait and redelivery the code makes, the dead-letter queue before its
/// retention deletes what a redrive could still save.
#[test]
fn both_queues_alarm_on_their_oldest_message_before_it_is_lost() {
    use herald_shared::queue::{MAX_DELAY, MAX_RECEIVES, VISIBILITY_TIMEOUT};
    let t = template::load();
    for (queue, alarm) in [
        ("EventsQueue", "EventsQueueAgeAlarm"),
        ("DeadLetterQueue", "DeadLetterQueueAgeAlarm"),
    ] {
        let alarm = &t.resource(alarm)["Properties"];
        assert_eq!(
            alarm["MetricName"].as_str(),
            Some("ApproximateAgeOfOldestMessage")
        );
        let watched = match &alarm["Dimensions"][0]["Value"] {
            Value::Tagged(tagged) if tagged.tag == "GetAtt" => tagged.value.as_str(),
            _ => None,
        };
        assert_eq!(watched, Some(format!("{queue}.QueueName").as_str()));
        let threshold = Duration::from_secs(t.number(&alarm["Threshold"]));
        let retention = Duration::from_secs(
            t.number(&t.resource(queue)["Properties"]["MessageRetentionPeriod"]),
        );
        assert!(threshold < retention, "{queue}: alarms after it deletes");
        if queue == "EventsQueue" {
            let longest = MAX_DELAY + VISIBILITY_TIMEOUT * MAX_RECEIVES;
            assert!(
                threshold > longest,
                "alarms on a message still in its course"
            );
        }
    }
}

/// The table `template.yaml` declares is the one `ensure_table` makes for the local stack and
/// the tests: the same attributes and the same indexes, keyed and projected alike.
#[tokio::test]
async fn the_table_the_template_declares_is_the_one_the_code_creates() {
    let moto = herald_tests::moto::moto();
    let store = moto.store().await;
    let described = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await)
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let created_attributes: BTreeSet<(String, String)> = described
        .attribute_definitions()
        .iter()
        .map(|a| {
            let kind = a.attribute_type().as_str();
            (a.attribute_name().to_string(), kind.to_string())
        })
        .collect();
    let created_indexes: BTreeSet<String> = described
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            let keys: Vec<String> = i
                .key_schema()
                .iter()
                .map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str()))
                .collect();
            let projection = i
                .projection()
                .and_then(|p| p.projection_type())
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            format!(
                "{} {} {projection}",
                i.index_name().unwrap_or_default(),
                keys.join(",")
            )
        })
        .collect();

    let t = template::load();
    let table = &t.resource("Table")["Properties"];
    let declared_attributes: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            let name = a["AttributeName"].as_str().unwrap().to_string();
            (name, a["AttributeType"].as_str().unwrap().to_string())
        })
        .collect();
    let declared_indexes: BTreeSet<String> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| {
            let keys: Vec<String> = i["KeySchema"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|k| {
                    let name = k["AttributeName"].as_str().unwrap();
                    format!("{name}:{}", k["KeyType"].as_str().unwrap())
                })
                .collect();
            let projection = i["Projection"]["ProjectionType"].as_str().unwrap();
            let name = i["IndexName"].as_str().unwrap();
            format!("{name} {} {projection}", keys.join(","))
        })
        .collect();
    assert_eq!(declared_attributes, created_attributes);
    assert_eq!(declared_indexes, created_indexes);
}
