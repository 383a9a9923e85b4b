//! What a release works on: its Deployment, Services and route, read from the step's
//! manifests or (for `glidepath rollback`) from the cluster alone; and the Deployment
//! mechanics every strategy and router uses (scaling, waiting for a rollout, telling the
//! stable pods apart).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::routers::TrafficRouter;
use super::{HASH, RELEASE, STABLE_REPLICAS, TRACK, annotation, fail, infra_failure, meta};
use crate::kube::objects::{Cluster, Readiness, describe, label_selector, readiness};
use crate::pipeline::model::{ReleaseStep, Router};
use crate::pipeline::units::format_duration;
use crate::steps::apply::{connect, manifests};
use crate::steps::{StepCtx, StepIo, StepResult};

/// What the release works on.
pub(super) struct Plan {
    /// The target cluster, in the release's namespace.
    pub cluster: Cluster,
    /// The new version's Deployment (stable name).
    pub deployment: Value,
    /// The other manifests (Services, HTTPRoute).
    pub others: Vec<Value>,
    /// The stable Deployment's name.
    pub name: String,
    pub namespace: String,
    /// How traffic moves; it also names the second Deployment's track.
    pub router: TrafficRouter,
    /// The Service users reach (blue-green: the active Service).
    pub stable_service: Option<String>,
    /// The second track's Service (blue-green: the preview Service).
    pub canary_service: String,
    /// The HTTPRoute whose weights split traffic (gateway-api).
    pub route: Option<String>,
    /// The annotation where the target publishes a Service's own address (the sandbox's
    /// loopback endpoints), when the run was told of one.
    pub address_annotation: Option<String>,
}

/// The Services and route a release routes through.
struct Routing {
    stable_service: Option<String>,
    canary_service: String,
    route: Option<String>,
}

impl Plan {
    /// The plan of a release step: its manifests read and placed in the target's namespace.
    pub async fn new(step: &ReleaseStep, ctx: &StepCtx) -> Result<Plan, StepResult> {
        let cluster = connect(ctx).await?;
        let paths: Vec<String> = step.manifests.iter().map(|m| m.value.clone()).collect();
        let objs = manifests(ctx, &cluster, &paths, step.image.as_deref()).await?;
        let (deployments, others): (Vec<Value>, Vec<Value>) =
            objs.into_iter().partition(|o| o["kind"] == "Deployment");
        let [deployment] = <[Value; 1]>::try_from(deployments).map_err(|d| {
            fail(format!(
                "a release needs exactly one Deployment in its manifests; found {}",
                d.len()
            ))
        })?;
        let name = meta(&deployment, "name").to_owned();
        let namespace = meta(&deployment, "namespace").to_owned();
        let router = step.canary.as_ref().map(|c| c.router).unwrap_or_default();
        let routing = Routing::of(step, &deployment, &others, &name);
        if router == Router::GatewayApi && routing.stable_service.is_none() {
            return Err(fail(format!(
                "the gateway-api router needs the stable Service: add one selecting {name}'s pods to the manifests, or set canary.stableService"
            )));
        }
        let blue_green = step.blue_green.is_some();
        Ok(Plan {
            cluster,
            deployment,
            others,
            name,
            namespace,
            router: if blue_green {
                TrafficRouter::ActiveService
            } else {
                TrafficRouter::for_canary(router)
            },
            stable_service: routing.stable_service,
            canary_service: routing.canary_service,
            route: if blue_green { None } else { routing.route },
            address_annotation: ctx
                .service_addresses
                .as_ref()
                .map(|a| a.annotation().to_owned()),
        })
    }

    /// A plan for the release in progress (or last promoted) on `name`, from the cluster
    /// alone. Its router is the canary's as recorded; whether a canary or a blue-green
    /// preview is in progress, the caller finds by which Deployment exists.
    pub async fn from_cluster(cluster: Cluster, name: &str) -> Result<(Plan, Value), String> {
        let namespace = cluster.namespace.clone();
        let stable = cluster
            .get(&crate::kube::objects::reference(
                "apps/v1",
                "Deployment",
                &namespace,
                name,
            ))
            .await?
            .ok_or_else(|| format!("Deployment {namespace}/{name} does not exist"))?;
        let info: Value = annotation(&stable, RELEASE)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(json!({}));
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let plan = Plan {
            cluster,
            deployment: stable.clone(),
            others: Vec::new(),
            name: name.to_owned(),
            namespace,
            router: TrafficRouter::for_canary(
                if text("router").as_deref() == Some("gateway-api") {
                    Router::GatewayApi
                } else {
                    Router::Replicas
                },
            ),
            stable_service: text("stableService"),
            canary_service: text("canaryService").unwrap_or_else(|| format!("{name}-canary")),
            route: text("route"),
            address_annotation: None,
        };
        Ok((plan, stable))
    }

    /// How this release splits traffic, as recorded on the stable Deployment.
    pub fn info(&self) -> Value {
        json!({
            "router": self.router.recorded_as(),
            "route": self.route, "stableService": self.stable_service,
            "canaryService": self.canary_service, "track": self.track(),
        })
    }

    /// `canary`, or `preview` for blue-green: names the second Deployment and its pods.
    pub fn track(&self) -> &'static str {
        self.router.track()
    }

    /// A reference to object `kind/name` in the release's namespace.
    pub fn object(&self, api_version: &str, kind: &str, name: &str) -> Value {
        crate::kube::objects::reference(api_version, kind, &self.namespace, name)
    }

    /// The stable Deployment.
    pub fn stable_ref(&self) -> Value {
        self.object("apps/v1", "Deployment", &self.name)
    }

    /// The second Deployment (`NAME-canary` or `NAME-preview`).
    pub fn canary_ref(&self) -> Value {
        self.object(
            "apps/v1",
            "Deployment",
            &format!("{}-{}", self.name, self.track()),
        )
    }

    /// The canary Deployment: the new version, its pods labelled as the canary track.
    pub fn canary(&self, replicas: i64) -> Value {
        let mut c = self.deployment.clone();
        c["metadata"]["name"] = Value::String(format!("{}-{}", self.name, self.track()));
        for path in [
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            if let Some(labels) = c.pointer_mut(path).and_then(Value::as_object_mut) {
                labels.insert(TRACK.into(), Value::String(self.track().into()));
            }
        }
        c["spec"]["replicas"] = json!(replicas);
        c
    }

    /// The stable Deployment as the cluster has it now.
    pub async fn live_stable(&self) -> Result<Option<Value>, StepResult> {
        self.cluster
            .get(&self.stable_ref())
            .await
            .map_err(infra_failure)
    }

    /// Sets the replica count of the Deployment `o` names.
    pub async fn scale(&self, o: &Value, replicas: i64) -> Result<(), String> {
        self.cluster
            .merge(o, &json!({ "spec": { "replicas": replicas } }))
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// Removes the release's marks from the stable Deployment: the release is over.
    pub async fn unmark(&self) -> Result<(), String> {
        self.cluster
            .merge(
                &self.stable_ref(),
                &json!({ "metadata": { "annotations": { STABLE_REPLICAS: null, RELEASE: null } } }),
            )
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// Waits until the Deployment `o` names is rolled out.
    pub async fn rolled_out(
        &self,
        io: &StepIo,
        o: &Value,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            match self.cluster.get(o).await? {
                Some(live) => match readiness(&live, None) {
                    Readiness::Ready => return Ok(()),
                    Readiness::Failed(why) => return Err(why),
                    Readiness::Pending(why) => {
                        if why != last {
                            io.log("release", format!("waiting for {}: {why}", describe(o)));
                            last = why;
                        }
                    }
                },
                None => return Err(format!("{} disappeared", describe(o))),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} not rolled out after {}: {last}",
                    describe(o),
                    format_duration(timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The pod-template hash of the stable Deployment's current ReplicaSet.
    pub async fn stable_hash(&self, stable: &Value) -> Result<Option<String>, String> {
        let uid = meta(stable, "uid");
        let revision = stable
            .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str);
        let labels = label_selector(stable.pointer("/spec/selector/matchLabels"));
        let sets = self.cluster.list("apps/v1", "ReplicaSet", &labels).await?;
        let owned: Vec<&Value> = sets
            .iter()
            .filter(|rs| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
            })
            .collect();
        // The current ReplicaSet: the one of the Deployment's revision, else the one with
        // pods (mid-rollout an old one may still have some, so the revision comes first).
        let current = owned
            .iter()
            .find(|rs| {
                revision.is_some()
                    && rs
                        .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                        .and_then(Value::as_str)
                        == revision
            })
            .or_else(|| {
                owned.iter().find(|rs| {
                    rs.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        > 0
                })
            });
        let hash = current.and_then(|rs| {
            rs.pointer(&format!("/metadata/labels/{HASH}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if hash.is_none() {
            return Err(format!(
                "cannot tell the stable pods of {} apart (no current ReplicaSet with a {HASH}); the stable Service cannot be pinned",
                self.name
            ));
        }
        Ok(hash)
    }

    /// Fails when the release was rolled back from outside (`glidepath rollback` removed
    /// the release's mark), so this run never undoes an operator's rollback.
    pub async fn still_ours(&self) -> Result<(), String> {
        let live = self.cluster.get(&self.stable_ref()).await?;
        let marked = live.as_ref().and_then(|l| annotation(l, RELEASE)).is_some();
        if marked {
            Ok(())
        } else {
            Err("the release was rolled back outside this run; nothing more is changed".into())
        }
    }
}

impl Routing {
    /// The stable Service (named, else the one in the manifests selecting the Deployment's
    /// pods), the second track's Service and the HTTPRoute of a release step.
    fn of(step: &ReleaseStep, deployment: &Value, others: &[Value], name: &str) -> Routing {
        let canary = step.canary.as_ref();
        let blue_green = step.blue_green.as_ref();
        let pods = deployment
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        let selects_pods = |svc: &Value| {
            svc["kind"] == "Service"
                && svc
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .is_some_and(|sel| {
                        !sel.is_empty() && sel.iter().all(|(k, v)| pods.get(k) == Some(v))
                    })
        };
        let stable_service = blue_green
            .map(|b| b.active_service.clone())
            .or_else(|| canary.and_then(|c| c.stable_service.clone()))
            .or_else(|| {
                others
                    .iter()
                    .find(|o| selects_pods(o))
                    .map(|o| meta(o, "name").to_owned())
            });
        let canary_service = blue_green
            .map(|b| b.preview_service.clone())
            .or_else(|| canary.and_then(|c| c.canary_service.clone()))
            .unwrap_or_else(|| format!("{}-canary", stable_service.as_deref().unwrap_or(name)));
        let route = canary.and_then(|c| c.route.clone()).or_else(|| {
            others
                .iter()
                .find(|o| o["kind"] == "HTTPRoute")
                .map(|o| meta(o, "name").to_owned())
                .or_else(|| stable_service.clone())
        });
        Routing {
            stable_service,
            canary_service,
            route,
        }
    }
}

/// The stable replica count recorded when the release began, if one is in progress.
pub(super) fn recorded_total(stable: &Value) -> Option<i64> {
    annotation(stable, STABLE_REPLICAS).and_then(|r| r.parse::<i64>().ok())
}

/// The stable Deployment's own replica count (1 when it names none).
pub(super) fn declared_total(stable: &Value) -> i64 {
    stable
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Canary replicas for `weight`% of `total`: rounded up, at least one once it has traffic.
pub(super) fn canary_replicas(total: i64, weight: u8) -> i64 {
    if weight == 0 {
        0
    } else {
        ((total * i64::from(weight)) as f64 / 100.0).ceil().max(1.0) as i64
    }
}
