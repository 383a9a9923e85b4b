//! `assets/rbac/glidepath.yaml` is enough, and no more: on a sandbox that checks every
//! request of an impersonated user against RBAC, the demo pipeline (pre-flight, a
//! database claim, monitoring rules, deploy, smoke, load beside chaos, an evaluation, a
//! Gateway API canary) runs to the end as the ServiceAccount glidepath/glidepath, and
//! SelfSubjectAccessReviews grant it what it uses and refuse the rest.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use glidepath::kube::objects::{Cluster as Kube, Readiness, load_manifests, readiness};
use glidepath::pipeline::model::{ClusterTarget, Target};
use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use kube::api::{Api, PostParams};
use serde_json::json;

const SA: &str = "system:serviceaccount:glidepath:glidepath";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn target(kubeconfig: &Path, namespace: &str) -> Target {
    Target::Cluster(ClusterTarget {
        context: Some("glidepath-sandbox".into()),
        namespace: Some(namespace.into()),
        kubeconfig: Some(kubeconfig.display().to_string()),
    })
}

/// Applies manifests as the sandbox's admin and waits until they are ready.
async fn apply(admin: &Path, namespace: &str, paths: &[&str], vars: &BTreeMap<String, String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cluster = Kube::connect(Some(&target(admin, namespace)))
        .await
        .unwrap();
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let mut objects = Vec::new();
    for mut o in load_manifests(&paths, root, vars).unwrap() {
        cluster.place(&mut o).await.unwrap();
        cluster.apply(&o, false).await.unwrap();
        objects.push(o);
    }
    let begun = Instant::now();
    for o in &objects {
        while cluster.get(o).await.unwrap().map(|l| readiness(&l, None)) != Some(Readiness::Ready) {
            assert!(begun.elapsed() < Duration::from_secs(30), "{o} never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn may(client: &kube::Client, verb: &str, group: &str, resource: &str, ns: &str) -> bool {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
        "spec": { "resourceAttributes": { "verb": verb, "group": group, "resource": resource, "namespace": ns } },
    }))
    .unwrap();
    let answer = api.create(&PostParams::default(), &review).await.unwrap();
    answer.status.unwrap().allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_as_the_least_privileged_service_account() {
    let cluster = Cluster::with_scenario(32, Timing::default(), Scenario::named("happy").unwrap());
    glidepath::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.kubeconfig");
    sandbox.write_kubeconfig(&admin).unwrap();
    let as_sa = dir.path().join("glidepath.kubeconfig");
    std::fs::write(
        &as_sa,
        sandbox
            .kubeconfig("default")
            .replace("  user: {}\n", &format!("  user:\n    as: {SA}\n")),
    )
    .unwrap();

    // Before the RBAC is applied the ServiceAccount may do nothing.
    let client = glidepath::kube::connect(Some(&target(&as_sa, "shop")))
        .await
        .unwrap();
    let denied = Kube::connect(Some(&target(&as_sa, "shop")))
        .await
        .unwrap()
        .get(&json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "checkout", "namespace": "shop" } }))
        .await
        .unwrap_err();
    assert!(
        matches!(denied, glidepath::kube::Error::Forbidden { .. }),
        "{denied}"
    );
    let denied = denied.to_string();
    assert!(
        denied.contains(&format!("User \"{SA}\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"")),
        "{denied}"
    );

    let none = BTreeMap::new();
    apply(&admin, "glidepath", &["assets/rbac/glidepath.yaml"], &none).await;
    // Production runs 1.0.0, as the demo's sandbox starts.
    let stable = BTreeMap::from([("version".to_owned(), "1.0.0".to_owned())]);
    apply(&admin, "shop", &["assets/demo-app/"], &stable).await;

    // What it uses, it may; what it does not, it may not: `verb resource.group namespace`.
    for (question, allowed) in [
        ("patch deployments.apps shop", true),
        (
            "create httproutes.gateway.networking.k8s.io shop-staging",
            true,
        ),
        ("delete pods shop", true),
        ("get pods/log shop", true),
        ("update leases.coordination.k8s.io shop", true),
        ("get customresourcedefinitions.apiextensions.k8s.io -", true),
        ("get secrets shop", false),
        ("delete namespaces -", false),
        ("create rolebindings.rbac.authorization.k8s.io shop", false),
        ("patch deployments.apps kube-system", false),
        (
            "create customresourcedefinitions.apiextensions.k8s.io -",
            false,
        ),
    ] {
        let [verb, resource, ns]: [&str; 3] =
            question.split(' ').collect::<Vec<_>>().try_into().unwrap();
        let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
        let ns = if ns == "-" { "" } else { ns };
        assert_eq!(
            may(&client, verb, group, resource, ns).await,
            allowed,
            "{question}"
        );
    }

    // The demo pipeline, every stage delivered as the ServiceAccount.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tree = dir.path().join("repo");
    copy_dir(&root.join("config"), &tree.join("config"));
    copy_dir(&root.join("assets"), &tree.join("assets"));
    let path = tree.join("config/demo/pipeline.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let kubeconfig = as_sa.display().to_string();
    let text = text
        .replace(
            "  target: sandbox\n",
            &format!("  prometheus: {{ url: \"{}\" }}\n", sandbox.url()),
        )
        .replace(
            "{ sandbox: true, namespace: shop-staging }",
            &format!("{{ context: glidepath-sandbox, namespace: shop-staging, kubeconfig: \"{kubeconfig}\" }}"),
        )
        .replace(
            "{ sandbox: true, namespace: shop }",
            &format!("{{ context: glidepath-sandbox, namespace: shop, kubeconfig: \"{kubeconfig}\" }}"),
        );
    assert!(!text.contains("sandbox: true"), "{text}");
    std::fs::write(&path, text).unwrap();
    let home = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .arg("run")
            .arg(&path)
            .args([
                "--headless",
                "--auto-approve",
                "--set",
                "pause=1s",
                "--set",
                "soak=2s",
            ])
            .env("GLIDEPATH_HOME", &home)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("forbidden"), "{text}");
    assert!(
        text.contains("may patch deployments.apps in shop: allowed"),
        "{text}"
    );
    assert!(text.contains("canary of checkout promoted"), "{text}");
}
