//! Herald's own JSON payload (SPEC §4).

use super::parts::Timestamp;
use super::Formatter;
use crate::event::{EnvironmentType, Event, ObjectRef};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Standard;

#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: Timestamp<'a>,
    project: Option<&'a str>,
    environment_type: Option<EnvironmentType>,
    object: Option<&'a ObjectRef>,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

fn payload(event: &Event, include_result: bool) -> Payload<'_> {
    Payload {
        id: &event.id,
        event_type: &event.event_type,
        timestamp: Timestamp(&event.occurred_at),
        project: event.project.as_deref(),
        environment_type: event.environment_type,
        object: event.object.as_ref(),
        data: event.data.raw(),
        result: event.result.as_ref().filter(|_| include_result),
        text: &event.text,
        test: event.test,
    }
}

impl Formatter for Standard {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>) {
        // `data`, most of a body, is copied as the text it travelled as; serde_json is the
        // serializer that knows raw values, and what is left to escape is a few short strings.
        super::parts::write_json(out, &payload(event, include_result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::render;
    use crate::webhook::Kind;
    use serde_json::json;
    use time::format_description::well_known::Rfc3339;
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

    proptest::proptest! {
        /// A body rendered after the queue (the event serialized by ingest, read back by
        /// dispatch, `data` carried as text) is byte for byte the one rendered from the event as
        /// ingest parsed it, and its `data` is what the platform sent.
        #[test]
        fn queued_bodies_are_byte_for_byte_the_ingested_ones(
            text in "\\PC*",
            control in "[\\x00-\\x1f\"\\\\/\u{7f}\u{2028}\u{fffd}]{0,40}",
            key in "\\PC{0,12}",
            int in proptest::num::i64::ANY,
            float in -1e300f64..1e300,
            include_result in proptest::bool::ANY,
        ) {
            let data = json!({"text": text, "control": control, key.clone(): [int, float, null, true],
                              "nested": {"k": control, "n": -0.0}});
            let parsed = Event::parse(
                &json!({"id": "evt_p", "type": "jobs.failed", "project": text,
                        "data": data, "result": {"r": text}}),
                datetime!(2026-11-22 10:00:00.123456 UTC),
            );
            // Inputs ingest would refuse (an over-long project, say) never reach a formatter.
            proptest::prop_assume!(parsed.is_ok());
            let mut e = parsed.unwrap();
            e.text = format!("{text}{control}");
            let queued: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            let body = render(Kind::Standard, &queued, include_result);
            proptest::prop_assert_eq!(
                String::from_utf8(body.clone()).unwrap(),
                String::from_utf8(render(Kind::Standard, &e, include_result)).unwrap()
            );
            let parsed: Value = serde_json::from_slice(&body).unwrap();
            proptest::prop_assert_eq!(&parsed["data"], &data);
            proptest::prop_assert_eq!(parsed["text"].as_str().unwrap(), e.text.as_str());
            proptest::prop_assert_eq!(
                parsed["timestamp"].as_str().unwrap(),
                e.occurred_at.format(&Rfc3339).unwrap()
            );
        }
    }
}
