//! The binary end to end: headless runs against a local HTTP server, exit codes, approval
//! from another process, history, and a SIGKILLed run resumed without repeating steps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("GLIDEPATH_HOME", self.path())
            .env_remove("GLIDEPATH_JOURNAL")
            .current_dir(self.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn report(&self, run: i64) -> Value {
        let out = self.run(&["history", &run.to_string(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until the journal shows `pred` true of the run's report.
    fn wait_report(&self, run: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(&["history", &run.to_string(), "--json"]);
            if out.status.success() {
                let report: Value = serde_json::from_slice(&out.stdout).unwrap();
                if pred(&report) {
                    return report;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A step's status, once the run has announced its plan.
fn status(report: &Value, stage: &str, step: &str) -> Option<String> {
    report["stages"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == stage)?["steps"]
        .as_array()?
        .iter()
        .find(|x| x["name"] == step)?["status"]
        .as_str()
        .map(str::to_owned)
}

fn step<'a>(report: &'a Value, stage: &str, step: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .and_then(|s| {
            s["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == step)
        })
        .unwrap_or_else(|| panic!("no step {stage}/{step}"))
}

/// A server with known answers: /healthz (JSON), /slow (400 ms), /flaky (503 twice, then 200).
fn start_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    use axum::{Json, Router, http::StatusCode, routing::get};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let flaky = Arc::new(AtomicUsize::new(0));
            let app = Router::new()
                .route(
                    "/healthz",
                    get(|| async { Json(serde_json::json!({"status": "ok", "version": "1.2.0"})) }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(400)).await;
                        "slow but fine"
                    }),
                )
                .route(
                    "/flaky",
                    get(move || {
                        let n = flaky.fetch_add(1, Ordering::SeqCst);
                        async move {
                            if n < 2 {
                                (StatusCode::SERVICE_UNAVAILABLE, "warming up")
                            } else {
                                (StatusCode::OK, "ready")
                            }
                        }
                    }),
                )
                .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no") }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            // Serves until the test process ends.
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), handle)
}

fn smoke_pipeline(addr: SocketAddr, extra_check: &str) -> String {
    format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: web }}
spec:
  variables: {{ base: "http://{addr}" }}
  stages:
    - name: staging
      steps:
        - name: smoke
          test:
            http:
              baseUrl: ${{base}}
              defaults: {{ timeout: 2s, backoff: 50ms }}
              checks:
                - name: health
                  url: /healthz
                  expect: {{ status: 200, bodyContains: ok, json: {{ /status: ok, /version: "1.2.0" }} }}
                - name: warm
                  url: /flaky
                  retries: 3
                  expect: {{ bodyContains: ready }}
{extra_check}
        - gate: {{ steps: [smoke] }}
"#
    )
}

#[test]
fn headless_run_against_a_local_server_passes_and_reports() {
    let (addr, _server) = start_server();
    let home = Home::new();
    let pipeline = home.write("web.yaml", &smoke_pipeline(addr, ""));
    let report_path = home.path().join("report.json");
    let out = home.run(&[
        "run",
        pipeline.to_str().unwrap(),
        "--headless",
        "--report",
        report_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "run 1 passed: every stage passed");
    assert!(
        stderr(&out).contains("✓ smoke passed: smoke 2/2 passed"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("↻ warm GET"),
        "retries are shown: {}",
        stderr(&out)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report_path).unwrap()).unwrap();
    assert_eq!(report["status"], "passed");
    let smoke = step(&report, "staging", "smoke");
    assert_eq!(smoke["verdict"], "pass");
    assert_eq!(smoke["evidence"][0]["check"], "health");
    assert_eq!(
        smoke["evidence"][0]["expected"],
        r#"status 200, body contains "ok", /status = "ok", /version = "1.2.0""#
    );
    assert_eq!(step(&report, "staging", "gate")["verdict"], "pass");
}

#[test]
fn a_failing_smoke_check_fails_the_gate_with_evidence_and_exit_1() {
    let (addr, _server) = start_server();
    let home = Home::new();
    let extra = "                - name: fast\n                  url: /slow\n                  expect: { maxLatency: 100ms }\n                - name: gone\n                  url: /missing\n";
    let pipeline = home.write("web.yaml", &smoke_pipeline(addr, extra));
    let out = home.run(&["run", pipeline.to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("✗ smoke failed: smoke 2/4 passed; failed: fast, gone"),
        "{err}"
    );
    assert!(err.contains("slower than 100ms"), "{err}");
    assert!(err.contains("✗ gone: status 404"), "{err}");
    let report = home.report(1);
    assert_eq!(step(&report, "staging", "gate")["status"], "skipped");
}

#[test]
fn unreachable_server_is_a_failed_check_not_a_hang() {
    let home = Home::new();
    // A port nobody listens on: bind, take the number, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let pipeline = home.write("web.yaml", &smoke_pipeline(addr, ""));
    let started = Instant::now();
    let out = home.run(&["run", pipeline.to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Connection refused") || stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let home = Home::new();
    let out = home.run(&["run", "/no/such/pipeline.yaml", "--headless"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/no/such/pipeline.yaml: cannot read the pipeline file"),
        "{}",
        stderr(&out)
    );
    let fixture = std::fs::canonicalize("tests/fixtures/invalid/unknown-variable.yaml").unwrap();
    let out = home.run(&["run", fixture.to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown-variable.yaml:11:36: unknown variable `versoin`"),
        "{}",
        stderr(&out)
    );
    let hello = std::fs::canonicalize("config/hello.yaml").unwrap();
    let out = home.run(&[
        "run",
        hello.to_str().unwrap(),
        "--headless",
        "--stage",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--stage prod: no such stage; the pipeline has build, release"),
        "{}",
        stderr(&out)
    );
    let out = home.run(&["run", hello.to_str().unwrap(), "--set", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    // Nothing was run, so the history is empty.
    let out = home.run(&["history", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn check_prints_the_plan_and_schema_is_json() {
    let home = Home::new();
    let hello = std::fs::canonicalize("config/hello.yaml").unwrap();
    let out = home.run(&["check", hello.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("stage build → local, no cluster"), "{text}");
    assert!(
        text.contains("gate       checks-passed  gate on compile, unit-tests"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "is valid (2 stages, 6 steps); it has no preflight steps, so no cluster was asked\n"
        ),
        "{text}"
    );
    let out = home.run(&["schema"]);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "glidepath pipeline (glidepath/v1)");
    assert!(schema["$defs"]["StepSpec"]["properties"]["release"].is_object());
}

#[test]
fn the_example_pipeline_runs_headless_and_lands_in_history() {
    let home = Home::new();
    let hello = std::fs::canonicalize("config/hello.yaml").unwrap();
    let out = home.run(&[
        "run",
        hello.to_str().unwrap(),
        "--headless",
        "--set",
        "version=2.0.0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("published hello v2.0.0"),
        "{}",
        stderr(&out)
    );
    let out = home.run(&["history"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("hello") && l.contains("passed")),
        "{text}"
    );
    let out = home.run(&["history", "1"]);
    assert!(
        stdout(&out).contains("✓ run 1 passed: every stage passed"),
        "{}",
        stdout(&out)
    );
}

const APPROVAL: &str = r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: gatekeeper }
spec:
  stages:
    - name: prod
      steps:
        - approval: { pass: manual, message: "release to prod?" }
        - name: ship
          command: { run: [echo, shipped] }
"#;

/// Starts the approval pipeline headless and returns once its approval waits.
fn start_waiting_for_approval(home: &Home) -> std::process::Child {
    let pipeline = home.write("gate.yaml", APPROVAL);
    let child = home
        .cmd(&["run", pipeline.to_str().unwrap(), "--headless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    home.wait_report(1, "the approval to wait", |r| {
        status(r, "prod", "approval").as_deref() == Some("waiting-for-approval")
    });
    child
}

#[test]
fn approve_from_another_terminal_reaches_the_headless_run() {
    let home = Home::new();
    let child = start_waiting_for_approval(&home);
    // A run that does not exist is bad input.
    let out = home.run(&["reject", "2"]);
    assert_eq!(out.status.code(), Some(2), "no run 2");
    let out = home.run(&["approve", "1"]);
    assert_eq!(
        stdout(&out).trim(),
        "run 1: approve accepted",
        "{}",
        stderr(&out)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = home.report(1);
    assert_eq!(
        step(&report, "prod", "approval")["summary"],
        format!(
            "approved by {}",
            report["operator_actions"][0]["who"].as_str().unwrap()
        )
    );
    let out = home.run(&["approve", "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a finished run takes no commands"
    );
}

#[test]
fn reject_from_another_terminal_fails_the_run() {
    let home = Home::new();
    let child = start_waiting_for_approval(&home);
    let out = home.run(&["reject", "1"]);
    assert_eq!(stdout(&out).trim(), "run 1: reject accepted");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(step(&home.report(1), "prod", "ship")["status"], "skipped");
}

fn crash_pipeline() -> String {
    // Commands run in the pipeline file's folder, so the marker files are relative.
    let d = ".";
    format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: crashy }}
spec:
  stages:
    - name: build
      steps:
        - name: one
          command: {{ run: "echo ran >> {d}/one.count && echo one", shell: true }}
        - name: two
          command: {{ run: "while [ ! -f {d}/go ]; do sleep 0.05; done; echo two", shell: true }}
        - name: three
          command: {{ run: "echo ran >> {d}/three.count", shell: true }}
        - gate: {{ steps: [one, two, three] }}
    - name: release
      steps:
        - approval: {{ pass: automatic }}
        - name: four
          command: {{ run: [echo, four] }}
"#
    )
}

fn shape(report: &Value) -> Vec<(String, String, String, Value, Value)> {
    let mut out = Vec::new();
    for stage in report["stages"].as_array().unwrap() {
        for s in stage["steps"].as_array().unwrap() {
            out.push((
                stage["name"].as_str().unwrap().to_owned(),
                stage["status"].as_str().unwrap().to_owned(),
                s["name"].as_str().unwrap().to_owned(),
                s["status"].clone(),
                s["summary"].clone(),
            ));
        }
    }
    out
}

#[test]
fn a_sigkilled_run_resumes_without_repeating_finished_steps() {
    // The reference: the same pipeline uninterrupted.
    let reference = Home::new();
    std::fs::write(reference.path().join("go"), "").unwrap();
    let pipeline = reference.write("crashy.yaml", &crash_pipeline());
    let out = reference.run(&["run", pipeline.to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = reference.report(1);

    let home = Home::new();
    let pipeline = home.write("crashy.yaml", &crash_pipeline());
    let mut child = home
        .cmd(&["run", pipeline.to_str().unwrap(), "--headless"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    home.wait_report(1, "step two to start", |r| {
        status(r, "build", "two").as_deref() == Some("running")
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The killed run's own shell loop dies with it only if nobody else does it: make sure.
    std::fs::write(home.path().join("go"), "").unwrap();
    let before = home.report(1);
    assert_eq!(
        before["exit_code"],
        Value::Null,
        "a killed run has no outcome"
    );
    assert_eq!(step(&before, "build", "one")["status"], "passed");

    let out = home.run(&["resume", "--headless"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("↻ run 1 of crashy resumed"),
        "{}",
        stderr(&out)
    );
    let after = home.report(1);
    assert_eq!(
        std::fs::read_to_string(home.path().join("one.count")).unwrap(),
        "ran\n",
        "step one ran once"
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("three.count")).unwrap(),
        "ran\n"
    );
    assert_eq!(after["status"], "passed");
    assert_eq!(after["resumed"], 1);
    assert_eq!(
        shape(&after),
        shape(&expected),
        "the resumed run reports as an uninterrupted one"
    );
    let out = home.run(&["resume", "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a finished run cannot be resumed: {}",
        stderr(&out)
    );
}

#[test]
fn a_command_that_times_out_or_is_killed_is_reported_as_such() {
    let home = Home::new();
    let pipeline = home.write(
        "p.yaml",
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: stuck }
spec:
  stages:
    - name: dev
      steps:
        - name: hangs
          command: { run: "sleep 30 & sleep 30; echo never", shell: true }
          timeout: 1s
          onFailure: continue
        - name: killed
          command: { run: "kill -9 $$", shell: true }
          onFailure: continue
"#,
    );
    let started = Instant::now();
    let out = home.run(&["run", pipeline.to_str().unwrap(), "--headless"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout stopped the whole process group"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "continue: the run ends with warnings: {}",
        stderr(&out)
    );
    let report = home.report(1);
    assert_eq!(
        step(&report, "dev", "hangs")["summary"],
        "timed out after 1s; the step was stopped"
    );
    assert_eq!(
        step(&report, "dev", "killed")["summary"],
        "`sh -c \"kill -9 $$\"` was killed by signal 9"
    );
    assert_eq!(report["status"], "warning");
}

#[test]
fn shell_completions_and_man_pages_are_generated() {
    let home = Home::new();
    let out = home.run(&["completions", "bash"]);
    assert!(out.status.success());
    let script = home.write("glidepath.bash", &String::from_utf8_lossy(&out.stdout));
    // bash parses it, and it completes the subcommands and their flags.
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["demo", "attach", "--scenario", "bad-canary", "--report-dir"] {
        assert!(text.contains(word), "bash completion lacks {word}");
    }
    let zsh = home.run(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef glidepath"));
    let fish = home.run(&["completions", "fish"]);
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c glidepath"));
    assert_eq!(home.run(&["completions", "tcsh"]).status.code(), Some(2));

    let man = home.run(&["man"]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH glidepath 1"), "{page}");
    assert!(page.contains("demo"), "{page}");
    let dir = home.path().join("man");
    let out = home.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let demo = std::fs::read_to_string(dir.join("glidepath-demo.1")).unwrap();
    assert!(demo.contains(r"\-\-scenario"), "{demo}");
}

#[test]
fn a_reader_that_stops_early_ends_glidepath_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/pipeline.yaml");
    let check = ["check", demo.to_str().unwrap()];
    for args in [&["schema"][..], &check[..], &["man"][..]] {
        // The reading end is closed before glidepath starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .env("GLIDEPATH_HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
