//! Hostile files through the real binary (issue #17, "Hostile YAML" and "Panics"): each is
//! refused with exit 2 and an error naming the file and the limit, under a 400 MB address
//! space limit (`ulimit -v`), so a reader that grew without bound would fail these tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// Address space the child may use, in KiB: far below what the issue's documents grew to.
const MEMORY_KIB: u64 = 400_000;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Runs glidepath with `args` under the memory limit, in this directory.
    fn glidepath(&self, args: &[&str]) -> Output {
        let script = format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\"");
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .args(args)
            .env("GLIDEPATH_HOME", self.0.path())
            .env_remove("GLIDEPATH_JOURNAL")
            .current_dir(self.0.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// Asserts exit 2 (bad input), no panic, and an error holding every one of `expected`.
fn refused(out: &Output, expected: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected `{e}` in: {stderr}");
    }
    stderr
}

/// The issue's 40 KB file: 20,000 `- `, each entry a list holding the next.
fn nested_dashes() -> String {
    "- ".repeat(20_000)
}

/// A "billion laughs" document: each anchor lists the one before nine times.
fn laughs(levels: usize) -> String {
    let mut s = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..levels {
        let items = vec![format!("*l{}", i - 1); 9].join(", ");
        s.push_str(&format!("l{i}: &l{i} [{items}]\n"));
    }
    s
}

const DEPTH: &str = "nested deeper than the limit of 128 levels";
const ALIASES: &str = "past the limit of 100000 nodes copied by aliases";

fn check(dir: &Dir, file: &Path) -> Output {
    dir.glidepath(&["check", "--no-preflight", &file.display().to_string()])
}

fn slo_eval(dir: &Dir, file: &Path) -> Output {
    let values = dir.write(
        "values.json",
        r#"{"error_ratio": 0.001, "latency_p95_ms": 200}"#,
    );
    dir.glidepath(&[
        "slo",
        "eval",
        "--slo",
        &file.display().to_string(),
        "--values",
        &values.display().to_string(),
    ])
}

#[test]
fn nested_lists_are_refused_at_the_depth_limit() {
    let dir = Dir::new();
    let file = dir.write("nested.yaml", nested_dashes());
    refused(&check(&dir, &file), &["nested.yaml:1:257:", DEPTH]);
    refused(&slo_eval(&dir, &file), &["nested.yaml:1:257:", DEPTH]);
}

#[test]
fn nested_brackets_and_braces_are_refused() {
    let dir = Dir::new();
    for (name, open) in [("brackets.yaml", "["), ("braces.yaml", "{")] {
        let file = dir.write(name, open.repeat(20_000));
        refused(
            &check(&dir, &file),
            &[name, "nested deeper than the limit of 255 levels"],
        );
        refused(
            &slo_eval(&dir, &file),
            &[name, "nested deeper than the limit of 255 levels"],
        );
    }
}

#[test]
fn billion_laughs_are_refused_before_they_grow() {
    let dir = Dir::new();
    for levels in [7, 9] {
        let name = format!("laughs{levels}.yaml");
        let file = dir.write(&name, laughs(levels));
        refused(&check(&dir, &file), &[&format!("{name}:6:10:"), ALIASES]);
        refused(&slo_eval(&dir, &file), &[&format!("{name}:6:10:"), ALIASES]);
    }
}

#[test]
fn devices_are_refused_without_reading_them() {
    let dir = Dir::new();
    let not_a_file = "it is a character device, not a regular file";
    refused(
        &check(&dir, Path::new("/dev/zero")),
        &["/dev/zero: cannot read the pipeline file", not_a_file],
    );
    refused(
        &slo_eval(&dir, Path::new("/dev/zero")),
        &["/dev/zero: cannot read the SLO file", not_a_file],
    );
}

#[test]
fn files_over_the_size_limit_are_refused() {
    let dir = Dir::new();
    let big = format!("# {}\n", "x".repeat(8 * 1024 * 1024));
    let file = dir.write("big.yaml", big);
    let limit = "larger than the 8 MiB limit on input files";
    refused(
        &check(&dir, &file),
        &["big.yaml: cannot read the pipeline file", limit],
    );
    refused(
        &slo_eval(&dir, &file),
        &["big.yaml: cannot read the SLO file", limit],
    );
}

const PIPELINE: &str = "apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: hostile }
spec:
  stages:
    - name: build
      steps:
        - name: one
          timeout: TIMEOUT
          command: { run: [echo, hi] }
";

#[test]
fn a_huge_timeout_in_a_pipeline_is_an_error_naming_the_maximum() {
    let dir = Dir::new();
    let file = dir.write(
        "p.yaml",
        PIPELINE.replace("TIMEOUT", "99999999999999999999999d"),
    );
    refused(
        &check(&dir, &file),
        &["p.yaml:9:20: duration `99999999999999999999999d` is longer than the maximum of 3650d"],
    );
}

#[test]
fn a_huge_window_on_slo_eval_is_an_error_naming_the_maximum() {
    let dir = Dir::new();
    let slo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slo/checkout-slo.yaml");
    let out = dir.glidepath(&[
        "slo",
        "eval",
        "--slo",
        &slo.display().to_string(),
        "--prometheus",
        "http://127.0.0.1:9",
        "--window",
        "99999999999999999999999d",
        "--set",
        "service=web",
        "--set",
        "version=v1",
    ]);
    refused(
        &out,
        &["--window: duration `99999999999999999999999d` is longer than the maximum of 3650d"],
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = Dir::new();
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(PIPELINE.replace("TIMEOUT", "1m").as_bytes());
    let file = dir.write("bom.yaml", bytes);
    let out = check(&dir, &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pipeline hostile"), "{stdout}");

    let slo = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slo/checkout-slo.yaml"),
    )
    .unwrap();
    let with_bom = dir.write("slo.yaml", [b"\xef\xbb\xbf".as_slice(), &slo].concat());
    let plain = dir.write("slo-plain.yaml", &slo);
    let (a, b) = (slo_eval(&dir, &with_bom), slo_eval(&dir, &plain));
    assert_eq!(
        a.status.code(),
        b.status.code(),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert!(!a.stdout.is_empty());
}

#[test]
fn every_other_reader_is_bounded_too() {
    let dir = Dir::new();
    let nested = dir.write("nested.yaml", nested_dashes());
    let laughs9 = dir.write("laughs9.yaml", laughs(9));
    let zero = "/dev/zero: it is a character device, not a regular file";
    let url = "http://127.0.0.1:9/";
    refused(
        &dir.glidepath(&["load", url, "--requests", "/dev/zero"]),
        &[zero],
    );
    refused(
        &dir.glidepath(&["load", url, "--requests", &laughs9.display().to_string()]),
        &["laughs9.yaml:6:10: this alias", ALIASES],
    );
    refused(
        &dir.glidepath(&["contract", "verify", "/dev/zero"]),
        &[zero],
    );
    refused(
        &dir.glidepath(&["contract", "verify", &nested.display().to_string()]),
        &["nested.yaml:1:257:", DEPTH],
    );
    let slo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slo/keptn-slo.yaml");
    let out = dir.glidepath(&[
        "slo",
        "eval",
        "--slo",
        &slo.display().to_string(),
        "--sli",
        &laughs9.display().to_string(),
        "--values",
        "/dev/zero",
    ]);
    refused(&out, &["laughs9.yaml:6:10:", ALIASES]);
}

#[test]
fn numbers_on_the_command_line_are_range_checked() {
    let dir = Dir::new();
    let slo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slo/checkout-slo.yaml");
    let slo = slo.display().to_string();
    for at in ["1e400", "NaN", "99999999999999999999"] {
        let out = dir.glidepath(&[
            "slo",
            "eval",
            "--slo",
            &slo,
            "--prometheus",
            "http://127.0.0.1:9",
            "--at",
            at,
            "--set",
            "service=web",
            "--set",
            "version=v1",
        ]);
        refused(
            &out,
            &[&format!("time `{at}` is out of range"), "year 9999"],
        );
    }
    for rate in ["1e20", "NaN"] {
        let out = dir.glidepath(&[
            "load",
            "http://127.0.0.1:9/",
            "--rate",
            rate,
            "--duration",
            "1s",
        ]);
        refused(
            &out,
            &["rates must be from 0 to 1000000 requests per second"],
        );
    }
    let out = dir.glidepath(&[
        "load",
        "http://127.0.0.1:9/",
        "--duration",
        "99999999999999999999999d",
    ]);
    refused(&out, &["longer than the maximum of 3650d"]);
}

#[test]
fn a_manifest_that_is_a_device_does_not_stall_check() {
    let dir = Dir::new();
    let file = dir.write(
        "p.yaml",
        "apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: dz }
spec:
  target: sandbox
  stages:
    - name: s
      steps:
        - deploy: { manifests: [/dev/zero] }
",
    );
    // The load-time template check skips what it cannot read; under the memory limit a
    // read of /dev/zero without bound would kill the process instead.
    let out = check(&dir, &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is valid"), "{stdout}");
}
