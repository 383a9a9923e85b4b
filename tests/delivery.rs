//! Delivery on the sandbox, end to end: the glidepath binary drives a sandbox this test
//! starts (through a kubeconfig, as any cluster), and the test reads the cluster afterwards.
//! Pre-flight refuses a broken platform and changes nothing; a stuck claim times out in
//! `infra`; `deploy` names crash-looping pods; canaries are promoted over the replicas router
//! and rolled back over the gateway-api router with all traffic on stable; the operator rolls
//! a paused canary back through the command channel.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glidepath::engine::{self, Emitter, RunOptions};
use glidepath::events::{CommandKind, Event, Status};
use glidepath::pipeline::{self, Variables};

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{BASELINE, Env, env, fixtures, template_version};

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until_async;

fn release(router: &str, steps: &str) -> String {
    format!(
        "    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: {router}\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, failureLimit: 0, inconclusiveLimit: 1 }}\n              steps: {steps}\n          onFailure: rollback\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_lists_every_broken_promise_and_changes_nothing() {
    let e = env("missing-infra").await;
    let stages = "    - name: staging\n      steps:\n        - preflight: {}\n        - infra: { manifests: [{fixtures}/infra/claim.yaml] }\n        - deploy: { manifests: [{fixtures}/app/], image: \"docker.io/someone/checkout:1\" }\n";
    let (code, out) = e.run(e.pipeline(stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{out}"
    );
    assert!(
        out.contains("policy trusted-registries: Deployment shop/checkout"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(e.get("apps", "deployments", "checkout").is_none());
    assert!(
        e.get("platform.example.org", "xdatabases", "orders")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_claim_times_out_in_infra() {
    let e = env("missing-infra").await;
    let stages = "    - name: staging\n      steps:\n        - infra: { manifests: [{fixtures}/infra/claim.yaml], waitFor: { condition: Ready, timeout: 2s } }\n";
    let started = Instant::now();
    let (code, out) = e.run(e.pipeline(stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not ready after 2s: XDatabase shop/orders"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_names_crash_looping_pods() {
    let e = env("happy").await;
    let manifest = e.dir.path().join("crashing.yaml");
    let text = std::fs::read_to_string(fixtures().join("baseline/checkout.yaml"))
        .unwrap()
        .replace(
            "      labels: { app: checkout, version: \"1.0.0\" }",
            "      labels: { app: checkout, version: \"1.0.0\" }\n      annotations: { sandbox.glidepath.dev/crash-loop: \"true\" }",
        );
    assert!(text.contains("crash-loop"));
    std::fs::write(&manifest, text).unwrap();
    let stages = format!(
        "    - name: staging\n      steps:\n        - deploy: {{ manifests: [{}], waitFor: {{ timeout: 4s }} }}\n",
        manifest.display()
    );
    let (code, out) = e.run(e.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CrashLoopBackOff"), "{out}");
    assert!(
        out.contains("not ready after 4s: Deployment shop/checkout"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_over_replicas_is_promoted() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "replicas",
            "[ { weight: 25 }, { pause: 2s }, { weight: 50 }, { pause: 2s }, { weight: 100 } ]"
        )
    );
    let (code, out) = e.run(e.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("canary 25%: 1 canary and 3 stable replicas ready"),
        "{out}"
    );
    assert!(
        out.contains("canary 50%: 2 canary and 2 stable replicas ready"),
        "{out}"
    );
    // The cockpit's traffic pane: the split asked for, the split the ready replicas give,
    // and each version's readiness, as read back from the cluster.
    let journal = glidepath::store::Store::open(&e.dir.path().join("journal.db")).unwrap();
    let traffic: Vec<_> = journal
        .events(1)
        .unwrap()
        .into_iter()
        .filter_map(|env| match env.event {
            Event::Traffic {
                weight,
                actual,
                planned,
                replicas,
                ..
            } => Some((weight, actual, planned, replicas)),
            _ => None,
        })
        .collect();
    let (_, actual, planned, replicas) = traffic.iter().find(|t| t.0 == 25).expect("25% reported");
    assert_eq!(*actual, Some(25), "1 of 4 ready replicas is the canary");
    assert_eq!(*planned, Some(25));
    let ready: Vec<_> = replicas
        .iter()
        .map(|r| (r.role.as_str(), r.version.as_str(), r.ready, r.desired))
        .collect();
    assert_eq!(ready, [("stable", "1.0.0", 3, 3), ("new", "2.0.0", 1, 1)]);
    // Promoted: the pane ends on the new version serving everything from stable's place.
    let (weight, actual, _, replicas) = traffic.last().unwrap();
    assert_eq!((*weight, *actual), (100, Some(100)));
    let ready: Vec<_> = replicas
        .iter()
        .map(|r| (r.role.as_str(), r.version.as_str(), r.ready))
        .collect();
    assert_eq!(ready, [("new", "2.0.0", 4)]);
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "2.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(
        stable
            .pointer("/metadata/annotations/glidepath.dev~1promoted-by")
            .is_some()
    );
    assert!(
        stable
            .pointer("/metadata/annotations/glidepath.dev~1stable-replicas")
            .is_none()
    );
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());

    // An incident: the operator rolls back from the cluster alone, no pipeline file.
    let kubeconfig = e.kubeconfig.display().to_string();
    let args = [
        "rollback",
        "checkout",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        "glidepath-sandbox",
        "-n",
        "shop",
    ];
    let refused = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "no terminal and no --yes");
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .arg("--yes")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("checkout rolled back from 2.0.0 to 1.0.0"),
        "{text}"
    );
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
    assert_eq!(stable.pointer("/status/availableReplicas").unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_canary_over_gateway_api_rolls_back_with_traffic_on_stable() {
    let e = env("bad-canary").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "gateway-api",
            "[ { weight: 25 }, { pause: 10s }, { weight: 50 }, { pause: 10s }, { weight: 100 } ]"
        )
    );
    let (code, out) = e.run(e.pipeline(&stages, "1s"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("analysis failed"), "{out}");
    assert!(out.contains("all traffic back on stable"), "{out}");
    let route = e
        .get("gateway.networking.k8s.io", "httproutes", "checkout")
        .unwrap();
    let refs = route
        .pointer("/spec/rules/0/backendRefs")
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0]["name"], "checkout");
    assert_eq!(refs[0]["weight"], 100);
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
    assert!(e.get("", "services", "checkout-canary").is_none());
    let svc = e.get("", "services", "checkout").unwrap();
    assert!(
        svc.pointer("/spec/selector/pod-template-hash").is_none(),
        "{svc}"
    );
    // The users' traffic is back on stable: the canary version gets no more requests.
    let client = glidepath::metrics::Client::new(&e.sandbox.url()).unwrap();
    let canary = async || {
        client
            .value(
                r#"sum(increase(http_requests_total{version="2.0.0"}[1s]))"#,
                None,
            )
            .await
            .unwrap()
            .unwrap_or(0.0)
    };
    // Requests already under way when traffic moved may still land in the last second.
    let drained = wait_until_async(Duration::from_secs(10), async || canary().await == 0.0).await;
    assert!(
        drained,
        "the canary still gets {} requests a second",
        canary().await
    );
}

/// Runs `stages` in this process until the prod stage pauses for the operator.
async fn until_paused(e: &Env, stages: &str) -> engine::RunHandle {
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(stages, "1h")).unwrap();
    let vars = Variables {
        sets: Default::default(),
        use_env: false,
    };
    let p = Arc::new(pipeline::load_file(&path, &vars).unwrap());
    let mut rx = None;
    let handle = engine::start_with(p, Emitter::new(1, 1, None), RunOptions::default(), |tx| {
        rx = Some(tx.subscribe())
    });
    let mut rx = rx.unwrap();
    loop {
        let env = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the canary never paused")
            .unwrap();
        if matches!(&env.event, Event::StepState { status: Status::Paused, stage, .. } if stage == "prod")
        {
            return handle;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_rolls_a_paused_canary_back() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "gateway-api",
            "[ { weight: 20 }, { pause: {} }, { weight: 100 } ]"
        )
    );
    let handle = until_paused(&e, &stages).await;
    let route = e
        .get("gateway.networking.k8s.io", "httproutes", "checkout")
        .unwrap();
    let weights: Vec<i64> = route
        .pointer("/spec/rules/0/backendRefs")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(weights, vec![80, 20]);
    // Hold and resume first: the release waits where it is.
    for kind in [CommandKind::Pause, CommandKind::Resume] {
        handle
            .commands
            .send(glidepath::events::Command::new(kind, "test"))
            .unwrap();
    }
    handle
        .commands
        .send(glidepath::events::Command::new(
            CommandKind::Rollback,
            "test",
        ))
        .unwrap();
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, Status::RolledBack, "{}", outcome.reason);
    let route = e
        .get("gateway.networking.k8s.io", "httproutes", "checkout")
        .unwrap();
    let refs = route
        .pointer("/spec/rules/0/backendRefs")
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["weight"], 100);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
    assert_eq!(
        template_version(&e.get("apps", "deployments", "checkout").unwrap()),
        "1.0.0"
    );
}

fn blue_green(delay: &str) -> String {
    format!(
        "    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            blueGreen:\n              activeService: checkout\n              previewService: checkout-preview\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, failureLimit: 0, inconclusiveLimit: 1 }}\n              scaleDownDelay: {delay}\n          onFailure: rollback\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_after_its_analysis_and_refuses_a_slow_version() {
    let e = env("happy").await;
    let (code, out) = e
        .run(
            e.pipeline(&format!("{BASELINE}{}", blue_green("2s")), "1h"),
            &[],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("switched Service checkout to the new version"),
        "{out}"
    );
    assert_eq!(
        template_version(&e.get("apps", "deployments", "checkout").unwrap()),
        "2.0.0"
    );
    assert!(e.get("apps", "deployments", "checkout-preview").is_none());
    let svc = e.get("", "services", "checkout").unwrap();
    assert_eq!(
        svc.pointer("/spec/selector").unwrap(),
        &serde_json::json!({ "app": "checkout" })
    );

    // Four times slower: the analysis refuses the switch; users never left the old colour.
    let e = env("slow-canary").await;
    let (code, out) = e
        .run(
            e.pipeline(&format!("{BASELINE}{}", blue_green("2s")), "1h"),
            &[],
        )
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("latency_p95_ms"), "{out}");
    assert!(!out.contains("switched Service checkout"), "{out}");
    assert_eq!(
        template_version(&e.get("apps", "deployments", "checkout").unwrap()),
        "1.0.0"
    );
    assert!(e.get("apps", "deployments", "checkout-preview").is_none());
    assert!(e.get("", "services", "checkout-preview").is_none());
    let svc = e.get("", "services", "checkout").unwrap();
    assert_eq!(
        svc.pointer("/spec/selector").unwrap(),
        &serde_json::json!({ "app": "checkout" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_tests_stream_logs_and_chaos_deletes_pods() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}    - name: tests\n      steps:\n        - name: integration\n          test: {{ job: {{ image: \"registry.example.org/shop/tests:1\", command: [run-tests], annotations: {{ sandbox.glidepath.dev/log: \"suite checkout: 12 passed\\nall good\", sandbox.glidepath.dev/duration: 1s }} }} }}\n        - chaos: {{ selector: app=checkout, count: 1, interval: 1s, duration: 2500ms }}\n        - name: failing\n          test: {{ job: {{ image: \"registry.example.org/shop/tests:1\", annotations: {{ sandbox.glidepath.dev/fail: \"true\" }} }} }}\n"
    );
    let (code, out) = e.run(e.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("suite checkout: 12 passed"), "{out}");
    assert!(
        out.contains("integration passed: Job glidepath-integration-"),
        "{out}"
    );
    assert_eq!(
        out.matches("chaos: deleted pod checkout-").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("failing failed: Job glidepath-failing-"),
        "{out}"
    );
    // The Deployment replaced what chaos deleted.
    let d = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(d.pointer("/spec/replicas").unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_driver_at_a_time() {
    let e = env("happy").await;
    let stages = "    - name: prod\n      steps:\n        - pause: ${hold}\n";
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(stages, "1h")).unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--set",
            "hold=30s",
        ])
        .env("GLIDEPATH_HOME", e.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while e
        .get("coordination.k8s.io", "leases", "glidepath-checkout-prod")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the first run never took its lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lease = e
        .get("coordination.k8s.io", "leases", "glidepath-checkout-prod")
        .unwrap();
    assert!(
        lease
            .pointer("/spec/holderIdentity")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("(run 1 in ")
    );
    let second = e.dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--set",
            "hold=1s",
        ])
        .env("GLIDEPATH_HOME", &second)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{text}");
    assert!(text.contains("checkout-prod is being driven by"), "{text}");
    assert!(text.contains("(run 1 in "), "{text}");
    // The first driver dies without releasing: its lease is still fresh, so taking over
    // needs --force-unlock.
    first.kill().unwrap();
    first.wait().unwrap();
    let forced = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--set",
            "hold=1s",
            "--force-unlock",
        ])
        .env("GLIDEPATH_HOME", &second)
        .output()
        .unwrap();
    assert_eq!(
        forced.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    // A finished run releases its lease.
    assert!(
        e.get("coordination.k8s.io", "leases", "glidepath-checkout-prod")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_drift_object_by_object() {
    let e = env("happy").await;
    let (code, out) = e.run(e.pipeline(BASELINE, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    let diff = |stages: &str| {
        let path = e.dir.path().join("diff.yaml");
        std::fs::write(&path, e.pipeline(stages, "1h")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .arg("diff")
            .arg(&path)
            .env("GLIDEPATH_HOME", e.dir.path())
            .output()
            .unwrap()
    };
    // What is deployed is what the baseline says: nothing to show.
    let same = diff(BASELINE);
    let summary = String::from_utf8_lossy(&same.stderr);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}{summary}",
        String::from_utf8_lossy(&same.stdout)
    );
    assert!(
        summary.contains("0 objects would change, 0 would be created, 3 are unchanged"),
        "{summary}"
    );
    // The next version differs in its template: a unified diff of the YAML, no status.
    let next = diff(
        "    - name: prod\n      steps:\n        - deploy: { manifests: [{fixtures}/app/] }\n",
    );
    let text = String::from_utf8_lossy(&next.stdout);
    assert_eq!(next.status.code(), Some(1), "{text}");
    assert!(
        text.contains("--- Deployment shop/checkout (live)"),
        "{text}"
    );
    assert!(
        text.contains("+++ Deployment shop/checkout (prod/deploy)"),
        "{text}"
    );
    assert!(text.contains("-        version: 1.0.0"), "{text}");
    assert!(text.contains("+        version: 2.0.0"), "{text}");
    assert!(
        !text.contains("managedFields") && !text.contains("availableReplicas"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infra_prunes_what_left_the_set() {
    let e = env("happy").await;
    let extra = e.dir.path().join("extra.yaml");
    std::fs::write(&extra, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: orders-settings }\ndata: { pool: \"10\" }\n").unwrap();
    let stages = |files: &str| {
        format!(
            "    - name: staging\n      steps:\n        - infra: {{ manifests: [{files}], prune: true, waitFor: {{ timeout: 10s }} }}\n"
        )
    };
    let both = format!("{{fixtures}}/infra/claim.yaml, {}", extra.display());
    let (code, out) = e.run(e.pipeline(&stages(&both), "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(e.get("", "configmaps", "orders-settings").is_some());
    let (code, out) = e
        .run(
            e.pipeline(&stages("{fixtures}/infra/claim.yaml"), "1h"),
            &[],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("deleted ConfigMap shop/orders-settings, no longer in the set"),
        "{out}"
    );
    assert!(e.get("", "configmaps", "orders-settings").is_none());
    assert!(
        e.get("platform.example.org", "xdatabases", "orders")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_killed_mid_release_resumes_to_a_known_split() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "gateway-api",
            "[ { weight: 25 }, { pause: 3s }, { weight: 100 } ]"
        )
    );
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["run", path.to_str().unwrap(), "--headless"])
        .env("GLIDEPATH_HOME", e.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let weights = |e: &Env| -> Vec<i64> {
        e.get("gateway.networking.k8s.io", "httproutes", "checkout")
            .and_then(|r| r.pointer("/spec/rules/0/backendRefs").cloned())
            .and_then(|b| b.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|b| b["weight"].as_i64().unwrap_or(1))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while weights(&e) != vec![75, 25] {
        assert!(Instant::now() < deadline, "the canary never reached 25%");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGKILL in the middle of the canary: nothing is cleaned up.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(e.get("apps", "deployments", "checkout-canary").is_some());
    let resumed = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["resume", "--headless"])
        .env("GLIDEPATH_HOME", e.dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&resumed.stdout),
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(resumed.status.code(), Some(0), "{text}");
    // The release continued from the split the cluster recorded and finished: all traffic
    // on the promoted stable, no canary left, the replica count the release started from.
    assert_eq!(weights(&e), vec![100]);
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "2.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
}

/// `kubectl -n shop ARGS` against the test's sandbox, off the runtime (the sandbox serves
/// meanwhile); it must succeed.
async fn kubectl(e: &Env, args: &[&str]) {
    let kubeconfig = e.kubeconfig.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "shop"])
            .args(&args)
            .output()
            .expect("kubectl runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_while_the_last_weight_is_judged_stops_the_release_too() {
    let e = env("happy").await;
    // One weight, then the judgement at it, which waits a whole (long) interval first:
    // the reset lands while nothing but the judgement runs.
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: replicas\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 90s }}\n              steps: [ {{ weight: 25 }} ]\n          onFailure: rollback\n"
    );
    let running = e.run(e.pipeline(&stages, "1h"), &[]);
    let scale = async {
        let judged = wait_until_async(Duration::from_secs(60), async || {
            e.get("apps", "deployments", "checkout-canary")
                .and_then(|d| d.pointer("/spec/replicas").and_then(|v| v.as_i64()))
                == Some(1)
                && e.get("apps", "deployments", "checkout").and_then(|d| {
                    let mark = d.pointer("/metadata/annotations/glidepath.dev~1release")?;
                    let mark: serde_json::Value = serde_json::from_str(mark.as_str()?).ok()?;
                    mark["step"].as_u64()
                }) == Some(1)
        })
        .await;
        assert!(judged, "the canary never reached its judgement at 25%");
        let scale = ["scale", "deployment", "checkout-canary", "--replicas=0"];
        kubectl(&e, &scale).await;
    };
    let ((code, out), ()) = tokio::join!(running, scale);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "Deployment shop/checkout-canary has spec.replicas 0, not the 1 the release set at 25%"
        ),
        "{out}"
    );
    assert!(out.contains("rolled back"), "{out}");
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "1.0.0", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_scale_of_the_canary_mid_release_stops_the_release() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "replicas",
            "[ { weight: 25 }, { pause: 60s }, { weight: 100 } ]"
        )
    );
    let running = e.run(e.pipeline(&stages, "1h"), &[]);
    let scale = async {
        let replicas = |name: &str| {
            e.get("apps", "deployments", name)
                .and_then(|d| d.pointer("/spec/replicas").and_then(|v| v.as_i64()))
        };
        let split = wait_until_async(Duration::from_secs(60), async || {
            replicas("checkout") == Some(3) && replicas("checkout-canary") == Some(1)
        })
        .await;
        assert!(split, "the canary never reached 25%");
        // A plain update by another client (a GitOps controller's own manager name).
        let patch = ["patch", "deployment", "checkout-canary", "--type=merge"];
        let by = [
            "-p",
            r#"{"spec":{"replicas":3}}"#,
            "--field-manager=kustomize-controller",
        ];
        kubectl(&e, &[&patch[..], &by[..]].concat()).await;
    };
    let ((code, out), ()) = tokio::join!(running, scale);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Deployment shop/checkout-canary has spec.replicas 3, not the 1 the release set at 25%: it was changed outside the release (.spec.replicas now managed by \"kustomize-controller\")"),
        "{out}"
    );
    assert!(out.contains("rolled back"), "{out}");
    let journal = glidepath::store::Store::open(&e.dir.path().join("journal.db")).unwrap();
    let evidence: Vec<_> = journal
        .events(1)
        .unwrap()
        .into_iter()
        .filter_map(|env| match env.event {
            Event::StepFinished { evidence, .. } => Some(evidence),
            _ => None,
        })
        .flatten()
        .collect();
    let reset = evidence
        .iter()
        .find(|e| e.check == "Deployment shop/checkout-canary .spec.replicas")
        .unwrap_or_else(|| panic!("no evidence of the reset in {evidence:?}"));
    assert_eq!(
        reset.value.as_deref(),
        Some("3 (managed by kustomize-controller)")
    );
    assert_eq!(
        reset.expected.as_deref(),
        Some("1 (set by the release at 25%)")
    );
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_promotes_past_a_waiting_canary_step() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}{}",
        release(
            "replicas",
            "[ { weight: 50 }, { pause: {} }, { weight: 100 } ]"
        )
    );
    let handle = until_paused(&e, &stages).await;
    assert_eq!(
        e.get("apps", "deployments", "checkout-canary")
            .unwrap()
            .pointer("/spec/replicas")
            .unwrap(),
        2
    );
    handle
        .commands
        .send(glidepath::events::Command::new(
            CommandKind::Promote,
            "test",
        ))
        .unwrap();
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, Status::Passed, "{}", outcome.reason);
    assert_eq!(
        template_version(&e.get("apps", "deployments", "checkout").unwrap()),
        "2.0.0"
    );
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
}

#[test]
fn the_example_preflight_runs_from_the_repository_root_on_the_sandbox() {
    // As a newcomer types it: a relative pipeline path whose contract file names policies
    // relative to itself.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args([
            "run",
            "tests/fixtures/delivery/preflight.yaml",
            "--headless",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GLIDEPATH_HOME", home.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("policy trusted-registries: Deployment shop/checkout: no violation"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_and_chaos_side_by_side_gate_on_the_load_results() {
    let e = env("happy").await;
    // Load on the Service's address (the sandbox serves it on loopback) while chaos kills
    // pods, then a gate on what the load test measured.
    let under_fire = |baseline: &str| {
        format!(
            "    - name: resilience\n      steps:\n        - deploy: {{ manifests: [{baseline}], waitFor: {{ timeout: 30s }} }}\n        - name: under-fire\n          parallel:\n            - name: load\n              test: {{ load: {{ url: \"http://checkout.shop/\", rate: 40, duration: 4s }} }}\n            - chaos: {{ selector: app=checkout, count: 1, interval: 1s, duration: 3500ms }}\n        - evaluate: {{ slo: {{fixtures}}/under-fire-slo.yaml }}\n"
        )
    };
    let (code, out) = e
        .run(e.pipeline(&under_fire("{fixtures}/baseline/"), "1h"), &[])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "checkout.shop is sandbox Service shop/checkout: sending to http://127.0.0.1:"
        ),
        "{out}"
    );
    assert!(
        out.matches("chaos: deleted pod checkout-").count() >= 3,
        "{out}"
    );
    assert!(out.contains("evaluate passed"), "{out}");

    // With one replica, each kill is an outage the load test sees, and the gate fails.
    let fragile = e.dir.path().join("fragile");
    std::fs::create_dir_all(&fragile).unwrap();
    for f in std::fs::read_dir(fixtures().join("baseline")).unwrap() {
        let f = f.unwrap().path();
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(
            fragile.join(f.file_name().unwrap()),
            text.replace("replicas: 4", "replicas: 1"),
        )
        .unwrap();
    }
    let (code, out) = e
        .run(
            e.pipeline(&under_fire(&fragile.display().to_string()), "1h"),
            &[],
        )
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("evaluate failed"), "{out}");
    assert!(out.contains("✗ load.error_ratio"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_analysis_reads_the_load_test_running_beside_it() {
    let e = env("bad-canary").await;
    // The release's analysis has no PromQL at all: its SLIs are the load test's figures,
    // which the test running in the same group keeps current every second.
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - name: canary-under-load\n          parallel:\n            - name: load\n              test: {{ load: {{ url: \"http://checkout/\", rate: 40, duration: 30s }} }}\n            - release:\n                manifests: [{{fixtures}}/app/]\n                canary:\n                  router: replicas\n                  analysis: {{ slo: {{fixtures}}/under-fire-slo.yaml, interval: 2s, failureLimit: 0, inconclusiveLimit: 1 }}\n                  steps: [ {{ weight: 50 }}, {{ pause: 20s }}, {{ weight: 100 }} ]\n              onFailure: rollback\n"
    );
    let begun = std::time::Instant::now();
    let (code, out) = e.run(e.pipeline(&stages, "1s"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("analysis failed"), "{out}");
    assert!(out.contains("load.error_ratio"), "{out}");
    // The failure stopped the load test beside it rather than letting it run on.
    assert!(
        out.contains("load aborted: stopped: `release` failed beside it"),
        "{out}"
    );
    assert!(begun.elapsed() < Duration::from_secs(30), "{out}");
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
}
