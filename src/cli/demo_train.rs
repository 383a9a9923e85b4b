//! `demo --scenario train` and `--scenario train-bad`: a release train of three services
//! (checkout after payments and inventory) on one embedded sandbox, or with `--kubeconfig`
//! on a real API server ([`DemoCluster`]), whose production already runs each service's
//! stable version. `train-bad`'s checkout canary fails in production, so the train rolls
//! back payments and inventory, promoted there before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::DriveFlags;
use super::demo_cluster::{DemoCluster, Leftovers, apply_and_wait, sandbox_stages};
use super::sandbox::EmbeddedSandbox;
use super::train::{Production, TrainDemo, drive_train, new_train_run};
use super::{Exit, bad_input, infra};
use crate::pipeline::Variables;
use crate::sandbox::scenario::Scenario;
use crate::store::Location;
use crate::train::Train;

/// The files the train demo runs, by their place in the repository (the train first).
const TRAIN_FILES: [(&str, &str); 8] = [
    (
        "config/demo/train/train.yaml",
        include_str!("../../config/demo/train/train.yaml"),
    ),
    (
        "config/demo/train/payments.yaml",
        include_str!("../../config/demo/train/payments.yaml"),
    ),
    (
        "config/demo/train/inventory.yaml",
        include_str!("../../config/demo/train/inventory.yaml"),
    ),
    (
        "config/demo/train/checkout.yaml",
        include_str!("../../config/demo/train/checkout.yaml"),
    ),
    (
        "config/demo/slo.yaml",
        include_str!("../../config/demo/slo.yaml"),
    ),
    (
        "assets/demo-train/payments.yaml",
        include_str!("../../assets/demo-train/payments.yaml"),
    ),
    (
        "assets/demo-train/inventory.yaml",
        include_str!("../../assets/demo-train/inventory.yaml"),
    ),
    (
        "assets/demo-train/checkout.yaml",
        include_str!("../../assets/demo-train/checkout.yaml"),
    ),
];

/// The version production runs when the demo starts.
const STABLE: &str = "1.0.0";

/// The namespace of the demo's production.
const PRODUCTION: &str = "shop";

/// `demo --scenario train|train-bad`: writes the files out, starts production, runs the
/// train headless, approving its own approval between stages. With `kubeconfig` (and the
/// released CRDs' folder, maybe) the train runs on that API server instead of the embedded
/// sandbox, its nodes simulated by the data plane in this process.
pub(super) async fn demo(
    journal_path: &Location,
    sets: Vec<(String, String)>,
    flags: &DriveFlags,
    kubeconfig: Option<(&Path, Option<&Path>)>,
) -> Result<i32, Exit> {
    let root = write_files(journal_path)?;
    let path = root.join(TRAIN_FILES[0].0);
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    let mut train = crate::train::load_file(&path, &Variables::from_sets(sets.clone()))
        .map_err(|e| bad_input(e.to_string()))?;
    let production = crate::kube::objects::load_manifests(
        &["assets/demo-train/".to_owned()],
        &root,
        &BTreeMap::from([("version".to_owned(), STABLE.to_owned())]),
    )
    .map_err(infra)?;
    let scenario = Scenario::named(&flags.scenario).unwrap_or_default();
    // In the cockpit the operator approves the train; headless, the demo approves itself.
    let cockpit = super::drive::interactive(flags);
    if !cockpit {
        eprintln!(
            "demo · scenario {}: {} (headless; the demo approves its own approval between stages)",
            scenario.name, scenario.summary
        );
    }
    let cluster = match kubeconfig {
        Some((k, crds)) => {
            let cluster =
                on_cluster(&mut train, k, crds, flags, scenario.clone(), journal_path).await?;
            start_production(&cluster, production.clone()).await?;
            Some(cluster)
        }
        None => None,
    };
    let run = new_train_run(journal_path, &train, &path, &sets)?;
    let demo = TrainDemo {
        production: cluster.is_none().then(|| on_sandbox(production)),
        banner: format!(
            "demo · {}: j k choose a member · Enter opens it · a approves the train",
            scenario.name
        ),
        addresses: cluster.as_ref().map(DemoCluster::service_addresses),
    };
    let auto_approve = !cockpit || flags.auto_approve;
    let code = drive_train(train, journal_path, run, flags, auto_approve, Some(demo)).await;
    // The data plane simulates the cluster's nodes until the train has ended.
    drop(cluster);
    code
}

/// Installs the demo's platform and ServiceAccount on the API server of `kubeconfig`,
/// removes what an earlier train demo left there, starts the data plane, and points every
/// member's sandbox stages at that cluster.
async fn on_cluster(
    train: &mut Train,
    kubeconfig: &Path,
    crds: Option<&Path>,
    flags: &DriveFlags,
    scenario: Scenario,
    journal_path: &Location,
) -> Result<DemoCluster, Exit> {
    let context = flags.context.clone();
    let namespaces = namespaces(train);
    // The train's lease lives in the first namespace it reaches.
    let leases = namespaces
        .first()
        .map(|ns| (ns.clone(), crate::kube::lease::name("train", &train.name)))
        .into_iter()
        .collect();
    let apps: Vec<&str> = train.members.iter().map(|m| m.name.as_str()).collect();
    let namespaces: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let leftovers = Leftovers {
        apps: &apps,
        namespaces: &namespaces,
        leases,
        force: flags.force_unlock,
    };
    let account = journal_path.process_file("demo", "kubeconfig");
    let cluster = DemoCluster::start(
        kubeconfig,
        context,
        scenario,
        crds,
        &account,
        Some(&leftovers),
    )
    .await?;
    for m in &mut train.members {
        cluster.retarget(&mut m.pipeline)?;
    }
    Ok(cluster)
}

/// The namespaces the members' sandbox stages deliver to, in the order the train first
/// reaches them (its lease lives in the first).
fn namespaces(train: &Train) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (_, ns) in train
        .members
        .iter()
        .flat_map(|m| sandbox_stages(&m.pipeline))
    {
        if !found.contains(&ns) {
            found.push(ns);
        }
    }
    found
}

/// Production before the train, on the real cluster, applied as the kubeconfig's own user.
async fn start_production(
    cluster: &DemoCluster,
    production: Vec<serde_json::Value>,
) -> Result<(), Exit> {
    eprintln!("production runs payments, inventory and checkout {STABLE}; starting them");
    apply_and_wait(&cluster.target(Some(PRODUCTION.into())), production)
        .await
        .map_err(|e| infra(format!("cannot start the demo's production: {e}")))
}

/// Production before the train, on the train's embedded sandbox once it has started.
fn on_sandbox(production: Vec<serde_json::Value>) -> Production {
    Box::new(move |sandbox: &EmbeddedSandbox| {
        use crate::pipeline::model::{ClusterTarget, Target};
        let target = Target::Cluster(ClusterTarget {
            context: Some(crate::sandbox::CONTEXT.into()),
            namespace: Some(PRODUCTION.into()),
            kubeconfig: Some(sandbox.kubeconfig.display().to_string()),
        });
        eprintln!("production runs payments, inventory and checkout {STABLE}; starting them");
        Box::pin(async move {
            apply_and_wait(&target, production)
                .await
                .map_err(|e| infra(format!("cannot start the demo's production: {e}")))
        })
    })
}

/// Writes the train demo's files under the data folder (beside the pipeline demo's), so
/// the members' relative paths find them. Returns that folder.
fn write_files(journal_path: &Location) -> Result<PathBuf, Exit> {
    let root = journal_path.with_file_name("demo");
    for (name, text) in TRAIN_FILES {
        let path = root.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(infra)?;
        }
        std::fs::write(&path, text).map_err(infra)?;
    }
    Ok(root)
}
