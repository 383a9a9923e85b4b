//! The command line: a stable interface that scripts and tests use (DESIGN.md, "CLI").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::engine::{self, Emitter, Outcome, Resumed, RunOptions};
use crate::events::{CommandKind, Event, Verdict, exit, whoami};
use crate::pipeline::{self, Pipeline, Variables};
use crate::report::Report;
use crate::store::{Journal, NewRun, Store};

mod args;

pub use args::Cli;
use args::{
    CheckArgs, Cmd, CockpitFlags, ContractCmd, ContractVerifyArgs, DiffArgs, DriveFlags,
    HistoryArgs, LoadArgs, RollbackArgs, SandboxCmd, ServeArgs, SloBudgetArgs, SloCmd, SloEvalArgs,
};

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Exit {
    /// Process exit code.
    pub code: i32,
    /// What to print on stderr.
    pub message: String,
}

fn bad_input(message: impl Into<String>) -> Exit {
    Exit {
        code: exit::BAD_INPUT,
        message: message.into(),
    }
}

fn infra(e: impl std::fmt::Display) -> Exit {
    Exit {
        code: exit::INFRA,
        message: e.to_string(),
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    {
        use tracing_subscriber::prelude::*;
        // stderr for scripts and CI; while the cockpit is on screen its own log view (L)
        // shows the same records, which would otherwise scribble over the frame.
        let stderr = || -> Box<dyn std::io::Write> {
            if crate::ui::active() {
                Box::new(std::io::sink())
            } else {
                Box::new(std::io::stderr())
            }
        };
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(stderr)
                    .with_filter(tracing_subscriber::EnvFilter::from_env("GLIDEPATH_LOG")),
            )
            .with(
                tui_logger::TuiTracingSubscriberLayer
                    .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
            )
            .init();
        // No mover thread (init_logger's wakes every 10 ms): the cockpit moves records
        // into view on its own tick.
        tui_logger::set_default_level(tui_logger::LevelFilter::Info);
    }
    let mut builder = match &cli.command {
        // One thread: a single-threaded runtime wakes tasks without cross-thread hand-offs.
        Cmd::Load(LoadArgs {
            threads: Some(0 | 1),
            ..
        }) => tokio::runtime::Builder::new_current_thread(),
        Cmd::Load(LoadArgs {
            threads: Some(threads),
            ..
        }) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(*threads);
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INFRA;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}

async fn dispatch(cli: Cli) -> std::result::Result<i32, Exit> {
    let journal_path = cli
        .journal
        .clone()
        .unwrap_or_else(crate::store::default_path);
    match cli.command {
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "glidepath", &mut out);
            print_bytes(&out)
        }
        Cmd::Man { dir } => {
            use clap::CommandFactory;
            let cmd = Cli::command();
            match dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(infra)?;
                    clap_mangen::generate_to(cmd, &dir).map_err(infra)?;
                    eprintln!("man pages in {}", dir.display());
                }
                None => {
                    let mut out = Vec::new();
                    clap_mangen::Man::new(cmd).render(&mut out).map_err(infra)?;
                    return print_bytes(&out);
                }
            }
            Ok(exit::OK)
        }
        Cmd::Schema => {
            let schema = serde_json::to_string_pretty(&pipeline::json_schema()).map_err(infra)?;
            println!("{schema}");
            Ok(exit::OK)
        }
        Cmd::Check(CheckArgs {
            pipeline,
            sets,
            no_preflight,
            sandbox,
            scenario,
        }) => {
            let p = load(&pipeline, sets)?;
            print!("{}", p.plan());
            let valid = format!(
                "{} is valid ({} stages, {} steps)",
                pipeline.display(),
                p.stages.len(),
                p.stages.iter().map(|s| s.steps.len()).sum::<usize>()
            );
            if no_preflight {
                println!("ok: {valid}");
                return Ok(exit::OK);
            }
            check_preflight(p, sandbox, &scenario, &journal_path, &valid).await
        }
        Cmd::Run(args) => {
            let p = load(&args.pipeline, args.sets)?;
            if let Some(stage) = &args.stage
                && !p.stages.iter().any(|s| &s.name == stage)
            {
                let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
                return Err(bad_input(format!(
                    "--stage {stage}: no such stage; the pipeline has {}",
                    names.join(", ")
                )));
            }
            let path = std::fs::canonicalize(&args.pipeline).unwrap_or(args.pipeline.clone());
            let run = new_run(&journal_path, &p, &path, args.stage.as_deref())?;
            let options = RunOptions {
                stage: args.stage,
                auto_approve: args.flags.auto_approve,
                resumed: None,
                journal: Some(journal_path.clone()),
                preflight_only: false,
            };
            drive(p, &journal_path, run, 1, options, &args.flags, None).await
        }
        Cmd::Resume { run, flags } => {
            let store = Store::open(&journal_path).map_err(infra)?;
            let run = match run {
                Some(r) => r,
                None => store
                    .last_unfinished()
                    .map_err(infra)?
                    .ok_or_else(|| bad_input("no unfinished run to resume"))?,
            };
            let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
            if let Some(code) = record.exit_code {
                return Err(bad_input(format!(
                    "run {run} already finished ({}, exit {code}); nothing to resume",
                    record.status
                )));
            }
            if let Some(pid) = record.pid
                && pid != std::process::id()
                && process_alive(pid)
            {
                return Err(bad_input(format!(
                    "run {run} is still being driven by process {pid}; resume it only after that process has stopped"
                )));
            }
            let vars = Variables::from_sets(record.sets.clone());
            let p = pipeline::load_str(&record.source, Path::new(&record.path), &vars)
                .map_err(|e| bad_input(e.to_string()))?;
            if p.stages.iter().any(|s| {
                s.target
                    .as_ref()
                    .is_some_and(crate::pipeline::model::Target::is_sandbox)
            }) {
                return Err(bad_input(format!(
                    "run {run} delivered to the embedded sandbox, which lived and ended with the process that drove it; start a new run instead"
                )));
            }
            let events = store.events(run).map_err(infra)?;
            let next_seq = events.last().map(|e| e.seq + 1).unwrap_or(1);
            store.claim_run(run).map_err(infra)?;
            let options = RunOptions {
                stage: record.stage.clone(),
                auto_approve: flags.auto_approve,
                resumed: Some(Resumed::from_events(&events)),
                journal: Some(journal_path.clone()),
                preflight_only: false,
            };
            drive(p, &journal_path, run, next_seq, options, &flags, None).await
        }
        Cmd::Demo { sets, flags } => {
            // The demo ships inside the binary; it is written out (under the data folder)
            // so the pipeline's relative paths find its files, as a newcomer's would.
            let root = journal_path.with_file_name("demo");
            for (name, text) in DEMO_FILES {
                let path = root.join(name);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(infra)?;
                }
                std::fs::write(&path, text).map_err(infra)?;
            }
            let path = root.join(DEMO_FILES[0].0);
            let p = load(&path, sets)?;
            let run = new_run(&journal_path, &p, &path, None)?;
            let interactive = interactive(&flags);
            let options = RunOptions {
                stage: None,
                // Headless, nobody is there to press `a`: the demo approves itself.
                auto_approve: flags.auto_approve || !interactive,
                resumed: None,
                journal: Some(journal_path.clone()),
                preflight_only: false,
            };
            let scenario =
                crate::sandbox::scenario::Scenario::named(&flags.scenario).unwrap_or_default();
            let demo = Demo {
                banner: demo_banner(&scenario, interactive),
                production: crate::kube::objects::load_manifests(
                    &["assets/demo-app/".to_owned()],
                    &root,
                    &BTreeMap::from([("version".to_owned(), DEMO_STABLE.to_owned())]),
                )
                .map_err(infra)?,
            };
            drive(p, &journal_path, run, 1, options, &flags, Some(demo)).await
        }
        Cmd::Slo {
            command:
                SloCmd::Eval(SloEvalArgs {
                    slo,
                    sli,
                    values,
                    prometheus,
                    at,
                    window,
                    sets,
                    history,
                    json,
                    fail_on,
                }),
        } => {
            let source = match (values, prometheus) {
                (Some(v), _) => SliSource::File(v),
                (None, Some(url)) => SliSource::Prometheus {
                    url,
                    at,
                    window,
                    sets: sets.into_iter().collect(),
                },
                (None, None) => return Err(bad_input("give --values FILE or --prometheus URL")),
            };
            slo_eval(
                &slo,
                sli.as_deref(),
                source,
                history.as_deref(),
                json,
                fail_on.as_deref(),
            )
            .await
        }
        Cmd::Slo {
            command:
                SloCmd::Budget(SloBudgetArgs {
                    slo,
                    prometheus,
                    at,
                    sets,
                    json,
                }),
        } => {
            slo_budget(
                &slo,
                &prometheus,
                at.as_deref(),
                sets.into_iter().collect(),
                json,
            )
            .await
        }
        Cmd::Slo {
            command: SloCmd::Rules { slo, sets },
        } => {
            let model = crate::slo::Slo::load(&slo, None).map_err(|e| bad_input(e.to_string()))?;
            let rules = crate::slo::live::rules(&model, &sets.into_iter().collect())
                .map_err(|e| bad_input(format!("{}: {e}", slo.display())))?;
            print!("{}", crate::yaml::to_yaml_string(&rules));
            Ok(exit::OK)
        }
        Cmd::Rollback(RollbackArgs {
            service,
            stage,
            context,
            namespace,
            kubeconfig,
            yes,
        }) => rollback_service(&service, stage, context, namespace, kubeconfig, yes).await,
        Cmd::Diff(DiffArgs {
            pipeline,
            stage,
            sets,
        }) => {
            let p = load(&pipeline, sets)?;
            diff(p, stage, &journal_path).await
        }
        Cmd::Load(args) => load_test(args).await,
        Cmd::Contract {
            command:
                ContractCmd::Verify(ContractVerifyArgs {
                    file,
                    context,
                    kubeconfig,
                }),
        } => verify_contract(&file, context, kubeconfig).await,
        Cmd::Sandbox {
            command:
                SandboxCmd::Serve(ServeArgs {
                    port,
                    kubeconfig_out,
                    state,
                    preset,
                    scenario,
                }),
        } => serve_sandbox(port, kubeconfig_out, state, &preset, &scenario).await,
        Cmd::Attach { run, cockpit } => attach(&journal_path, run, cockpit).await,
        Cmd::Approve { run } => send(&journal_path, run, CommandKind::Approve).await,
        Cmd::Reject { run } => send(&journal_path, run, CommandKind::Reject).await,
        Cmd::History(HistoryArgs {
            run: Some(run),
            invalidate: true,
            ..
        }) => {
            let store = Store::open(&journal_path).map_err(infra)?;
            let n = store
                .invalidate(run)
                .map_err(|e| bad_input(e.to_string()))?;
            println!("run {run}: {n} evaluation(s) marked invalid; comparisons leave them out");
            Ok(exit::OK)
        }
        Cmd::History(HistoryArgs {
            run: Some(run),
            report_dir: Some(dir),
            ..
        }) => {
            let store = Store::open(&journal_path).map_err(infra)?;
            store.run(run).map_err(|e| bad_input(e.to_string()))?;
            let events = store.events(run).map_err(infra)?;
            write_reports(&Report::from_events(run, &events), &dir)?;
            Ok(exit::OK)
        }
        Cmd::History(HistoryArgs {
            run, json, limit, ..
        }) => history(&journal_path, run, json, limit),
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`) is no error.
fn print_bytes(bytes: &[u8]) -> std::result::Result<i32, Exit> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(infra(e)),
    }
}

/// The files `glidepath demo` runs, by their place in the repository (the pipeline first).
const DEMO_FILES: [(&str, &str); 8] = [
    (
        "config/demo/pipeline.yaml",
        include_str!("../../config/demo/pipeline.yaml"),
    ),
    (
        "config/demo/platform-contract.yaml",
        include_str!("../../config/demo/platform-contract.yaml"),
    ),
    (
        "config/demo/slo.yaml",
        include_str!("../../config/demo/slo.yaml"),
    ),
    (
        "config/demo/smoke.yaml",
        include_str!("../../config/demo/smoke.yaml"),
    ),
    (
        "config/demo/infra/database.yaml",
        include_str!("../../config/demo/infra/database.yaml"),
    ),
    (
        "config/policies/requests-and-limits.rego",
        include_str!("../../config/policies/requests-and-limits.rego"),
    ),
    (
        "config/policies/trusted-registries.rego",
        include_str!("../../config/policies/trusted-registries.rego"),
    ),
    (
        "assets/demo-app/checkout.yaml",
        include_str!("../../assets/demo-app/checkout.yaml"),
    ),
];

/// The version production runs when the demo starts.
const DEMO_STABLE: &str = "1.0.0";

/// The namespace the demo's production lives in.
const DEMO_PRODUCTION: &str = "shop";

/// What `glidepath demo` adds to a run: production as it is before the release, and a
/// banner that says what the scenario shows and what to try.
struct Demo {
    banner: String,
    production: Vec<serde_json::Value>,
}

/// The demo's banner: the scenario, what it shows, what to try.
fn demo_banner(s: &crate::sandbox::scenario::Scenario, interactive: bool) -> String {
    if interactive {
        let try_this = match s.name {
            "bad-canary" => {
                "press a when staging passes, then watch the analysis roll the canary back by itself"
            }
            "slow-canary" => {
                "press a when staging passes, then watch the latency objective fail the canary"
            }
            "missing-infra" => {
                "pre-flight stops the run before anything is applied: Enter on it shows why"
            }
            "budget-exhausted" => {
                "press a when staging passes: the error-budget gate holds the release"
            }
            _ => "press a when staging passes; p holds a canary pause, P skips it, r rolls back",
        };
        return format!("demo · {} · {try_this} · ? lists every key", s.name);
    }
    format!(
        "demo · scenario {}: {} (headless, the demo approves its own approval)",
        s.name, s.summary
    )
}

fn load(path: &Path, sets: Vec<(String, String)>) -> std::result::Result<Pipeline, Exit> {
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    pipeline::load_file(path, &Variables::from_sets(sets)).map_err(|e| bad_input(e.to_string()))
}

/// `check`: the pipeline's pre-flight steps, and nothing else, against their targets.
async fn check_preflight(
    mut p: Pipeline,
    sandbox: bool,
    scenario: &str,
    journal_path: &Path,
    valid: &str,
) -> std::result::Result<i32, Exit> {
    use crate::pipeline::StepKind;
    use crate::pipeline::model::{SandboxIn, SandboxWord, Target};
    let checked = p
        .stages
        .iter()
        .filter(|s| {
            s.steps
                .iter()
                .any(|st| matches!(st.kind, StepKind::Preflight(_)))
        })
        .count();
    if checked == 0 {
        println!("ok: {valid}; it has no preflight steps, so no cluster was asked");
        return Ok(exit::OK);
    }
    if sandbox {
        for stage in &mut p.stages {
            stage.target = Some(match stage.target.take() {
                Some(Target::Cluster(c)) => match c.namespace {
                    Some(namespace) => Target::SandboxIn(SandboxIn {
                        sandbox: true,
                        namespace,
                    }),
                    None => Target::Sandbox(SandboxWord::Sandbox),
                },
                Some(t) => t,
                None => Target::Sandbox(SandboxWord::Sandbox),
            });
        }
    }
    // Every stage's pre-flight runs, whatever an earlier one found.
    for stage in &mut p.stages {
        for step in &mut stage.steps {
            if matches!(step.kind, StepKind::Preflight(_)) {
                step.on_failure = crate::pipeline::model::OnFailure::Continue;
            }
        }
    }
    let (p, _sandbox) = embed_sandbox(p, scenario, journal_path).await?;
    let options = RunOptions {
        preflight_only: true,
        ..RunOptions::default()
    };
    let mut printer = None;
    let mut failures = None;
    let handle = engine::start_with(Arc::new(p), Emitter::new(0, 1, None), options, |tx| {
        printer = Some(tokio::spawn(crate::headless::print(tx.subscribe())));
        let mut rx = tx.subscribe();
        failures = Some(tokio::spawn(async move {
            let mut failed = Vec::new();
            while let Ok(env) = rx.recv().await {
                match env.event {
                    Event::StepFinished {
                        stage,
                        status: crate::events::Status::Failed,
                        ..
                    } => failed.push(stage),
                    Event::RunFinished { .. } => break,
                    _ => {}
                }
            }
            failed
        }));
    });
    let outcome = handle.wait().await;
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    let failed = match failures {
        Some(f) => f.await.unwrap_or_default(),
        None => Vec::new(),
    };
    if outcome.exit_code != exit::OK && failed.is_empty() {
        println!("not ok: {valid}, but the check stopped: {}", outcome.reason);
        return Ok(outcome.exit_code);
    }
    if failed.is_empty() {
        println!("ok: {valid}; pre-flight passed in {checked} stage(s)");
        Ok(exit::OK)
    } else {
        println!(
            "not ok: {valid}, but pre-flight failed in {} of {checked} stage(s): {}",
            failed.len(),
            failed.join(", ")
        );
        Ok(exit::FAILED)
    }
}

/// `diff PIPELINE`.
async fn diff(
    p: Pipeline,
    only: Option<String>,
    journal_path: &Path,
) -> std::result::Result<i32, Exit> {
    use crate::kube::objects::{Cluster, Comparison, describe, unified_diff};
    if let Some(stage) = &only
        && !p.stages.iter().any(|s| &s.name == stage)
    {
        return Err(bad_input(format!("--stage {stage}: no such stage")));
    }
    let (p, _sandbox) = embed_sandbox(p, "happy", journal_path).await?;
    let (mut changed, mut same, mut new) = (0, 0, 0);
    for stage in p
        .stages
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| &s.name == o))
    {
        let cluster = Cluster::connect(stage.target.as_ref())
            .await
            .map_err(infra)?;
        let vars = p.query_vars(stage);
        for step in &stage.steps {
            let objs = crate::steps::preflight::step_manifests(step, &p.base_dir, &vars)
                .map_err(bad_input)?;
            for mut o in objs {
                cluster.place(&mut o).await.map_err(infra)?;
                let what = describe(&o);
                match cluster.compare(&o).await.map_err(infra)? {
                    Comparison::Same => same += 1,
                    Comparison::New(yaml) => {
                        new += 1;
                        print!(
                            "{}",
                            unified_diff(
                                "",
                                &yaml,
                                &format!("{what} (absent)"),
                                &format!("{what} ({}/{})", stage.name, step.name)
                            )
                        );
                    }
                    Comparison::Differs(live, yaml) => {
                        changed += 1;
                        print!(
                            "{}",
                            unified_diff(
                                &live,
                                &yaml,
                                &format!("{what} (live)"),
                                &format!("{what} ({}/{})", stage.name, step.name)
                            )
                        );
                    }
                }
            }
        }
    }
    eprintln!("{changed} objects would change, {new} would be created, {same} are unchanged");
    Ok(if changed + new > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// `load URL`.
async fn load_test(args: LoadArgs) -> std::result::Result<i32, Exit> {
    use crate::pipeline::model::{LoadRequest, LoadTest};
    use crate::pipeline::units::Span;
    let mut requests: Vec<LoadRequest> = match &args.requests {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            crate::yaml::from_str(&text)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| bad_input(format!("header `{h}`: expected `Name: value`")))
        })
        .collect::<std::result::Result<std::collections::BTreeMap<_, _>, _>>()?;
    if requests.is_empty() {
        requests.push(LoadRequest {
            method: Some(args.method.clone()),
            headers,
            body: args.body.clone(),
            ..LoadRequest::default()
        });
    } else {
        for r in &mut requests {
            for (k, v) in &headers {
                r.headers.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    let duration = match (&args.duration, args.stages.is_empty()) {
        (None, true) => Some(Duration::from_secs(10)),
        (d, _) => *d,
    };
    let test = LoadTest {
        url: args.url.clone(),
        duration: duration.map(Span),
        rate: args.rate,
        stages: args.stages.clone(),
        connections: args.connections,
        warmup: args.warmup.map(Span),
        timeout: args.timeout.map(Span),
        http2: args.http2,
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        insecure_skip_verify: args.insecure,
        requests,
        thresholds: Default::default(),
    };
    let plan = crate::loadgen::plan_for(&test, Path::new(".")).map_err(bad_input)?;
    let json = args.json;
    let summary = crate::loadgen::run(plan, |p| {
        eprintln!(
            "{:>4}s  {:>7} req/s  errors {:>5.2}%  p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms",
            p.second,
            p.requests,
            if p.requests == 0 {
                0.0
            } else {
                100.0 * p.errors as f64 / p.requests as f64
            },
            p.p50_ms,
            p.p95_ms,
            p.p99_ms
        );
    })
    .await
    .map_err(bad_input)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(infra)?);
        return Ok(exit::OK);
    }
    let l = &summary.latency_ms;
    println!(
        "requests   {:>10}   ({:.1}/s over {:.1} s)",
        summary.requests, summary.rps, summary.seconds
    );
    println!(
        "errors     {:>10}   ({:.3}%)",
        summary.errors.values().sum::<u64>(),
        summary.error_ratio * 100.0
    );
    for (kind, n) in &summary.errors {
        println!("  {kind:<8} {n:>10}");
    }
    println!("latency ms        min       p50       p90       p95       p99     p99.9       max");
    println!(
        "           {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        l.min, l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    );
    Ok(exit::OK)
}

/// `rollback SERVICE`.
async fn rollback_service(
    service: &str,
    stage: Option<String>,
    context: Option<String>,
    namespace: Option<String>,
    kubeconfig: Option<String>,
    yes: bool,
) -> std::result::Result<i32, Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    use std::io::IsTerminal;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(bad_input(
                "rollback asks for confirmation on a terminal; pass --yes to roll back without one",
            ));
        }
        eprint!("roll back {service}? type its name to confirm: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(infra)?;
        if answer.trim() != service {
            eprintln!("not confirmed; nothing changed");
            return Ok(exit::ABORTED);
        }
    }
    let target = Target::Cluster(ClusterTarget {
        context,
        namespace,
        kubeconfig,
    });
    let cluster = crate::kube::objects::Cluster::connect(Some(&target))
        .await
        .map_err(infra)?;
    let (phase, _) = tokio::sync::watch::channel(crate::steps::Phase::Running);
    let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(|e| {
        if let Event::Log { source, line, .. } = e {
            println!("{source}: {line}");
        }
    });
    let io = crate::steps::StepIo::new(stage.as_deref().unwrap_or("-"), "rollback", emit, phase);
    let started = std::time::Instant::now();
    match crate::steps::release::rollback_service(cluster, service, &io).await {
        Ok(done) => {
            println!(
                "{done} ({} ms, by {})",
                started.elapsed().as_millis(),
                whoami()
            );
            Ok(exit::OK)
        }
        Err(e) => Err(infra(format!("rollback of {service} failed: {e}"))),
    }
}

/// `contract verify`: each promise checked, one line each; a broken promise exits 1.
async fn verify_contract(
    file: &Path,
    context: Option<String>,
    kubeconfig: Option<String>,
) -> std::result::Result<i32, Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    let contract = crate::steps::preflight::load_contract(file).map_err(bad_input)?;
    let target = Target::Cluster(ClusterTarget {
        context,
        namespace: None,
        kubeconfig,
    });
    let cluster = crate::kube::objects::Cluster::connect(Some(&target))
        .await
        .map_err(infra)?;
    let mut evidence = crate::steps::preflight::check_contract(&cluster, &contract).await;
    for p in &contract.policies {
        // Resolved against the contract file's folder when it was read.
        let path = PathBuf::from(&p.value);
        let check = format!("policy {}", p.value);
        evidence.push(
            match crate::policy::violations(&[path], &serde_json::json!({})) {
                Ok(_) => crate::events::Evidence::new(check, Verdict::Pass, "compiles"),
                Err(e) => crate::events::Evidence::new(check, Verdict::Fail, e),
            },
        );
    }
    let broken = evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .count();
    for e in &evidence {
        println!(
            "{} {}: {}{}",
            if e.verdict == Verdict::Pass {
                "✓"
            } else {
                "✗"
            },
            e.check,
            e.value.as_deref().unwrap_or(""),
            e.expected
                .as_deref()
                .filter(|_| e.verdict != Verdict::Pass)
                .map(|x| format!(" (expected {x})"))
                .unwrap_or_default()
        );
    }
    if broken == 0 {
        println!("contract kept: {} promises checked", evidence.len());
        Ok(exit::OK)
    } else {
        println!("contract broken: {broken} of {} promises", evidence.len());
        Ok(exit::FAILED)
    }
}

async fn serve_sandbox(
    port: u16,
    kubeconfig_out: Option<PathBuf>,
    state: Option<PathBuf>,
    preset: &str,
    scenario: &str,
) -> std::result::Result<i32, Exit> {
    use crate::sandbox::{Cluster, Sandbox, Timing, scenario::Scenario};
    let scenario = Scenario::named(scenario)
        .ok_or_else(|| bad_input(format!("unknown scenario {scenario}")))?;
    let cluster = Cluster::with_scenario(32, Timing::default(), scenario);
    let restored = match &state {
        Some(path) if path.exists() => cluster
            .load(path)
            .map_err(|e| bad_input(format!("--state {}: {e}", path.display())))?,
        _ => 0,
    };
    if restored == 0 && preset == "platform" {
        crate::sandbox::preset::platform(&cluster);
    }
    let sandbox = Sandbox::start(port, cluster.clone())
        .await
        .map_err(|e| infra(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let kubeconfig = kubeconfig_out
        .unwrap_or_else(|| crate::store::default_path().with_file_name("sandbox.kubeconfig"));
    sandbox
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| infra(format!("cannot write {}: {e}", kubeconfig.display())))?;
    println!(
        "glidepath sandbox: Kubernetes API on {} (v1.{})",
        sandbox.url(),
        cluster.minor
    );
    if restored > 0 {
        println!(
            "restored {restored} objects from {}",
            state
                .as_deref()
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        );
    }
    println!(
        "kubeconfig: {}  (context glidepath-sandbox)",
        kubeconfig.display()
    );
    println!(
        "prometheus: {}  (PromQL over simulated traffic; scrape {}/metrics)",
        sandbox.url(),
        sandbox.url()
    );
    println!(
        "scenario: {} - {}",
        cluster.telemetry.scenario.name, cluster.telemetry.scenario.summary
    );
    println!("try:  export KUBECONFIG={}", kubeconfig.display());
    println!("      kubectl get nodes,storageclasses,crds");
    println!(
        "Ctrl-C stops it{}",
        if state.is_some() {
            " and saves its objects"
        } else {
            ""
        }
    );
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    let mut endpoints_tick = tokio::time::interval(Duration::from_secs(1));
    let mut listed: Vec<(String, String, String, String)> = Vec::new();
    let mut saved_rv = 0;
    let save = |saved_rv: &mut u64| -> std::result::Result<(), Exit> {
        if let Some(path) = &state {
            let rv = cluster.store().rv();
            if rv != *saved_rv {
                cluster
                    .save(path)
                    .map_err(|e| infra(format!("cannot save {}: {e}", path.display())))?;
                *saved_rv = rv;
            }
        }
        Ok(())
    };
    let stop = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => save(&mut saved_rv)?,
            _ = endpoints_tick.tick() => {
                let now = cluster.telemetry.endpoints();
                for (kind, ns, name, url) in now.iter().filter(|e| !listed.contains(e)) {
                    println!("endpoint: {kind} {ns}/{name} answers on {url}");
                }
                listed = now;
            }
        }
    }
    save(&mut saved_rv)?;
    drop(sandbox);
    Ok(exit::OK)
}

/// Where `slo eval` gets its SLI values.
enum SliSource {
    File(PathBuf),
    Prometheus {
        url: String,
        at: Option<String>,
        window: String,
        sets: BTreeMap<String, String>,
    },
}

fn prometheus_error(e: crate::metrics::QueryError) -> Exit {
    match e {
        crate::metrics::QueryError::Config(_) => bad_input(e.to_string()),
        crate::metrics::QueryError::Api { status, .. } if status == 400 || status == 422 => {
            bad_input(e.to_string())
        }
        other => infra(other),
    }
}

async fn slo_budget(
    slo: &Path,
    url: &str,
    at: Option<&str>,
    sets: BTreeMap<String, String>,
    json: bool,
) -> std::result::Result<i32, Exit> {
    let model = crate::slo::Slo::load(slo, None).map_err(|e| bad_input(e.to_string()))?;
    let at = at
        .map(crate::slo::live::parse_time)
        .transpose()
        .map_err(bad_input)?;
    let client = crate::metrics::Client::new(url).map_err(prometheus_error)?;
    let budget = match crate::slo::live::budget_at(&model, &client, &sets, at).await {
        Ok(b) => b,
        Err(crate::slo::live::BudgetError::Query(e)) => return Err(prometheus_error(e)),
        Err(e) => return Err(bad_input(format!("{}: {e}", slo.display()))),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&budget).map_err(infra)?);
        return Ok(exit::OK);
    }
    println!("{}", budget.describe());
    println!(
        "{:<12} {:<8} {:>10} {:>10}  {:>7}  ALERT",
        "WINDOWS", "SEVERITY", "LONG", "SHORT", "FACTOR"
    );
    let rate = |r: Option<f64>| {
        r.map(|v| format!("{v:.2}x"))
            .unwrap_or_else(|| "no data".into())
    };
    for b in &budget.burn_rates {
        println!(
            "{:<12} {:<8} {:>10} {:>10}  {:>6}x  {}",
            format!(
                "{}/{}",
                pipeline::units::format_duration(b.pair.long),
                pipeline::units::format_duration(b.pair.short)
            ),
            format!("{:?}", b.pair.severity).to_lowercase(),
            rate(b.long_rate),
            rate(b.short_rate),
            b.pair.factor,
            if b.firing { "FIRING" } else { "-" }
        );
    }
    Ok(exit::OK)
}

async fn slo_eval(
    slo: &Path,
    sli: Option<&Path>,
    source: SliSource,
    history: Option<&Path>,
    json: bool,
    fail_on: Option<&str>,
) -> std::result::Result<i32, Exit> {
    use crate::events::Verdict;
    use crate::slo::{HistoryEntry, Slo, evaluate};
    let model = Slo::load(slo, sli).map_err(|e| bad_input(e.to_string()))?;
    let read_json = |path: &Path, what: &str| -> std::result::Result<serde_json::Value, Exit> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("{}: cannot read the {what}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            bad_input(format!(
                "{}:{}:{}: the {what} is not valid JSON: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    };
    let sli_values = match source {
        SliSource::Prometheus {
            url,
            at,
            window,
            sets,
        } => {
            let at = at
                .as_deref()
                .map(crate::slo::live::parse_time)
                .transpose()
                .map_err(bad_input)?;
            let window = pipeline::units::parse_duration(&window)
                .map_err(|e| bad_input(format!("--window: {e}")))?;
            let client = crate::metrics::Client::new(&url).map_err(prometheus_error)?;
            crate::slo::live::measure(
                &model,
                crate::slo::live::Sources::only(&client),
                &sets,
                window,
                at,
            )
            .await
            .map_err(prometheus_error)?
        }
        SliSource::File(values) => {
            let values = values.as_path();
            let raw = read_json(values, "values file")?;
            let object = raw.as_object().ok_or_else(|| {
                bad_input(format!(
                    "{}: expected an object such as {{\"error_ratio\": 0.01}}",
                    values.display()
                ))
            })?;
            let mut sli_values = BTreeMap::new();
            for (k, v) in object {
                let value = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::Number(n) => n.as_f64(),
                    other => {
                        return Err(bad_input(format!(
                            "{}: value of `{k}` must be a number or null, found {other}",
                            values.display()
                        )));
                    }
                };
                sli_values.insert(k.clone(), value);
            }
            for o in &model.objectives {
                if !sli_values.contains_key(&o.sli) {
                    let known: Vec<&str> = sli_values.keys().map(String::as_str).collect();
                    let hint = crate::yaml::closest(&o.sli, &known)
                        .map(|k| format!(" (the values file has `{k}`)"))
                        .unwrap_or_default();
                    return Err(bad_input(format!(
                        "{}: no value for SLI `{}`{hint}; give it a number, or null for no data",
                        values.display(),
                        o.sli
                    )));
                }
            }
            sli_values
        }
    };
    let history: Vec<HistoryEntry> = match history {
        Some(path) => serde_json::from_value(read_json(path, "history file")?)
            .map_err(|e| bad_input(format!("{}: expected [{{\"result\": \"pass\", \"sli_values\": {{...}}}}], oldest first: {e}", path.display())))?,
        None => Vec::new(),
    };
    let evaluation = evaluate(&model, &sli_values, &history);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).map_err(infra)?
        );
    } else {
        println!(
            "{:<28} {:>12} {:>8} {:>7}  PASS CRITERIA",
            "OBJECTIVE", "VALUE", "STATUS", "SCORE"
        );
        for o in &evaluation.objectives {
            let value = o
                .value
                .map(|v| format!("{v}"))
                .unwrap_or_else(|| "no data".into());
            let criteria: Vec<String> = o
                .pass_targets
                .iter()
                .map(|t| format!("{}{}", t.criteria, if t.violated { " ✗" } else { "" }))
                .collect();
            println!(
                "{:<28} {:>12} {:>8} {:>7}  {}{}",
                o.display_name,
                value,
                format!("{:?}", o.status).to_lowercase(),
                format!("{}/{}", o.score, o.weight),
                criteria.join(", "),
                if o.key_sli { "  (key)" } else { "" }
            );
        }
        println!(
            "result: {} (score {:.2}): {}",
            evaluation.result, evaluation.score, evaluation.message
        );
    }
    let failing = match fail_on {
        Some("warning") => evaluation.result != Verdict::Pass,
        Some("fail") => matches!(evaluation.result, Verdict::Fail | Verdict::Error),
        _ => false,
    };
    Ok(if failing { exit::FAILED } else { exit::OK })
}

/// Records a new run of `p` in the journal.
fn new_run(
    journal_path: &Path,
    p: &Pipeline,
    path: &Path,
    stage: Option<&str>,
) -> std::result::Result<i64, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    store
        .create_run(&NewRun {
            pipeline: &p.name,
            service: &p.service,
            path: &path.display().to_string(),
            source: &p.source,
            sets: &p.sets,
            stage,
        })
        .map_err(infra)
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Runs (or resumes) a run headless: progress on stderr, verdict on stdout.
/// Starts the embedded sandbox when a stage targets it, and points those stages at it as at
/// any cluster: a kubeconfig context (namespace: the pipeline's `namespace` variable, else
/// `default`) and, unless the stage names another, the sandbox's Prometheus API.
async fn embed_sandbox(
    mut p: Pipeline,
    scenario: &str,
    journal_path: &Path,
) -> std::result::Result<(Pipeline, Option<EmbeddedSandbox>), Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    use crate::sandbox::{Cluster, Sandbox, Timing, scenario::Scenario};
    if !p
        .stages
        .iter()
        .any(|s| s.target.as_ref().is_some_and(Target::is_sandbox))
    {
        return Ok((p, None));
    }
    let scenario = Scenario::named(scenario)
        .ok_or_else(|| bad_input(format!("unknown scenario {scenario}")))?;
    let cluster = Cluster::with_scenario(32, Timing::default(), scenario);
    crate::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster)
        .await
        .map_err(|e| infra(format!("cannot start the sandbox: {e}")))?;
    let kubeconfig =
        journal_path.with_file_name(format!("sandbox-run-{}.kubeconfig", std::process::id()));
    sandbox
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| infra(format!("cannot write {}: {e}", kubeconfig.display())))?;
    let namespace = p
        .sets
        .get("namespace")
        .or_else(|| p.file.spec.variables.get("namespace"))
        .cloned()
        .unwrap_or_else(|| "default".into());
    let prometheus: crate::pipeline::model::Prometheus =
        serde_json::from_value(serde_json::json!({ "url": sandbox.url() }))
            .map_err(|e| infra(e.to_string()))?;
    for stage in &mut p.stages {
        let namespace = match &stage.target {
            Some(Target::SandboxIn(t)) => t.namespace.clone(),
            Some(Target::Sandbox(_)) => namespace.clone(),
            _ => continue,
        };
        stage.target = Some(Target::Cluster(ClusterTarget {
            context: Some(crate::sandbox::CONTEXT.into()),
            namespace: Some(namespace),
            kubeconfig: Some(kubeconfig.display().to_string()),
        }));
        if stage.prometheus.is_none() {
            stage.prometheus = Some(prometheus.clone());
        }
    }
    Ok((
        p,
        Some(EmbeddedSandbox {
            _sandbox: sandbox,
            kubeconfig,
        }),
    ))
}

/// One driver at a time: the run's lease on every stage's cluster (see `kube::lease`).
async fn acquire_leases(
    p: &Pipeline,
    only: Option<&str>,
    run: i64,
    journal: &Path,
    force: bool,
) -> std::result::Result<Vec<crate::kube::lease::Held>, Exit> {
    use crate::pipeline::model::Target;
    // The journal and run id name the driver: a resumed run is the same driver.
    let holder = format!("{} (run {run} in {})", whoami(), journal.display());
    let mut held = Vec::new();
    for stage in p.stages.iter().filter(|s| only.is_none_or(|o| s.name == o)) {
        let Some(target @ Target::Cluster(_)) = &stage.target else {
            continue;
        };
        let cluster = match crate::kube::objects::Cluster::connect(Some(target)).await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                eprintln!("warning: stage {}: no run lease taken ({e})", stage.name);
                continue;
            }
        };
        let name = crate::kube::lease::name(&p.service, &stage.name);
        match crate::kube::lease::acquire(cluster, &name, &holder, force).await {
            Ok(h) => held.push(h),
            Err(e) if e.contains("is being driven by") => {
                for h in held {
                    h.release().await;
                }
                return Err(Exit {
                    code: exit::INFRA,
                    message: e,
                });
            }
            Err(e) => eprintln!("warning: stage {}: no run lease taken ({e})", stage.name),
        }
    }
    Ok(held)
}

/// The sandbox a run started; its kubeconfig goes when it does.
struct EmbeddedSandbox {
    _sandbox: crate::sandbox::Sandbox,
    kubeconfig: PathBuf,
}

impl Drop for EmbeddedSandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// Whether a run opens the cockpit: it needs a terminal on both ends; anything else (CI,
/// a pipe) runs headless.
fn interactive(flags: &DriveFlags) -> bool {
    use std::io::IsTerminal;
    !flags.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Production before the demo's release: the stable version applied to the sandbox and
/// ready, so the canary has something to compare with and its history has 30 days.
async fn seed_production(
    sandbox: &EmbeddedSandbox,
    objects: &[serde_json::Value],
) -> Result<(), String> {
    use crate::kube::objects::{Cluster, Readiness, readiness};
    use crate::pipeline::model::{ClusterTarget, Target};
    let target = Target::Cluster(ClusterTarget {
        context: Some(crate::sandbox::CONTEXT.into()),
        namespace: Some(DEMO_PRODUCTION.into()),
        kubeconfig: Some(sandbox.kubeconfig.display().to_string()),
    });
    let cluster = Cluster::connect(Some(&target)).await?;
    let mut placed = Vec::new();
    for o in objects {
        let mut o = o.clone();
        cluster.place(&mut o).await?;
        cluster.apply(&o, false).await?;
        placed.push(o);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for o in &placed {
        loop {
            let live = cluster.get(o).await?;
            match live.as_ref().map(|l| readiness(l, None)) {
                Some(Readiness::Ready) => break,
                _ if std::time::Instant::now() > deadline => {
                    return Err(format!(
                        "{} did not become ready in 30 s",
                        crate::kube::objects::describe(o)
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// Runs a pipeline to its end, in the cockpit or headless (`demo`: the demo's production
/// and banner).
async fn drive(
    p: Pipeline,
    journal_path: &Path,
    run: i64,
    next_seq: u64,
    options: RunOptions,
    flags: &DriveFlags,
    demo: Option<Demo>,
) -> std::result::Result<i32, Exit> {
    let interactive = interactive(flags);
    if !flags.headless && !interactive {
        eprintln!("note: not a terminal, so running headless (--headless says so explicitly)");
    }
    let mut p = p;
    if let Some(context) = &flags.context {
        use crate::pipeline::model::{ClusterTarget, Target};
        for stage in &mut p.stages {
            match &mut stage.target {
                Some(Target::Cluster(c)) => c.context = Some(context.clone()),
                t @ None => {
                    *t = Some(Target::Cluster(ClusterTarget {
                        context: Some(context.clone()),
                        ..ClusterTarget::default()
                    }))
                }
                Some(Target::Sandbox(_) | Target::SandboxIn(_)) => {}
            }
        }
    }
    // Named as written (`sandbox/shop`), before the sandbox stages are pointed at it.
    let target = describe_target(&p);
    let (p, sandbox) = embed_sandbox(p, &flags.scenario, journal_path).await?;
    if let (Some(demo), Some(sandbox)) = (&demo, &sandbox) {
        if !interactive {
            eprintln!("{}", demo.banner);
            eprintln!("production runs checkout {DEMO_STABLE}; starting it on the sandbox");
        }
        seed_production(sandbox, &demo.production)
            .await
            .map_err(|e| infra(format!("cannot start the demo's production: {e}")))?;
    }
    let leases = acquire_leases(
        &p,
        options.stage.as_deref(),
        run,
        journal_path,
        flags.force_unlock,
    )
    .await?;
    let journal = Journal::open(journal_path).map_err(infra)?;
    let emitter = Emitter::new(run, next_seq, Some(journal));
    let mut printer = None;
    let mut notifier = None;
    let hooks: Vec<_> = p.file.spec.notify.iter().map(|n| n.value.clone()).collect();
    let mut cockpit_events = None;
    let protected: Vec<String> = p
        .stages
        .iter()
        .filter(|s| s.protected)
        .map(|s| s.name.clone())
        .collect();
    let handle = engine::start_with(Arc::new(p), emitter, options, |tx| {
        if !hooks.is_empty() {
            notifier = Some(tokio::spawn(crate::notify::follow(tx.subscribe(), hooks)));
        }
        if interactive {
            cockpit_events = Some(tx.subscribe());
        } else {
            printer = Some(tokio::spawn(crate::headless::print(tx.subscribe())));
        }
    });
    // A resumed run's cockpit starts from what the journal already holds.
    let earlier = if next_seq > 1 {
        Store::open(journal_path)
            .and_then(|s| s.events_after(run, 0))
            .map(|events| {
                events
                    .into_iter()
                    .filter(|e| e.seq < next_seq)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // One driver at a time: this process holds the leases, the header says so.
    let lease = (!leases.is_empty()).then(|| format!("{} (this run)", whoami()));
    let cockpit = cockpit_events.map(|rx| {
        let commands = handle.commands.clone();
        let options = crate::ui::Options {
            theme: flags.cockpit.theme.clone(),
            read_only: flags.cockpit.read_only,
            target,
            protected,
            journal: Some(journal_path.to_owned()),
            mouse: flags.cockpit.mouse,
            notice: None,
            banner: demo.map(|d| d.banner),
            lease,
            interrupted: !earlier.is_empty(),
        };
        tokio::spawn(async move {
            match crate::ui::run(rx, commands, options, &earlier).await {
                // Left while the run goes on: its progress continues on stderr, from the
                // first event the cockpit had not shown.
                Ok(ended) if !ended.run_ended => {
                    crate::headless::print(ended.events).await;
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
        })
    });
    let inbox = tokio::spawn(forward_inbox(
        journal_path.to_owned(),
        run,
        handle.commands.clone(),
    ));
    let signals = tokio::spawn(abort_on_signal(handle.commands.clone()));
    let outcome: Outcome = handle.wait().await;
    for lease in leases {
        lease.release().await;
    }
    inbox.abort();
    signals.abort();
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    // The run is over; what it told webhooks gets a moment to arrive, never more (the
    // senders give up at the same deadline; this is the backstop).
    if let Some(notifier) = notifier
        && tokio::time::timeout(crate::notify::FLUSH + Duration::from_secs(1), notifier)
            .await
            .is_err()
    {
        crate::notify::warn(format!(
            "notifications still unsent after {} s were dropped",
            crate::notify::FLUSH.as_secs()
        ));
    }
    if let Some(cockpit) = cockpit {
        match cockpit.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("warning: the cockpit stopped: {e}"),
            Err(e) => eprintln!("warning: the cockpit stopped: {e}"),
        }
    }
    let store = Store::open(journal_path).map_err(infra)?;
    let events = store.events(run).map_err(infra)?;
    let report = Report::from_events(run, &events);
    if let Some(path) = &flags.report {
        report
            .write_json(path)
            .with_context(|| format!("writing the report to {}", path.display()))
            .map_err(infra)?;
    }
    if let Some(dir) = &flags.report_dir {
        write_reports(&report, dir)?;
    }
    println!("run {run} {}: {}", outcome.status, outcome.reason);
    Ok(outcome.exit_code)
}

/// `--report-dir`: every format, and where they went.
fn write_reports(report: &Report, dir: &Path) -> std::result::Result<(), Exit> {
    let written = report
        .write_all(dir)
        .with_context(|| format!("writing the reports to {}", dir.display()))
        .map_err(infra)?;
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!("reports in {}: {}", dir.display(), names.join(", "));
    Ok(())
}

/// Where a pipeline delivers, for the cockpit's header: `context/namespace`, with the
/// namespaces of one context together (`prod-eu/shop-staging,shop`), or `sandbox`.
fn describe_target(p: &Pipeline) -> String {
    use crate::pipeline::model::Target;
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for stage in &p.stages {
        let (context, namespace) = match &stage.target {
            Some(Target::Cluster(c)) => (
                c.context.as_deref().unwrap_or("current context").to_owned(),
                c.namespace.as_deref().unwrap_or("default").to_owned(),
            ),
            Some(Target::Sandbox(_)) => ("sandbox".to_owned(), String::new()),
            Some(Target::SandboxIn(t)) => ("sandbox".to_owned(), t.namespace.clone()),
            None => continue,
        };
        match seen.iter_mut().find(|(c, _)| *c == context) {
            Some((_, namespaces)) => {
                if !namespaces.contains(&namespace) {
                    namespaces.push(namespace);
                }
            }
            None => seen.push((context, vec![namespace])),
        }
    }
    seen.iter()
        .map(|(context, namespaces)| {
            let namespaces: Vec<&str> = namespaces
                .iter()
                .map(String::as_str)
                .filter(|n| !n.is_empty())
                .collect();
            if namespaces.is_empty() {
                context.clone()
            } else {
                format!("{context}/{}", namespaces.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Commands left in the journal by `glidepath approve` and friends reach the engine here.
async fn forward_inbox(
    path: PathBuf,
    run: i64,
    tx: tokio::sync::mpsc::UnboundedSender<crate::events::Command>,
) {
    let Ok(store) = Store::open(&path) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        match store.take_commands(run) {
            Ok(commands) => {
                for c in commands {
                    if tx.send(c).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!("cannot read commands from the journal: {e}"),
        }
    }
}

/// Ctrl-C or SIGTERM aborts the run cleanly (journaled); a second one exits at once.
async fn abort_on_signal(tx: tokio::sync::mpsc::UnboundedSender<crate::events::Command>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut seen = 0;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        seen += 1;
        if seen > 1 {
            // Out at once, but not with the terminal left in the cockpit's modes.
            if crate::ui::active() {
                crate::ui::restore_terminal(true);
            }
            std::process::exit(exit::ABORTED);
        }
        let _ = tx.send(crate::events::Command::new(
            CommandKind::Abort,
            format!("{name} ({})", whoami()),
        ));
    }
}

/// Leaves a command for a run and reports whether the engine took it.
/// `attach`: the cockpit over a run's journal. Events already journaled are shown at
/// once, new ones as they are committed; commands go to the journal's inbox, where the
/// driving process picks them up.
async fn attach(
    journal_path: &Path,
    run: Option<i64>,
    cockpit: CockpitFlags,
) -> std::result::Result<i32, Exit> {
    let CockpitFlags {
        theme,
        read_only,
        mouse,
    } = cockpit;
    use std::io::IsTerminal;
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(bad_input(
            "attach opens the cockpit and needs a terminal; `glidepath history RUN` prints a run",
        ));
    }
    let store = Store::open(journal_path).map_err(infra)?;
    let run = match run {
        Some(r) => r,
        None => store
            .last_unfinished()
            .map_err(infra)?
            .ok_or_else(|| bad_input("no unfinished run to attach to; name one: attach RUN"))?,
    };
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    // What the journal holds is shown at once; the follower carries on after it.
    let earlier = store.events(run).map_err(infra)?;
    let start_after = earlier.last().map(|e| e.seq).unwrap_or(0);
    let driven = record.exit_code.is_none() && record.pid.is_some_and(process_alive);
    let notice = (record.exit_code.is_none() && !driven).then(|| {
        format!(
            "no process drives run {run}: watching only; `glidepath resume {run}` takes it over"
        )
    });
    let read_only = read_only || notice.is_some();
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(16_384);
    let (commands_tx, mut commands_rx) =
        tokio::sync::mpsc::unbounded_channel::<crate::events::Command>();
    let path = journal_path.to_owned();
    let follower = tokio::spawn(async move {
        let Ok(store) = Store::open(&path) else {
            return;
        };
        let mut last = start_after;
        loop {
            match store.events_after(run, last) {
                Ok(events) => {
                    for env in events {
                        last = env.seq;
                        let _ = events_tx.send(env);
                    }
                }
                Err(e) => tracing::warn!("cannot follow run {run} in the journal: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let path = journal_path.to_owned();
    let sender = tokio::spawn(async move {
        let Ok(store) = Store::open(&path) else {
            return;
        };
        while let Some(c) = commands_rx.recv().await {
            if let Err(e) = store.send_command(run, c.kind, &c.who) {
                tracing::warn!("cannot send {} to run {run}: {e}", c.kind);
            }
        }
    });
    // Protected stages as the run's own pipeline text says; if it no longer loads, every
    // stage asks for the service name (the safe side).
    let vars = pipeline::Variables {
        sets: record.sets.clone(),
        use_env: false,
    };
    let protected = match pipeline::load_str(&record.source, Path::new(&record.path), &vars) {
        Ok(p) => p
            .stages
            .iter()
            .filter(|s| s.protected)
            .map(|s| s.name.clone())
            .collect(),
        Err(_) => store
            .events(run)
            .map_err(infra)?
            .iter()
            .find_map(|e| match &e.event {
                Event::RunStarted { stages, .. } => {
                    Some(stages.iter().map(|s| s.name.clone()).collect())
                }
                _ => None,
            })
            .unwrap_or_default(),
    };
    let options = crate::ui::Options {
        theme,
        read_only,
        target: format!("attached to run {run} ({})", record.path),
        protected,
        journal: Some(journal_path.to_owned()),
        mouse,
        interrupted: notice.is_some(),
        banner: None,
        lease: record
            .pid
            .filter(|_| driven)
            .map(|pid| format!("held by the driver, pid {pid}")),
        notice,
    };
    let result = crate::ui::run(events_rx, commands_tx, options, &earlier).await;
    follower.abort();
    sender.abort();
    result.map_err(infra)?;
    Ok(exit::OK)
}

async fn send(journal_path: &Path, run: i64, kind: CommandKind) -> std::result::Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    if record.exit_code.is_some() {
        return Err(bad_input(format!(
            "run {run} has already finished ({})",
            record.status
        )));
    }
    let last = store
        .events(run)
        .map_err(infra)?
        .last()
        .map(|e| e.seq)
        .unwrap_or(0);
    let who = whoami();
    store.send_command(run, kind, &who).map_err(infra)?;
    // Wait a little for the engine's answer, so the operator knows it took effect.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for env in store.events_after(run, last).map_err(infra)? {
            if let Event::Operator {
                command,
                who: w,
                accepted,
                reason,
            } = env.event
                && command == kind
                && w == who
            {
                return if accepted {
                    println!("run {run}: {kind} accepted");
                    Ok(exit::OK)
                } else {
                    println!("run {run}: {kind} refused: {}", reason.unwrap_or_default());
                    Ok(exit::FAILED)
                };
            }
        }
    }
    println!(
        "run {run}: {kind} queued; no process is driving the run right now, it takes effect when the run is resumed"
    );
    Ok(exit::OK)
}

fn history(
    journal_path: &Path,
    run: Option<i64>,
    json: bool,
    limit: usize,
) -> std::result::Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    match run {
        None => {
            let runs = store.runs(limit).map_err(infra)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs).map_err(infra)?);
                return Ok(exit::OK);
            }
            println!(
                "{:>5}  {:<20} {:<20} {:<14} {:>9}",
                "RUN", "PIPELINE", "STARTED (UTC)", "OUTCOME", "DURATION"
            );
            for r in runs {
                let duration = r
                    .finished_ms
                    .map(|f| {
                        pipeline::units::format_duration(Duration::from_millis(
                            (f - r.started_ms).max(0) as u64,
                        ))
                    })
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:>5}  {:<20} {:<20} {:<14} {:>9}",
                    r.id,
                    r.pipeline,
                    timestamp(r.started_ms),
                    r.status.word(),
                    duration
                );
            }
            Ok(exit::OK)
        }
        Some(id) => {
            store.run(id).map_err(|e| bad_input(e.to_string()))?;
            let events = store.events(id).map_err(infra)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Report::from_events(id, &events))
                        .map_err(infra)?
                );
                return Ok(exit::OK);
            }
            for env in &events {
                if let Some(line) = crate::headless::line(env) {
                    println!("{line}");
                }
            }
            Ok(exit::OK)
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn timestamp(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}
