//! `sandbox serve --control-plane KUBECONFIG`: only the sandbox's data plane (simulated
//! nodes, pods, custom-resource readiness, traffic and the Prometheus API), against the
//! API server a kubeconfig names.

use std::path::Path;
use std::time::Duration;

use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::pipeline::model::{ClusterTarget, Target};
use crate::sandbox::dataplane::{DataPlane, Options};
use crate::sandbox::scenario::Scenario;
use crate::sandbox::view::ClusterView;

/// Runs the data plane until Ctrl-C or SIGTERM; `port` is its Prometheus API's.
pub(super) async fn serve(
    kubeconfig: &Path,
    context: Option<String>,
    scenario: Scenario,
    port: u16,
) -> Result<i32, Exit> {
    if !kubeconfig.exists() {
        return Err(bad_input(format!(
            "--control-plane {}: no such file; pass the kubeconfig of the API server to simulate nodes for (`bash tests/realcluster/up.sh` prints one)",
            kubeconfig.display()
        )));
    }
    let target = Target::Cluster(ClusterTarget {
        context,
        namespace: None,
        kubeconfig: Some(kubeconfig.display().to_string()),
    });
    let client = crate::kube::connect(Some(&target))
        .await
        .map_err(|e| bad_input(format!("--control-plane {}: {e}", kubeconfig.display())))?;
    let (name, summary) = (scenario.name, scenario.summary);
    let options = Options {
        scenario,
        prometheus_port: port,
        ..Options::default()
    };
    let plane = DataPlane::start(client, options)
        .await
        .map_err(|e| infra(format!("--control-plane {}: {e}", kubeconfig.display())))?;
    let nodes: Vec<&str> = plane.nodes.iter().map(|n| n.name.as_str()).collect();
    println!(
        "glidepath data plane: nodes {} on the API server of {}",
        nodes.join(", "),
        kubeconfig.display()
    );
    println!(
        "prometheus: {}  (PromQL over simulated traffic; scrape {}/metrics)",
        plane.prometheus_url(),
        plane.prometheus_url()
    );
    println!("scenario: {name} - {summary}");
    println!("Ctrl-C stops it (its nodes stay registered and go NotReady)");
    let stop = super::sandbox::stopped();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut listed: Vec<(String, String, String, String)> = Vec::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let now = plane.mirror.telemetry().endpoints();
                for (kind, ns, name, url) in now.iter().filter(|e| !listed.contains(e)) {
                    println!("endpoint: {kind} {ns}/{name} answers on {url}");
                }
                listed = now;
            }
        }
    }
    Ok(exit::OK)
}
