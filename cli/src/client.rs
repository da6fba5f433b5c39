//! A small client of the public HTTP API: the commands that manage webhooks, events and
//! deliveries all go through it, so every command reports API errors the same way.

use serde_json::Value;
use std::fmt;

/// Where the API is and who the caller is (`--url`/`HERALD_URL`, `--api-key`/`HERALD_API_KEY`).
#[derive(clap::Args, Clone)]
pub struct Target {
    /// Base URL of a Herald API.
    #[arg(
        long,
        global = true,
        env = "HERALD_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub url: String,
    /// The tenant key. The local stack's default key is used against a loopback URL.
    #[arg(long, global = true, env = "HERALD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// A failed command: what the user sees on stderr, and the exit code scripts branch on.
#[derive(Debug)]
pub enum CliError {
    /// The API answered with a problem (RFC 9457).
    Api { status: u16, problem: Value },
    /// The API could not be reached, or answered something that is not Herald.
    Transport(String),
    /// The command line or an input file is wrong; nothing was sent.
    Usage(String),
    /// A check the command ran did not pass (a signature that does not verify).
    Failed(String),
}

impl CliError {
    /// 1: the API refused or failed; 2: bad input, nothing sent; 3: unreachable; 4: check failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Transport(_) => 3,
            CliError::Failed(_) => 4,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api { status, problem } => {
                let title = problem["title"].as_str().unwrap_or("error");
                write!(f, "{status} {title}")?;
                if let Some(detail) = problem["detail"].as_str().filter(|d| !d.is_empty()) {
                    write!(f, ": {detail}")?;
                }
                for e in problem["errors"].as_array().into_iter().flatten() {
                    write!(
                        f,
                        "\n  {}: {}",
                        e["field"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )?;
                }
                Ok(())
            }
            CliError::Transport(m) | CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub fn new(target: &Target) -> Result<Client, CliError> {
        let base = target.url.trim_end_matches('/').to_string();
        let parsed =
            url::Url::parse(&base).map_err(|e| CliError::Usage(format!("--url {base}: {e}")))?;
        let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let key = match (&target.api_key, local) {
            (Some(key), _) => key.clone(),
            (None, true) => herald_shared::config::DEFAULT_API_KEY.to_string(),
            (None, false) => {
                return Err(CliError::Usage(
                    "set HERALD_API_KEY (or --api-key) to the tenant's key".into(),
                ))
            }
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("herald-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Transport(e.to_string()))?;
        Ok(Client { http, base, key })
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// A POST without a body, for routes that take none.
    pub async fn post_empty(&self, path: &str) -> Result<Value, CliError> {
        self.send(reqwest::Method::POST, path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Every page of a list route, in order.
    pub async fn list_all(&self, path: &str) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &cursor {
                Some(c) => {
                    self.get(&format!("{path}{sep}limit=100&cursor={c}"))
                        .await?
                }
                None => self.get(&format!("{path}{sep}limit=100")).await?,
            };
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(items),
            }
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Transport(format!("{url}: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::Transport(format!("{url}: {e}")))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                CliError::Transport(format!(
                    "{url} answered {status} with something that is not JSON: is it a Herald API?"
                ))
            })?
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(CliError::Api {
                status,
                problem: value,
            })
        }
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); users need the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut source = e.source();
    let mut text = match source {
        Some(s) => {
            source = s.source();
            s.to_string()
        }
        None => e.to_string(),
    };
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
