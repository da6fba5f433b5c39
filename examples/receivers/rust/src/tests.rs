use super::*;

// The Standard Webhooks specification's reference vector.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", ID.parse().unwrap());
    headers.insert("webhook-timestamp", TS.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers
}

#[test]
fn the_reference_vector_verifies() {
    assert_eq!(verify(SECRET, &headers(SIGNATURE), BODY, TS), Ok(()));
}

#[test]
fn any_v1_signature_may_match_as_after_a_rotation() {
    let other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for list in [
        format!("{other} {SIGNATURE}"),
        format!("{SIGNATURE} {other}"),
        format!("v2,{} {SIGNATURE}", &SIGNATURE[3..]),
    ] {
        assert_eq!(verify(SECRET, &headers(&list), BODY, TS), Ok(()), "{list}");
    }
    assert_eq!(
        verify(
            SECRET,
            &headers(&format!("v2,{}", &SIGNATURE[3..])),
            BODY,
            TS
        ),
        Err(Error::NoMatch),
        "only v1 signatures count"
    );
}

#[test]
fn a_changed_body_id_or_secret_does_not_verify() {
    assert_eq!(
        verify(SECRET, &headers(SIGNATURE), br#"{"test": 2432232315}"#, TS),
        Err(Error::NoMatch)
    );
    let mut other_id = headers(SIGNATURE);
    other_id.insert("webhook-id", "msg_other".parse().unwrap());
    assert_eq!(verify(SECRET, &other_id, BODY, TS), Err(Error::NoMatch));
    let other_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        verify(other_secret, &headers(SIGNATURE), BODY, TS),
        Err(Error::NoMatch)
    );
    assert_eq!(
        verify("whsec_not base64!", &headers(SIGNATURE), BODY, TS),
        Err(Error::BadSecret)
    );
}

#[test]
fn timestamps_more_than_five_minutes_away_are_refused() {
    for now in [TS - TOLERANCE_SECS, TS + TOLERANCE_SECS] {
        assert_eq!(verify(SECRET, &headers(SIGNATURE), BODY, now), Ok(()));
    }
    for now in [TS - TOLERANCE_SECS - 1, TS + TOLERANCE_SECS + 1] {
        assert_eq!(
            verify(SECRET, &headers(SIGNATURE), BODY, now),
            Err(Error::Stale)
        );
    }
}

#[test]
fn a_missing_header_is_refused() {
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut partial = headers(SIGNATURE);
        partial.remove(name);
        assert_eq!(
            verify(SECRET, &partial, BODY, TS),
            Err(Error::MissingHeader(name))
        );
    }
}
