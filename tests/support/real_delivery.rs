//! A namespace of its own on the real control plane (`tests/realcluster/up.sh`), with a
//! sandbox data plane that runs only that namespace's pods and traffic, for delivery tests
//! that drive the glidepath binary there. Included with `#[path = ...]` next to
//! `support/realcluster.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use glidepath::sandbox::Timing;
use glidepath::sandbox::dataplane::{DataPlane, Options};
use glidepath::sandbox::scenario::Scenario;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

use super::realcluster;
use super::wait::wait_until_async;

pub const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delivery")
}

/// The released CRDs `tests/realcluster/crds.sh` fetched: `GLIDEPATH_REALCLUSTER_CRDS`, else
/// the `crds` link up.sh left next to the kubeconfig.
pub fn released_crds(kubeconfig: &Path) -> PathBuf {
    let dir = std::env::var_os("GLIDEPATH_REALCLUSTER_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| kubeconfig.with_file_name("crds"));
    assert!(
        dir.join("gateway.networking.k8s.io_httproutes.yaml")
            .is_file(),
        "no released CRDs in {}: run `bash tests/realcluster/crds.sh` and set GLIDEPATH_REALCLUSTER_CRDS to the folder it prints (up.sh links it as <state>/crds)",
        dir.display()
    );
    dir
}

/// Runs the glidepath binary; (exit code, stdout and stderr).
pub async fn glidepath(home: &Path, args: Vec<String>) -> (i32, String) {
    let home = home.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("GLIDEPATH_HOME", &home)
            .env_remove("GLIDEPATH_JOURNAL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

/// What a process printed: its stdout, then its stderr.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

static PLATFORM: OnceLock<()> = OnceLock::new();

/// The platform every test's contract promises, put there once per test process by a
/// glidepath `infra` step (server-side apply, then waits for the CRDs to be Established):
/// the released Gateway API and prometheus-operator CRDs, the platform's own CRDs,
/// GatewayClass, StorageClasses and IngressClass.
async fn platform(kubeconfig: &Path, context: &str) {
    let crds = released_crds(kubeconfig);
    let (kubeconfig, context) = (kubeconfig.to_owned(), context.to_owned());
    tokio::task::spawn_blocking(move || {
        PLATFORM.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let (simplified, rest) =
                glidepath::sandbox::preset::platform_objects(&Scenario::default());
            let released = [
                "gateway.networking.k8s.io",
                "monitoring.coreos.com",
            ];
            let own: Vec<Value> = simplified
                .into_iter()
                .filter(|c| !released.contains(&c["spec"]["group"].as_str().unwrap_or("")))
                .chain(rest.into_iter().filter(|o| o["kind"] != "Namespace"))
                .collect();
            let list = json!({ "apiVersion": "v1", "kind": "List", "items": own });
            let objects = dir.path().join("platform.json");
            std::fs::write(&objects, list.to_string()).unwrap();
            let pipeline = dir.path().join("platform.yaml");
            std::fs::write(
                &pipeline,
                format!(
                    "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: platform }}\nspec:\n  target: {{ context: {context}, namespace: default, kubeconfig: {} }}\n  stages:\n    - name: platform\n      steps:\n        - infra: {{ manifests: [{}, {}] }}\n",
                    kubeconfig.display(),
                    crds.display(),
                    objects.display()
                ),
            )
            .unwrap();
            let out = Command::new(BIN)
                .arg("run")
                .arg(&pipeline)
                .arg("--headless")
                .env("GLIDEPATH_HOME", dir.path())
                .env_remove("GLIDEPATH_JOURNAL")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "installing the platform: {text}");
            assert!(
                text.contains("applied CustomResourceDefinition httproutes.gateway.networking.k8s.io"),
                "{text}"
            );
        });
    })
    .await
    .unwrap();
}

/// One test's namespace, its data plane and a folder for its files and journal.
pub struct Real {
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub context: String,
    pub ns: String,
    pub plane: DataPlane,
    pub dir: tempfile::TempDir,
}

/// A namespace `{name}-{pid}` (labelled as the platform's namespaces are) with a data plane
/// telling `scenario`'s story; None outside CI when no control plane runs.
pub async fn real(name: &str, scenario: &str) -> Option<Real> {
    let kubeconfig = realcluster::kubeconfig()?;
    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let context = config.current_context.clone().unwrap();
    platform(&kubeconfig, &context).await;
    let client = realcluster::client(&kubeconfig).await;
    let ns = format!("{name}-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(
        json!({ "metadata": { "name": ns, "labels": { "team": "checkout" } } }),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    assert!(
        wait_until_async(Duration::from_secs(30), async || accounts
            .get_opt("default")
            .await
            .ok()
            .flatten()
            .is_some())
        .await,
        "no default ServiceAccount in {ns} after 30 s: is kube-controller-manager running?"
    );
    let options = Options {
        scenario: Scenario::named(scenario).unwrap(),
        timing: Timing::default(),
        node_prefix: ns.clone(),
        nodes: 3,
        namespaces: vec![ns.clone()],
        ..Options::default()
    };
    let plane = DataPlane::start(client.clone(), options).await.unwrap();
    Some(Real {
        client,
        kubeconfig,
        context,
        ns,
        plane,
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Real {
    /// A pipeline on this namespace with `{fixtures}` filled, and a contract that promises it.
    pub fn pipeline(&self, stages: &str, degrade_after: &str) -> String {
        let contract = self.dir.path().join("platform-contract.yaml");
        let policies = fixtures().join("policies");
        std::fs::write(
            &contract,
            format!(
                "apiVersion: glidepath/v1\nkind: PlatformContract\nmetadata: {{ name: shop-platform }}\nspec:\n  kubernetes: \">=1.27, <1.40\"\n  storageClasses: [standard]\n  gatewayClasses: [glidepath-sandbox]\n  crds: [xdatabases.platform.example.org, prometheusrules.monitoring.coreos.com, httproutes.gateway.networking.k8s.io]\n  namespaces: [{}]\n  policies: [{}/requests-and-limits.rego, {}/trusted-registries.rego]\n",
                self.ns,
                policies.display(),
                policies.display()
            ),
        )
        .unwrap();
        format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: checkout }}\nspec:\n  target: {{ context: {}, namespace: {}, kubeconfig: {} }}\n  prometheus: {{ url: \"{}\" }}\n  variables: {{ version: \"2.0.0\", degrade_after: {degrade_after} }}\n  contract: {{ file: {} }}\n  stages:\n{}",
            self.context,
            self.ns,
            self.kubeconfig.display(),
            self.plane.prometheus_url(),
            contract.display(),
            stages.replace("{fixtures}", &fixtures().display().to_string())
        )
    }

    /// Writes `pipeline` and runs it headless; (exit code, output).
    pub async fn run(&self, pipeline: String, args: &[&str]) -> (i32, String) {
        let path = self.dir.path().join("pipeline.yaml");
        std::fs::write(&path, pipeline).unwrap();
        let mut all = vec![
            "run".to_owned(),
            path.display().to_string(),
            "--headless".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        glidepath(self.dir.path(), all).await
    }

    /// The live object, read from the API server.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        plural: &str,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ns, &resource);
        api.get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    pub async fn deployment(&self, name: &str) -> Option<Value> {
        self.get("apps/v1", "Deployment", "deployments", name).await
    }

    pub async fn route(&self, name: &str) -> Option<Value> {
        self.get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "httproutes",
            name,
        )
        .await
    }

    /// kubectl (1.33 when the SDK ships it) on this cluster: (exit code, output).
    pub async fn kubectl(&self, args: &[&str]) -> (i32, String) {
        self.kubectl_with(args, &[]).await
    }

    /// [`Real::kubectl`] with environment variables set (`KUBE_EDITOR` for `kubectl edit`).
    pub async fn kubectl_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let sdk = Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.33");
        let bin: PathBuf = if sdk.exists() {
            sdk.into()
        } else {
            "kubectl".into()
        };
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", &self.ns]);
        cmd.args(args).envs(env.iter().copied());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("kubectl does not run: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Removes the namespace (its pods at once, as its stopped nodes never would) and the
    /// simulated nodes; waits for nothing.
    pub async fn finish(self) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let _ = pods.delete_collection(&now, &ListParams::default()).await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
        let nodes: Api<Node> = Api::all(self.client.clone());
        for n in &self.plane.nodes {
            let _ = nodes.delete(&n.name, &DeleteParams::default()).await;
        }
    }
}

/// The version label of a Deployment's pod template.
pub fn template_version(d: &Value) -> &str {
    d.pointer("/spec/template/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// An HTTPRoute's backend weights, first rule.
pub fn weights(route: &Value) -> Vec<(String, i64)> {
    route
        .pointer("/spec/rules/0/backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["name"].as_str().unwrap_or("").to_owned(),
                b["weight"].as_i64().unwrap_or(1),
            )
        })
        .collect()
}
