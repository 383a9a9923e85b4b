//! Secrets never leak: a whole pipeline run with a marker secret in every place one can
//! go (credentials in the Prometheus, webhook, load-test and smoke-test URLs, a bearer
//! token, a basic-auth password, a secret header, a webhook's token path, a command that
//! prints secrets from its environment), and every byte
//! glidepath writes (stdout, stderr, every file of its data folder with the journal, the
//! report folder, what the webhook receiver was sent) searched for the markers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// The markers, each a secret a pipeline can hold.
const MARKERS: [&str; 7] = [
    "MarkerPromPass1",
    "MarkerToken2",
    "MarkerHeader3",
    "MarkerHookPass4",
    "MarkerHookPath5",
    "MarkerLoadPass6",
    "MarkerSmokePass7",
];

type Seen = Arc<Mutex<Vec<String>>>;

/// A local server: answers GETs with 200 (the load and smoke targets) and records every
/// POST body (the webhook).
async fn server() -> (u16, Seen) {
    use axum::routing::{get, post};
    let seen: Seen = Arc::default();
    let bodies = seen.clone();
    let app = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/{*path}",
            post(move |body: String| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_byte_glidepath_writes() {
    let (port, seen) = server().await;
    let home = tempfile::tempdir().unwrap();
    let reports = home.path().join("reports");
    std::fs::write(home.path().join("password"), "MarkerPromPass1\n").unwrap();
    let pipeline = format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: shop }}
spec:
  notify:
    - urlEnv: GP_TEST_HOOK
      headers: {{ Authorization: "env:GP_TEST_TOKEN" }}
  stages:
    - name: prod
      prometheus:
        url: "${{GP_TEST_PROM_URL}}"
        basicAuth: {{ username: admin, passwordFile: "{password}" }}
        headers: {{ X-Api-Key: "env:GP_TEST_HEADER" }}
        timeout: 1s
        retries: 0
      steps:
        - name: careless
          command: {{ run: "echo the token is $GP_TEST_TOKEN and the key $GP_TEST_HEADER", shell: true }}
        - name: smoke
          test: {{ http: {{ baseUrl: "${{GP_TEST_SMOKE_URL}}", checks: [ {{ name: health, url: /health, expect: {{ status: 200 }} }} ] }} }}
        - name: load
          test: {{ load: {{ url: "${{GP_TEST_LOAD_URL}}", duration: 1s, rate: 5 }} }}
        - name: gate
          evaluate: {{ slo: slo.yaml, window: 1m }}
"#,
        password = home.path().join("password").display()
    );
    std::fs::write(
        home.path().join("slo.yaml"),
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: shop }\nspec:\n  slis:\n    up: up\n  objectives:\n    - { sli: up, pass: [\">=1\"] }\n",
    )
    .unwrap();
    let path = home.path().join("shop.yaml");
    std::fs::write(&path, pipeline).unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(["--headless", "--report-dir"])
        .arg(&reports)
        .env("GLIDEPATH_HOME", home.path())
        // Nothing answers on port 1: the gate's errors carry the URL.
        .env(
            "GP_TEST_PROM_URL",
            "http://admin:MarkerPromPass1@127.0.0.1:1/prom",
        )
        .env(
            "GP_TEST_HOOK",
            format!("http://hook:MarkerHookPass4@127.0.0.1:{port}/hook/MarkerHookPath5"),
        )
        .env("GP_TEST_HEADER", "MarkerHeader3")
        .env("GP_TEST_TOKEN", "MarkerToken2")
        .env(
            "GP_TEST_SMOKE_URL",
            format!("http://smoke:MarkerSmokePass7@127.0.0.1:{port}/"),
        )
        .env(
            "GP_TEST_LOAD_URL",
            format!("http://load:MarkerLoadPass6@127.0.0.1:{port}/"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The run did what it was meant to: a command printed secrets (hidden), smoke and
    // load ran, the gate could not measure.
    assert!(
        stderr.contains("the token is *** and the key ***"),
        "{stderr}"
    );
    assert!(stderr.contains("smoke passed"), "{stderr}");
    assert!(stderr.contains("load"), "{stderr}");
    assert!(stderr.contains("http://***@127.0.0.1:1"), "{stderr}");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let mut places = vec![
        ("stdout".to_owned(), stdout.into_bytes()),
        ("stderr".to_owned(), stderr.into_bytes()),
    ];
    places.extend(files(home.path()).into_iter().filter(|(name, _)| {
        // The pipeline's own password file holds the secret by design.
        !name.ends_with("/password")
    }));
    // The webhook was told about the run, without any secret in what it was sent.
    let bodies = seen.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "the webhook heard nothing");
    places.extend(
        bodies
            .into_iter()
            .map(|b| ("webhook body".to_owned(), b.into_bytes())),
    );
    let journal = places
        .iter()
        .find(|(name, _)| name.ends_with("journal.db"))
        .map(|(_, bytes)| bytes.len())
        .unwrap_or(0);
    assert!(journal > 0, "no journal was written");
    assert!(
        places.iter().any(|(name, _)| name.ends_with("report.json")),
        "no report"
    );
    for (name, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for marker in MARKERS {
            assert!(
                !text.contains(marker),
                "{marker} leaked into {name}:\n{}",
                text.lines()
                    .filter(|l| l.contains(marker))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Secrets written inline in the pipeline file (a webhook URL, a header templated from a
/// `--set` value, URL credentials): the journal keeps the text whole so `resume` can load
/// it, but nothing that reads the journal shows them: `history`, `history --json`,
/// `journal export` and the run's output.
#[test]
fn inline_secrets_stay_inside_the_journal() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: shop }
spec:
  notify:
    - url: "http://127.0.0.1:1/hook/InlineHookToken8"
      headers: { Authorization: "Bearer ${token}" }
      retries: 0
      timeout: 1s
  stages:
    - name: prod
      prometheus: { url: "http://admin:InlinePromPass10@127.0.0.1:1/prom" }
      steps:
        - command: { run: ["true"] }
"#;
    let path = home.path().join("shop.yaml");
    std::fs::write(&path, pipeline).unwrap();
    let glidepath = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("GLIDEPATH_HOME", home.path())
            .env_remove("GLIDEPATH_JOURNAL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let run = glidepath(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--set",
        "token=SetToken9xyz",
    ]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let mut shown = vec![("run", run)];
    shown.push(("history", glidepath(&["history"])));
    shown.push(("history --json", glidepath(&["history", "--json"])));
    shown.push(("history 1", glidepath(&["history", "1", "--json"])));
    shown.push(("journal export", glidepath(&["journal", "export"])));
    let export = String::from_utf8_lossy(&shown.last().unwrap().1.stdout).into_owned();
    assert!(
        export.contains("shop.yaml"),
        "the export holds the run: {export}"
    );
    assert!(export.contains(r#""token":"***""#), "{export}");
    for (what, out) in &shown {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for marker in ["InlineHookToken8", "SetToken9xyz", "InlinePromPass10"] {
            assert!(
                !text.contains(marker),
                "{marker} leaked into {what}:\n{text}"
            );
        }
    }
}
