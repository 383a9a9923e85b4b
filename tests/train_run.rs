//! Release trains run end to end: the glidepath binary drives a train on a sandbox this test
//! starts (reached through a kubeconfig, as any cluster), and the test reads the journal and
//! the sandbox's objects afterwards. Waves run side by side and in order; a member failing
//! in any wave position stops its partners and rolls back what the stage promoted, in
//! reverse dependency order; the train's leases refuse a manual release of a member; the
//! demo's two train scenarios end as the README says.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use glidepath::events::{Event, Status};
use glidepath::sandbox::Cluster;
use glidepath::sandbox::store::Key;
use glidepath::store::Store;
use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{Env, env, template_version};

#[path = "support/wait.rs"]
mod wait;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");
const ROLLED_BACK_BY: &str = "glidepath.dev/rolled-back-by";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/service.yaml")
}

fn slo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/slo.yaml")
}

/// The target of a stage: `shop-staging` for staging, `shop` otherwise.
fn target(env: &Env, stage: &str) -> String {
    let ns = if stage == "staging" {
        "shop-staging"
    } else {
        "shop"
    };
    format!(
        "{{ context: glidepath-sandbox, namespace: {ns}, kubeconfig: {} }}",
        env.kubeconfig.display()
    )
}

/// A member pipeline for `app` with `stages`: `base` deploys, `staging` deploys, any other
/// stage releases a canary judged by the demo's objectives (rolled back on failure).
fn member(env: &Env, app: &str, stages: &[&str]) -> String {
    member_on(app, stages, &env.sandbox.url(), |stage| target(env, stage))
}

/// [`member`] on any cluster: `target` gives each stage's target, `prometheus` the URL of
/// the Prometheus API that sees its traffic.
fn member_on(
    app: &str,
    stages: &[&str],
    prometheus: &str,
    target: impl Fn(&str) -> String,
) -> String {
    let mut text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: {app} }}\nspec:\n  prometheus: {{ url: \"{prometheus}\" }}\n  variables: {{ app: {app}, version: \"2.0.0\", errors: \"0\", pause: 3s }}\n  stages:\n"
    );
    let manifests = fixture().display().to_string();
    for stage in stages {
        text.push_str(&format!(
            "    - name: {stage}\n      target: {}\n      steps:\n",
            target(stage)
        ));
        if matches!(*stage, "base" | "staging") {
            text.push_str(&format!(
                "        - deploy: {{ manifests: [{manifests}], waitFor: {{ timeout: 1m }} }}\n"
            ));
        } else {
            text.push_str(&format!(
                "        - release:\n            manifests: [{manifests}]\n            canary:\n              analysis: {{ slo: {}, interval: 2s, failureLimit: 1, inconclusiveLimit: 3 }}\n              steps: [{{ weight: 50 }}, {{ pause: \"${{pause}}\" }}, {{ weight: 100 }}]\n              bake: 4s\n          onFailure: rollback\n",
                slo().display()
            ));
        }
    }
    text
}

/// The error ratio of a version these tests expect to pass: none. These tests judge the
/// train, not the gate's statistics; with the sandbox's default (one request in 2,000),
/// two failures among a young canary's first hundred requests read as more than 1% over
/// its 30-s window, and a 2-s interval counts that one unlucky stretch as several failed
/// analyses in a row (CI saw a healthy checkout rolled back so).
const HEALTHY: &str = "0";

/// One member of a test train: name, the members it comes after, its version and the
/// fraction of requests its new pods fail.
struct M(
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

/// Writes a train `name` through `stages` (and its members' pipelines) into the test's
/// folder; returns the train file.
fn train(env: &Env, name: &str, stages: &[&str], members: &[M]) -> PathBuf {
    train_with(env, name, stages, members, |app| member(env, app, stages))
}

/// [`train`] with each member's pipeline text from `pipeline(app)`.
fn train_with(
    env: &Env,
    name: &str,
    stages: &[&str],
    members: &[M],
    pipeline: impl Fn(&str) -> String,
) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = format!(
        "apiVersion: glidepath/v1\nkind: Train\nmetadata: {{ name: {name} }}\nspec:\n  stages: [{}]\n  members:\n",
        stages.join(", ")
    );
    for M(app, after, version, errors) in members {
        std::fs::write(dir.join(format!("{app}.yaml")), pipeline(app)).unwrap();
        text.push_str(&format!(
            "    - name: {app}\n      pipeline: {app}.yaml\n      set: {{ version: \"{version}\", errors: \"{errors}\" }}\n      after: [{}]\n",
            after.join(", ")
        ));
    }
    let path = dir.join("train.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary in the test's home; (exit code, stdout, stderr).
fn glidepath(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("GLIDEPATH_HOME", env.dir.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    printed(&out)
}

/// [`glidepath`] on a blocking thread (the sandbox serves meanwhile).
async fn glidepath_async(env: &Env, args: Vec<String>) -> (i32, String, String) {
    let home = env.dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(&args)
            .env("GLIDEPATH_HOME", &home)
            .env_remove("GLIDEPATH_JOURNAL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        printed(&out)
    })
    .await
    .unwrap()
}

/// `glidepath run TRAIN --headless ARGS` on a blocking thread.
async fn run_train(env: &Env, path: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        "run".to_owned(),
        path.display().to_string(),
        "--headless".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    glidepath_async(env, all).await
}

/// payments, inventory and checkout 1.0.0 running in `shop`, released by a train of its own.
async fn baseline(env: &Env) {
    let path = train(
        env,
        "baseline",
        &["base"],
        &[
            M("payments", &[], "1.0.0", HEALTHY),
            M("inventory", &[], "1.0.0", HEALTHY),
            M("checkout", &[], "1.0.0", HEALTHY),
        ],
    );
    let (code, out, err) = run_train(env, &path, &[]).await;
    assert_eq!(code, 0, "the baseline train failed:\n{out}\n{err}");
}

fn deployment(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster
        .get(&Key {
            group: "apps".into(),
            plural: "deployments".into(),
            namespace: "shop".into(),
            name: name.into(),
        })
        .map(|o| (*o).clone())
}

fn rolled_back_by(d: &Value) -> Option<String> {
    d.pointer("/metadata/annotations")
        .and_then(|a| a.get(ROLLED_BACK_BY))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Watches the API server until each of `names` carries the rolled-back-by mark; returns
/// the names in the order the marks appeared.
fn watch_rollbacks(
    cluster: Arc<Cluster>,
    names: &[&'static str],
) -> tokio::task::JoinHandle<Vec<String>> {
    let names: Vec<&'static str> = names.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut seen: Vec<String> = Vec::new();
        wait::wait_until(Duration::from_secs(240), || {
            for n in &names {
                if !seen.iter().any(|s| s == n)
                    && deployment(&cluster, n)
                        .as_ref()
                        .and_then(rolled_back_by)
                        .is_some()
                {
                    seen.push((*n).to_owned());
                }
            }
            seen.len() == names.len()
        });
        seen
    })
}

/// The first train run named `name` in the test's journal, and its events.
fn train_events(env: &Env, name: &str) -> (i64, Vec<Event>) {
    let store = Store::open(&env.dir.path().join("journal.db")).unwrap();
    let run = store
        .runs(200)
        .unwrap()
        .into_iter()
        .filter(|r| r.pipeline == name && r.service == "train")
        .min_by_key(|r| r.id)
        .unwrap_or_else(|| panic!("no train run of {name}"));
    let events = store.events(run.id).unwrap();
    (run.id, events.into_iter().map(|e| e.event).collect())
}

/// Position of the first event matching `pred`.
fn at(events: &[Event], what: &str, pred: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no event: {what}"))
}

fn started(events: &[Event], stage: &str, member: &str) -> usize {
    at(
        events,
        &format!("{member} started {stage}"),
        |e| matches!(e, Event::StepStarted { stage: s, step, .. } if s == stage && step == member),
    )
}

fn finished(events: &[Event], stage: &str, member: &str, status: Status) -> usize {
    at(events, &format!("{member} {status} in {stage}"), |e| {
        matches!(e, Event::StepFinished { stage: s, step, status: st, .. }
            if s == stage && step == member && *st == status)
    })
}

fn versions(cluster: &Cluster, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            deployment(cluster, n)
                .map(|d| template_version(&d).to_owned())
                .unwrap_or_else(|| "absent".into())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_failing_in_the_last_wave_rolls_back_the_earlier_waves_in_reverse_order() {
    let env = env("happy").await;
    baseline(&env).await;
    // payments, then inventory, then checkout (which fails): three waves.
    let path = train(
        &env,
        "chain",
        &["prod"],
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &["payments"], "2.0.0", HEALTHY),
            M("checkout", &["inventory"], "2.0.0", "0.3"),
        ],
    );
    let order = watch_rollbacks(env.sandbox.cluster.clone(), &["payments", "inventory"]);
    let (code, out, err) = run_train(&env, &path, &[]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("payments: rolled back"), "{out}");
    assert!(out.contains("inventory: rolled back"), "{out}");
    assert!(out.contains("checkout: failed"), "{out}");
    // The API server saw inventory (after payments) rolled back before payments.
    assert_eq!(order.await.unwrap(), vec!["inventory", "payments"]);
    let cluster = &env.sandbox.cluster;
    assert_eq!(
        versions(cluster, &["payments", "inventory", "checkout"]),
        vec!["1.0.0", "1.0.0", "1.0.0"]
    );
    assert!(
        deployment(cluster, "checkout-canary").is_none(),
        "checkout's canary is still there"
    );
    let (_, events) = train_events(&env, "chain");
    assert!(
        finished(&events, "prod", "inventory", Status::RolledBack)
            < finished(&events, "prod", "payments", Status::RolledBack)
    );
    // Each wave waited for the one before.
    assert!(
        finished(&events, "prod", "payments", Status::Passed)
            < started(&events, "prod", "inventory")
    );
    assert!(
        finished(&events, "prod", "inventory", Status::Passed)
            < started(&events, "prod", "checkout")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_failing_in_the_first_wave_stops_its_partner_and_the_next_wave_never_starts() {
    let env = env("happy").await;
    baseline(&env).await;
    let path = train(
        &env,
        "first-wave",
        &["prod"],
        &[
            M("payments", &[], "2.0.0", "0.3"),
            M("inventory", &[], "2.0.0", HEALTHY),
            M("checkout", &["payments", "inventory"], "2.0.0", HEALTHY),
        ],
    );
    let (code, out, err) = run_train(&env, &path, &[]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("payments: failed"), "{out}");
    // Stopped mid-canary (its own rollback) or promoted first and rolled back by the train.
    assert!(out.contains("inventory: rolled back"), "{out}");
    assert!(out.contains("checkout: not started"), "{out}");
    let cluster = &env.sandbox.cluster;
    assert_eq!(
        versions(cluster, &["payments", "inventory", "checkout"]),
        vec!["1.0.0", "1.0.0", "1.0.0"]
    );
    for canary in ["payments-canary", "inventory-canary", "checkout-canary"] {
        assert!(
            deployment(cluster, canary).is_none(),
            "{canary} is still there"
        );
    }
    let (_, events) = train_events(&env, "first-wave");
    // payments and inventory ran side by side: both started before either ended.
    let both_started =
        started(&events, "prod", "payments").max(started(&events, "prod", "inventory"));
    let first_end = events
        .iter()
        .position(|e| matches!(e, Event::StepFinished { step, .. } if step == "payments" || step == "inventory"))
        .unwrap();
    assert!(both_started < first_end);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::StepStarted { step, .. } if step == "checkout"))
    );
    finished(&events, "prod", "checkout", Status::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_train_holds_each_members_lease_so_a_manual_release_is_refused() {
    let env = env("happy").await;
    let path = train(
        &env,
        "leased",
        &["staging", "prod"],
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("checkout", &["payments"], "2.0.0", HEALTHY),
        ],
    );
    let home = env.dir.path().to_owned();
    let file = path.clone();
    // No --auto-approve: the train waits at its approval after staging, leases held.
    let driver = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["run", file.to_str().unwrap(), "--headless"])
            .env("GLIDEPATH_HOME", &home)
            .env_remove("GLIDEPATH_JOURNAL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    let waiting = wait::wait_until_async(Duration::from_secs(120), async || {
        Store::open(&env.dir.path().join("journal.db"))
            .ok()
            .and_then(|s| s.runs(20).ok())
            .and_then(|runs| runs.into_iter().find(|r| r.pipeline == "leased"))
            .and_then(|r| Store::open(&env.dir.path().join("journal.db")).ok()?.events(r.id).ok())
            .is_some_and(|events| {
                events.iter().any(|e| matches!(&e.event,
                    Event::StepState { step, status: Status::WaitingForApproval, .. } if step == "approve"))
            })
    })
    .await;
    assert!(waiting, "the train never waited for its approval");
    let (train_run, _) = train_events(&env, "leased");
    let member = path.with_file_name("payments.yaml");
    let (code, out, err) = glidepath(&env, &["run", member.to_str().unwrap(), "--headless"]);
    assert_eq!(
        code, 4,
        "a manual release of payments was not refused:\n{out}\n{err}"
    );
    assert!(err.contains(&format!("run {train_run} in")), "{err}");
    // The API server holds the train's lease and each member's, all naming the train's run.
    for lease in [
        "glidepath-train-leased",
        "glidepath-payments-staging",
        "glidepath-checkout-prod",
    ] {
        let held = env
            .sandbox
            .cluster
            .get(&Key {
                group: "coordination.k8s.io".into(),
                plural: "leases".into(),
                namespace: if lease.ends_with("prod") {
                    "shop"
                } else {
                    "shop-staging"
                }
                .into(),
                name: lease.into(),
            })
            .unwrap_or_else(|| panic!("no lease {lease}"));
        let holder = held
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(
            holder.contains(&format!("(run {train_run} in")),
            "{lease}: {holder}"
        );
    }
    // A second run of the same train is refused too.
    let (code, out, err) = glidepath(&env, &["run", path.to_str().unwrap(), "--headless"]);
    assert_eq!(
        code, 4,
        "a second run of the train was not refused:\n{out}\n{err}"
    );
    let (code, out, _) = glidepath(&env, &["reject", &train_run.to_string()]);
    assert_eq!(code, 0, "{out}");
    let out = tokio::time::timeout(Duration::from_secs(120), driver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, events) = train_events(&env, "leased");
    finished(&events, "staging", "approve", Status::Failed);
    finished(&events, "prod", "payments", Status::Skipped);
}

/// The demo's own train files, pointed at the test's sandbox, with production at 1.0.0.
async fn demo_train_on(env: &Env) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = env.dir.path();
    for sub in ["config/demo/train", "assets/demo-train"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for f in std::fs::read_dir(root.join(sub)).unwrap() {
            let f = f.unwrap().path();
            let text = std::fs::read_to_string(&f)
                .unwrap()
                .replace(
                    "  target: sandbox\n",
                    &format!(
                        "  target: {}\n  prometheus: {{ url: \"{}\" }}\n",
                        target(env, "prod"),
                        env.sandbox.url()
                    ),
                )
                .replace(
                    "{ sandbox: true, namespace: shop-staging }",
                    &target(env, "staging"),
                )
                .replace("{ sandbox: true, namespace: shop }", &target(env, "prod"));
            std::fs::write(dir.join(sub).join(f.file_name().unwrap()), text).unwrap();
        }
    }
    std::fs::copy(slo(), dir.join("config/demo/slo.yaml")).unwrap();
    let base = dir.join("base.yaml");
    std::fs::write(
        &base,
        format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: production }}\nspec:\n  variables: {{ version: \"1.0.0\" }}\n  stages:\n    - name: base\n      target: {}\n      steps:\n        - deploy: {{ manifests: [assets/demo-train/], waitFor: {{ timeout: 1m }} }}\n",
            target(env, "prod")
        ),
    )
    .unwrap();
    let (code, out, err) = glidepath(env, &["run", base.to_str().unwrap(), "--headless"]);
    assert_eq!(code, 0, "production did not start:\n{out}\n{err}");
    dir.join("config/demo/train/train.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_train_promotes_every_member_in_staging_and_production() {
    let env = env("train").await;
    let path = demo_train_on(&env).await;
    let reports = env.dir.path().join("reports");
    let (code, out, err) = run_train(
        &env,
        &path,
        &[
            "--auto-approve",
            "--set",
            "pause=2s",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    for m in ["payments", "inventory", "checkout"] {
        assert!(out.contains(&format!("{m}: promoted")), "{out}");
    }
    let cluster = &env.sandbox.cluster;
    assert_eq!(
        versions(cluster, &["payments", "inventory", "checkout"]),
        vec!["2.0.0"; 3]
    );
    for canary in ["payments-canary", "inventory-canary", "checkout-canary"] {
        assert!(
            deployment(cluster, canary).is_none(),
            "{canary} is still there"
        );
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap()).unwrap();
    let states: Vec<&str> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["promoted"; 3]);
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite name=").count(), 3, "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    // `rollback --train` undoes the last stage, checkout (the last wave) first.
    let (run, _) = train_events(&env, "shop-2");
    let (code, out, err) = glidepath(&env, &["rollback", "--train", &run.to_string(), "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let line = |m: &str| {
        out.find(&format!("{m}: rolled back"))
            .unwrap_or_else(|| panic!("{out}"))
    };
    assert!(
        line("checkout") < line("inventory") && line("inventory") < line("payments"),
        "{out}"
    );
    assert_eq!(
        versions(cluster, &["payments", "inventory", "checkout"]),
        vec!["1.0.0"; 3]
    );
    let staging = cluster
        .get(&Key {
            group: "apps".into(),
            plural: "deployments".into(),
            namespace: "shop-staging".into(),
            name: "checkout".into(),
        })
        .unwrap();
    assert_eq!(
        template_version(&staging),
        "2.0.0",
        "staging was rolled back too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_demo_train_rolls_back_payments_and_inventory_when_checkout_fails_in_production() {
    let env = env("train-bad").await;
    let path = demo_train_on(&env).await;
    let reports = env.dir.path().join("reports");
    let (code, out, err) = run_train(
        &env,
        &path,
        &[
            "--auto-approve",
            "--set",
            "pause=2s",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("payments: rolled back"), "{out}");
    assert!(out.contains("inventory: rolled back"), "{out}");
    assert!(out.contains("checkout: failed"), "{out}");
    let cluster = &env.sandbox.cluster;
    assert_eq!(
        versions(cluster, &["payments", "inventory", "checkout"]),
        vec!["1.0.0"; 3]
    );
    assert!(
        deployment(cluster, "checkout-canary").is_none(),
        "checkout's canary is still there"
    );
    for m in ["payments", "inventory"] {
        let d = deployment(cluster, m).unwrap();
        assert!(
            rolled_back_by(&d).is_some_and(|by| by.contains("train shop-2")),
            "{d}"
        );
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap()).unwrap();
    let states: Vec<(&str, &str)> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("payments", "rolled back"),
            ("inventory", "rolled back"),
            ("checkout", "failed")
        ]
    );
    let md = std::fs::read_to_string(reports.join("summary.md")).unwrap();
    assert!(md.contains("| payments | **rolled back** |"), "{md}");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<property name=\"final-state\" value=\"rolled back\"/>"),
        "{junit}"
    );
    // Staging stays: every member's staging Deployment runs 2.0.0.
    let staging = cluster
        .get(&Key {
            group: "apps".into(),
            plural: "deployments".into(),
            namespace: "shop-staging".into(),
            name: "payments".into(),
        })
        .unwrap();
    assert_eq!(template_version(&staging), "2.0.0");
}

#[test]
fn the_demo_scenarios_exit_as_documented() {
    for (scenario, code, states) in [
        ("train", 0, ["promoted in staging, prod"; 3]),
        (
            "train-bad",
            1,
            [
                "rolled back in prod (promoted in staging)",
                "rolled back in prod (promoted in staging)",
                "failed in prod (promoted in staging)",
            ],
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args([
                "demo",
                "--headless",
                "--scenario",
                scenario,
                "--set",
                "pause=2s",
            ])
            .env("GLIDEPATH_HOME", home.path())
            .env_remove("GLIDEPATH_JOURNAL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{scenario}:\n{stdout}\n{stderr}"
        );
        for (m, state) in ["payments", "inventory", "checkout"].iter().zip(states) {
            assert!(
                stdout.contains(&format!("{m}: {state}\n")),
                "{scenario}: {stdout}"
            );
        }
        // Members' lines carry their name in the headless output.
        assert!(stderr.contains("[checkout] "), "{stderr}");
    }
}

/// The replica counts the API server stored for Deployment `shop/name`, in order, repeats
/// dropped (0 when it is deleted), from now on.
fn sizes_of(env: &Env, name: &'static str) -> Arc<std::sync::Mutex<Vec<i64>>> {
    watch_deployment(env, name, |d| {
        d.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    })
}

/// The release step marked on Deployment `shop/name` (-1 without a mark), in order,
/// repeats dropped, from now on.
fn marks_of(env: &Env, name: &'static str) -> Arc<std::sync::Mutex<Vec<i64>>> {
    watch_deployment(env, name, |d| {
        d.pointer("/metadata/annotations/glidepath.dev~1release")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| m["step"].as_i64())
            .unwrap_or(-1)
    })
}

/// What `of` gives of each version the API server stored of Deployment `shop/name`, in
/// order, repeats dropped (0 when it is deleted), from now on.
fn watch_deployment(
    env: &Env,
    name: &'static str,
    of: fn(&Value) -> i64,
) -> Arc<std::sync::Mutex<Vec<i64>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut changes = env.sandbox.cluster.store().subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(c) = changes.recv().await {
            if c.key.plural != "deployments" || c.key.namespace != "shop" || c.key.name != name {
                continue;
            }
            let size = match c.kind {
                glidepath::sandbox::store::ChangeKind::Deleted => 0,
                _ => of(&c.object),
            };
            let mut seen = out.lock().unwrap();
            if seen.last() != Some(&size) {
                seen.push(size);
            }
        }
    });
    seen
}

/// A headless driver of the train at `path` (no auto-approval), its output kept.
fn spawn_train(env: &Env, path: &Path) -> std::process::Child {
    Command::new(BIN)
        .args(["run", path.to_str().unwrap(), "--headless"])
        .env("GLIDEPATH_HOME", env.dir.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (under four minutes) until `what` holds of the train `name`'s events while
/// `child` still drives it; fails with what it printed when it ended first.
async fn while_driving(
    env: &Env,
    child: &mut std::process::Child,
    name: &str,
    label: &str,
    what: impl Fn(&Store, &[Event]) -> bool,
) {
    let journal = env.dir.path().join("journal.db");
    let mut ended = None;
    let held = wait::wait_until_async(Duration::from_secs(240), async || {
        if let Some(status) = child.try_wait().unwrap() {
            ended = Some(status);
            return true;
        }
        let Ok(store) = Store::open(&journal) else {
            return false;
        };
        let Some(run) = store
            .runs(50)
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.pipeline == name && r.service == "train")
        else {
            return false;
        };
        let events: Vec<Event> = store
            .events(run.id)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.event)
            .collect();
        what(&store, &events)
    })
    .await;
    if let Some(status) = ended {
        let out = child.stdout.take().map(std::io::read_to_string);
        let err = child.stderr.take().map(std::io::read_to_string);
        panic!("the train's driver ended ({status}) before {label}:\n{out:?}\n{err:?}");
    }
    assert!(held, "timed out waiting for {label}");
}

/// Member `member`'s sub-runs in `stage`, as the train's events name them.
fn sub_runs(events: &[Event], stage: &str, member: &str) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Member {
                stage: s,
                member: m,
                run,
                ..
            } if s == stage && m == member => Some(*run),
            _ => None,
        })
        .collect()
}

/// Where member `app`'s release stands, from its stable Deployment's mark: (step, pause begun).
fn release_progress(cluster: &Cluster, app: &str) -> Option<(u64, bool)> {
    let stable = deployment(cluster, app)?;
    let mark = stable.pointer("/metadata/annotations/glidepath.dev~1release")?;
    let info: Value = serde_json::from_str(mark.as_str()?).ok()?;
    Some((info["step"].as_u64()?, info.get("pauseStartedMs").is_some()))
}

/// A train `name` through `stages` whose first wave is payments (quick) beside inventory
/// (its canary pausing `pause` at 50%), and whose second is checkout, after both.
fn paused_wave_train(env: &Env, name: &str, stages: &[&str], pause: &str) -> PathBuf {
    let path = train(
        env,
        name,
        stages,
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &[], "2.0.0", HEALTHY),
            M("checkout", &["payments", "inventory"], "2.0.0", HEALTHY),
        ],
    );
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "set: { version: \"2.0.0\", errors: \"0\" }\n      after: []\n    - name: checkout",
        &format!(
            "set: {{ version: \"2.0.0\", errors: \"0\", pause: {pause} }}\n      after: []\n    - name: checkout"
        ),
        1,
    );
    assert!(text.contains(&format!("pause: {pause}")), "{text}");
    std::fs::write(&path, text).unwrap();
    path
}

/// Drives the train `name` until payments has passed prod while inventory's canary pauses
/// between its traffic steps.
async fn until_inventory_pauses_in_prod(env: &Env, child: &mut std::process::Child, name: &str) {
    let cluster = env.sandbox.cluster.clone();
    while_driving(
        env,
        child,
        name,
        "payments done, inventory mid-canary",
        |store, events| {
            let done = sub_runs(events, "prod", "payments")
                .first()
                .is_some_and(|r| store.run(*r).is_ok_and(|r| r.exit_code == Some(0)));
            done && release_progress(&cluster, "inventory") == Some((1, true))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_mid_wave_continues_every_member_from_its_last_committed_event() {
    let env = env("happy").await;
    baseline(&env).await;
    // Wave 1: payments (quick) beside inventory (its canary pauses two minutes at 50%);
    // wave 2: checkout. Staging first, with the train's one approval before prod.
    let stages = ["staging", "prod"];
    let path = paused_wave_train(&env, "resumed", &stages, "2m");
    let payments = sizes_of(&env, "payments-canary");
    let inventory = sizes_of(&env, "inventory-canary");
    let steps = marks_of(&env, "inventory");
    let mut child = spawn_train(&env, &path);
    while_driving(
        &env,
        &mut child,
        "resumed",
        "the approval after staging",
        |_, events| {
            events.iter().any(|e| {
                matches!(e,
            Event::StepState { step, status: Status::WaitingForApproval, .. } if step == "approve")
            })
        },
    )
    .await;
    let (run, _) = train_events(&env, "resumed");
    let (code, out, err) = glidepath(&env, &["approve", &run.to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    until_inventory_pauses_in_prod(&env, &mut child, "resumed").await;
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    let (_, before) = train_events(&env, "resumed");
    let resume = ["resume", &run.to_string(), "--headless"].map(String::from);
    let (code, out, err) = glidepath_async(&env, resume.to_vec()).await;
    let first = String::from_utf8_lossy(&killed.stderr).into_owned();
    assert_eq!(code, 0, "{out}\n{err}\nbefore the kill:\n{first}");
    for m in ["payments", "inventory", "checkout"] {
        assert!(out.contains(&format!("{m}: promoted")), "{out}");
    }
    assert_eq!(
        versions(&env.sandbox.cluster, &["payments", "inventory", "checkout"]),
        vec!["2.0.0"; 3]
    );
    for canary in ["payments-canary", "inventory-canary", "checkout-canary"] {
        assert!(
            deployment(&env.sandbox.cluster, canary).is_none(),
            "{canary} is still there"
        );
    }
    // Each canary's traffic steps once, none repeated: payments finished and stayed so;
    // inventory went on from 50% to 100%, never back to its first step.
    assert_eq!(*payments.lock().unwrap(), vec![1, 2, 0], "{err}");
    assert_eq!(*inventory.lock().unwrap(), vec![1, 2, 0], "{err}");
    // inventory's release mark moved forward only: its driver never went back a step.
    let steps = steps.lock().unwrap().clone();
    eprintln!("inventory's release marks: {steps:?}");
    let marked: Vec<i64> = steps.iter().copied().filter(|s| *s >= 0).collect();
    assert!(marked.windows(2).all(|w| w[0] < w[1]), "{steps:?}\n{err}");
    assert!(marked.contains(&1) && marked.len() >= 3, "{steps:?}");
    let (_, events) = train_events(&env, "resumed");
    // Nothing restarted: one sub-run per member and stage, inventory's the one it had.
    for stage in stages {
        for m in ["payments", "inventory", "checkout"] {
            assert_eq!(sub_runs(&events, stage, m).len(), 1, "{m} in {stage}");
        }
    }
    assert_eq!(
        sub_runs(&before, "prod", "inventory"),
        sub_runs(&events, "prod", "inventory")
    );
    assert!(sub_runs(&before, "prod", "checkout").is_empty());
    // The waves held: checkout started after both members of wave 1 passed.
    let checkout = started(&events, "prod", "checkout");
    assert!(finished(&events, "prod", "payments", Status::Passed) < checkout);
    assert!(finished(&events, "prod", "inventory", Status::Passed) < checkout);
    // The approval was given once, before the kill, and not asked for again.
    let asked = events
        .iter()
        .filter(|e| matches!(e, Event::StepStarted { step, .. } if step == "approve"))
        .count();
    assert_eq!(asked, 1);
    let history = glidepath(&env, &["history", &run.to_string(), "--json"]);
    assert_eq!(history.0, 0, "{}", history.2);
    let report: Value = serde_json::from_str(&history.1).unwrap();
    assert_eq!(report["status"], "passed", "{report}");
}

/// An operator in a second shell rolls back a train its driver is still running: payments
/// promoted in prod, inventory's canary pausing at 50%, checkout's wave not started.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_of_a_running_train_from_a_second_shell_goes_through_its_driver() {
    let env = env("happy").await;
    baseline(&env).await;
    let path = paused_wave_train(&env, "incident", &["prod"], "5m");
    let mut child = spawn_train(&env, &path);
    until_inventory_pauses_in_prod(&env, &mut child, "incident").await;
    let (run, _) = train_events(&env, "incident");
    // Without --yes and without a terminal, it asks for one and changes nothing.
    let (code, _, err) = glidepath(&env, &["rollback", "--train", &run.to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --yes"), "{err}");
    let rollback = ["rollback", "--train", &run.to_string(), "--yes"].map(String::from);
    let (code, out, err) = glidepath_async(&env, rollback.to_vec()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("is being driven"), "{err}");
    assert!(out.contains("rollback accepted"), "{out}");
    assert!(
        out.contains(&format!("run {run} rolled-back")) && out.contains("rolled back payments"),
        "{out}"
    );
    let driven = child.wait_with_output().unwrap();
    let (code, last, _) = printed(&driven);
    assert_eq!(code, 1, "{last}");
    assert!(last.contains("checkout: not started in prod"), "{last}");
    assert_eq!(
        versions(&env.sandbox.cluster, &["payments", "inventory", "checkout"]),
        vec!["1.0.0"; 3]
    );
    for canary in ["payments-canary", "inventory-canary", "checkout-canary"] {
        assert!(
            deployment(&env.sandbox.cluster, canary).is_none(),
            "{canary} is still there"
        );
    }
    // Once the train has ended, a second rollback reads the journal: nothing it promoted
    // in prod is left to roll back.
    let (code, out, err) = glidepath(&env, &["rollback", "--train", &run.to_string(), "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("no member is promoted in prod"), "{out}");
}

/// Two sandboxes as contexts `east` and `west` of one kubeconfig.
fn two_contexts(east: &Env, west: &Env) -> PathBuf {
    let mut text = String::from("apiVersion: v1\nkind: Config\ncurrent-context: east\nclusters:\n");
    for (name, env) in [("east", east), ("west", west)] {
        text.push_str(&format!(
            "- name: {name}\n  cluster: {{ server: \"{}\" }}\n",
            env.sandbox.url()
        ));
    }
    text.push_str("contexts:\n");
    for name in ["east", "west"] {
        text.push_str(&format!(
            "- name: {name}\n  context: {{ cluster: {name}, user: me, namespace: shop }}\n"
        ));
    }
    text.push_str("users:\n- name: me\n  user: {}\n");
    let path = east.dir.path().join("contexts.kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_two_contexts_land_in_their_own_clusters_and_the_rollback_reaches_both() {
    let east = env("happy").await;
    let west = env("happy").await;
    let kubeconfig = two_contexts(&east, &west);
    // inventory on west; payments and checkout on east.
    let pipeline = |stages: &'static [&'static str]| {
        let kubeconfig = kubeconfig.clone();
        let (east_url, west_url) = (east.sandbox.url(), west.sandbox.url());
        move |app: &str| {
            let (context, url) = if app == "inventory" {
                ("west", &west_url)
            } else {
                ("east", &east_url)
            };
            let target = format!(
                "{{ context: {context}, namespace: shop, kubeconfig: {} }}",
                kubeconfig.display()
            );
            member_on(app, stages, url, |_| target.clone())
        }
    };
    let base = train_with(
        &east,
        "two-base",
        &["base"],
        &[
            M("payments", &[], "1.0.0", HEALTHY),
            M("inventory", &[], "1.0.0", HEALTHY),
            M("checkout", &[], "1.0.0", HEALTHY),
        ],
        pipeline(&["base"]),
    );
    let (code, out, err) = run_train(&east, &base, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (e, w) = (&east.sandbox.cluster, &west.sandbox.cluster);
    assert_eq!(
        versions(e, &["payments", "inventory", "checkout"]),
        vec!["1.0.0", "absent", "1.0.0"]
    );
    assert_eq!(
        versions(w, &["payments", "inventory", "checkout"]),
        vec!["absent", "1.0.0", "absent"]
    );
    // checkout fails in the second wave: payments (east) and inventory (west) come back.
    let path = train_with(
        &east,
        "two-contexts",
        &["prod"],
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &[], "2.0.0", HEALTHY),
            M("checkout", &["payments", "inventory"], "2.0.0", "0.3"),
        ],
        pipeline(&["prod"]),
    );
    let (code, out, err) = run_train(&east, &path, &[]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("payments: rolled back") && out.contains("inventory: rolled back"),
        "{out}"
    );
    assert!(out.contains("checkout: failed"), "{out}");
    let marked = |c: &Cluster, m: &str| {
        deployment(c, m)
            .as_ref()
            .and_then(rolled_back_by)
            .is_some_and(|by| by.contains("train two-contexts"))
    };
    assert!(
        marked(e, "payments"),
        "payments was not rolled back on east"
    );
    assert!(
        marked(w, "inventory"),
        "inventory was not rolled back on west"
    );
    assert_eq!(
        versions(e, &["payments", "inventory", "checkout"]),
        vec!["1.0.0", "absent", "1.0.0"]
    );
    assert_eq!(
        versions(w, &["payments", "inventory", "checkout"]),
        vec!["absent", "1.0.0", "absent"]
    );
    assert!(deployment(e, "checkout-canary").is_none());
    assert!(deployment(w, "inventory-canary").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_of_a_train_shows_each_members_diff_under_its_name() {
    let env = env("happy").await;
    baseline(&env).await;
    // payments moves to 2.0.0; inventory stays at 1.0.0.
    let path = train(
        &env,
        "diffed",
        &["prod"],
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &[], "1.0.0", HEALTHY),
        ],
    );
    let (code, out, err) = glidepath(&env, &["diff", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}\n{err}");
    let payments = out.find("=== member payments (").expect(&out);
    let inventory = out.find("=== member inventory (").expect(&out);
    let (first, second) = out.split_at(inventory);
    assert!(payments < inventory);
    assert!(
        first.contains("+++ Deployment shop/payments (prod/release)"),
        "{out}"
    );
    assert!(
        first.contains("registry.example.org/shop/payments:2.0.0"),
        "{out}"
    );
    assert!(
        !second.contains("Deployment shop/"),
        "inventory has nothing to change:\n{out}"
    );
    assert!(err.contains("payments: 1 objects would change"), "{err}");
    assert!(
        err.contains("inventory: 0 objects would change, 0 would be created"),
        "{err}"
    );
    // Nothing was applied.
    assert_eq!(versions(&env.sandbox.cluster, &["payments"]), vec!["1.0.0"]);
    let (code, _, err) = glidepath(
        &env,
        &["diff", path.to_str().unwrap(), "--stage", "staging"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no such stage; it has prod"), "{err}");
}

/// Waits until train `name` (driven by `child`) waits for its approval; its run and the
/// waiting message.
async fn at_the_approval(env: &Env, child: &mut std::process::Child, name: &str) -> (i64, String) {
    let waiting = |e: &Event| matches!(e, Event::StepState { step, status: Status::WaitingForApproval, .. } if step == "approve");
    while_driving(
        env,
        child,
        name,
        "the approval after staging",
        |_, events| events.iter().any(waiting),
    )
    .await;
    let (run, events) = train_events(env, name);
    let message = events
        .iter()
        .find_map(|e| match e {
            Event::StepState { message, .. } if waiting(e) => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_default();
    (run, message)
}

/// The driver's end: (exit code, stdout, stderr).
async fn ended(child: std::process::Child) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    printed(&out)
}

/// What a finished process gave: (exit code, stdout, stderr).
fn printed(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `version` label of Deployment `name` in `shop-staging`, or `absent`.
fn staging_version(cluster: &Cluster, name: &str) -> String {
    cluster
        .get(&Key {
            group: "apps".into(),
            plural: "deployments".into(),
            namespace: "shop-staging".into(),
            name: name.into(),
        })
        .map(|d| template_version(&d).to_owned())
        .unwrap_or_else(|| "absent".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_at_the_approval_returns_staging_to_its_previous_revision_and_keeps_what_it_created()
 {
    let env = env("happy").await;
    let before = train(
        &env,
        "before",
        &["staging"],
        &[M("payments", &[], "1.0.0", HEALTHY)],
    );
    let (code, out, err) = run_train(&env, &before, &[]).await;
    assert_eq!(code, 0, "payments 1.0.0 in staging:\n{out}\n{err}");
    let path = train(
        &env,
        "shop-3",
        &["staging", "base"],
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &["payments"], "2.0.0", HEALTHY),
        ],
    );
    let mut child = spawn_train(&env, &path);
    let (run, _) = at_the_approval(&env, &mut child, "shop-3").await;
    let cluster = &env.sandbox.cluster;
    assert_eq!(staging_version(cluster, "payments"), "2.0.0");
    let store = Store::open(&env.dir.path().join("journal.db")).unwrap();
    let rollback =
        glidepath::events::Command::new(glidepath::events::CommandKind::Rollback, "test");
    store.send(run, &rollback).unwrap();
    let (code, out, err) = ended(child).await;
    assert_eq!(code, 1, "{out}\n{err}");
    // payments ran 1.0.0 in staging before: back on it. inventory is new there: it stays,
    // and the train says so instead of calling it a failed rollback.
    assert!(out.contains("payments: rolled back in staging"), "{out}");
    assert!(out.contains("inventory: promoted in staging"), "{out}");
    assert!(
        out.contains("kept inventory (staging created them: nothing earlier to return to)"),
        "{out}"
    );
    assert!(!out.contains("rollback failed"), "{out}");
    assert_eq!(staging_version(cluster, "payments"), "1.0.0");
    assert_eq!(staging_version(cluster, "inventory"), "2.0.0");
    // The next stage never started.
    assert_eq!(
        versions(cluster, &["payments", "inventory"]),
        ["absent", "absent"]
    );
    let (_, events) = train_events(&env, "shop-3");
    let summary = events
        .iter()
        .find_map(|e| match e {
            Event::StepFinished {
                stage,
                step,
                summary,
                ..
            } if stage == "staging" && step == "payments" && summary.starts_with("rolled back") => {
                Some(summary.clone())
            }
            _ => None,
        })
        .expect("payments' rollback journaled");
    assert!(
        summary.contains("from 2.0.0 to 1.0.0 (revision 1)"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trains_approval_asks_for_the_approvers_a_members_next_stage_names() {
    let env = env("happy").await;
    let stages = ["staging", "base"];
    let path = train_with(
        &env,
        "guarded",
        &stages,
        &[
            M("payments", &[], "2.0.0", HEALTHY),
            M("inventory", &[], "2.0.0", HEALTHY),
        ],
        |app| {
            let text = member(&env, app, &stages);
            match app {
                "payments" => text.replace(
                    "    - name: base\n",
                    "    - name: base\n      approvers: [alice, bob]\n      minApprovers: 2\n",
                ),
                _ => text,
            }
        },
    );
    let mut child = spawn_train(&env, &path);
    let (run, message) = at_the_approval(&env, &mut child, "guarded").await;
    assert!(
        message
            .contains("2 distinct approver(s); payments (stage base): alice, bob, not the driver"),
        "{message}"
    );
    let run = run.to_string();
    let approve = |who: &str| glidepath(&env, &["approve", &run, "--as", who]);
    let (code, out, _) = approve("mallory");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mallory is not among the approvers"), "{out}");
    assert!(out.contains("payments (stage base)"), "{out}");
    let (code, out, _) = approve("alice");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approval 1 of 2"), "{out}");
    let (code, out, _) = approve("alice");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("approved already"), "{out}");
    let (code, out, _) = approve("bob");
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = ended(child).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("payments: promoted in staging, base"), "{out}");
    let (_, events) = train_events(&env, "guarded");
    let approved = events.iter().any(|e| matches!(e, Event::StepFinished { step, status: Status::Passed, summary, .. } if step == "approve" && summary.starts_with("approved by alice, bob")));
    assert!(approved, "{events:?}");
}
