//! A driver killed with SIGKILL at every traffic step, pause and judgement of a release,
//! each time resumed with `glidepath resume`: the cluster ends as an uninterrupted run
//! leaves it, no traffic shift the API server saw is repeated or skipped, and the analysis
//! count goes on across the drivers.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{BASELINE, Env, env, step_status, template_version};

/// Every value `of` took on changes to the object named `name` of `plural`, in the order
/// the API server stored them, consecutive repeats dropped.
fn record(
    e: &Env,
    plural: &'static str,
    name: &'static str,
    of: fn(&Value) -> i64,
) -> Arc<Mutex<Vec<i64>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut changes = e.sandbox.cluster.store().subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(c) = changes.recv().await {
            if c.key.plural != plural || c.key.name != name {
                continue;
            }
            let v = if c.kind == glidepath::sandbox::store::ChangeKind::Deleted {
                0
            } else {
                of(&c.object)
            };
            let mut seen = out.lock().unwrap();
            if seen.last() != Some(&v) {
                seen.push(v);
            }
        }
    });
    seen
}

/// The canary's weight on the HTTPRoute (0 when it has no canary backend).
fn canary_weight(route: &Value) -> i64 {
    backend_weight(route, "checkout-canary")
}

/// The statistical judge's baseline's weight on the HTTPRoute.
fn baseline_weight(route: &Value) -> i64 {
    backend_weight(route, "checkout-baseline")
}

/// The weight of the backend `name` on the HTTPRoute (0 when it has none).
fn backend_weight(route: &Value, name: &str) -> i64 {
    route
        .pointer("/spec/rules/0/backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|b| b["name"] == name)
        .and_then(|b| b["weight"].as_i64())
        .unwrap_or(0)
}

fn replicas(d: &Value) -> i64 {
    d.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The release's progress as recorded on the stable Deployment: (step, pause started).
fn progress(e: &Env) -> Option<(u64, bool)> {
    let stable = e.get("apps", "deployments", "checkout")?;
    let mark = stable.pointer("/metadata/annotations/glidepath.dev~1release")?;
    let info: Value = serde_json::from_str(mark.as_str()?).ok()?;
    Some((info["step"].as_u64()?, info.get("pauseStartedMs").is_some()))
}

/// A headless driver of `args`, its output kept.
fn driver(e: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .arg("--headless")
        .env("GLIDEPATH_HOME", e.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to a minute) until `what` holds, the driver still running.
async fn until(child: &mut Child, label: &str, what: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !what() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut text = String::new();
            for pipe in [
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read>),
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read>),
            ]
            .into_iter()
            .flatten()
            {
                let mut pipe = pipe;
                let _ = pipe.read_to_string(&mut text);
            }
            panic!("the driver ended ({status}) before {label}:\n{text}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {label}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills `child` with SIGKILL and returns what it printed.
fn kill(mut child: Child) -> String {
    child.kill().unwrap();
    output(child)
}

fn output(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for the last driver to end: its exit code and what it printed.
async fn finish(child: Child) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    })
    .await
    .unwrap()
}

/// The numbers of the `analysis N` lines, in order.
fn analysis_numbers(text: &str) -> Vec<u32> {
    text.split("analysis ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Drives the pipeline at `path` and kills its driver at each of `points`, resuming it each
/// time: `(step, Some(v))` once the release reached `step` and `seen` shows `v`, `(step,
/// None)` once `step`'s pause began (or, for `judged`, the step after the last weight,
/// once it began). The last driver's exit code and everything the drivers printed.
async fn killed_at<T: PartialEq + Copy>(
    e: &Env,
    path: &std::path::Path,
    points: &[(u64, Option<T>)],
    judged: Option<u64>,
    seen: impl Fn(&Env) -> Option<T>,
) -> (Option<i32>, String) {
    let mut child = driver(e, &["run", path.to_str().unwrap()]);
    let mut printed = String::new();
    for &(step, expected) in points {
        let label = format!("step {step}");
        until(&mut child, &label, || match expected {
            Some(v) => progress(e).is_some_and(|p| p.0 >= step) && seen(e) == Some(v),
            None => progress(e).is_some_and(|p| p.0 == step && (p.1 || judged == Some(step))),
        })
        .await;
        printed.push_str(&kill(child));
        child = driver(e, &["resume"]);
    }
    let (code, text) = finish(child).await;
    printed.push_str(&text);
    (code, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_api_canary_killed_at_every_step_resumes_without_repeating_a_shift() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: gateway-api\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, inconclusiveLimit: 2 }}\n              steps: [ {{ weight: 10 }}, {{ pause: 4s }}, {{ weight: 25 }}, {{ pause: 4s }}, {{ weight: 50 }}, {{ pause: 4s }}, {{ weight: 100 }} ]\n          onFailure: rollback\n"
    );
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let weights = record(&e, "httproutes", "checkout", canary_weight);
    let sizes = record(&e, "deployments", "checkout-canary", replicas);
    let route = |e: &Env| {
        e.get("gateway.networking.k8s.io", "httproutes", "checkout")
            .map(|r| canary_weight(&r))
    };
    // Each weight as the route shows it, each pause once begun, then the judgement.
    let points: [(u64, Option<i64>); 8] = [
        (0, Some(10)),
        (1, None),
        (2, Some(25)),
        (3, None),
        (4, Some(50)),
        (5, None),
        (6, Some(100)),
        (7, None),
    ];
    let (code, printed) = killed_at(&e, &path, &points, Some(7), route).await;
    assert_eq!(code, Some(0), "{printed}");
    // As an uninterrupted run ends: promoted, all traffic on stable, no canary left.
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "2.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
    assert_eq!(route(&e), Some(0));
    // Every shift once, in order: never back to an earlier weight, none skipped.
    let weights = weights.lock().unwrap().clone();
    let from_first: Vec<i64> = weights.iter().copied().skip_while(|w| *w == 0).collect();
    assert_eq!(
        from_first,
        vec![10, 25, 50, 100, 0],
        "{weights:?}\n{printed}"
    );
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes, vec![1, 2, 4, 0], "{printed}");
    // The analysis count went on across the nine drivers.
    let numbers = analysis_numbers(&printed);
    assert!(numbers.len() >= 3, "{printed}");
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "{numbers:?}\n{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_canary_killed_at_every_step_resumes_without_resizing_back() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: replicas\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, inconclusiveLimit: 2 }}\n              steps: [ {{ weight: 50 }}, {{ pause: 4s }}, {{ weight: 100 }} ]\n          onFailure: rollback\n"
    );
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let sizes = record(&e, "deployments", "checkout-canary", replicas);
    let canary = |e: &Env| {
        e.get("apps", "deployments", "checkout-canary")
            .map(|d| replicas(&d))
    };
    let points = [(0, Some(2)), (1, None), (2, Some(4)), (3, None)];
    let (code, printed) = killed_at(&e, &path, &points, Some(3), canary).await;
    assert_eq!(code, Some(0), "{printed}");
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "2.0.0");
    assert_eq!(stable.pointer("/spec/replicas").unwrap(), 4);
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
    assert_eq!(sizes.lock().unwrap().clone(), vec![2, 4, 0], "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statistical_canary_killed_at_every_step_resumes_with_its_baseline() {
    let e = env("happy").await;
    let judge = "judge: statistical, statistical: { lookback: 20s, step: 2s, rateWindow: 2s, metrics: { latency_mean_ms: { allowedIncrease: 1.15, critical: true } } }";
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: gateway-api\n              analysis: {{ slo: {{fixtures}}/slo-statistical.yaml, interval: 2s, failureLimit: 1, {judge} }}\n              steps: [ {{ weight: 25 }}, {{ pause: 6s }}, {{ weight: 50 }}, {{ pause: 6s }} ]\n          onFailure: rollback\n"
    );
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let weights = record(&e, "httproutes", "checkout", baseline_weight);
    let sizes = record(&e, "deployments", "checkout-baseline", replicas);
    let baseline = |e: &Env| {
        let route = e.get("gateway.networking.k8s.io", "httproutes", "checkout")?;
        let pods = e.get("apps", "deployments", "checkout-baseline")?;
        Some((baseline_weight(&route), replicas(&pods)))
    };
    // Killed once canary and baseline take each weight, and once in each pause.
    let points = [(0, Some((25, 1))), (1, None), (2, Some((50, 2))), (3, None)];
    let (code, printed) = killed_at(&e, &path, &points, None, baseline).await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("statistical judge: pass"), "{printed}");
    let stable = e.get("apps", "deployments", "checkout").unwrap();
    assert_eq!(template_version(&stable), "2.0.0");
    // The baseline went with the canary, and no driver re-created or re-sized it back:
    // its weight and its pods moved forward only.
    assert!(e.get("apps", "deployments", "checkout-baseline").is_none());
    assert!(e.get("", "services", "checkout-baseline").is_none());
    let weights = weights.lock().unwrap().clone();
    let from_first: Vec<i64> = weights.iter().copied().skip_while(|w| *w == 0).collect();
    assert_eq!(from_first, vec![25, 50, 0], "{weights:?}\n{printed}");
    assert_eq!(sizes.lock().unwrap().clone(), vec![1, 2, 0], "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_killed_while_judged_and_while_keeping_the_old_colour_resumes() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            blueGreen:\n              activeService: checkout\n              previewService: checkout-preview\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, inconclusiveLimit: 2 }}\n              scaleDownDelay: 4s\n          onFailure: rollback\n"
    );
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let selects_preview =
        |s: &Value| i64::from(s.pointer("/spec/selector/glidepath.dev~1track").is_some());
    let switches = record(&e, "services", "checkout", selects_preview);
    let mut child = driver(&e, &["run", path.to_str().unwrap()]);
    let mut printed = String::new();
    // Being judged: the preview is rolled out, the switch not yet recorded.
    until(&mut child, "the preview's judgement", || {
        e.get("apps", "deployments", "checkout-preview")
            .and_then(|d| d.pointer("/status/readyReplicas").and_then(Value::as_i64))
            == Some(4)
            && progress(&e).is_some_and(|p| p.0 == 0)
    })
    .await;
    printed.push_str(&kill(child));
    child = driver(&e, &["resume"]);
    // Switched, keeping the old colour.
    until(&mut child, "the switch", || {
        progress(&e).is_some_and(|p| p.0 == 1 && p.1)
    })
    .await;
    printed.push_str(&kill(child));
    let child = driver(&e, &["resume"]);
    let (code, text) = finish(child).await;
    printed.push_str(&text);
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        !text.contains("before promotion"),
        "not judged again after the switch: {text}"
    );
    assert_eq!(
        template_version(&e.get("apps", "deployments", "checkout").unwrap()),
        "2.0.0"
    );
    assert!(e.get("apps", "deployments", "checkout-preview").is_none());
    // One switch to the new colour, one back to the (promoted) stable Deployment.
    let switches = switches.lock().unwrap().clone();
    let from_first: Vec<i64> = switches.iter().copied().skip_while(|s| *s == 0).collect();
    assert_eq!(from_first, vec![1, 0], "{printed}");
}

/// The journal's report of run 1, when the journal can be read.
fn report(e: &Env) -> Option<Value> {
    let out = e.glidepath(&["history", "1", "--json"]);
    serde_json::from_slice(&out.stdout).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_in_an_infra_wait_and_under_load_and_chaos_resumes_to_the_same_end() {
    let e = env("happy").await;
    let stages = "    - name: resilience\n      steps:\n        - infra: { manifests: [{fixtures}/infra/claim.yaml], waitFor: { condition: Ready, timeout: 30s } }\n        - deploy: { manifests: [{fixtures}/baseline/], waitFor: { timeout: 30s } }\n        - name: under-fire\n          parallel:\n            - name: load\n              test: { load: { url: \"http://checkout.shop/\", rate: 20, duration: 4s } }\n            - chaos: { selector: app=checkout, count: 1, interval: 1s, duration: 3500ms }\n        - evaluate: { slo: {dir}/resume-slo.yaml }\n";
    // The gate judges that the load test measured after the resume, not how well the
    // service rides out chaos twice: an error ratio below 20% passes.
    std::fs::write(
        e.dir.path().join("resume-slo.yaml"),
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: resumed }\nspec:\n  objectives:\n    - { sli: load.error_ratio, pass: [\"<=0.2\"], key: true }\n",
    )
    .unwrap();
    let stages = stages.replace("{dir}", &e.dir.path().display().to_string());
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(&stages, "1h")).unwrap();
    let claim = |e: &Env| e.get("platform.example.org", "xdatabases", "orders");
    let ready = |c: &Value| {
        c.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    };
    let mut child = driver(&e, &["run", path.to_str().unwrap()]);
    let mut printed = String::new();
    // In the infra wait: the claim applied, not Ready yet.
    until(&mut child, "the claim's wait", || {
        claim(&e).is_some_and(|c| !ready(&c))
    })
    .await;
    printed.push_str(&kill(child));
    child = driver(&e, &["resume"]);
    // Under load and chaos: both halves of the group running.
    until(&mut child, "load and chaos", || {
        report(&e).is_some_and(|r| {
            step_status(&r, "resilience", "load") == "running"
                && step_status(&r, "resilience", "chaos") == "running"
        })
    })
    .await;
    printed.push_str(&kill(child));
    let (code, text) = finish(driver(&e, &["resume"])).await;
    printed.push_str(&text);
    assert_eq!(code, Some(0), "{printed}");
    // As an uninterrupted run ends: the claim Ready, the service whole, the gate passed on
    // the load test the resumed run measured.
    assert!(claim(&e).is_some_and(|c| ready(&c)), "{printed}");
    let report = report(&e).unwrap();
    for step in ["infra", "deploy", "load", "chaos", "evaluate"] {
        assert_eq!(
            step_status(&report, "resilience", step),
            "passed",
            "{step}: {printed}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = e.get("apps", "deployments", "checkout").unwrap();
        let want = d.pointer("/spec/replicas").and_then(Value::as_i64);
        if want.is_some() && d.pointer("/status/readyReplicas").and_then(Value::as_i64) == want {
            break;
        }
        assert!(Instant::now() < deadline, "checkout never whole again: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
