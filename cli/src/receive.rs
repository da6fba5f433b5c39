//! `herald receive`: a receiver for trying Herald locally. Prints each request; with
//! `--secret` it checks the Standard Webhooks signature as a real receiver should.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use axum::Router;
use herald_shared::secret::Secret;
use herald_shared::signing;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The webhook's signing secret (whsec_...): verify every request and answer 401 if invalid.
    #[arg(long, env = "HERALD_WEBHOOK_SECRET")]
    secret: Option<String>,
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let secret = Arc::new(args.secret.map(Secret::new));
    let app = Router::new().fallback(any(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let secret = secret.clone();
        async move { receive(uri, headers, body, secret.as_ref().as_ref()) }
    }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!(
        "receiving on http://{}/ (Ctrl-C stops)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn receive(uri: Uri, headers: HeaderMap, body: Bytes, secret: Option<&Secret>) -> StatusCode {
    println!("── {uri}");
    for (name, value) in &headers {
        println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    println!("\n{}\n", String::from_utf8_lossy(&body));
    let Some(secret) = secret else {
        return StatusCode::NO_CONTENT;
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let timestamp = header(signing::WEBHOOK_TIMESTAMP.as_str())
        .parse()
        .unwrap_or(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match signing::verify(
        secret,
        header(signing::WEBHOOK_ID.as_str()),
        timestamp,
        header(signing::WEBHOOK_SIGNATURE.as_str()),
        &body,
        now,
        300,
    ) {
        Ok(()) => {
            println!("signature: valid");
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            println!("signature: INVALID ({e})");
            StatusCode::UNAUTHORIZED
        }
    }
}
