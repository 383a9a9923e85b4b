//! The embedded sandbox: `sandbox serve`, and the sandbox a run starts for its stages with
//! `target: sandbox` (a target like any cluster, reached through a kubeconfig).

use crate::store::Location;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::ServeArgs;
use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::pipeline::Pipeline;
use crate::sandbox::{Cluster, Sandbox, Timing, scenario::Scenario};

/// The sandbox a run started; its kubeconfig goes when it does.
pub(super) struct EmbeddedSandbox {
    _sandbox: Sandbox,
    pub(super) kubeconfig: PathBuf,
}

impl Drop for EmbeddedSandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// Starts the embedded sandbox when a stage targets it, and points those stages at it as at
/// any cluster: a kubeconfig context (namespace: the pipeline's `namespace` variable, else
/// `default`) and, unless the stage names another, the sandbox's Prometheus API.
pub(super) async fn embed_sandbox(
    mut p: Pipeline,
    scenario: &str,
    journal_path: &Location,
) -> Result<(Pipeline, Option<EmbeddedSandbox>), Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    if !p
        .stages
        .iter()
        .any(|s| s.target.as_ref().is_some_and(Target::is_sandbox))
    {
        return Ok((p, None));
    }
    let (sandbox, kubeconfig) = start_for_run(scenario, journal_path).await?;
    retarget_sandbox_stages(&mut p, &sandbox.url(), |namespace| {
        Target::Cluster(ClusterTarget {
            context: Some(crate::sandbox::CONTEXT.into()),
            namespace: Some(namespace),
            kubeconfig: Some(kubeconfig.display().to_string()),
        })
    })?;
    Ok((
        p,
        Some(EmbeddedSandbox {
            _sandbox: sandbox,
            kubeconfig,
        }),
    ))
}

/// One embedded sandbox for several pipelines (a release train's members): started once
/// when any of their stages targets it, and every such stage pointed at it.
pub(super) async fn embed_shared_sandbox(
    pipelines: Vec<&mut Pipeline>,
    scenario: &str,
    journal_path: &Location,
) -> Result<Option<EmbeddedSandbox>, Exit> {
    use crate::pipeline::model::{ClusterTarget, Target};
    let wanted = pipelines.iter().any(|p| {
        p.stages
            .iter()
            .any(|s| s.target.as_ref().is_some_and(Target::is_sandbox))
    });
    if !wanted {
        return Ok(None);
    }
    let (sandbox, kubeconfig) = start_for_run(scenario, journal_path).await?;
    for p in pipelines {
        retarget_sandbox_stages(p, &sandbox.url(), |namespace| {
            Target::Cluster(ClusterTarget {
                context: Some(crate::sandbox::CONTEXT.into()),
                namespace: Some(namespace),
                kubeconfig: Some(kubeconfig.display().to_string()),
            })
        })?;
    }
    Ok(Some(EmbeddedSandbox {
        _sandbox: sandbox,
        kubeconfig,
    }))
}

/// Points every stage that targets the sandbox at `target(namespace)` (namespace: the
/// stage's, else the pipeline's `namespace` variable, else `default`), and at the
/// Prometheus API on `prometheus_url` unless the stage names another.
pub(super) fn retarget_sandbox_stages(
    p: &mut Pipeline,
    prometheus_url: &str,
    target: impl Fn(String) -> crate::pipeline::model::Target,
) -> Result<(), Exit> {
    use crate::pipeline::model::Target;
    let namespace = p
        .sets
        .get("namespace")
        .or_else(|| p.file.spec.variables.get("namespace"))
        .cloned()
        .unwrap_or_else(|| "default".into());
    let prometheus: crate::pipeline::model::Prometheus =
        serde_json::from_value(serde_json::json!({ "url": prometheus_url }))
            .map_err(|e| infra(e.to_string()))?;
    for stage in &mut p.stages {
        let namespace = match &stage.target {
            Some(Target::SandboxIn(t)) => t.namespace.clone(),
            Some(Target::Sandbox(_)) => namespace.clone(),
            _ => continue,
        };
        stage.target = Some(target(namespace));
        if stage.prometheus.is_none() {
            stage.prometheus = Some(prometheus.clone());
        }
    }
    Ok(())
}

/// A platform-preset sandbox on a free port, with a kubeconfig beside the journal that
/// names this process (two runs never share one).
async fn start_for_run(
    scenario: &str,
    journal_path: &Location,
) -> Result<(Sandbox, PathBuf), Exit> {
    let scenario = Scenario::named(scenario)
        .ok_or_else(|| bad_input(format!("unknown scenario {scenario}")))?;
    let cluster = Cluster::with_scenario(32, Timing::default(), scenario);
    crate::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster)
        .await
        .map_err(|e| infra(format!("cannot start the sandbox: {e}")))?;
    let kubeconfig = journal_path.process_file("sandbox-run", "kubeconfig");
    sandbox
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| infra(format!("cannot write {}: {e}", kubeconfig.display())))?;
    Ok((sandbox, kubeconfig))
}

/// `sandbox serve`: the Kubernetes API on 127.0.0.1 until Ctrl-C or SIGTERM.
pub(super) async fn serve(args: ServeArgs) -> Result<i32, Exit> {
    let ServeArgs {
        port,
        kubeconfig_out,
        state,
        preset,
        scenario,
        control_plane,
        context,
    } = args;
    let scenario = Scenario::named(&scenario)
        .ok_or_else(|| bad_input(format!("unknown scenario {scenario}")))?;
    if let Some(kubeconfig) = control_plane {
        return super::dataplane::serve(&kubeconfig, context, scenario, port).await;
    }
    let cluster = Cluster::with_scenario(32, Timing::default(), scenario);
    let restored = match &state {
        Some(path) if path.exists() => cluster
            .load(path)
            .map_err(|e| bad_input(format!("--state {}: {e}", path.display())))?,
        _ => 0,
    };
    if restored == 0 && preset == "platform" {
        crate::sandbox::preset::platform(&cluster);
    }
    let sandbox = Sandbox::start(port, cluster.clone())
        .await
        .map_err(|e| infra(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let kubeconfig = kubeconfig_out
        .unwrap_or_else(|| crate::store::default_path().with_file_name("sandbox.kubeconfig"));
    sandbox
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| infra(format!("cannot write {}: {e}", kubeconfig.display())))?;
    print_welcome(&sandbox, &cluster, &kubeconfig, restored, state.as_deref());
    serve_until_stopped(&cluster, state.as_deref()).await?;
    drop(sandbox);
    Ok(exit::OK)
}

/// What `sandbox serve` serves and how to reach it.
fn print_welcome(
    sandbox: &Sandbox,
    cluster: &Cluster,
    kubeconfig: &Path,
    restored: usize,
    state: Option<&Path>,
) {
    println!(
        "glidepath sandbox: Kubernetes API on {} (v1.{})",
        sandbox.url(),
        cluster.minor
    );
    if restored > 0 {
        println!(
            "restored {restored} objects from {}",
            state
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        );
    }
    println!(
        "kubeconfig: {}  (context glidepath-sandbox)",
        kubeconfig.display()
    );
    println!(
        "prometheus: {}  (PromQL over simulated traffic; scrape {}/metrics)",
        sandbox.url(),
        sandbox.url()
    );
    println!(
        "scenario: {} - {}",
        cluster.telemetry.scenario.name, cluster.telemetry.scenario.summary
    );
    println!("try:  export KUBECONFIG={}", kubeconfig.display());
    println!("      kubectl get nodes,storageclasses,crds");
    println!(
        "Ctrl-C stops it{}",
        if state.is_some() {
            " and saves its objects"
        } else {
            ""
        }
    );
}

/// Until SIGINT or SIGTERM: saves the objects into `--state` every 10 s (and once more at
/// the end) and prints each endpoint as it starts answering.
async fn serve_until_stopped(cluster: &Cluster, state: Option<&Path>) -> Result<(), Exit> {
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    let mut endpoints_tick = tokio::time::interval(Duration::from_secs(1));
    let mut listed: Vec<(String, String, String, String)> = Vec::new();
    let mut saved_rv = 0;
    let save = |saved_rv: &mut u64| -> Result<(), Exit> {
        if let Some(path) = state {
            let rv = cluster.store().rv();
            if rv != *saved_rv {
                cluster
                    .save(path)
                    .map_err(|e| infra(format!("cannot save {}: {e}", path.display())))?;
                *saved_rv = rv;
            }
        }
        Ok(())
    };
    let stop = stopped();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => save(&mut saved_rv)?,
            _ = endpoints_tick.tick() => {
                let now = cluster.telemetry.endpoints();
                for (kind, ns, name, url) in now.iter().filter(|e| !listed.contains(e)) {
                    println!("endpoint: {kind} {ns}/{name} answers on {url}");
                }
                listed = now;
            }
        }
    }
    save(&mut saved_rv)
}

/// Resolves on the first SIGINT or SIGTERM; never, when those cannot be listened for.
pub(super) async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// When a stage targets the sandbox's context (the sandbox this run embedded, or one that
/// `glidepath sandbox serve` runs), its Services are reached on loopback at the address
/// the sandbox publishes in an annotation; steps learn that from here, never from the
/// sandbox itself.
pub(super) fn sandbox_addresses(p: &Pipeline) -> Option<crate::kube::ServiceAddresses> {
    let addresses = crate::kube::ServiceAddresses::new(
        crate::sandbox::CONTEXT,
        crate::sandbox::workload::annotations::ENDPOINT,
    );
    p.stages
        .iter()
        .any(|s| addresses.serves(s.target.as_ref()))
        .then_some(addresses)
}
