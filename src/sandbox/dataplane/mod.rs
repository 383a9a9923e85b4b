//! The sandbox's data plane over any API server: what a cluster's nodes would do, driven
//! through kube-rs like any controller, so the same code runs against the embedded API
//! server (with [`Cluster::hand_over_data_plane`](crate::sandbox::Cluster::hand_over_data_plane))
//! and a real kube-apiserver with kube-controller-manager.
//!
//! - [`nodes`]: simulated Nodes with capacity, a Ready condition and Lease heartbeats;
//! - [`pods`]: the scheduler and kubelet stand-in of those nodes;
//! - [`resources`]: custom-resource readiness for the platform's kinds;
//! - [`mirror`]: reflectors over the API server, the cluster as the traffic side sees it.
//!
//! Simulated users, loopback endpoints and the Prometheus API with 30-day history are the
//! embedded sandbox's own ([`traffic`](super::traffic), [`prometheus`](super::prometheus)),
//! fed from the mirror.

pub mod mirror;
pub mod nodes;
pub mod pods;
pub mod resources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ApiResource;

use super::scenario::Scenario;
use super::traffic::{self, Telemetry};
use super::view::ClusterView;
use super::{Timing, prometheus};
use mirror::Mirror;
use nodes::SimNode;

/// How long the data plane waits for its API server's first answers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request the data plane needs.
    #[error(
        "the API server refused to register the simulated nodes: {0}; check that the kubeconfig's user may create Nodes, Namespaces and Leases (an admin kubeconfig can)"
    )]
    Register(#[source] kube::Error),
    /// The API server did not answer in time.
    #[error(
        "the API server did not list pods within {0:?}; check that it is running and the kubeconfig points at it (`kubectl get --raw /readyz`)"
    )]
    Unreachable(Duration),
    /// The Prometheus API could not listen.
    #[error("cannot serve the Prometheus API on 127.0.0.1:{0}: {1}; pick a free port")]
    Listen(u16, #[source] std::io::Error),
}

/// What a data plane simulates and how fast.
#[derive(Debug, Clone)]
pub struct Options {
    /// The story its traffic and platform tell.
    pub scenario: Scenario,
    /// How fast pods start and pass readiness.
    pub timing: Timing,
    /// Node names are `{prefix}-1`, `{prefix}-2`, ...
    pub node_prefix: String,
    /// How many nodes.
    pub nodes: usize,
    /// The port of the Prometheus API (0 picks a free one).
    pub prometheus_port: u16,
    /// The namespaces whose pods it runs and whose traffic it simulates (all when empty).
    pub namespaces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenario: Scenario::default(),
            timing: Timing::default(),
            node_prefix: "glidepath-node".into(),
            nodes: 3,
            prometheus_port: 0,
            namespaces: Vec::new(),
        }
    }
}

/// A running data plane; dropping it stops it (its Nodes stay, and go NotReady).
pub struct DataPlane {
    /// The cluster as it sees it.
    pub mirror: Arc<Mirror>,
    /// Its simulated nodes.
    pub nodes: Vec<SimNode>,
    /// Where its Prometheus API listens.
    pub prometheus: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DataPlane {
    /// Registers the nodes, mirrors the API server and starts the kubelet, readiness,
    /// traffic and the Prometheus API.
    pub async fn start(client: kube::Client, options: Options) -> Result<DataPlane, Error> {
        let nodes: Vec<SimNode> = (1..=options.nodes)
            .map(|i| SimNode::numbered(&options.node_prefix, i))
            .collect();
        tokio::time::timeout(CONNECT_TIMEOUT, nodes::register(&client, &nodes))
            .await
            .map_err(|_| Error::Unreachable(CONNECT_TIMEOUT))?
            .map_err(Error::Register)?;
        let mirror = Arc::new(
            Mirror::new(client.clone(), Telemetry::new(options.scenario))
                .scoped_to(options.namespaces),
        );
        mirror.watch(ApiResource::erase::<Pod>(&()));
        mirror.watch(ApiResource::erase::<Service>(&()));
        mirror.watch(ApiResource::erase::<Deployment>(&()));
        mirror.watch(ApiResource::erase::<CustomResourceDefinition>(&()));
        tokio::time::timeout(CONNECT_TIMEOUT, mirror.synced("", "pods"))
            .await
            .map_err(|_| Error::Unreachable(CONNECT_TIMEOUT))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.prometheus_port))
            .await
            .map_err(|e| Error::Listen(options.prometheus_port, e))?;
        let prometheus = listener
            .local_addr()
            .map_err(|e| Error::Listen(options.prometheus_port, e))?;
        let app = prometheus::routes::<Mirror>().with_state(mirror.clone());
        let timing = options.timing;
        let tasks = vec![
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("data plane Prometheus API stopped: {e}");
                }
            }),
            tokio::spawn(nodes::keep_alive(client, nodes.clone())),
            tokio::spawn(run_pods(mirror.clone(), nodes.clone(), timing)),
            tokio::spawn(run_readiness(mirror.clone(), timing)),
            tokio::spawn(traffic::run(mirror.clone() as Arc<dyn ClusterView>)),
        ];
        Ok(DataPlane {
            mirror,
            nodes,
            prometheus,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT` of its Prometheus API.
    pub fn prometheus_url(&self) -> String {
        format!("http://{}", self.prometheus)
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn run_pods(mirror: Arc<Mirror>, nodes: Vec<SimNode>, timing: Timing) {
    let mut kubelet = pods::Kubelet::default();
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        kubelet.tick(&mirror, &nodes, &timing).await;
    }
}

async fn run_readiness(mirror: Arc<Mirror>, timing: Timing) {
    let mut readiness = resources::Readiness::default();
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        readiness.tick(&mirror, &timing).await;
    }
}
