//! Who decided, as Kubernetes says: a command sent to a run whose stage has a cluster
//! records the user and groups the API server answers to a SelfSubjectReview, and an
//! approval step's `group:NAME` approvers are those groups. Against the embedded sandbox's
//! API server, and against a real kube-apiserver when `GLIDEPATH_REALCLUSTER_KUBECONFIG`
//! names one (`.ci/run` starts it; under CI=true it must be there). Each side gets its own
//! kubeconfig through `KUBECONFIG`: the driver the admin's, the approvers the admin's
//! impersonating another user (`as`, `as-groups`), as a real cluster's users would be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "support/realcluster.rs"]
mod realcluster;
#[path = "support/wait.rs"]
mod wait;
use wait::wait_until;

/// A protected stage on the cluster of `KUBECONFIG`, whose approval only group `sre` may give.
fn pipeline(name: &str) -> String {
    format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: {name} }}
spec:
  stages:
    - name: prod
      protected: true
      target: {{ namespace: default }}
      steps:
        - approval: {{ pass: manual, approvers: ["group:sre"] }}
        - name: ship
          command: {{ run: [echo, shipped] }}
"#
    )
}

/// `admin`'s kubeconfig, impersonating `user` in `groups`, written to `path`.
fn impersonating(admin: &Path, path: &Path, user: &str, groups: &[&str]) -> PathBuf {
    let mut config = kube::config::Kubeconfig::read_from(admin).unwrap();
    for named in &mut config.auth_infos {
        let info = named.auth_info.get_or_insert_with(Default::default);
        info.impersonate = Some(user.to_owned());
        info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    // JSON is YAML: kubeconfig readers take it.
    std::fs::write(path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path.to_owned()
}

/// One process's `GLIDEPATH_HOME`, journal and kubeconfig.
struct Side<'a> {
    home: tempfile::TempDir,
    journal: &'a Path,
    kubeconfig: PathBuf,
}

impl Side<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_glidepath"));
        c.args(args)
            .env("GLIDEPATH_HOME", self.home.path())
            .env("GLIDEPATH_JOURNAL", self.journal)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("GLIDEPATH_AS")
            .stdin(Stdio::null());
        c
    }

    fn report(&self, run: i64) -> Option<Value> {
        let out = self
            .cmd(&["history", &run.to_string(), "--json"])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Drives a run with `admin`; `mallory` (no group) is refused, `alice` (group `sre`) approves;
/// both refusals and approvals carry the identity the API server gave.
fn approvals_carry_the_kubernetes_identity(admin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let side = |kubeconfig: PathBuf| Side {
        home: tempfile::tempdir().unwrap(),
        journal: &journal,
        kubeconfig,
    };
    let driver = side(admin.to_owned());
    let mallory = side(impersonating(
        admin,
        &dir.path().join("mallory"),
        "mallory",
        &[],
    ));
    let alice = side(impersonating(
        admin,
        &dir.path().join("alice"),
        "alice",
        &["sre"],
    ));
    let path = dir.path().join("guarded.yaml");
    let name = format!("kube-identity-{}", std::process::id());
    std::fs::write(&path, pipeline(&name)).unwrap();
    let child: Child = driver
        .cmd(&["run", path.to_str().unwrap(), "--headless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = wait_until(Duration::from_secs(60), || {
        alice.report(1).is_some_and(|r| {
            r["stages"][0]["steps"][0]["status"].as_str() == Some("waiting-for-approval")
        })
    });
    assert!(waiting, "the run never waited: {:?}", alice.report(1));
    let out = mallory.cmd(&["approve", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("mallory is not among the approvers of this step (group:sre)"),
        "{}",
        text(&out)
    );
    let out = alice.cmd(&["approve", "1"]).output().unwrap();
    assert_eq!(
        (text(&out).trim(), out.status.code()),
        ("run 1: approve accepted", Some(0))
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = driver.report(1).unwrap();
    let actions = report["operator_actions"].as_array().unwrap();
    let kube: Vec<(bool, &str, Vec<&str>)> = actions
        .iter()
        .map(|a| {
            let k = &a["sender"]["kube"];
            let groups = k["groups"]
                .as_array()
                .map(|g| g.iter().filter_map(Value::as_str).collect());
            (
                a["accepted"].as_bool().unwrap_or_default(),
                k["username"].as_str().unwrap_or("(none)"),
                groups.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(kube.len(), 2, "{actions:?}");
    assert_eq!((kube[0].0, kube[0].1), (false, "mallory"), "{actions:?}");
    assert_eq!((kube[1].0, kube[1].1), (true, "alice"), "{actions:?}");
    assert!(kube[1].2.contains(&"sre"), "{actions:?}");
    assert!(
        kube[1].2.contains(&"system:authenticated"),
        "the API server adds system:authenticated: {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_the_sandbox_record_its_selfsubjectreview_user() {
    use glidepath::sandbox::{Cluster, Sandbox, Timing};
    let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&admin).unwrap();
    tokio::task::spawn_blocking(move || approvals_carry_the_kubernetes_identity(&admin))
        .await
        .unwrap();
}

#[test]
fn commands_on_a_real_api_server_record_its_selfsubjectreview_user() {
    if let Some(admin) = realcluster::kubeconfig() {
        approvals_carry_the_kubernetes_identity(&admin);
    }
}
