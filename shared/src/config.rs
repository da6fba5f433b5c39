//! Every setting Herald reads, from `HERALD_*` (and a few AWS) environment variables, validated
//! once at start-up. The README's configuration table mirrors this file.

use crate::secret::Secret;
use crate::url_policy::TargetPolicy;
use std::time::Duration;

/// Where the configuration is used: the defaults differ between Lambda and `herald dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lambda,
    Local,
}

/// The longest delivery timeout: a delivery job (the POST and the store and queue calls around
/// it, `runtime::JOB_CALLS` of them) must fit the dispatch function's 60 s timeout, or no job
/// would ever start before an invocation's deadline.
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(50);

#[derive(Debug, Clone)]
pub struct Config {
    /// The local stack's tenant key (`HERALD_API_KEY`); unused in Lambda.
    pub api_key: Secret,
    /// The admin key for `POST /v1/tenants` (`HERALD_ADMIN_KEY`); none disables admin routes.
    pub admin_key: Option<Secret>,
    /// The Secrets Manager secret (ARN or name) holding the admin key
    /// (`HERALD_ADMIN_KEY_SECRET`): the api Lambda reads it once at cold start, so the key is in
    /// no function's environment. Takes the place of `HERALD_ADMIN_KEY` when both are set.
    pub admin_key_secret: Option<String>,
    pub target_policy: TargetPolicy,
    /// Refuse `http://` webhook URLs (`HERALD_REQUIRE_HTTPS`).
    pub require_https: bool,
    /// The only ports webhooks may target (`HERALD_ALLOWED_PORTS`); none means any.
    pub allowed_ports: Option<crate::url_policy::PortSet>,
    /// Delay before each delivery attempt, counted from the previous one (`HERALD_RETRY_SCHEDULE`).
    pub retry_schedule: Vec<Duration>,
    /// The DynamoDB table (`HERALD_TABLE_NAME`).
    pub table_name: String,
    /// The events queue: its URL (`HERALD_QUEUE_URL`, set in Lambda) or, locally, its name
    /// (`HERALD_QUEUE_NAME`), created when absent.
    pub queue_url: Option<String>,
    pub queue_name: String,
    /// How many HTTP deliveries one dispatch container runs at once (`HERALD_DISPATCH_CONCURRENCY`).
    pub dispatch_concurrency: usize,
    /// Timeout of one delivery request (`HERALD_DELIVERY_TIMEOUT`).
    pub delivery_timeout: Duration,
    /// Webhooks one tenant may have (`HERALD_MAX_WEBHOOKS`).
    pub max_webhooks: usize,
    /// Deliveries in flight to one URL per container (`HERALD_ENDPOINT_CONCURRENCY`).
    pub endpoint_concurrency: usize,
    /// A webhook whose every attempt failed for this long is disabled (`HERALD_DISABLE_AFTER`).
    pub disable_after: Duration,
    /// Requests per second one tenant may make to one container (`HERALD_RATE_LIMIT`, bursts of
    /// twice that); 0 turns the limit off.
    pub rate_limit: u32,
    /// Receives of a message before the events queue moves it to the dead-letter queue: the
    /// template's `MaxReceiveCount` (`HERALD_MAX_RECEIVES`).
    pub max_receives: u32,
}

pub const DEFAULT_RETRY_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";
pub const DEFAULT_API_KEY: &str = "herald-dev-key";

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

impl Config {
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_lookup(mode, |name| std::env::var(name).ok())
    }

    /// The local stack's defaults: `herald dev` with no variable set. Tests and the bench start
    /// from it and change what they measure.
    pub fn local() -> Self {
        Self::from_lookup(Mode::Local, |_| None).expect("the defaults are valid")
    }

    /// Reads settings through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let target_policy = target_policy(get("HERALD_TARGET_POLICY").as_deref(), mode)?;
        let require_https = flag(
            "HERALD_REQUIRE_HTTPS",
            get("HERALD_REQUIRE_HTTPS").as_deref(),
        )?;
        let allowed_ports = get("HERALD_ALLOWED_PORTS")
            .map(|v| crate::url_policy::PortSet::parse(&v))
            .transpose()
            .map_err(named("HERALD_ALLOWED_PORTS"))?;
        let retry_schedule = parse_schedule(
            get("HERALD_RETRY_SCHEDULE")
                .as_deref()
                .unwrap_or(DEFAULT_RETRY_SCHEDULE),
        )
        .map_err(named("HERALD_RETRY_SCHEDULE"))?;
        let number = |name: &'static str, default: u64, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| ConfigError {
                    name,
                    message: format!("expected a whole number from {min} to {max}, got `{v}`"),
                }),
        };
        let duration = |name: &'static str, default: Duration, max: Duration| match get(name) {
            None => Ok(default),
            Some(v) => humantime::parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero() && *d <= max)
                .ok_or_else(|| ConfigError {
                    name,
                    message: format!("expected a duration such as `10s`, `12h` or `5d`, got `{v}`"),
                }),
        };
        let dispatch_concurrency = number("HERALD_DISPATCH_CONCURRENCY", 64, 1, 1024)? as usize;
        let delivery_timeout = duration(
            "HERALD_DELIVERY_TIMEOUT",
            Duration::from_secs(10),
            MAX_DELIVERY_TIMEOUT,
        )?;
        let max_webhooks = number("HERALD_MAX_WEBHOOKS", 100, 1, 10_000)? as usize;
        let endpoint_concurrency = number("HERALD_ENDPOINT_CONCURRENCY", 10, 1, 1024)? as usize;
        let disable_after = duration(
            "HERALD_DISABLE_AFTER",
            Duration::from_secs(5 * 86_400),
            Duration::MAX,
        )?;
        // 0 turns the limit off.
        let rate_limit = number("HERALD_RATE_LIMIT", 1000, 0, 1_000_000)? as u32;
        let max_receives = number(
            "HERALD_MAX_RECEIVES",
            crate::queue::MAX_RECEIVES.into(),
            1,
            1000,
        )? as u32;
        Ok(Config {
            api_key: Secret::new(get("HERALD_API_KEY").unwrap_or_else(|| DEFAULT_API_KEY.into())),
            admin_key: get("HERALD_ADMIN_KEY").map(Secret::new),
            admin_key_secret: get("HERALD_ADMIN_KEY_SECRET"),
            target_policy,
            require_https,
            allowed_ports,
            retry_schedule,
            table_name: get("HERALD_TABLE_NAME").unwrap_or_else(|| "herald".into()),
            queue_url: get("HERALD_QUEUE_URL"),
            queue_name: get("HERALD_QUEUE_NAME").unwrap_or_else(|| "herald-events".into()),
            dispatch_concurrency,
            delivery_timeout,
            max_webhooks,
            endpoint_concurrency,
            disable_after,
            rate_limit,
            max_receives,
        })
    }
}

/// The target policy: `public` in Lambda and `private` locally unless set.
fn target_policy(value: Option<&str>, mode: Mode) -> Result<TargetPolicy, ConfigError> {
    match value {
        None => Ok(match mode {
            Mode::Lambda => TargetPolicy::Public,
            Mode::Local => TargetPolicy::Private,
        }),
        Some("public") => Ok(TargetPolicy::Public),
        Some("private") => Ok(TargetPolicy::Private),
        Some("loopback") => Ok(TargetPolicy::Loopback),
        Some(other) => Err(ConfigError {
            name: "HERALD_TARGET_POLICY",
            message: format!("expected `public`, `private` or `loopback`, got `{other}`"),
        }),
    }
}

/// A reader's complaint about `name`'s value.
fn named(name: &'static str) -> impl FnOnce(String) -> ConfigError {
    move |message| ConfigError { name, message }
}

/// `true`/`1` or `false`/`0`; unset is `false`.
fn flag(name: &'static str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ConfigError {
            name,
            message: format!("expected `true` or `false`, got `{other}`"),
        }),
    }
}

/// The most attempts a retry schedule may have.
pub const MAX_SCHEDULE: usize = 20;

/// Parses `0s,5s,5m,30m,2h` into delays; at least one attempt, each at most a day.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let delays = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            humantime::parse_duration(part)
                .map_err(|e| format!("`{part}` is not a duration ({e}); use forms like 0s, 5m, 2h"))
                .and_then(|d| {
                    if d > Duration::from_secs(86_400) {
                        Err(format!("`{part}` is longer than 24h"))
                    } else {
                        Ok(d)
                    }
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > MAX_SCHEDULE {
        return Err(format!("at most {MAX_SCHEDULE} attempts"));
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(mode: Mode, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(mode, |k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_depend_on_mode() {
        let lambda = config(Mode::Lambda, &[]).unwrap();
        assert_eq!(lambda.target_policy, TargetPolicy::Public);
        let local = Config::local();
        assert_eq!(local.target_policy, TargetPolicy::Private);
        assert_eq!(local.api_key.expose(), "herald-dev-key");
        assert!(local.admin_key.is_none());
        assert_eq!(local.retry_schedule.len(), 8);
        assert_eq!(local.retry_schedule[2], Duration::from_secs(300));
        assert_eq!(local.delivery_timeout, Duration::from_secs(10));
        assert_eq!(local.max_webhooks, 100);
        assert_eq!(local.rate_limit, 1000);
        assert_eq!(local.endpoint_concurrency, 10);
        assert_eq!(local.disable_after, Duration::from_secs(5 * 86_400));
    }

    #[test]
    fn schedule_parses_and_rejects() {
        assert_eq!(
            parse_schedule("0s, 1s,2m").unwrap(),
            vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(120)
            ]
        );
        assert!(parse_schedule("5 parsecs").is_err());
        assert!(parse_schedule("").is_err());
        assert!(parse_schedule("48h").is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(Mode::Lambda, &[("HERALD_TARGET_POLICY", "open")]).unwrap_err();
        assert_eq!(err.name, "HERALD_TARGET_POLICY");
        let err = config(Mode::Lambda, &[("HERALD_DISPATCH_CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(err.name, "HERALD_DISPATCH_CONCURRENCY");
        let err = config(Mode::Lambda, &[("HERALD_ALLOWED_PORTS", "443,ssh")]).unwrap_err();
        assert_eq!(err.name, "HERALD_ALLOWED_PORTS");
        let err = config(Mode::Lambda, &[("HERALD_DELIVERY_TIMEOUT", "55s")]).unwrap_err();
        assert_eq!(err.name, "HERALD_DELIVERY_TIMEOUT");
        let err = config(Mode::Lambda, &[("HERALD_DISABLE_AFTER", "never")]).unwrap_err();
        assert_eq!(err.name, "HERALD_DISABLE_AFTER");
        let err = config(Mode::Lambda, &[("HERALD_ENDPOINT_CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(err.name, "HERALD_ENDPOINT_CONCURRENCY");
        let err = config(Mode::Lambda, &[("HERALD_RATE_LIMIT", "fast")]).unwrap_err();
        assert_eq!(err.name, "HERALD_RATE_LIMIT");
        let err = config(Mode::Lambda, &[("HERALD_MAX_WEBHOOKS", "-1")]).unwrap_err();
        assert_eq!(err.name, "HERALD_MAX_WEBHOOKS");
        let err = config(Mode::Lambda, &[("HERALD_RETRY_SCHEDULE", "soon")]).unwrap_err();
        assert_eq!(err.name, "HERALD_RETRY_SCHEDULE");
    }
}
