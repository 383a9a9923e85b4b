//! Pipeline files: every invalid fixture gives its exact message (file:line:col), every
//! valid one loads, and the examples in config/ pass `check`.

use std::path::{Path, PathBuf};

use glidepath::pipeline::{self, Variables};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn no_env() -> Variables {
    Variables {
        sets: Default::default(),
        use_env: false,
    }
}

#[test]
fn every_invalid_fixture_gives_its_exact_message() {
    let files = fixtures("tests/fixtures/invalid");
    assert!(
        files.len() >= 25,
        "keep at least 25 invalid fixtures, found {}",
        files.len()
    );
    let mut mismatches = Vec::new();
    for file in &files {
        let expected_path = file.with_extension("err");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no {}", file.display(), expected_path.display()));
        match pipeline::load_file(file, &no_env()) {
            Ok(_) => mismatches.push(format!(
                "{}: loaded, but should fail with\n  {}",
                file.display(),
                expected.trim()
            )),
            Err(e) if e.to_string() != expected.trim() => mismatches.push(format!(
                "{}:\n  expected {}\n  actual   {e}",
                file.display(),
                expected.trim()
            )),
            Err(_) => {}
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_error_names_file_line_and_column() {
    for file in fixtures("tests/fixtures/invalid") {
        let err = pipeline::load_file(&file, &no_env()).unwrap_err();
        assert!(
            err.pos.is_some_and(|p| p.line > 0 && p.col > 0),
            "{}: no position in {err}",
            file.display()
        );
    }
}

#[test]
fn valid_fixtures_and_examples_load() {
    let mut files = fixtures("tests/fixtures/valid");
    files.extend(fixtures("config"));
    assert!(!files.is_empty());
    for file in files {
        if let Err(e) = pipeline::load_file(&file, &no_env()) {
            panic!("{e}");
        }
    }
}

#[test]
fn set_wins_over_file_variables_and_env_fills_the_rest() {
    let text = "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: p }\nspec:\n  variables: { version: \"1\" }\n  stages:\n    - name: dev\n      steps:\n        - command: { run: [echo, \"${version}\", \"${CARGO_MANIFEST_DIR}\", \"$${literal}\"] }\n";
    // A variable cargo sets for every test process: setting one here (set_var) would race
    // with the other tests of this binary reading the environment.
    let from_env = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let vars = Variables::from_sets([("version".to_owned(), "2".to_owned())].into());
    let p = pipeline::load_str(text, Path::new("p.yaml"), &vars).unwrap();
    let pipeline::StepKind::Command(c) = &p.stages[0].steps[0].kind else {
        panic!("not a command")
    };
    assert_eq!(
        c.run.value,
        pipeline::model::CommandLine::Args(vec![
            "echo".into(),
            "2".into(),
            from_env,
            "${literal}".into()
        ])
    );
}

#[test]
fn durations_and_percentages_load() {
    let text = "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: p }\nspec:\n  prometheus: { url: \"http://127.0.0.1:9090\" }\n  variables: { version: \"1\" }\n  stages:\n    - name: dev\n      steps:\n        - pause: 1h30m\n          timeout: 2h\n        - gate: { errorBudget: { slo: fixtures/slo/checkout-slo.yaml, minRemaining: 25% } }\n";
    let p = pipeline::load_str(text, Path::new("tests/p.yaml"), &no_env()).unwrap();
    let step = &p.stages[0].steps[0];
    assert_eq!(step.timeout, Some(std::time::Duration::from_secs(7200)));
    let pipeline::StepKind::Pause(pause) = &step.kind else {
        panic!()
    };
    assert_eq!(
        pause.duration.map(|d| d.get()),
        Some(std::time::Duration::from_secs(5400))
    );
    let pipeline::StepKind::Gate(g) = &p.stages[0].steps[1].kind else {
        panic!()
    };
    assert_eq!(
        g.error_budget
            .as_ref()
            .unwrap()
            .min_remaining
            .unwrap()
            .fraction(),
        0.25
    );
}

#[test]
fn schema_describes_every_step_kind() {
    let schema = pipeline::json_schema();
    let text = schema.to_string();
    for kind in pipeline::STEP_KINDS {
        assert!(text.contains(&format!("\"{kind}\"")), "schema lacks {kind}");
    }
    assert_eq!(schema["title"], "glidepath pipeline (glidepath/v1)");
    // The copy editors point at (`# yaml-language-server: $schema=...`) is current:
    // regenerate it with `glidepath schema > assets/pipeline.schema.json`.
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/pipeline.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(shipped, schema, "assets/pipeline.schema.json is stale");
}

/// Runs the binary from the repository root with its own data folder.
fn glidepath(home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .env("GLIDEPATH_HOME", home)
        .env_remove("GLIDEPATH_JOURNAL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_and_run_refuse_at_load_what_a_run_would_trip_on() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = glidepath(
        home.path(),
        &[
            "check",
            "--no-preflight",
            "tests/fixtures/invalid/canary-weights-fall.yaml",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        "error: tests/fixtures/invalid/canary-weights-fall.yaml:15:19: weight 20 does not rise from the step before (50); canary weights go up, and a rollback (not a smaller weight) takes traffic back\n"
    );
    let (code, _, err) = glidepath(
        home.path(),
        &[
            "run",
            "tests/fixtures/invalid/slo-invalid-promql.yaml",
            "--headless",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        "error: tests/fixtures/invalid/../slo/invalid-promql.yaml:7:21: SLI `latency_p95_ms`: the query is not valid PromQL: unclosed left parenthesis (used at tests/fixtures/invalid/slo-invalid-promql.yaml:10:28)\n"
    );
    // `check` and `run` say the same, word for word, as the loader does.
    for name in [
        "analysis-interval-zero",
        "canary-weight-zero",
        "step-timeout-zero",
        "wait-timeout-zero",
        "slo-negative-weight",
        "slo-variable-nothing-fills",
        "manifest-variable-nothing-fills",
    ] {
        let file = format!("tests/fixtures/invalid/{name}.yaml");
        let expected =
            std::fs::read_to_string(format!("tests/fixtures/invalid/{name}.err")).unwrap();
        for args in [
            vec!["check", "--no-preflight", file.as_str()],
            vec!["run", file.as_str(), "--headless"],
        ] {
            let (code, _, err) = glidepath(home.path(), &args);
            assert_eq!(code, Some(2), "{args:?}: {err}");
            assert_eq!(err, format!("error: {}\n", expected.trim()), "{args:?}");
        }
    }
    let (_, out, _) = glidepath(home.path(), &["history", "--json"]);
    assert_eq!(out.trim(), "[]", "nothing may have run");
}

#[test]
fn context_is_refused_when_every_stage_targets_the_sandbox_and_named_when_some_do() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = glidepath(
        home.path(),
        &[
            "check",
            "--no-preflight",
            "--context",
            "prod-eu",
            "config/demo/pipeline.yaml",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        "error: --context prod-eu: no stage of config/demo/pipeline.yaml uses a kubeconfig context; every stage (staging, prod) targets the embedded sandbox. Drop --context, or give a stage a cluster target such as { context: prod-eu, namespace: shop }\n"
    );
    let (code, _, err) = glidepath(home.path(), &["demo", "--headless", "--context", "prod-eu"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--context prod-eu: no stage of ") && err.contains("demo/pipeline.yaml"),
        "{err}"
    );
    let mixed = home.path().join("mixed.yaml");
    std::fs::write(
        &mixed,
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: shop }\nspec:\n  stages:\n    - name: try\n      target: sandbox\n      steps:\n        - command: { run: [\"true\"] }\n    - name: live\n      steps:\n        - command: { run: [\"true\"] }\n",
    )
    .unwrap();
    let mixed = mixed.to_str().unwrap();
    let (code, out, err) = glidepath(
        home.path(),
        &["check", "--no-preflight", "--context", "prod-eu", mixed],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        err,
        "warning: --context prod-eu does not apply to stage `try`, which targets the embedded sandbox\n"
    );
    assert!(out.contains("stage live → prod-eu/default"), "{out}");
    let (code, _, err) = glidepath(home.path(), &["check", "--no-preflight", mixed]);
    assert_eq!((code, err.as_str()), (Some(0), ""), "no flag, no warning");
}
