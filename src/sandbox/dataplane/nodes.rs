//! Simulated nodes: registered as Node objects with capacity and a Ready condition, kept
//! alive by heartbeats (a Lease in `kube-node-lease` and the Ready condition's
//! `lastHeartbeatTime`), as a kubelet keeps its node.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PostParams};
use serde_json::{Value, json};

use super::mirror::params;
use crate::sandbox::now_rfc3339;

/// The namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often a node renews its Lease and status.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// The label that marks a node as simulated by a glidepath data plane.
pub const SIMULATED: &str = "sandbox.glidepath.dev/simulated";

/// One simulated node's name, address and allocatable resources.
#[derive(Debug, Clone, PartialEq)]
pub struct SimNode {
    /// The Node's name.
    pub name: String,
    /// Its InternalIP, the pods' hostIP.
    pub ip: String,
    /// Allocatable CPU, millicores.
    pub cpu_milli: u64,
    /// Allocatable memory, bytes.
    pub memory: u64,
    /// Allocatable pod count.
    pub pods: u64,
}

impl SimNode {
    /// The `i`th (1-based) node of a data plane named `prefix`: 4 CPUs, 16 GiB, 110 pods.
    pub fn numbered(prefix: &str, i: usize) -> SimNode {
        SimNode {
            name: format!("{prefix}-{i}"),
            ip: format!("192.168.49.{}", 10 + i),
            cpu_milli: 4000,
            memory: 16 << 30,
            pods: 110,
        }
    }

    fn status(&self) -> Value {
        let now = now_rfc3339();
        let resources = json!({ "cpu": format!("{}m", self.cpu_milli), "memory": self.memory.to_string(), "pods": self.pods.to_string() });
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({ "type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now })
        };
        json!({
            "capacity": resources, "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "glidepath data plane: simulated kubelet is posting ready status"),
            ],
            "addresses": [{ "type": "InternalIP", "address": self.ip }, { "type": "Hostname", "address": self.name }],
            "nodeInfo": {
                "kubeletVersion": "v0.0.0-glidepath-dataplane", "kubeProxyVersion": "", "containerRuntimeVersion": "glidepath://simulated",
                "operatingSystem": "linux", "architecture": "amd64", "osImage": "glidepath simulated node",
                "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
            },
        })
    }
}

/// Registers each node (and the Lease namespace, when missing) and its first heartbeat.
pub async fn register(client: &kube::Client, nodes: &[SimNode]) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": LEASE_NAMESPACE } }))
        .map_err(kube::Error::SerdeError)?;
    ignore_conflict(namespaces.create(&PostParams::default(), &ns).await)?;
    let api: Api<Node> = Api::all(client.clone());
    for n in nodes {
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": n.name, "labels": {
                "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", SIMULATED: "true",
            } },
            "status": n.status(),
        }))
        .map_err(kube::Error::SerdeError)?;
        ignore_conflict(api.create(&PostParams::default(), &node).await)?;
    }
    heartbeat(client, nodes).await
}

/// One heartbeat of every node: its Ready condition and its Lease renewed now.
pub async fn heartbeat(client: &kube::Client, nodes: &[SimNode]) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = micro_time();
    for n in nodes {
        api.patch_status(
            &n.name,
            &params(),
            &Patch::Merge(json!({ "status": n.status() })),
        )
        .await?;
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": n.name, "namespace": LEASE_NAMESPACE },
            "spec": { "holderIdentity": n.name, "leaseDurationSeconds": 40, "renewTime": now },
        });
        match leases.get_opt(&n.name).await? {
            Some(_) => {
                leases
                    .patch(
                        &n.name,
                        &params(),
                        &Patch::Merge(json!({ "spec": lease["spec"] })),
                    )
                    .await?;
            }
            None => {
                let lease: Lease =
                    serde_json::from_value(lease).map_err(kube::Error::SerdeError)?;
                ignore_conflict(leases.create(&PostParams::default(), &lease).await)?;
            }
        }
    }
    Ok(())
}

/// Heartbeats forever; a failed one is logged and retried at the next beat.
pub async fn keep_alive(client: kube::Client, nodes: Vec<SimNode>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = heartbeat(&client, &nodes).await {
            tracing::warn!("data plane: node heartbeat failed: {e}");
        }
    }
}

fn ignore_conflict<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Now as a Lease's MicroTime (`2026-12-06T12:00:00.000000Z`).
fn micro_time() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}
