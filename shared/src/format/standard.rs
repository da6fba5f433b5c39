//! Herald's own JSON payload (SPEC §4).

use super::Formatter;
use crate::event::{EnvironmentType, Event, ObjectRef};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

pub struct Standard;

#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    project: Option<&'a str>,
    environment_type: Option<EnvironmentType>,
    object: Option<&'a ObjectRef>,
    data: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

impl Formatter for Standard {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        let payload = Payload {
            id: &event.id,
            event_type: &event.event_type,
            timestamp: event
                .occurred_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| event.occurred_at.unix_timestamp().to_string()),
            project: event.project.as_deref(),
            environment_type: event.environment_type,
            object: event.object.as_ref(),
            data: &event.data,
            result: event.result.as_ref().filter(|_| include_result),
            text: &event.text,
            test: event.test,
        };
        serde_json::to_writer(out, &payload).expect("serializing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::render;
    use crate::webhook::Kind;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn standard_payload_shape() {
        let mut e = Event::parse(
            &json!({"id": "evt_1", "type": "requests.completed", "project": "p",
                    "object": {"kind": "deployment", "name": "model-a", "version": "v1"},
                    "data": {"request_id": "r"}, "result": {"y": 1}}),
            datetime!(2026-11-22 10:00 UTC),
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&render(Kind::Standard, &e, false)).unwrap();
        assert_eq!(
            body,
            json!({"id": "evt_1", "type": "requests.completed", "timestamp": "2026-11-22T10:00:00Z",
                   "project": "p", "environment_type": null,
                   "object": {"kind": "deployment", "name": "model-a", "version": "v1"},
                   "data": {"request_id": "r"},
                   "text": "Deployment model-a v1: request completed in project p"})
        );
        let with_result: Value = serde_json::from_slice(&render(Kind::Standard, &e, true)).unwrap();
        assert_eq!(with_result["result"], json!({"y": 1}));
        e.test = true;
        let test: Value = serde_json::from_slice(&render(Kind::Standard, &e, false)).unwrap();
        assert_eq!(test["test"], true);
    }
}
