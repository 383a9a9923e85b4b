//! `demo --kubeconfig FILE`: the demo on any API server whose nodes are simulated (a real
//! kube-apiserver and kube-controller-manager with no kubelets): the demo's platform is
//! installed there, the sandbox's data plane runs in this process against it, and the
//! demo pipeline's sandbox stages are pointed at that cluster, as the least-privilege
//! ServiceAccount of `assets/rbac/glidepath.yaml` ([`demo_account`](super::demo_account)).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Exit, bad_input, infra};
use crate::kube::objects::{Cluster, Readiness, describe, readiness};
use crate::pipeline::Pipeline;
use crate::pipeline::model::{ClusterTarget, Target};
use crate::sandbox::dataplane::{DataPlane, Options};
use crate::sandbox::scenario::Scenario;

/// How long the platform's objects may take to become ready.
const PLATFORM_TIMEOUT: Duration = Duration::from_secs(60);

/// The cluster a demo runs on, and the data plane that simulates its nodes.
pub(super) struct DemoCluster {
    /// Simulated nodes, pods, traffic and the Prometheus API; stops when dropped.
    pub(super) plane: DataPlane,
    kubeconfig: PathBuf,
    context: String,
    /// The ServiceAccount's kubeconfig the release stages use; removed with this.
    release_kubeconfig: PathBuf,
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.release_kubeconfig);
    }
}

impl DemoCluster {
    /// Installs the demo's platform and RBAC on the API server of `kubeconfig`, writes the
    /// ServiceAccount's kubeconfig at `release_kubeconfig`, removes what an earlier demo
    /// left of `leftovers`, and starts the data plane. A run of the demo that still holds
    /// one of the `leftovers`' leases stops this one before anything is changed. On any
    /// failure the ServiceAccount's kubeconfig (its token) is removed again.
    pub(super) async fn start(
        kubeconfig: &Path,
        context: Option<String>,
        scenario: Scenario,
        crds: Option<&Path>,
        release_kubeconfig: &Path,
        leftovers: Option<&Leftovers<'_>>,
    ) -> Result<DemoCluster, Exit> {
        let context = context_of(kubeconfig, context)?;
        if let Some(leftovers) = leftovers {
            leftovers.refuse_if_running(kubeconfig, &context).await?;
        }
        let started = Self::install_and_start(
            kubeconfig,
            context,
            scenario,
            crds,
            release_kubeconfig,
            leftovers,
        )
        .await;
        if started.is_err() {
            let _ = std::fs::remove_file(release_kubeconfig);
        }
        started
    }

    async fn install_and_start(
        kubeconfig: &Path,
        context: String,
        scenario: Scenario,
        crds: Option<&Path>,
        release_kubeconfig: &Path,
        leftovers: Option<&Leftovers<'_>>,
    ) -> Result<DemoCluster, Exit> {
        let shown = kubeconfig.display();
        let target = target(kubeconfig, &context, None);
        install_platform(&target, &scenario, crds)
            .await
            .map_err(|e| {
                infra(format!(
                    "cannot install the demo's platform on {shown}: {e}"
                ))
            })?;
        super::demo_account::least_privilege(&target, kubeconfig, &context, release_kubeconfig)
            .await
            .map_err(|e| {
                infra(format!(
                    "cannot set up the demo's ServiceAccount on {shown}: {e:#}; the kubeconfig's user must be allowed to apply assets/rbac/glidepath.yaml and request tokens"
                ))
            })?;
        let who = super::demo_account::identity(release_kubeconfig)
            .await
            .map_err(|e| infra(format!("the demo's ServiceAccount token on {shown}: {e:#}")))?;
        eprintln!(
            "the release stages run as {who} (assets/rbac/glidepath.yaml, a TokenRequest token)"
        );
        let client = crate::kube::connect(Some(&target))
            .await
            .map_err(|e| bad_input(format!("--kubeconfig {shown}: {e}")))?;
        if let Some(leftovers) = leftovers {
            leftovers.clear(&client).await?;
        }
        let options = Options {
            scenario,
            ..Options::default()
        };
        let plane = DataPlane::start(client, options)
            .await
            .map_err(|e| infra(format!("--kubeconfig {shown}: {e}")))?;
        Ok(DemoCluster {
            plane,
            kubeconfig: kubeconfig.to_owned(),
            context,
            release_kubeconfig: release_kubeconfig.to_owned(),
        })
    }

    /// The admin's target in `namespace` (production before the release).
    pub(super) fn target(&self, namespace: Option<String>) -> Target {
        target(&self.kubeconfig, &self.context, namespace)
    }

    /// Points every sandbox stage of `p` at this cluster, and at the data plane's
    /// Prometheus API unless a stage names another.
    pub(super) fn retarget(&self, p: &mut Pipeline) -> Result<(), Exit> {
        super::sandbox::retarget_sandbox_stages(p, &self.plane.prometheus_url(), |namespace| {
            target(
                &self.release_kubeconfig,
                super::demo_account::CONTEXT,
                Some(namespace),
            )
        })
    }

    /// Where the cluster's Services answer: the loopback URL the data plane annotates.
    pub(super) fn service_addresses(&self) -> crate::kube::ServiceAddresses {
        crate::kube::ServiceAddresses::new(
            super::demo_account::CONTEXT,
            crate::sandbox::workload::annotations::ENDPOINT,
        )
    }
}

/// `(stage, namespace)` of each stage of `p` that delivers to a namespace of the sandbox.
pub(super) fn sandbox_stages(p: &crate::pipeline::Pipeline) -> Vec<(String, String)> {
    use crate::pipeline::model::Target;
    p.stages
        .iter()
        .filter_map(|s| match &s.target {
            Some(Target::SandboxIn(t)) => Some((s.name.clone(), t.namespace.clone())),
            _ => None,
        })
        .collect()
}

/// `context`, else the current context of `kubeconfig`.
fn context_of(kubeconfig: &Path, context: Option<String>) -> Result<String, Exit> {
    let shown = kubeconfig.display();
    let config = ::kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| bad_input(format!("--kubeconfig {shown}: {e}")))?;
    context.or(config.current_context).ok_or_else(|| {
        bad_input(format!(
            "--kubeconfig {shown} names no current context; pass --context NAME"
        ))
    })
}

/// The services an earlier demo may have left on the cluster: the `app` labels of their
/// objects, the namespaces they are in, and the run leases (namespace, name) a run of this
/// demo holds while it goes on.
pub(super) struct Leftovers<'a> {
    pub(super) apps: &'a [&'a str],
    pub(super) namespaces: &'a [&'a str],
    pub(super) leases: Vec<(String, String)>,
    /// `--force-unlock`: clear even under a lease whose holder has not let go.
    pub(super) force: bool,
}

impl Leftovers<'_> {
    /// Another run of this demo holds one of its leases: clearing the services under it
    /// would wreck that run, so the demo stops first (exit 4, naming the holder). An
    /// expired lease (its driver was killed) is no obstacle.
    async fn refuse_if_running(&self, kubeconfig: &Path, context: &str) -> Result<(), Exit> {
        use crate::kube::{Error, lease};
        let holder = format!("{} (demo, before its run)", crate::events::whoami());
        for (namespace, name) in &self.leases {
            let target = target(kubeconfig, context, Some(namespace.clone()));
            let Ok(cluster) = Cluster::connect(Some(&target)).await else {
                // Unreachable here was unreachable for the platform's install too.
                continue;
            };
            match lease::acquire(std::sync::Arc::new(cluster), name, &holder, self.force).await {
                Ok(held) => held.release().await,
                Err(e @ Error::Held { .. }) => {
                    return Err(Exit {
                        code: crate::events::exit::INFRA,
                        message: e.to_string(),
                    });
                }
                // Anything else says no run holds it; the clearing reports real trouble.
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Removes what an earlier demo left of these services, as the kubeconfig's own user:
    /// Deployments, ReplicaSets, Services, HTTPRoutes, and pods at once (the data plane
    /// that ran them has gone). The data plane then starts as on a fresh cluster, with no
    /// version served yet: a version it found serving would count as stable and get a
    /// month of made-up history, which a canary of that version would then be judged on.
    async fn clear(&self, client: &::kube::Client) -> Result<(), Exit> {
        let selector = format!("app in ({})", self.apps.join(","));
        let namespaces = self.namespaces.join(", ");
        let removed = super::demo_clear::clear(client, self.namespaces, &selector, PLATFORM_TIMEOUT)
            .await
            .map_err(|e| {
                infra(format!(
                    "cannot remove what an earlier demo left ({selector}) in {namespaces}: {e:#}; delete those objects (or the namespaces) and try again"
                ))
            })?;
        if removed > 0 {
            eprintln!(
                "removed {removed} objects an earlier demo left of {} in {namespaces}",
                self.apps.join(", ")
            );
        }
        Ok(())
    }
}

fn target(kubeconfig: &Path, context: &str, namespace: Option<String>) -> Target {
    Target::Cluster(ClusterTarget {
        context: Some(context.to_owned()),
        namespace,
        kubeconfig: Some(kubeconfig.display().to_string()),
    })
}

/// The platform preset (CRDs first, Established, then the rest), applied server-side,
/// with the released Gateway API and prometheus-operator CRDs of `released` (else those the
/// cluster already has).
async fn install_platform(
    target: &Target,
    scenario: &Scenario,
    released: Option<&Path>,
) -> anyhow::Result<()> {
    let (crds, rest) = crate::sandbox::preset::platform_objects(scenario);
    let crds = match released {
        Some(dir) => super::demo_crds::replace(crds, &super::demo_crds::read_dir(dir)?, dir)?,
        None => {
            let cluster = Cluster::connect(Some(target)).await?;
            super::demo_crds::keep_installed(&cluster, crds).await?
        }
    };
    apply_and_wait(target, crds).await?;
    // A new connection, so discovery sees the kinds the CRDs just added.
    apply_and_wait(target, rest).await
}

/// Applies `objects` and waits until each is ready.
pub(super) async fn apply_and_wait(target: &Target, objects: Vec<Value>) -> anyhow::Result<()> {
    let cluster = Cluster::connect(Some(target)).await?;
    let mut placed = Vec::new();
    for mut o in objects {
        cluster.place(&mut o).await?;
        cluster.apply(&o, false).await?;
        placed.push(o);
    }
    let deadline = std::time::Instant::now() + PLATFORM_TIMEOUT;
    for o in &placed {
        loop {
            let live = cluster.get(o).await?;
            match live.as_ref().map(|l| readiness(l, None)) {
                Some(Readiness::Ready) => break,
                _ if std::time::Instant::now() > deadline => {
                    anyhow::bail!(
                        "{} did not become ready in {PLATFORM_TIMEOUT:?}",
                        describe(o)
                    );
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}
