//! `herald apply -f webhooks.yaml` and `herald export`: webhooks as configuration.
//!
//! A file lists the webhooks one owner manages. `apply` makes the tenant's webhooks marked with
//! that owner (metadata `managed-by`) equal to the file, matched by name: it creates, updates and
//! deletes only those, never webhooks made by hand or by another owner. Strings may reference
//! environment variables (`${SLACK_TOKEN}`) so files hold no secrets.
//!
//! Protected header values and secrets are write-only in the API, so `apply` cannot read them
//! back to compare. It stores a salted SHA-256 fingerprint of them in metadata
//! (`apply-fingerprint`) and compares fingerprints instead.

use crate::client::{CliError, Client};
use crate::output::{self, Format};
use herald_shared::url_policy::TargetPolicy;
use herald_shared::webhook::{HeaderView, UrlRules, WebhookSpec, SPEC_FIELDS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const DEFAULT_OWNER: &str = "herald-apply";
const MANAGED_BY: &str = "managed-by";
const FINGERPRINT: &str = "apply-fingerprint";
/// What a plan compares: every field a user sets but the two apply handles itself (`metadata`
/// holds its marks, `secret` is write-only and compared by fingerprint).
fn compared_fields() -> impl Iterator<Item = &'static str> {
    SPEC_FIELDS
        .into_iter()
        .filter(|f| !matches!(*f, "metadata" | "secret"))
}

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The configuration file (YAML or JSON).
    #[arg(short = 'f', long = "file")]
    file: std::path::PathBuf,
    /// Print the plan as a diff and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Whose webhooks to export (default: the owner `herald apply` uses by default).
    #[arg(long, default_value = DEFAULT_OWNER)]
    owner: String,
    /// Write to this file instead of stdout.
    #[arg(short = 'f', long = "file")]
    file: Option<std::path::PathBuf>,
}

/// The file format; `examples/webhooks.schema.json` is its JSON Schema.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct File {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default)]
    webhooks: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    name: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    events: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filters: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<HeaderEntry>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    include_result: bool,
    #[serde(default = "enabled", skip_serializing_if = "Clone::clone")]
    enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderEntry {
    key: String,
    value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    protected: bool,
}

/// One webhook of the file, resolved and checked.
struct Desired {
    name: String,
    /// The create/PUT body, with values from the environment.
    body: Value,
    /// The fields a plan compares, as the API would show them.
    view: Map<String, Value>,
    /// Protected values and the secret, for the fingerprint.
    secrets: Vec<(String, String)>,
    /// Field → the file's text where it came from the environment, so plans never print it.
    templated: BTreeMap<&'static str, String>,
}

enum Change {
    Create(Desired),
    Update {
        id: String,
        desired: Desired,
        diffs: Vec<(String, Value, Value)>,
    },
    Delete {
        id: String,
        name: String,
    },
    Unchanged {
        name: String,
    },
}

pub async fn apply(client: &Client, format: Format, args: ApplyArgs) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.file.display())))?;
    let (owner, desired) = load(&text, &|name| std::env::var(name).ok())
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.file.display())))?;
    let current = client.list_all("/v1/webhooks").await?;
    let plan = plan(&owner, desired, &current);
    print_plan(format, &owner, &plan, args.dry_run);
    if args.dry_run {
        return Ok(());
    }
    for change in &plan {
        match change {
            Change::Create(d) => {
                client
                    .post("/v1/webhooks", &with_marks(d, &owner, None))
                    .await?;
            }
            Change::Update { id, desired, .. } => {
                let salt = current
                    .iter()
                    .find(|w| w["id"] == id.as_str())
                    .and_then(|w| fingerprint_salt(&w["metadata"][FINGERPRINT]));
                let body = with_marks(desired, &owner, salt.as_deref());
                client.put(&format!("/v1/webhooks/{id}"), &body).await?;
            }
            Change::Delete { id, .. } => {
                client.delete(&format!("/v1/webhooks/{id}")).await?;
            }
            Change::Unchanged { .. } => {}
        }
    }
    Ok(())
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<(), CliError> {
    let current = client.list_all("/v1/webhooks").await?;
    let webhooks = current
        .iter()
        .filter(|w| w["metadata"][MANAGED_BY] == args.owner.as_str())
        .map(entry_of)
        .collect();
    let file = File {
        version: 1,
        owner: (args.owner != DEFAULT_OWNER).then_some(args.owner),
        webhooks,
    };
    let text = format!(
        "# Exported by `herald export`. Protected values and secrets are write-only: set the\n\
         # environment variables named below before `herald apply -f` this file.\n{}",
        yaml_serde::to_string(&file).map_err(|e| CliError::Usage(e.to_string()))?
    );
    match args.file {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Parses a file, resolves `${VAR}`s with `env`, and checks every webhook as the API would, so
/// a bad file fails before anything is sent, with each problem named by its path.
fn load(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Desired>), String> {
    let file: File = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    if file.version != 1 {
        return Err(format!(
            "version {} is not supported; use version: 1",
            file.version
        ));
    }
    let owner = file.owner.clone().unwrap_or_else(|| DEFAULT_OWNER.into());
    if owner.is_empty() || owner.chars().count() > 256 {
        return Err("owner: 1 to 256 characters".into());
    }
    let rules = UrlRules {
        // The API checks targets against its own policy; here only the URL's form is checked.
        policy: TargetPolicy::Private,
        require_https: false,
        ports: None,
    };
    let mut problems = Vec::new();
    let mut desired: Vec<Desired> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, entry) in file.webhooks.iter().enumerate() {
        let at = format!("webhooks[{i}]");
        if !names.insert(entry.name.trim()) {
            problems.push(format!("{at}.name: `{}` is used twice", entry.name));
            continue;
        }
        match resolve(entry, env, &rules) {
            Ok(d) => desired.push(d),
            Err(errors) => problems.extend(errors.into_iter().map(|e| format!("{at}.{e}"))),
        }
    }
    if problems.is_empty() {
        Ok((owner, desired))
    } else {
        Err(problems.join("\n"))
    }
}

fn resolve(
    entry: &Entry,
    env: &dyn Fn(&str) -> Option<String>,
    rules: &UrlRules,
) -> Result<Desired, Vec<String>> {
    let mut errors = Vec::new();
    let mut templated = BTreeMap::new();
    let mut sub =
        |field: &'static str, text: &str, errors: &mut Vec<String>| match substitute(text, env) {
            Ok(value) => {
                if value != text {
                    templated.insert(field, text.to_string());
                }
                value
            }
            Err(missing) => {
                errors.push(format!(
                    "{field}: environment variable {missing} is not set"
                ));
                String::new()
            }
        };
    let url = sub("url", &entry.url, &mut errors);
    let headers: Vec<Value> = entry
        .headers
        .iter()
        .map(|h| {
            let value = sub("headers", &h.value, &mut errors);
            json!({"key": h.key, "value": value, "protected": h.protected})
        })
        .collect();
    let secret = entry
        .secret
        .as_deref()
        .map(|s| sub("secret", s, &mut errors));
    let mut body = json!({
        "name": entry.name, "description": entry.description, "url": url,
        "kind": entry.kind.as_deref().unwrap_or("standard"), "events": entry.events,
        "filters": entry.filters.clone().unwrap_or(Value::Null), "headers": headers,
        "include_result": entry.include_result, "enabled": entry.enabled,
    });
    if let Some(secret) = &secret {
        body["secret"] = json!(secret);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let spec = WebhookSpec::parse(&body, rules).map_err(|e| match e {
        herald_shared::Error::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        other => vec![other.to_string()],
    })?;
    let mut secrets: Vec<(String, String)> = spec
        .headers
        .iter()
        .filter(|h| h.protected)
        .map(|h| (h.key.to_ascii_lowercase(), h.value.expose().to_string()))
        .collect();
    secrets.sort();
    if let Some(s) = &spec.secret {
        secrets.push(("secret".into(), s.expose().to_string()));
    }
    // The settings as the API shows them, so a plan compares like with like.
    let view = compared(
        &serde_json::to_value(spec.map_headers(|h| HeaderView::from(h))).expect("serializes"),
    );
    let name = spec.name;
    Ok(Desired {
        name,
        body,
        view,
        secrets,
        templated,
    })
}

/// `${NAME}` → the variable's value; `$${` stays a literal `${`. Errors name a missing variable.
fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(format!("(unclosed `${{` in `{text}`)"));
            };
            let name = &after[..end];
            out.push_str(&env(name).ok_or_else(|| name.to_string())?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn compared(view: &Value) -> Map<String, Value> {
    compared_fields()
        .map(|k| (k.to_string(), view.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

fn plan(owner: &str, desired: Vec<Desired>, current: &[Value]) -> Vec<Change> {
    let mut managed: Vec<&Value> = current
        .iter()
        .filter(|w| w["metadata"][MANAGED_BY] == owner)
        .collect();
    let mut changes = Vec::new();
    for d in desired {
        let Some(pos) = managed.iter().position(|w| w["name"] == d.name.as_str()) else {
            changes.push(Change::Create(d));
            continue;
        };
        let existing = managed.remove(pos);
        let actual = compared(existing);
        let mut diffs: Vec<(String, Value, Value)> = compared_fields()
            .filter(|k| actual[*k] != d.view[*k])
            .map(|k| (k.to_string(), actual[k].clone(), d.view[k].clone()))
            .collect();
        let stored = &existing["metadata"][FINGERPRINT];
        let same_secrets = match (fingerprint_salt(stored), d.secrets.is_empty()) {
            (None, true) => true,
            (Some(salt), false) => stored.as_str() == Some(&fingerprint(&salt, &d.secrets)),
            _ => false,
        };
        if !same_secrets {
            diffs.push((
                "protected values or secret".into(),
                json!("(stored)"),
                json!("(changed)"),
            ));
        }
        let id = existing["id"].as_str().unwrap_or_default().to_string();
        if diffs.is_empty() {
            changes.push(Change::Unchanged { name: d.name });
        } else {
            changes.push(Change::Update {
                id,
                desired: d,
                diffs,
            });
        }
    }
    for w in managed {
        changes.push(Change::Delete {
            id: w["id"].as_str().unwrap_or_default().into(),
            name: w["name"].as_str().unwrap_or_default().into(),
        });
    }
    changes
}

/// The body apply sends: the file's webhook, marked as the owner's, with its fingerprint.
fn with_marks(d: &Desired, owner: &str, salt: Option<&str>) -> Value {
    let mut body = d.body.clone();
    let mut metadata = json!({MANAGED_BY: owner});
    if !d.secrets.is_empty() {
        let salt = salt.map(str::to_string).unwrap_or_else(new_salt);
        metadata[FINGERPRINT] = json!(fingerprint(&salt, &d.secrets));
    }
    body["metadata"] = metadata;
    body
}

fn new_salt() -> String {
    use base64::Engine;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("the system has randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(salt)
}

/// `v1.<salt>.<base64 SHA-256 of salt and values>[.s]`: `.s` records that a secret is managed,
/// so `export` knows to ask for one.
fn fingerprint(salt: &str, secrets: &[(String, String)]) -> String {
    use base64::Engine;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(&serde_json::to_vec(secrets).expect("serializes"));
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish());
    let flag = if secrets.iter().any(|(k, _)| k == "secret") {
        ".s"
    } else {
        ""
    };
    format!("v1.{salt}.{hash}{flag}")
}

fn fingerprint_salt(stored: &Value) -> Option<String> {
    let mut parts = stored.as_str()?.split('.');
    (parts.next()? == "v1").then_some(())?;
    parts.next().map(str::to_string)
}

/// A webhook as a file entry; write-only values become environment references.
fn entry_of(w: &Value) -> Entry {
    let name = w["name"].as_str().unwrap_or_default().to_string();
    let var = |what: &str| {
        let slug: String = format!("{name}_{what}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("${{HERALD_{slug}}}")
    };
    let filters = w["filters"].as_object().filter(|f| !f.is_empty());
    Entry {
        url: w["url"].as_str().unwrap_or_default().into(),
        kind: w["kind"]
            .as_str()
            .filter(|k| *k != "standard")
            .map(str::to_string),
        events: serde_json::from_value(w["events"].clone()).unwrap_or_default(),
        description: w["description"].as_str().unwrap_or_default().into(),
        filters: filters.map(|f| Value::Object(f.clone())),
        headers: w["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let key = h["key"].as_str().unwrap_or_default().to_string();
                let protected = h["protected"] == true;
                HeaderEntry {
                    value: if protected {
                        var(&key)
                    } else {
                        h["value"].as_str().unwrap_or_default().into()
                    },
                    key,
                    protected,
                }
            })
            .collect(),
        include_result: w["include_result"] == true,
        enabled: w["enabled"] != false,
        secret: w["metadata"][FINGERPRINT]
            .as_str()
            .filter(|f| f.ends_with(".s"))
            .map(|_| var("secret")),
        name,
    }
}

fn print_plan(format: Format, owner: &str, plan: &[Change], dry_run: bool) {
    let count = |f: fn(&Change) -> bool| plan.iter().filter(|c| f(c)).count();
    let (create, update, delete, same) = (
        count(|c| matches!(c, Change::Create(_))),
        count(|c| matches!(c, Change::Update { .. })),
        count(|c| matches!(c, Change::Delete { .. })),
        count(|c| matches!(c, Change::Unchanged { .. })),
    );
    if format == Format::Json {
        let changes: Vec<Value> = plan
            .iter()
            .map(|c| match c {
                Change::Create(d) => json!({"action": "create", "name": d.name}),
                Change::Update { id, desired, diffs } => json!({"action": "update", "id": id,
                    "name": desired.name,
                    "fields": diffs.iter().map(|(f, _, _)| f).collect::<Vec<_>>()}),
                Change::Delete { id, name } => json!({"action": "delete", "id": id, "name": name}),
                Change::Unchanged { name } => json!({"action": "none", "name": name}),
            })
            .collect();
        output::json(
            &json!({"owner": owner, "dry_run": dry_run, "changes": changes,
            "summary": {"create": create, "update": update, "delete": delete, "unchanged": same}}),
        );
        return;
    }
    for change in plan {
        match change {
            Change::Create(d) => {
                println!("+ {}", d.name);
                for (k, v) in &d.view {
                    println!("+     {k}: {}", shown(d, k, v));
                }
            }
            Change::Update { id, desired, diffs } => {
                println!("~ {} ({id})", desired.name);
                for (field, old, new) in diffs {
                    println!("-     {field}: {}", old);
                    println!("+     {field}: {}", shown(desired, field, new));
                }
            }
            Change::Delete { id, name } => println!("- {name} ({id})"),
            Change::Unchanged { name } => println!("  {name} (unchanged)"),
        }
    }
    let verb = if dry_run { "would" } else { "will" };
    if create + update + delete == 0 {
        println!("No changes: {same} webhook(s) of owner `{owner}` match the file.");
    } else {
        println!(
            "Plan: {create} to create, {update} to update, {delete} to delete, {same} unchanged (owner `{owner}`; {} {verb} be sent).",
            if dry_run { "nothing" } else { "changes" }
        );
    }
}

/// A value as a plan shows it: fields filled from the environment show the file's reference.
fn shown(d: &Desired, field: &str, value: &Value) -> String {
    match d.templated.iter().find(|(k, _)| **k == field) {
        Some((_, template)) if field == "url" => format!("{template:?} (from the environment)"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "HOOK" => Some("https://hooks.example.com/T1/B2".into()),
            _ => None,
        }
    }

    #[test]
    fn substitution_resolves_escapes_and_names_missing_variables() {
        assert_eq!(substitute("Token ${TOKEN}", &env).unwrap(), "Token s3cret");
        assert_eq!(substitute("$${TOKEN} $5", &env).unwrap(), "${TOKEN} $5");
        assert_eq!(substitute("${NOPE}", &env).unwrap_err(), "NOPE");
        assert!(substitute("${TOKEN", &env).is_err());
    }

    #[test]
    fn a_bad_file_names_every_problem_by_path() {
        let text = r#"
version: 1
webhooks:
  - name: a
    url: ${HOOK}
    events: [experiments.done, nope.never]
    kind: pager
  - name: a
    url: https://x.example.com
    events: ["*"]
  - name: b
    url: ${MISSING}
    events: ["*"]
"#;
        let err = load(text, &env).err().unwrap();
        assert!(
            err.contains("webhooks[0].events[1]: unknown event type"),
            "{err}"
        );
        assert!(
            err.contains("webhooks[0].kind: unknown kind `pager`"),
            "{err}"
        );
        assert!(err.contains("webhooks[1].name: `a` is used twice"), "{err}");
        assert!(
            err.contains("webhooks[2].url: environment variable MISSING is not set"),
            "{err}"
        );
        let unknown = load("version: 1\nwebhooks:\n  - name: a\n    url: https://x.example.com\n    events: ['*']\n    evnts: []\n", &env).err().unwrap();
        assert!(unknown.contains("evnts"), "{unknown}");
        assert!(load("version: 2\n", &env)
            .err()
            .unwrap()
            .contains("version 2"));
    }

    #[test]
    fn fingerprints_change_with_any_protected_value_and_keep_their_salt() {
        let a = vec![("authorization".to_string(), "Token 1".to_string())];
        let b = vec![("authorization".to_string(), "Token 2".to_string())];
        let fa = fingerprint("salt", &a);
        assert_eq!(fa, fingerprint("salt", &a));
        assert_ne!(fa, fingerprint("salt", &b));
        assert_ne!(fa, fingerprint("pepper", &a));
        assert_eq!(fingerprint_salt(&json!(fa)).as_deref(), Some("salt"));
        assert!(!fa.contains("Token"));
        let with_secret = vec![("secret".to_string(), "whsec_x".to_string())];
        assert!(fingerprint("salt", &with_secret).ends_with(".s"));
    }
}
