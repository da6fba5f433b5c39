//! `herald verify`: checks the signature of a captured delivery, the way a receiver would, so a
//! receiver's author can tell a wrong secret from a wrong body.

use crate::client::CliError;
use herald_shared::signing::{self, SignatureError};
use std::io::Read;

#[derive(clap::Args)]
pub struct Args {
    /// The webhook's signing secret (`whsec_…`).
    #[arg(long, env = "HERALD_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Refuse timestamps further than this many seconds from now (replay protection).
    #[arg(long, default_value_t = 300)]
    tolerance: i64,
    /// Skip the timestamp check: for requests captured a while ago.
    #[arg(long)]
    any_time: bool,
}

/// Reads a captured HTTP request on stdin: the request line (optional), headers, a blank line,
/// then the body exactly as received.
pub fn run(args: Args) -> Result<(), CliError> {
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
    let request = Captured::parse(&raw)?;
    let header = |name: &str| {
        request
            .header(name)
            .ok_or_else(|| CliError::Usage(format!("the request has no `{name}` header")))
    };
    let id = header(signing::WEBHOOK_ID.as_str())?;
    let timestamp: i64 = header(signing::WEBHOOK_TIMESTAMP.as_str())?
        .parse()
        .map_err(|_| CliError::Usage("`webhook-timestamp` is not unix seconds".into()))?;
    let signature = header(signing::WEBHOOK_SIGNATURE.as_str())?;
    let secret = signing::parse_secret(&args.secret).map_err(|_| {
        CliError::Usage("--secret must be whsec_ and the base64 of 24 to 64 bytes".into())
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tolerance = if args.any_time {
        i64::MAX / 2
    } else {
        args.tolerance
    };
    match signing::verify(&secret, id, timestamp, signature, request.body, now, tolerance) {
        Ok(()) => {
            println!(
                "valid: signed by this secret ({} bytes, webhook-id {id}, {} s ago)",
                request.body.len(),
                now - timestamp
            );
            Ok(())
        }
        Err(SignatureError::Stale) => Err(CliError::Failed(format!(
            "invalid: the timestamp is {} s from now, over the {} s tolerance (--any-time skips this check)",
            (now - timestamp).abs(),
            args.tolerance
        ))),
        Err(SignatureError::Mismatch) => Err(CliError::Failed(
            "invalid: no signature matches this secret and body (wrong secret, or the body was changed, re-encoded or trimmed)".into(),
        )),
        Err(SignatureError::BadSecret) => Err(CliError::Usage("the secret is not whsec_<base64>".into())),
    }
}

struct Captured<'a> {
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> Captured<'a> {
    fn parse(raw: &'a [u8]) -> Result<Captured<'a>, CliError> {
        let (head, mut body) = match find(raw, b"\r\n\r\n") {
            Some(i) => (&raw[..i], &raw[i + 4..]),
            None => match find(raw, b"\n\n") {
                Some(i) => (&raw[..i], &raw[i + 2..]),
                None => {
                    return Err(CliError::Usage(
                        "expected headers, a blank line, then the body".into(),
                    ))
                }
            },
        };
        let head = std::str::from_utf8(head)
            .map_err(|_| CliError::Usage("the headers are not UTF-8".into()))?;
        let headers: Vec<(&str, &str)> = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| !name.contains(' '))
            .map(|(name, value)| (name.trim(), value.trim()))
            .collect();
        let captured = Captured { headers, body };
        // Shell captures often end with a newline the sender never sent.
        if let Some(len) = captured
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
        {
            body = &body[..len.min(body.len())];
        }
        Ok(Captured { body, ..captured })
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_raw_request_and_trims_to_content_length() {
        let raw = b"POST /hooks HTTP/1.1\r\nHost: x\r\nwebhook-id: evt_1\r\nContent-Length: 2\r\n\r\n{}\n";
        let c = Captured::parse(raw).unwrap();
        assert_eq!(c.header("Webhook-ID"), Some("evt_1"));
        assert_eq!(c.body, b"{}");
        let bare = b"webhook-id: evt_2\n\n{\"a\":1}";
        let c = Captured::parse(bare).unwrap();
        assert_eq!(c.header("webhook-id"), Some("evt_2"));
        assert_eq!(c.body, b"{\"a\":1}");
        assert!(Captured::parse(b"no blank line").is_err());
    }
}
