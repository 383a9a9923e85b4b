//! `demo`: the demo pipeline on the embedded sandbox, with production already running the
//! stable version, so the canary has something to compare with. No cluster needed.

use crate::store::Location;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::DriveFlags;
use super::demo_cluster::{DemoCluster, Leftovers, apply_and_wait, sandbox_stages};
use super::drive::{drive, interactive};
use super::run::new_run;
use super::sandbox::EmbeddedSandbox;
use super::{Exit, infra, load_pipeline};
use crate::engine::RunOptions;
use crate::sandbox::scenario::Scenario;

/// The files `glidepath demo` runs, by their place in the repository (the pipeline first).
const DEMO_FILES: [(&str, &str); 8] = [
    (
        "config/demo/pipeline.yaml",
        include_str!("../../config/demo/pipeline.yaml"),
    ),
    (
        "config/demo/platform-contract.yaml",
        include_str!("../../config/demo/platform-contract.yaml"),
    ),
    (
        "config/demo/slo.yaml",
        include_str!("../../config/demo/slo.yaml"),
    ),
    (
        "config/demo/smoke.yaml",
        include_str!("../../config/demo/smoke.yaml"),
    ),
    (
        "config/demo/infra/database.yaml",
        include_str!("../../config/demo/infra/database.yaml"),
    ),
    (
        "config/policies/requests-and-limits.rego",
        include_str!("../../config/policies/requests-and-limits.rego"),
    ),
    (
        "config/policies/trusted-registries.rego",
        include_str!("../../config/policies/trusted-registries.rego"),
    ),
    (
        "assets/demo-app/checkout.yaml",
        include_str!("../../assets/demo-app/checkout.yaml"),
    ),
];

/// The version production runs when the demo starts.
const DEMO_STABLE: &str = "1.0.0";

/// The namespace the demo's production lives in.
const DEMO_PRODUCTION: &str = "shop";

/// What `glidepath demo` adds to a run: production as it is before the release, and a
/// banner that says what the scenario shows and what to try.
pub(super) struct Demo {
    pub(super) banner: String,
    production: Vec<serde_json::Value>,
    /// The cluster the demo runs on instead of the embedded sandbox (`--kubeconfig`).
    pub(super) cluster: Option<DemoCluster>,
}

impl Demo {
    /// Starts production on the run's sandbox (headless, after saying what the demo shows).
    pub(super) async fn start_production(
        &self,
        sandbox: Option<&EmbeddedSandbox>,
        interactive: bool,
    ) -> Result<(), Exit> {
        use crate::pipeline::model::{ClusterTarget, Target};
        let target = match (sandbox, &self.cluster) {
            (Some(sandbox), _) => Target::Cluster(ClusterTarget {
                context: Some(crate::sandbox::CONTEXT.into()),
                namespace: Some(DEMO_PRODUCTION.into()),
                kubeconfig: Some(sandbox.kubeconfig.display().to_string()),
            }),
            (None, Some(cluster)) => cluster.target(Some(DEMO_PRODUCTION.into())),
            (None, None) => return Ok(()),
        };
        if !interactive {
            eprintln!("{}", self.banner);
            eprintln!("production runs checkout {DEMO_STABLE}; starting it on the cluster");
        }
        apply_and_wait(&target, self.production.clone())
            .await
            .map_err(|e| infra(format!("cannot start the demo's production: {e}")))
    }

    /// Where the Services of the demo's cluster answer, when it runs on one.
    pub(super) fn service_addresses(&self) -> Option<crate::kube::ServiceAddresses> {
        self.cluster.as_ref().map(DemoCluster::service_addresses)
    }
}

/// `demo`: writes the demo's files out, then runs its pipeline like `run` does.
pub(super) async fn demo(
    journal_path: &Location,
    sets: Vec<(String, String)>,
    flags: &DriveFlags,
    kubeconfig: Option<(&Path, Option<&Path>)>,
) -> Result<i32, Exit> {
    let root = write_files(journal_path)?;
    let path = root.join(DEMO_FILES[0].0);
    let mut p = load_pipeline(&path, sets)?;
    let scenario = Scenario::named(&flags.scenario).unwrap_or_default();
    let cluster = match kubeconfig {
        Some((k, crds)) => {
            let account = journal_path.process_file("demo", "kubeconfig");
            let context = flags.context.clone();
            let stages = sandbox_stages(&p);
            let mut namespaces: Vec<&str> = Vec::new();
            for (_, ns) in &stages {
                if !namespaces.contains(&ns.as_str()) {
                    namespaces.push(ns);
                }
            }
            let leftovers = Leftovers {
                apps: &[p.service.as_str()],
                namespaces: &namespaces,
                leases: stages
                    .iter()
                    .map(|(stage, ns)| (ns.clone(), crate::kube::lease::name(&p.service, stage)))
                    .collect(),
                force: flags.force_unlock,
            };
            let scenario = scenario.clone();
            Some(DemoCluster::start(k, context, scenario, crds, &account, Some(&leftovers)).await?)
        }
        None => None,
    };
    match &cluster {
        Some(c) => c.retarget(&mut p)?,
        None => super::drive::apply_context(&mut p, flags.context.as_deref())?,
    }
    let run = new_run(journal_path, &p, &path, None)?;
    let interactive = interactive(flags);
    let options = RunOptions {
        stage: None,
        // Headless, nobody is there to press `a`: the demo approves itself.
        auto_approve: flags.auto_approve || !interactive,
        resumed: None,
        journal: Some(journal_path.to_owned()),
        preflight_only: false,
        service_addresses: None,
        driver: None,
    };
    let demo = Demo {
        banner: banner(&scenario, interactive),
        production: crate::kube::objects::load_manifests(
            &["assets/demo-app/".to_owned()],
            &root,
            &BTreeMap::from([("version".to_owned(), DEMO_STABLE.to_owned())]),
        )
        .map_err(infra)?,
        cluster,
    };
    drive(p, journal_path, run, 1, options, flags, Some(demo)).await
}

/// The demo ships inside the binary; it is written out (under the data folder) so the
/// pipeline's relative paths find its files, as a newcomer's would. Returns that folder.
fn write_files(journal_path: &Location) -> Result<PathBuf, Exit> {
    let root = journal_path.with_file_name("demo");
    for (name, text) in DEMO_FILES {
        let path = root.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(infra)?;
        }
        std::fs::write(&path, text).map_err(infra)?;
    }
    Ok(root)
}

/// The demo's banner: the scenario, what it shows, what to try.
fn banner(s: &Scenario, interactive: bool) -> String {
    if interactive {
        let try_this = match s.name {
            "bad-canary" => {
                "press a when staging passes, then watch the analysis roll the canary back by itself"
            }
            "slow-canary" => {
                "press a when staging passes, then watch the latency objective fail the canary"
            }
            "subtle-canary" => {
                "press a when staging passes: every SLO target passes, but the statistical judge finds the canary slower than its baseline"
            }
            "missing-infra" => {
                "pre-flight stops the run before anything is applied: Enter on it shows why"
            }
            "budget-exhausted" => {
                "press a when staging passes: the error-budget gate holds the release"
            }
            _ => "press a when staging passes; p holds a canary pause, P skips it, r rolls back",
        };
        return format!("demo · {} · {try_this} · ? lists every key", s.name);
    }
    format!(
        "demo · scenario {}: {} (headless, the demo approves its own approval)",
        s.name, s.summary
    )
}
