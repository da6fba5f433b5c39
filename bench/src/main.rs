//! `make bench`: how close Herald's dispatch comes to a bare HTTP client on this machine, and
//! what it costs in CPU, instructions, memory and start-up time, and on AWS per delivery. Every
//! figure is min / median / max over `--runs` runs (5 by default), but the cost meter's, which
//! counts billed units and runs once; the last line printed is the throughput ratio.

mod coldstart;
mod cost;
mod fixture;
mod hotpath;
mod ingest;
mod memory;
mod receiver;
mod sizes;
mod stack;
mod stats;
mod throughput;

use clap::{Parser, Subcommand};
use herald_shared::webhook::Kind;
use stats::Spread;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Herald benchmarks (make bench)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every benchmark, with a summary.
    All {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Deliveries per throughput run.
        #[arg(long, default_value_t = 20_000)]
        deliveries: usize,
        /// Where the release binaries are (herald, ingest, dispatch, api).
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// The venv holding moto_server, for the DynamoDB/SQS run.
        #[arg(long, default_value = ".venv")]
        venv: PathBuf,
    },
    /// The cost meter: `herald dev` on moto behind a metering proxy; DynamoDB units, SQS
    /// requests, Lambda and API Gateway per delivery, priced per million. Every scenario (the
    /// four fan-out ones, then failing-schedule), one of them with --scenario, or one of your
    /// own when any of --events, --fanout, --batch is given.
    Cost {
        /// Only this one of the project's scenarios (e.g. `failing-schedule`, `fanout1-post`).
        #[arg(long, conflicts_with_all = ["events", "fanout", "batch"])]
        scenario: Option<String>,
        /// Events to post (default 500).
        #[arg(long)]
        events: Option<usize>,
        /// Webhooks each event goes to (default 1).
        #[arg(long)]
        fanout: Option<usize>,
        /// Events per POST (1: `/v1/events`; more: `/v1/events/batch`; default 100).
        #[arg(long)]
        batch: Option<usize>,
        /// The `herald` binary to meter.
        #[arg(long, default_value = "target/release/herald")]
        herald: PathBuf,
        #[arg(long, default_value = ".venv")]
        venv: PathBuf,
        /// The SAM template the functions' memory and the dispatch batch size are read from.
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
    },
    /// Allocation sizes on the delivery path (a dispatch job's future); fails when one
    /// outgrows the allocator's per-thread cache.
    Sizes,
    /// A 204 receiver (used by the others; prints `listening <addr>`).
    Receiver {
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        #[arg(long)]
        latency: bool,
    },
    /// Match + format + sign, for callgrind.
    Hotpath {
        #[arg(long, default_value = "standard")]
        kind: String,
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
    },
    /// Peak RSS with this many deliveries in flight (prints JSON).
    Memory {
        #[arg(long, default_value_t = 1000)]
        in_flight: usize,
    },
    /// Dispatch throughput against the bare client at one fan-out: the quick loop for work on
    /// the ratio (`all` runs fan-outs 1, 10 and 1,000).
    Throughput {
        #[arg(long, default_value_t = 1)]
        fanout: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 20_000)]
        deliveries: usize,
        /// Run only this side (`herald`, two pollers, or `bare`), so a profiler sees it alone.
        #[arg(long)]
        only: Option<String>,
    },
    /// ~10,000 deliveries at `fanout` webhooks per event, or 1,000 events to one of `webhooks`,
    /// or with `--patterns`, 20 events matched against `webhooks` webhooks that each take the
    /// event's type and filter on as many project-name patterns as validation allows, none
    /// matching (prints JSON).
    Scale {
        #[arg(long, default_value_t = 1)]
        fanout: usize,
        #[arg(long, default_value_t = 0)]
        webhooks: usize,
        /// `hostile` (the worst case for a backtracking matcher) or `plain` patterns.
        #[arg(long)]
        patterns: Option<String>,
    },
}

fn kind(name: &str) -> Kind {
    match name {
        "slack" => Kind::Slack,
        _ => Kind::Standard,
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match cli.command {
        Some(Cmd::Receiver { delay_ms, latency }) => runtime.block_on(receiver::serve(
            std::time::Duration::from_millis(delay_ms),
            latency,
        )),
        Some(Cmd::Cost {
            scenario,
            events,
            fanout,
            batch,
            herald,
            venv,
            template,
        }) => {
            let custom = events.is_some() || fanout.is_some() || batch.is_some();
            let (scenarios, failing) = if custom {
                let own = cost::Scenario::new(
                    events.unwrap_or(500),
                    fanout.unwrap_or(1),
                    batch.unwrap_or(100),
                );
                (vec![own], false)
            } else if let Some(name) = scenario {
                let mut chosen = cost::scenarios();
                chosen.retain(|s| s.name == name);
                let failing = name == cost::FAILING_SCHEDULE;
                if chosen.is_empty() && !failing {
                    let known: Vec<String> =
                        cost::scenarios().into_iter().map(|s| s.name).collect();
                    eprintln!(
                        "no scenario {name}: {}, {}",
                        known.join(", "),
                        cost::FAILING_SCHEDULE
                    );
                    std::process::exit(2);
                }
                (chosen, failing)
            } else {
                (cost::scenarios(), true)
            };
            let mut reports =
                runtime.block_on(cost::run_all(&herald, &venv, &template, &scenarios));
            if failing {
                reports.push(runtime.block_on(cost::run_failing(&venv, &template)));
            }
            let mut failed = false;
            for report in reports {
                match report {
                    Ok(report) => println!("{report}"),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            if failed {
                std::process::exit(1);
            }
        }
        Some(Cmd::Hotpath {
            kind: k,
            iterations,
        }) => {
            println!("{}", hotpath::run(kind(&k), iterations));
        }
        Some(Cmd::Sizes) => {
            let (text, fits) = sizes::line();
            println!("{text}");
            if !fits {
                std::process::exit(1);
            }
        }
        Some(Cmd::Memory { in_flight }) => {
            let (before, after) = runtime.block_on(memory::run(in_flight));
            println!("{}", serde_json::json!({"before": before, "peak": after}));
        }
        Some(Cmd::Throughput {
            fanout,
            runs,
            deliveries,
            only,
        }) => {
            let receiver = receiver::Receiver::spawn(0, false);
            if let Some(side) = only {
                runtime.block_on(one_side(&receiver, &side, fanout, runs.max(1), deliveries));
                return;
            }
            let (line, ratio) =
                runtime.block_on(throughput_line(&receiver, fanout, runs.max(1), deliveries));
            println!("{line}\nratio {ratio:.2}");
        }
        Some(Cmd::Scale {
            fanout,
            webhooks,
            patterns,
        }) => {
            let answer = match patterns {
                Some(kind) => runtime.block_on(project_patterns(webhooks, &kind)),
                None => runtime.block_on(scale(fanout, webhooks)),
            };
            println!("{answer}");
        }
        Some(Cmd::All {
            runs,
            deliveries,
            bin_dir,
            venv,
        }) => runtime.block_on(all(runs, deliveries, &bin_dir, &venv)),
        None => runtime.block_on(all(
            5,
            20_000,
            Path::new("target/release"),
            Path::new(".venv"),
        )),
    }
}

/// Runs a subcommand of this binary in a fresh process and parses its JSON answer.
fn subprocess(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `records` through `dispatcher` ten at a time, as the event source hands them over;
/// the deliveries that succeeded.
async fn dispatch_in_batches(
    dispatcher: &herald_shared::service::Dispatcher,
    records: &[herald_shared::service::QueueRecord],
) -> u64 {
    let mut delivered = 0;
    for batch in records.chunks(10) {
        let handled = dispatcher.handle(batch, None).await;
        assert!(handled.failed.is_empty());
        delivered += handled.metrics.succeeded;
    }
    delivered
}

async fn scale(fanout: usize, webhooks: usize) -> serde_json::Value {
    use herald_shared::queue::MemoryQueue;
    use herald_shared::store::{MemoryStore, Store};
    use std::sync::Arc;
    let receiver = receiver::Receiver::spawn(0, false);
    let config = fixture::config();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let events = if webhooks > 0 {
        // Many subscriptions, one of which matches: the cost of matching grows with the tenant.
        for i in 0..webhooks {
            let w = fixture::webhook(
                i,
                &format!("{}/w/{i}", receiver.url),
                &["builds.failed"],
                &config,
            );
            assert!(store.create_webhook(&w, usize::MAX).await.unwrap());
        }
        let w = fixture::webhook(
            webhooks,
            &format!("{}/w/match", receiver.url),
            &["experiments.failed"],
            &config,
        );
        assert!(store.create_webhook(&w, usize::MAX).await.unwrap());
        1000
    } else {
        fixture::subscribe(store.as_ref(), &receiver.url, fanout, &config).await;
        // About 10,000 deliveries whatever the fan-out, so small fan-outs are not one POST.
        (10_000 / fanout).max(1)
    };
    let dispatcher =
        herald_shared::runtime::dispatcher(&config, store, Arc::new(MemoryQueue::default()));
    let records = fixture::records(0..events);
    let started = std::time::Instant::now();
    let delivered = dispatch_in_batches(&dispatcher, &records).await;
    let wall = started.elapsed().as_secs_f64();
    serde_json::json!({
        "deliveries": delivered,
        "per_second": delivered as f64 / wall,
        "ms_per_event": wall * 1000.0 / events as f64,
        "peak_rss": stats::peak_rss(),
    })
}

/// Matching cost of project-name filters: `webhooks` webhooks take the event's type, each with
/// as many patterns as validation allows, none matching the event's project (the longest an
/// event may carry); one more webhook without filters gets each event.
/// `hostile` patterns are `*aaa…ab` against a project of 256 `a`s: a backtracking matcher
/// retries the tail at every position it still fits, (256 − k)·k steps for a tail of k, most
/// at k = 128. `plain` ones are literals of the longest length that differ at once.
async fn project_patterns(webhooks: usize, kind: &str) -> serde_json::Value {
    use herald_shared::queue::MemoryQueue;
    use herald_shared::store::{MemoryStore, Store};
    use herald_shared::webhook::{MAX_PROJECT_NAMES, MAX_PROJECT_PATTERN_LEN};
    use std::sync::Arc;
    const EVENTS: usize = 20;
    let receiver = receiver::Receiver::spawn(0, false);
    let config = fixture::config();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let project = "a".repeat(256);
    let patterns: Vec<String> = (0..MAX_PROJECT_NAMES)
        .map(|j| match kind {
            "hostile" => format!("*{}b", "a".repeat((MAX_PROJECT_PATTERN_LEN - 2).min(127))),
            "plain" => format!("{j:0>width$}", width = MAX_PROJECT_PATTERN_LEN),
            other => panic!("--patterns takes hostile or plain, not {other}"),
        })
        .collect();
    for i in 0..webhooks {
        let body = serde_json::json!({
            "url": format!("{}/w/{i}", receiver.url), "events": ["experiments.failed"],
            "filters": {"project_names": patterns},
        });
        store
            .create_webhook(&fixture::webhook_from(i, body, &config), usize::MAX)
            .await
            .unwrap();
    }
    let all = fixture::webhook(
        webhooks,
        &format!("{}/w/all", receiver.url),
        &["experiments.failed"],
        &config,
    );
    assert!(store.create_webhook(&all, usize::MAX).await.unwrap());
    let dispatcher =
        herald_shared::runtime::dispatcher(&config, store, Arc::new(MemoryQueue::default()));
    let records = fixture::records_in(&project, 0..EVENTS);
    let started = std::time::Instant::now();
    let delivered = dispatch_in_batches(&dispatcher, &records).await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(
        delivered, EVENTS as u64,
        "only the unfiltered webhook matches"
    );
    serde_json::json!({
        "patterns_per_webhook": MAX_PROJECT_NAMES,
        "pattern_chars": patterns[0].chars().count(),
        "ms_per_event": wall * 1000.0 / EVENTS as f64,
    })
}

fn mb(bytes: f64) -> f64 {
    bytes / 1_048_576.0
}

/// Batches in flight at once in the throughput figure, as the local stack's pollers run them.
const POLLERS: usize = 2;

/// `runs` alternated runs of the bare client and Herald at `fanout`: the summary line and the
/// median ratio.
async fn throughput_line(
    receiver: &receiver::Receiver,
    fanout: usize,
    runs: usize,
    deliveries: usize,
) -> (String, f64) {
    let (mut h, mut b, mut ratio, mut hcpu, mut bcpu) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut one, mut one_ratio, mut rh, mut rb) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        // Alternated, so drift in the machine's load hits both alike.
        let bare = throughput::bare(receiver, fanout, deliveries, POLLERS).await;
        let herald = throughput::herald(receiver, fanout, deliveries, POLLERS).await;
        let single = throughput::herald(receiver, fanout, deliveries, 1).await;
        h.push(herald.per_second());
        b.push(bare.per_second());
        ratio.push(herald.per_second() / bare.per_second());
        hcpu.push(herald.cpu_us_per_delivery());
        bcpu.push(bare.cpu_us_per_delivery());
        rh.push(herald.receiver_cpu_us_per_delivery());
        rb.push(bare.receiver_cpu_us_per_delivery());
        one.push(single.per_second());
        one_ratio.push(single.per_second() / bare.per_second());
    }
    let r = Spread::of(&ratio);
    let text = format!(
        "dispatch fan-out {fanout:>4}: herald ({POLLERS} pollers) {} deliveries/s, bare {} /s, ratio {}; CPU µs/delivery herald {}, bare {} (receiver's {} and {}); one batch at a time {} /s, ratio {}",
        Spread::of(&h).show(0),
        Spread::of(&b).show(0),
        r.show(2),
        Spread::of(&hcpu).show(1),
        Spread::of(&bcpu).show(1),
        Spread::of(&rh).show(1),
        Spread::of(&rb).show(1),
        Spread::of(&one).show(0),
        Spread::of(&one_ratio).show(2)
    );
    (text, r.median)
}

/// One side of the throughput figure alone, for profiling.
async fn one_side(
    receiver: &receiver::Receiver,
    side: &str,
    fanout: usize,
    runs: usize,
    deliveries: usize,
) {
    let (mut rate, mut cpu) = (vec![], vec![]);
    for _ in 0..runs {
        let run = match side {
            "herald" => throughput::herald(receiver, fanout, deliveries, POLLERS).await,
            "bare" => throughput::bare(receiver, fanout, deliveries, POLLERS).await,
            other => panic!("--only takes herald or bare, not {other}"),
        };
        rate.push(run.per_second());
        cpu.push(run.cpu_us_per_delivery());
    }
    println!(
        "{side} fan-out {fanout}: {} deliveries/s, CPU µs/delivery {}",
        Spread::of(&rate).show(0),
        Spread::of(&cpu).show(1)
    );
}

async fn all(runs: usize, deliveries: usize, bin_dir: &Path, venv: &Path) {
    let started = std::time::Instant::now();
    let runs = runs.max(1);
    let mut summary: Vec<String> = Vec::new();
    let mut line = |s: String| {
        println!("{s}");
        summary.push(s);
    };
    println!("herald-bench: {runs} runs per figure, shown as min / median / max");

    // Throughput against the bare client, both posting to one receiver process.
    let receiver = receiver::Receiver::spawn(0, false);
    let mut ratio_fanout_1 = 0.0;
    for fanout in [1, 10, 1000] {
        let (text, ratio) = throughput_line(&receiver, fanout, runs, deliveries).await;
        if fanout == 1 {
            ratio_fanout_1 = ratio;
        }
        line(text);
    }
    drop(receiver);

    line(sizes::line().0);

    // Instructions on the hot path (callgrind is deterministic; runs show it).
    let bench = std::env::current_exe().unwrap();
    for k in ["standard", "slack"] {
        let mut counts = vec![];
        for _ in 0..runs {
            match hotpath::instructions(&bench, k) {
                Ok(n) => counts.push(n),
                Err(e) => {
                    line(format!("hot path {k}: not measured: {e}"));
                    break;
                }
            }
        }
        if !counts.is_empty() {
            line(format!(
                "hot path {k} (match + format + sign, {} B body): {} instructions per delivery",
                hotpath::body_size(kind(k)),
                Spread::of(&counts).show(0)
            ));
        }
    }

    // Ingest handler.
    let (mut p50, mut p99, mut rate, mut cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let r = ingest::run(2_000, 20_000).await;
        p50.push(r.p50_us);
        p99.push(r.p99_us);
        rate.push(r.per_second);
        cpu.push(r.cpu_us_per_event);
    }
    line(format!(
        "ingest handler (1 KiB event, memory queue): p50 {} µs, p99 {} µs; {} events/s with 64 in flight, {} CPU µs/event",
        Spread::of(&p50).show(1),
        Spread::of(&p99).show(1),
        Spread::of(&rate).show(0),
        Spread::of(&cpu).show(1)
    ));

    // Cold start of each release bootstrap.
    let samples = [
        ("ingest", "events/ingest-post-event-unauthenticated.json"),
        ("api", "events/api-health.json"),
        ("dispatch", "events/dispatch-sqs-poison.json"),
    ];
    for (name, event) in samples {
        let bootstrap = bin_dir.join(name);
        let size = std::fs::metadata(&bootstrap).map(|m| m.len()).unwrap_or(0);
        let event = std::fs::read_to_string(event).unwrap_or_default();
        let (mut init, mut first) = (vec![], vec![]);
        let mut failure = None;
        for _ in 0..runs {
            match coldstart::run(&bootstrap, event.clone()).await {
                Ok(c) => {
                    init.push(c.init.as_secs_f64() * 1000.0);
                    first.push(c.first_invocation.as_secs_f64() * 1000.0);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            Some(e) => line(format!("cold start {name}: not measured: {e}")),
            None => line(format!(
                "cold start {name:<8} ({:.1} MB): init {} ms, first invocation {} ms",
                mb(size as f64),
                Spread::of(&init).show(1),
                Spread::of(&first).show(1)
            )),
        }
    }

    // Memory with 1,000 deliveries in flight, each run in a fresh process.
    let mut peaks = vec![];
    let mut idle = vec![];
    for _ in 0..runs {
        let v = subprocess(&["memory", "--in-flight", "1000"]);
        idle.push(mb(v["before"].as_f64().unwrap()));
        peaks.push(mb(v["peak"].as_f64().unwrap()));
    }
    line(format!(
        "memory: peak RSS {} MB with 1,000 deliveries in flight (idle dispatcher {} MB)",
        Spread::of(&peaks).show(1),
        Spread::of(&idle).show(1)
    ));

    // Scale: fan-out from 1 to 10,000 webhooks per event; many webhooks of which one matches.
    for fanout in [1, 100, 1000, 10_000] {
        let mut rate = vec![];
        let mut rss = vec![];
        for _ in 0..runs.min(3) {
            let v = subprocess(&["scale", "--fanout", &fanout.to_string()]);
            rate.push(v["per_second"].as_f64().unwrap());
            rss.push(mb(v["peak_rss"].as_f64().unwrap()));
        }
        line(format!(
            "scale: fan-out {fanout:>5} (10,000 deliveries): {} deliveries/s, peak RSS {} MB",
            Spread::of(&rate).show(0),
            Spread::of(&rss).show(1)
        ));
    }
    for webhooks in [10, 100, 1000, 10_000] {
        let mut ms = vec![];
        for _ in 0..runs.min(3) {
            let v = subprocess(&["scale", "--webhooks", &webhooks.to_string()]);
            ms.push(v["ms_per_event"].as_f64().unwrap());
        }
        line(format!(
            "scale: tenant with {webhooks:>5} webhooks, 1 matching: {} ms per event",
            Spread::of(&ms).show(3)
        ));
    }

    // Project-name filters at their bounds: the worst case, and plain patterns beside it.
    for kind in ["plain", "hostile"] {
        let mut ms = vec![];
        let mut shape = serde_json::Value::Null;
        for _ in 0..runs.min(3) {
            let v = subprocess(&["scale", "--webhooks", "100", "--patterns", kind]);
            ms.push(v["ms_per_event"].as_f64().unwrap());
            shape = v;
        }
        line(format!(
            "scale: 100 webhooks x {} {kind} project patterns of {} chars, none matching: {} ms per event",
            shape["patterns_per_webhook"],
            shape["pattern_chars"],
            Spread::of(&ms).show(3)
        ));
    }

    // End to end through the release `herald dev`.
    let herald = bin_dir.join("herald");
    let moto = herald_tests::moto::Moto::start(&venv.join("bin/moto_server"))
        .map_err(|e| line(format!("moto: {e}")))
        .ok();
    let cases: [(&str, bool, usize, usize); 4] = [
        ("memory", false, 10_000, 1),
        ("memory", false, 1_000, 10),
        ("moto", true, 300, 1),
        ("moto", true, 30, 10),
    ];
    for (backend, on_moto, events, fanout) in cases {
        if on_moto && moto.is_none() {
            continue;
        }
        let (mut rate, mut p50, mut p99, mut cpu) = (vec![], vec![], vec![], vec![]);
        let mut failure = None;
        for _ in 0..runs {
            let load = stack::Load {
                aws: moto
                    .as_ref()
                    .filter(|_| on_moto)
                    .map(|m| m.endpoint.as_str()),
                events,
                fanout,
                connections: 32,
                batch: 1,
                named_ids: true,
                disabled: false,
                recover: false,
                log: None,
                settled: None,
            };
            match stack::run(&herald, load).await {
                Ok(r) => {
                    rate.push(r.per_second);
                    p50.push(r.p50_ms);
                    p99.push(r.p99_ms);
                    cpu.push(r.cpu_s_per_1000);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            Some(e) => line(format!("stack {backend} {events}x{fanout}: not measured: {e}")),
            None => line(format!(
                "stack ({backend}) {events} events x {fanout} webhooks, 32 connections: {} deliveries/s, POST->receiver p50 {} ms, p99 {} ms, {} CPU-s per 1,000 deliveries",
                Spread::of(&rate).show(0),
                Spread::of(&p50).show(2),
                Spread::of(&p99).show(2),
                Spread::of(&cpu).show(3)
            )),
        }
    }

    // What a delivery costs on AWS, metered through the same `herald dev` on moto. `make bench`
    // runs from the workspace root, where the template is.
    let template = Path::new("template.yaml");
    let mut reports = cost::run_all(&herald, venv, template, &cost::scenarios()).await;
    reports.push(cost::run_failing(venv, template).await);
    for report in reports {
        match report {
            Ok(report) => {
                let mut lines = report.lines();
                if let Some(headline) = lines.next() {
                    line(headline.to_string());
                }
                for part in lines {
                    println!("{part}");
                }
            }
            Err(e) => line(e),
        }
    }

    println!();
    println!("summary ({:.0} s):", started.elapsed().as_secs_f64());
    for s in &summary {
        println!("  {s}");
    }
    println!("throughput ratio herald/bare (fan-out 1, median): {ratio_fanout_1:.2}");
}
