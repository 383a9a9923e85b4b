//! What a release works on: its Deployment, Services and route, read from the step's
//! manifests or (for `glidepath rollback`) from the cluster alone; and the Deployment
//! mechanics every strategy and router uses (scaling, waiting for a rollout, telling the
//! stable pods apart).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::Error;
use super::routers::TrafficRouter;
use super::{
    PROMOTED_BY, RELEASE, ROLLED_BACK_BY, STABLE_REPLICAS, TRACK, fail, infra_failure, meta,
};
use crate::kube::kinds::what;
use crate::kube::objects::{Cluster, Readiness};
use crate::kube::workload::{
    annotate, annotation, current_template_hash, deployment, deployment_readiness,
};
use crate::pipeline::model::{ReleaseStep, Router};
use crate::steps::apply::{connect, manifests};
use crate::steps::{StepCtx, StepIo, StepResult};

/// What the release works on.
pub(super) struct Plan {
    /// The target cluster, in the release's namespace.
    pub cluster: Cluster,
    /// The new version's Deployment (stable name), as the user's manifest has it: JSON,
    /// because it is applied as written and may carry fields the typed Deployment lacks.
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
    /// `judge: statistical`: the `version` label of the baseline started beside the
    /// canary (see `baseline`).
    pub baseline: Option<String>,
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
        let mut cluster = connect(ctx).await?;
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
        // Typed calls go to the cluster's namespace: make it the Deployment's, as placed.
        cluster.namespace.clone_from(&namespace);
        let router = step.canary.as_ref().map(|c| c.router).unwrap_or_default();
        let routing = Routing::of(step, &deployment, &others, &name);
        if router == Router::GatewayApi && routing.stable_service.is_none() {
            return Err(fail(format!(
                "the gateway-api router needs the stable Service: add one selecting {name}'s pods to the manifests, or set canary.stableService"
            )));
        }
        let blue_green = step.blue_green.is_some();
        let baseline = step
            .canary
            .as_ref()
            .and_then(|c| c.analysis.as_ref())
            .and_then(|a| a.statistical())
            .map(|s| s.baseline_version().to_owned());
        Ok(Plan {
            baseline,
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
    pub async fn from_cluster(cluster: Cluster, name: &str) -> Result<(Plan, Deployment), Error> {
        let namespace = cluster.namespace.clone();
        let stable = deployment(&cluster, name)
            .await?
            .ok_or_else(|| crate::kube::Error::missing(format!("Deployment {namespace}/{name}")))?;
        let info: Value = annotation(&stable, RELEASE)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(json!({}));
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let plan = Plan {
            deployment: to_json(&format!("Deployment {namespace}/{name}"), &stable)?,
            cluster,
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
            // Unknown from the cluster: removals look for a baseline whatever it is.
            baseline: None,
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

    /// The second Deployment's name (`NAME-canary` or `NAME-preview`).
    pub fn canary_name(&self) -> String {
        format!("{}-{}", self.name, self.track())
    }

    /// `Deployment namespace/name` for messages.
    pub fn describe(&self, name: &str) -> String {
        what(&self.cluster.namespaced::<Deployment>(), name)
    }

    /// The canary Deployment: the new version, its pods labelled as the canary track.
    /// Built from the user's manifest as JSON, so no field of it is lost on the way.
    pub fn canary(&self, replicas: i32) -> Value {
        let mut c = self.deployment.clone();
        c["metadata"]["name"] = Value::String(self.canary_name());
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
    pub async fn live_stable(&self) -> Result<Option<Deployment>, StepResult> {
        deployment(&self.cluster, &self.name)
            .await
            .map_err(infra_failure)
    }

    /// Removes the release's marks from the stable Deployment: the release is over.
    /// `rolled_back_by` (who undid it, when that was `glidepath rollback`) is recorded in
    /// the same change, so a run that sees its mark gone also sees by whom.
    pub async fn unmark(&self, rolled_back_by: Option<&str>) -> Result<(), crate::kube::Error> {
        let mut marks = vec![(STABLE_REPLICAS, None), (RELEASE, None)];
        if rolled_back_by.is_some() {
            marks.push((ROLLED_BACK_BY, rolled_back_by));
        }
        annotate(&self.cluster, &self.name, &marks).await
    }

    /// Waits until Deployment `name` is rolled out.
    pub async fn rolled_out(
        &self,
        io: &StepIo,
        name: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let what = self.describe(name);
        let mut last = String::new();
        loop {
            match deployment(&self.cluster, name).await? {
                Some(live) => match deployment_readiness(&live) {
                    Readiness::Ready => return Ok(()),
                    Readiness::Failed(why) => return Err(Error::RolloutFailed { why }),
                    Readiness::Pending(why) => {
                        if why != last {
                            io.log("release", format!("waiting for {what}: {why}"));
                            last = why;
                        }
                    }
                },
                None => return Err(Error::Disappeared { what }),
            }
            if Instant::now() >= deadline {
                return Err(Error::RolloutTimeout {
                    what,
                    timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The pod-template hash of the stable Deployment's current ReplicaSet.
    pub async fn stable_hash(&self, stable: &Deployment) -> Result<String, Error> {
        current_template_hash(&self.cluster, stable)
            .await?
            .ok_or_else(|| Error::StablePodsUnknown {
                name: self.name.clone(),
            })
    }

    /// Whether the release still holds `claim` on the stable Deployment; `Err` when it was
    /// rolled back outside this run (saying by whom, when `glidepath rollback` did it).
    pub async fn holds(&self, claim: Claim<'_>) -> Result<(), Error> {
        let live = deployment(&self.cluster, &self.name).await?;
        let mark = |key| live.as_ref().and_then(|l| annotation(l, key));
        let held = match claim {
            Claim::Release => mark(RELEASE).is_some(),
            Claim::Promotion(by) => mark(PROMOTED_BY) == Some(by),
        };
        if held {
            Ok(())
        } else {
            Err(Error::RolledBackOutside {
                by: mark(ROLLED_BACK_BY).map(str::to_owned),
            })
        }
    }

    /// Returns once someone else has rolled the release back (its claim is gone), checking
    /// every second; a failing call to the cluster is tried again at the next check.
    pub async fn lost(&self, claim: Claim<'_>) -> Error {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.holds(claim).await {
                Ok(()) | Err(Error::Kube(_)) => {}
                Err(e) => return e,
            }
        }
    }
}

/// What a release holds on the stable Deployment while it runs; when it is gone, someone
/// else rolled the release back, and the release changes nothing more.
#[derive(Debug, Clone, Copy)]
pub(super) enum Claim<'a> {
    /// The release's mark: traffic is being moved or judged.
    Release,
    /// The promotion mark naming this run and stage (`RUN/STAGE`): the bake.
    Promotion(&'a str),
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
pub(super) fn recorded_total(stable: &Deployment) -> Option<i32> {
    annotation(stable, STABLE_REPLICAS).and_then(|r| r.parse::<i32>().ok())
}

/// The stable Deployment's own replica count (1 when it names none).
pub(super) fn declared_total(stable: &Deployment) -> i32 {
    stable.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The pod template's `version` label.
pub(super) fn template_version(t: &PodTemplateSpec) -> Option<&str> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get("version"))
        .map(String::as_str)
}

/// The `version` label of a Deployment's pod template.
pub(super) fn deployment_version(d: &Deployment) -> Option<&str> {
    d.spec.as_ref().and_then(|s| template_version(&s.template))
}

/// A typed object as JSON, for the fields glidepath writes as JSON.
pub(super) fn to_json(what: &str, o: &impl Serialize) -> Result<Value, crate::kube::Error> {
    serde_json::to_value(o).map_err(|e| crate::kube::Error::Unexpected {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

/// Canary replicas for `weight`% of `total`: rounded up, at least one once it has traffic.
pub(super) fn canary_replicas(total: i32, weight: u8) -> i32 {
    if weight == 0 {
        0
    } else {
        ((i64::from(total) * i64::from(weight)) as f64 / 100.0)
            .ceil()
            .max(1.0) as i32
    }
}

/// What the replicas router sizes each Deployment to at `weight`% of `total`: stable,
/// canary and (with a baseline, as many pods as the canary, taken from stable) baseline.
/// As Argo Rollouts rounds without a traffic router: both sides rounded up, so stable
/// keeps serving until the canary takes everything.
pub(super) fn replicas_split(total: i32, weight: u8, with_baseline: bool) -> [i32; 3] {
    let canary = canary_replicas(total, weight);
    let baseline = if with_baseline { canary } else { 0 };
    let stable =
        ((i64::from(total) * (100 - i64::from(weight.min(100)))) as f64 / 100.0).ceil() as i32;
    [(stable - baseline).max(0), canary, baseline]
}
