//! Event and webhook validation never panic, whatever the body; what they accept re-parses
//! to the same event.
#![no_main]

use herald_shared::event::Event;
use herald_shared::url_policy::{TargetPolicy, UrlRules};
use herald_shared::webhook::WebhookSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(event) = Event::parse(&value, time::OffsetDateTime::UNIX_EPOCH) {
        let text = serde_json::to_string(&event).expect("events serialize");
        let back: Event = serde_json::from_str(&text).expect("events round-trip");
        assert_eq!(back, event);
        // Formatting an accepted event never panics either.
        for kind in herald_shared::webhook::Kind::ALL {
            let body = herald_shared::format::render(kind, &event, true);
            serde_json::from_slice::<serde_json::Value>(&body).expect("formatters emit JSON");
        }
    }
    let _ = WebhookSpec::parse(&value, &UrlRules::new(TargetPolicy::Public));
});
