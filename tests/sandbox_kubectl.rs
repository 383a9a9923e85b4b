//! kubectl, the real client, against the embedded sandbox: the one on PATH (the GKE
//! dispatcher, which picks kubectl 1.32 from the sandbox's reported version) and the oldest
//! and newest versioned binaries its package installs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use glidepath::sandbox::{Cluster, Sandbox, Timing};

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until;

struct Env {
    _rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    kubectl: PathBuf,
}

/// The versioned kubectl binaries live beside the dispatcher in the Cloud SDK.
fn versioned(minor: u32) -> PathBuf {
    let sdk = Path::new("/usr/lib/google-cloud-sdk/bin").join(format!("kubectl.1.{minor}"));
    if sdk.exists() {
        sdk
    } else {
        PathBuf::from(format!("kubectl.1.{minor}"))
    }
}

impl Env {
    fn new(kubectl: PathBuf) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let timing = Timing {
            pod_start: Duration::from_millis(100),
            pod_ready: Duration::from_millis(200),
            ..Timing::default()
        };
        let sandbox = rt
            .block_on(Sandbox::start(0, Cluster::new(32, timing)))
            .unwrap();
        glidepath::sandbox::preset::platform(&sandbox.cluster);
        let dir = tempfile::tempdir().unwrap();
        sandbox
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        Env {
            _rt: rt,
            sandbox,
            dir,
            kubectl,
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.kubectl);
        // A fresh discovery cache per test: kubectl caches by host:port for six hours.
        c.arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"));
        c.args(args).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs kubectl and returns stdout; fails the test with stderr if it fails.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {} should fail",
            args.join(" ")
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn eventually(&self, what: &str, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last output: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const MULTI: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: demo
data:
  k1: v1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: nginx:1
          env: [{ name: A, value: "1" }]
"#;

/// The flows every kubectl version must get through.
fn core_flows(env: &Env) {
    let v = env.ok(&["version", "-o", "json"]);
    assert!(v.contains("\"minor\": \"32\""), "{v}");

    let multi = env.file("multi.yaml", MULTI);
    let out = env.ok(&["apply", "-f", multi.to_str().unwrap()]);
    assert_eq!(
        out,
        "namespace/demo created\nconfigmap/cfg created\nservice/web created\ndeployment.apps/web created\n"
    );
    let out = env.ok(&["apply", "-f", multi.to_str().unwrap()]);
    assert_eq!(
        out,
        "namespace/demo unchanged\nconfigmap/cfg unchanged\nservice/web unchanged\ndeployment.apps/web unchanged\n"
    );

    let out = env.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    let pods = env.ok(&["get", "pods", "-n", "demo", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.lines().count(), 2, "{pods}");

    // A changed manifest is a strategic-merge PATCH; the rollout replaces the pods.
    let changed = env.file(
        "multi2.yaml",
        &MULTI.replace("image: nginx:1", "image: nginx:2"),
    );
    let out = env.ok(&["apply", "-f", changed.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    env.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    let image = env.ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:2");
    let rs = env.ok(&[
        "get",
        "rs",
        "-n",
        "demo",
        "-o",
        "jsonpath={range .items[*]}{.spec.replicas} {end}",
    ]);
    let mut replicas: Vec<&str> = rs.split_whitespace().collect();
    replicas.sort();
    assert_eq!(
        replicas,
        vec!["0", "2"],
        "the old ReplicaSet is scaled to zero"
    );

    let out = env.ok(&["scale", "deployment/web", "--replicas=3", "-n", "demo"]);
    assert_eq!(out, "deployment.apps/web scaled\n");
    env.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    env.eventually(
        "3 ready replicas",
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |t| t == "3",
    );

    // Server-side printing: the columns operators read.
    let table = env.ok(&["get", "pods", "-n", "demo", "-l", "app=web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(
        table
            .lines()
            .skip(1)
            .all(|l| l.contains("1/1") && l.contains("Running")),
        "{table}"
    );
    let table = env.ok(&["get", "deploy", "web", "-n", "demo"]);
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("3/3"),
        "{table}"
    );

    let yaml = env.ok(&["get", "cm", "cfg", "-n", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap")
            && yaml.contains("  k1: v1")
            && yaml.contains("resourceVersion:"),
        "{yaml}"
    );

    let out = env.ok(&[
        "patch",
        "configmap",
        "cfg",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"data":{"k2":"v2"}}"#,
    ]);
    assert_eq!(out, "configmap/cfg patched\n");
    assert_eq!(
        env.ok(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.k2}"
        ]),
        "v2"
    );

    // A deleted pod of a ReplicaSet is replaced.
    let pods = env.ok(&["get", "pods", "-n", "demo", "-l", "app=web", "-o", "name"]);
    let victim = pods
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("pod/")
        .to_owned();
    let out = env.ok(&["delete", "pod", &victim, "-n", "demo"]);
    assert_eq!(out, format!("pod \"{victim}\" deleted\n"));
    env.eventually(
        "a replacement pod",
        &["get", "pods", "-n", "demo", "-l", "app=web", "-o", "name"],
        |t| t.lines().count() == 3 && !t.contains(&victim),
    );

    let err = env.err(&["get", "deploy", "nope", "-n", "demo"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): deployments.apps \"nope\" not found"
    );

    // Server-side apply, twice: the second is a no-op.
    let ssa = env.file("ssa.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: demo\ndata:\n  a: b\n");
    for _ in 0..2 {
        let out = env.ok(&["apply", "--server-side", "-f", ssa.to_str().unwrap()]);
        assert_eq!(out, "configmap/ssa serverside-applied\n");
    }
    let managers = env.ok(&[
        "get",
        "cm",
        "ssa",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("kubectl"), "{managers}");

    // A stale resourceVersion is a conflict.
    let live = env.ok(&["get", "cm", "cfg", "-n", "demo", "-o", "json"]);
    let mut doc: serde_json::Value = serde_json::from_str(&live).unwrap();
    doc["metadata"]["resourceVersion"] = serde_json::json!("1");
    let stale = env.file("stale.json", &doc.to_string());
    let err = env.err(&["replace", "-f", stale.to_str().unwrap()]);
    assert!(
        err.contains("Error from server (Conflict): error when replacing")
            && err.contains("the object has been modified"),
        "{err}"
    );
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { kind: Widget, plural: widgets, singular: widget, shortNames: [wd] }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
"#;

fn crd_and_job_flows(env: &Env) {
    let crd = env.file("crd.yaml", CRD);
    assert_eq!(
        env.ok(&["apply", "-f", crd.to_str().unwrap()]),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    );
    let out = env.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    assert_eq!(
        out,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met\n"
    );
    let widget = env.file("widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n");
    assert_eq!(
        env.ok(&["apply", "-f", widget.to_str().unwrap()]),
        "widget.example.com/w1 created\n"
    );
    assert!(env.ok(&["get", "wd"]).contains("w1"));
    // Custom resources become Ready.
    env.ok(&[
        "wait",
        "--for=condition=Ready",
        "widget/w1",
        "--timeout=30s",
    ]);

    let job = env.file(
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke\nspec:\n  template:\n    metadata:\n      annotations:\n        sandbox.glidepath.dev/log: |-\n          GET /healthz 200\n          all 3 checks passed\n    spec:\n      restartPolicy: Never\n      containers: [{ name: smoke, image: curl }]\n",
    );
    env.ok(&["apply", "-f", job.to_str().unwrap()]);
    let out = env.ok(&[
        "wait",
        "--for=condition=complete",
        "job/smoke",
        "--timeout=30s",
    ]);
    assert_eq!(out, "job.batch/smoke condition met\n");
    let logs = env.ok(&["logs", "job/smoke"]);
    assert!(
        logs.starts_with("GET /healthz 200\nall 3 checks passed\n"),
        "{logs}"
    );
}

fn watch_sees_the_rollout(env: &Env) {
    let multi = env.file("multi.yaml", MULTI);
    env.ok(&["apply", "-f", multi.to_str().unwrap()]);
    env.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    let mut watch = env
        .cmd(&["get", "pods", "-n", "demo", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so the test can wait on what the watch has shown.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (seen, out) = (seen.clone(), watch.stdout.take().unwrap());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = seen.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let listed = wait_until(Duration::from_secs(30), || {
        !names(&seen.lock().unwrap()).is_empty()
    });
    assert!(
        listed,
        "the watch never listed the pods: {}",
        seen.lock().unwrap()
    );
    env.ok(&[
        "set",
        "image",
        "deployment/web",
        "web=nginx:3",
        "-n",
        "demo",
    ]);
    env.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    // The watch may print the last changes after the rollout is done.
    wait_until(Duration::from_secs(30), || {
        names(&seen.lock().unwrap()).len() >= 4
    });
    watch.kill().unwrap();
    watch.wait().unwrap();
    reader.join().unwrap();
    let text = seen.lock().unwrap().clone();
    assert!(
        text.lines()
            .next()
            .is_some_and(|h| h.contains("READY") && h.contains("STATUS")),
        "{text}"
    );
    let names = names(&text);
    assert!(
        names.len() >= 4,
        "the watch saw old and new pods come and go:\n{text}"
    );
}

#[test]
fn kubectl_on_path() {
    let env = Env::new(PathBuf::from("kubectl"));
    core_flows(&env);
    crd_and_job_flows(&env);
    assert!(env.sandbox.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn kubectl_1_27() {
    let env = Env::new(versioned(27));
    core_flows(&env);
    crd_and_job_flows(&env);
}

#[test]
fn kubectl_1_33() {
    let env = Env::new(versioned(33));
    core_flows(&env);
    crd_and_job_flows(&env);
}

#[test]
fn kubectl_watch_follows_a_rollout() {
    let env = Env::new(PathBuf::from("kubectl"));
    watch_sees_the_rollout(&env);
}
