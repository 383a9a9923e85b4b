//! Errors that help, through the binary: a failing Prometheus query names its SLI and the
//! query (transport errors included); `slo eval` and `slo budget` give up on a silent
//! Prometheus at `--timeout`; a query Prometheus refuses (400 or 422) exits 2 from `slo eval`
//! and from a pipeline alike; `slo budget` with no data exits 1; `+Inf` is a value shown as
//! `+Inf` that never passes. Without a kubeconfig, `check` says where it looked and how to
//! point glidepath at a cluster, and never calls a failed pre-flight a pass.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// Two series that match on nothing: `* on()` between them is a many-to-many match, which
/// Prometheus parses and then refuses to execute (HTTP 422, `execution`).
const MANY_TO_MANY: &str = "(vector(1) or label_replace(vector(1), \"a\", \"b\", \"\", \"\")) * on() (vector(1) or label_replace(vector(1), \"a\", \"b\", \"\", \"\"))";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A glidepath SLO with objectives `ok` (met) and `bad` (the query under test), and a
/// service level over `bad`.
fn slo_file(dir: &Path, bad_query: &str) -> String {
    let path = dir.join("slo.yaml");
    let text = format!(
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: {{ name: shop }}\nspec:\n  slis:\n    ok: vector(0.01)\n    bad: '{bad_query}'\n  objectives:\n    - sli: ok\n      pass: [\"<=0.05\"]\n      weight: 9\n    - sli: bad\n      pass: [\"<=0.05\"]\n  totalScore: {{ pass: 90%, warning: 75% }}\n  serviceLevel:\n    bad: 'sum(rate(missing_requests_total{{code=~\"5..\"}}[${{window}}]))'\n    total: 'sum(rate(missing_requests_total[${{window}}]))'\n    target: 99.9%\n    window: 30d\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn slo(args: &[&str]) -> Output {
    Command::new(BIN).arg("slo").args(args).output().unwrap()
}

/// A Prometheus stand-in that accepts connections and never answers.
fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

#[test]
fn a_silent_prometheus_is_given_up_at_the_timeout_naming_the_sli_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let slo_path = slo_file(dir.path(), "sum(up)");
    let url = silent_listener();
    let out = slo(&[
        "eval",
        "--slo",
        &slo_path,
        "--prometheus",
        &url,
        "--timeout",
        "1s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("SLI `ok`, query `vector(0.01)`"), "{err}");
    assert!(err.contains("no answer in time"), "{err}");
    assert!(err.contains("--timeout (now 1s)"), "{err}");

    let out = slo(&[
        "budget",
        "--slo",
        &slo_path,
        "--prometheus",
        &url,
        "--timeout",
        "1s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(", query `") && err.contains("missing_requests_total"),
        "{err}"
    );
    assert!(err.contains("no answer in time"), "{err}");

    let out = slo(&["eval", "--slo", &slo_path, "--timeout", "0s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("a timeout must be longer than 0s"));
}

#[test]
fn an_unreachable_prometheus_names_the_sli_and_query_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let slo_path = slo_file(dir.path(), "sum(up)");
    let url = format!("http://127.0.0.1:{}", prometheus::free_port());
    let out = slo(&["eval", "--slo", &slo_path, "--prometheus", &url]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("SLI `ok`, query `vector(0.01)`: cannot reach Prometheus at"),
        "{err}"
    );
}

#[test]
fn a_query_prometheus_refuses_exits_2_from_slo_eval_and_from_a_pipeline() {
    let prom = prometheus::start("# TYPE up gauge\nup 1 1000\n# EOF\n", None);
    let dir = tempfile::tempdir().unwrap();
    let slo_path = slo_file(dir.path(), MANY_TO_MANY);
    let out = slo(&["eval", "--slo", &slo_path, "--prometheus", &prom.url]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SLI `bad`, query `(vector(1) or label_replace"),
        "{err}"
    );
    assert!(err.contains("(execution, HTTP 422)"), "{err}");

    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  prometheus: {{ url: \"{}\" }}\n  stages:\n    - name: staging\n      steps:\n        - evaluate: {{ slo: slo.yaml }}\n",
            prom.url
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", pipeline.to_str().unwrap(), "--headless"])
        .env("GLIDEPATH_HOME", dir.path())
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("SLI `bad`, query `(vector(1)"), "{all}");
    assert!(all.contains("(execution, HTTP 422)"), "{all}");
}

#[test]
fn infinity_is_shown_as_inf_and_never_passes() {
    let prom = prometheus::start("# TYPE up gauge\nup 1 1000\n# EOF\n", None);
    let dir = tempfile::tempdir().unwrap();
    for (query, shown) in [("vector(+Inf)", "+Inf"), ("vector(-Inf)", "-Inf")] {
        let slo_path = slo_file(dir.path(), query);
        let out = slo(&[
            "eval",
            "--slo",
            &slo_path,
            "--prometheus",
            &prom.url,
            "--json",
            "--fail-on",
            "fail",
        ]);
        let e: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{query}: {}", stderr(&out)));
        assert_eq!(e["objectives"][1]["value"], shown, "{query}: {e}");
        assert_eq!(e["objectives"][1]["status"], "fail", "{query}: {e}");
        assert_eq!(e["result"], "fail", "{query}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("bad is {shown}: an infinite value never passes")),
            "{query}: {e}"
        );
        assert_eq!(out.status.code(), Some(1), "{query}");
        let out = slo(&["eval", "--slo", &slo_path, "--prometheus", &prom.url]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains(shown), "{table}");
        assert!(!table.contains("no data"), "{table}");
    }
}

#[test]
fn slo_budget_with_no_data_exits_1() {
    let prom = prometheus::start("# TYPE up gauge\nup 1 1000\n# EOF\n", None);
    let dir = tempfile::tempdir().unwrap();
    let slo_path = slo_file(dir.path(), "sum(up)");
    let out = slo(&["budget", "--slo", &slo_path, "--prometheus", &prom.url]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no data for the error budget") && err.contains("no data never passes"),
        "{err}"
    );
    let out = slo(&[
        "budget",
        "--slo",
        &slo_path,
        "--prometheus",
        &prom.url,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["remaining"], serde_json::Value::Null, "{b}");
}

/// `check` of the example pipeline with no kubeconfig anywhere: `kubeconfig` is what
/// KUBECONFIG is set to (None: unset, so `$HOME/.kube/config` is looked at).
fn check_without_kubeconfig(home: &Path, kubeconfig: Option<&str>) -> Output {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/checkout/pipeline.yaml");
    let mut c = Command::new(BIN);
    c.arg("check")
        .arg(&example)
        .env("HOME", home)
        .env("GLIDEPATH_HOME", home)
        .env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        c.env("KUBECONFIG", k);
    }
    c.output().unwrap()
}

#[test]
fn check_without_a_kubeconfig_says_where_it_looked_and_fails_without_a_pass() {
    let home = tempfile::tempdir().unwrap();
    let out = check_without_kubeconfig(home.path(), None);
    let err = stderr(&out);
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let looked = format!(
        "no kubeconfig found: looked in {} (the default; KUBECONFIG is not set) and found no file",
        home.path().join(".kube/config").display()
    );
    assert!(err.contains(&looked), "{err}");
    for how in [
        "KUBECONFIG=FILE",
        "`target: { kubeconfig: FILE",
        "--kubeconfig FILE",
        "glidepath check --sandbox PIPELINE",
    ] {
        assert!(err.contains(how), "{how}: {err}");
    }
    assert!(!err.contains("'\""), "quoted twice: {err}");
    // The summary agrees with the verdict: failed stages, no run, no pass.
    assert!(
        err.contains("✗ stage staging failed") && err.contains("✗ stage prod failed"),
        "{err}"
    );
    assert!(!err.contains("warning") && !err.contains("passed"), "{err}");
    assert!(!err.contains("run 0"), "{err}");
    assert!(
        last.starts_with("not ok: ")
            && last.ends_with("pre-flight failed in 2 of 2 stage(s): staging, prod"),
        "{last}"
    );

    let out = check_without_kubeconfig(home.path(), Some("/nonexistent/a:/nonexistent/b"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "looked in /nonexistent/a, /nonexistent/b (from KUBECONFIG) and found no file"
        ),
        "{err}"
    );
}
