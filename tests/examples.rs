//! Every example pipeline in `config/` passes `glidepath check` against the embedded
//! sandbox: it validates, and its pre-flight steps (platform contract, server dry runs,
//! permissions, Rego policies) pass, the production example's real-cluster stages
//! retargeted with `--sandbox`. A newcomer copying an example starts from one that works.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// Pipeline files under `config/` (`kind: Pipeline`).
fn pipelines(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pipelines(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml")
            && std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .any(|l| l.trim() == "kind: Pipeline")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_example_pipeline_passes_check_against_the_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    pipelines(&root.join("config"), &mut found);
    found.sort();
    let names: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    for want in [
        "config/demo/pipeline.yaml",
        "config/examples/checkout/pipeline.yaml",
        "config/hello.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not among {names:?}"
        );
    }
    let home = tempfile::tempdir().unwrap();
    for (path, name) in found.iter().zip(&names) {
        let out = Command::new(BIN)
            .arg("check")
            .arg(path)
            .arg("--sandbox")
            .env("GLIDEPATH_HOME", home.path())
            .current_dir(root)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{name}:\n{text}");
        assert!(
            text.contains("pre-flight passed in") || text.contains("no preflight steps"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn check_reports_a_broken_platform_and_validates_without_a_cluster() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    let example = root.join("config/examples/checkout/pipeline.yaml");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("check")
            .arg(&example)
            .args(args)
            .env("GLIDEPATH_HOME", home.path())
            .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // A platform without the monitoring CRD: pre-flight names it, exit 1.
    let (code, text) = run(&["--sandbox", "--scenario", "missing-infra"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{text}"
    );
    assert!(text.contains("but pre-flight failed"), "{text}");
    // --no-preflight asks no cluster at all.
    let (code, text) = run(&["--no-preflight"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.ends_with("is valid (2 stages, 15 steps)\n"), "{text}");
}
