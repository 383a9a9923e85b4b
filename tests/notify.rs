//! Webhook notifications end to end: a headless run tells a local webhook server it
//! started, waits for approval (while it waits: sending never holds the run), a gate
//! failed, the stage rolled back and the run finished; a Slack-format hook hears only
//! what it asked for; 5xx answers are retried; an unreachable hook is reported with its
//! URL redacted, and no secret from a URL ever reaches the output.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook server: records every POST by path; the first POST under /flaky gets a 500;
/// GET /health answers 503 so the pipeline's smoke test fails.
async fn server() -> (u16, Seen) {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    let seen: Seen = Arc::default();
    async fn hook(
        State(seen): State<Seen>,
        Path(path): Path<String>,
        axum::Json(body): axum::Json<Value>,
    ) -> StatusCode {
        let mut s = seen.lock().unwrap();
        let first_flaky =
            path.starts_with("flaky") && !s.iter().any(|(p, _)| p.starts_with("flaky"));
        s.push((path, body));
        if first_flaky {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let app = axum::Router::new()
        .route("/health", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route("/{*path}", post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

fn events(seen: &Seen, prefix: &str) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(_, b)| b.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_hear_the_run_without_holding_it_up() {
    let (port, seen) = server().await;
    let home = tempfile::tempdir().unwrap();
    let pipeline = format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: shop }}
spec:
  notify:
    - url: http://127.0.0.1:{port}/flaky/T0/B0/s3cr3t-token?key=s3cr3t-key
      retries: 2
      timeout: 2s
    - url: http://127.0.0.1:{port}/slack/T0/B0/s3cr3t-token
      format: slack
      events: [gate-failed, rolled-back]
    - urlEnv: GLIDEPATH_TEST_HOOK
      events: [run-finished]
    - url: http://127.0.0.1:1/unreachable/s3cr3t-token
      retries: 0
      timeout: 1s
  stages:
    - name: prod
      steps:
        - name: sign-off
          approval: {{ pass: manual }}
        - name: smoke
          test: {{ http: {{ baseUrl: "http://127.0.0.1:{port}/", checks: [ {{ name: health, url: /health, expect: {{ status: 200 }} }} ] }} }}
          onFailure: rollback
"#
    );
    let path = home.path().join("shop.yaml");
    std::fs::write(&path, pipeline).unwrap();
    let run = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--headless")
        .env("GLIDEPATH_HOME", home.path())
        .env(
            "GLIDEPATH_TEST_HOOK",
            format!("http://127.0.0.1:{port}/env/s3cr3t-env"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run waits for its approval, and the webhook hears so while it waits.
    let begun = Instant::now();
    while !events(&seen, "flaky")
        .iter()
        .any(|e| e["event"] == "waiting-for-approval")
    {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "no approval notice: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let approved = Command::new(BIN)
        .args(["approve", "1"])
        .env("GLIDEPATH_HOME", home.path())
        .output()
        .unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let out = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");

    // JSON, every kind, in order; the first attempt's 500 was retried.
    let all = events(&seen, "flaky");
    let kinds: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "run-started",
            "run-started",
            "waiting-for-approval",
            "gate-failed",
            "rolled-back",
            "run-finished"
        ],
        "{all:?}"
    );
    let gate = &all[3];
    assert_eq!(gate["pipeline"], "shop");
    assert_eq!(gate["run"], 1);
    assert_eq!(gate["stage"], "prod");
    assert_eq!(gate["step"], "smoke");
    assert_eq!(gate["evidence"][0]["check"], "health");
    assert_eq!(all[5]["status"], "rolled-back");
    assert_eq!(all[5]["exitCode"], 1);

    // Slack: only what it asked for, as an incoming-webhook message.
    let slack = events(&seen, "slack");
    assert_eq!(slack.len(), 2, "{slack:?}");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(text.contains("gate prod/smoke failed"), "{text}");
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    assert!(
        slack[1]["text"]
            .as_str()
            .unwrap()
            .contains("stage prod rolled back")
    );

    // The URL from the environment: the end only.
    let env = events(&seen, "env");
    assert_eq!(env.len(), 1);
    assert_eq!(env[0]["event"], "run-finished");

    // The unreachable hook is reported without its secret path.
    assert!(
        stderr.contains(
            "notification to http://127.0.0.1:1/… failed after 1 attempt(s): cannot connect"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cr3t") && !stdout.contains("s3cr3t"),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_webhook_needs_one_valid_url() {
    let home = tempfile::tempdir().unwrap();
    for (notify, want) in [
        ("{ format: slack }", "a webhook needs `url` or `urlEnv`"),
        (
            "{ url: 'ftp://x/s3cr3t', urlEnv: X }",
            "give `url` or `urlEnv`, not both",
        ),
        (
            "{ url: 'ftp://x/s3cr3t' }",
            "webhook URL scheme `ftp`: use http or https",
        ),
        ("{ url: 'http://[::1/s3cr3t' }", "invalid webhook URL"),
        (
            "{ url: 'http://x/', events: [everything] }",
            "unknown value `everything`",
        ),
    ] {
        let path = home.path().join("p.yaml");
        std::fs::write(
            &path,
            format!("apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: p }}\nspec:\n  notify: [ {notify} ]\n  stages:\n    - name: s\n      steps: [ {{ pause: 1s }} ]\n"),
        )
        .unwrap();
        let out = Command::new(BIN).arg("check").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{notify}: {err}");
        assert!(err.contains(want), "{notify}: {err}");
        assert!(!err.contains("s3cr3t") || want.contains("unknown"), "{err}");
    }
}
