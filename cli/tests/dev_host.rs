//! `herald dev` answers only requests addressed to this machine: a DNS-rebinding page reaches
//! it at 127.0.0.1 but names its own host in `Host`, and gets a 421 problem instead of the
//! well-known tenant key's data.

use herald_tests::dev::DevServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// Sends one request over a fresh connection to the stack with this `Host` header (`None`:
/// none at all); the status code and the body.
fn request(dev: &DevServer, method: &str, path: &str, host: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", dev.port)).expect("herald dev listens");
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\n{host}Authorization: Bearer herald-dev-key\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, answer)
}

#[test]
fn only_requests_addressed_to_this_machine_are_answered() {
    let dev = DevServer::start(Path::new(env!("CARGO_BIN_EXE_herald")));
    let port = dev.port;
    for host in [
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("127.0.0.1:{port}"),
        format!("127.0.0.2:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, answer) = request(&dev, "GET", "/v1/webhooks", Some(&host));
        assert_eq!(status, 200, "{host}: {answer}");
    }
    for host in [
        Some(format!("rebind.example:{port}")),
        Some("rebind.example".to_string()),
        Some(format!("127.0.0.1.rebind.example:{port}")),
        Some(format!("0.0.0.0:{port}")),
        None,
    ] {
        for (method, path) in [
            ("GET", "/v1/webhooks"),
            ("POST", "/v1/events"),
            ("GET", "/v1/health"),
            ("GET", "/"),
        ] {
            let (status, answer) = request(&dev, method, path, host.as_deref());
            assert_eq!(status, 421, "{host:?} {method} {path}: {answer}");
            assert!(
                answer.contains("application/problem+json")
                    && answer.contains("urn:herald:problem:misdirected"),
                "{answer}"
            );
        }
    }
}
