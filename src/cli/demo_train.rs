//! `demo --scenario train` and `--scenario train-bad`: a release train of three services
//! (checkout after payments and inventory) on one embedded sandbox whose production
//! already runs each service's stable version. `train-bad`'s checkout canary fails in
//! production, so the train rolls back payments and inventory, promoted there before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::DriveFlags;
use super::demo_cluster::apply_and_wait;
use super::sandbox::EmbeddedSandbox;
use super::train::{Production, drive_train, new_train_run};
use super::{Exit, bad_input, infra};
use crate::pipeline::Variables;
use crate::store::Location;

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
/// train headless, approving its own approval between stages.
pub(super) async fn demo(
    journal_path: &Location,
    sets: Vec<(String, String)>,
    flags: &DriveFlags,
    kubeconfig: Option<&Path>,
) -> Result<i32, Exit> {
    if kubeconfig.is_some() {
        return Err(bad_input(format!(
            "--kubeconfig with --scenario {}: the train demo runs on the embedded sandbox only; drop --kubeconfig",
            flags.scenario
        )));
    }
    let root = write_files(journal_path)?;
    let path = root.join(TRAIN_FILES[0].0);
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    let train = crate::train::load_file(&path, &Variables::from_sets(sets.clone()))
        .map_err(|e| bad_input(e.to_string()))?;
    let run = new_train_run(journal_path, &train, &path, &sets)?;
    let production = crate::kube::objects::load_manifests(
        &["assets/demo-train/".to_owned()],
        &root,
        &BTreeMap::from([("version".to_owned(), STABLE.to_owned())]),
    )
    .map_err(infra)?;
    let scenario = crate::sandbox::scenario::Scenario::named(&flags.scenario).unwrap_or_default();
    // In the cockpit the operator approves the train; headless, the demo approves itself.
    let cockpit = super::drive::interactive(flags);
    if !cockpit {
        eprintln!(
            "demo · scenario {}: {} (headless; the demo approves its own approval between stages)",
            scenario.name, scenario.summary
        );
    }
    let banner = format!(
        "demo · {}: j k choose a member · Enter opens it · a approves the train",
        scenario.name
    );
    let start: Production = Box::new(move |sandbox: &EmbeddedSandbox| {
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
    });
    let auto_approve = !cockpit || flags.auto_approve;
    drive_train(
        train,
        journal_path,
        run,
        flags,
        auto_approve,
        Some(start),
        Some(banner),
    )
    .await
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
