//! `release`: a canary whose traffic steps the operator can pause, promote or roll back
//! while an SLO analysis runs underneath, over two routers:
//!
//! - `replicas`: a `NAME-canary` Deployment beside the stable one; the Service selects both,
//!   so traffic follows the ratio of ready replicas (canary = weight% of the stable count,
//!   stable scaled down by as many);
//! - `gateway-api`: the canary gets its own Service and the HTTPRoute's `backendRefs`
//!   weights split traffic; the stable Service is pinned to the stable pods' template hash
//!   for the duration, so it never reaches canary pods.
//!
//! Promotion rolls the new version out on the stable Deployment, moves all traffic back to
//! it and removes the canary. Rollback (a failed analysis, the operator, or a later failure
//! with `onFailure: rollback`) moves traffic to stable first, then removes the canary; it
//! reads only the cluster, so it also works after a crash. Everything glidepath changes is
//! marked with annotations naming the run.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::apply::{connect, manifests};
use super::{StepCtx, StepResult};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::events::VersionReplicas;
use crate::events::{Evidence, Verdict};
use crate::kube::objects::{Cluster, Readiness, describe, label_selector, readiness};
use crate::metrics::Client;
use crate::pipeline::model::{Analysis, BlueGreen, Canary, PauseStep, ReleaseStep, Router};
use crate::pipeline::units::format_duration;
use crate::slo::{Slo, evaluate, live};

/// The label that tells canary pods apart.
pub const TRACK: &str = "glidepath.dev/track";
/// On the stable Deployment during a canary: its replica count before the canary began.
pub const STABLE_REPLICAS: &str = "glidepath.dev/stable-replicas";
/// On the stable Deployment during a release: how traffic is split, so a rollback without
/// the pipeline file (`glidepath rollback`) knows what to undo.
pub const RELEASE: &str = "glidepath.dev/release";
/// On the stable Deployment after a promotion: the pod template it replaced.
pub const PREVIOUS_TEMPLATE: &str = "glidepath.dev/previous-template";
/// On the stable Deployment after a promotion: `RUN/STAGE` that promoted it.
pub const PROMOTED_BY: &str = "glidepath.dev/promoted-by";
const HASH: &str = "pod-template-hash";
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);

/// What the release works on.
struct Plan {
    cluster: Cluster,
    /// The new version's Deployment (stable name).
    deployment: Value,
    /// The other manifests (Services, HTTPRoute).
    others: Vec<Value>,
    name: String,
    namespace: String,
    router: Router,
    stable_service: Option<String>,
    canary_service: String,
    route: Option<String>,
    /// `canary`, or `preview` for blue-green: names the second Deployment and its pods.
    track: &'static str,
}

/// What the cluster shows of a release's traffic (`Event::Traffic`).
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    actual: Option<u8>,
    planned: Option<u8>,
    replicas: Vec<VersionReplicas>,
}

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A Deployment's version: its pod template's `version` (or `app.kubernetes.io/version`)
/// label, else its first container's image tag.
fn version_of(d: &Value) -> String {
    let labels = d.pointer("/spec/template/metadata/labels");
    for key in ["version", "app.kubernetes.io/version"] {
        if let Some(v) = labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            return v.to_owned();
        }
    }
    // The tag is in the last path segment (`registry:5000/app:1.2`), before any digest.
    d.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(|i| i.split('@').next().unwrap_or(i))
        .and_then(|i| i.rsplit('/').next())
        .and_then(|last| last.split_once(':'))
        .map(|(_, tag)| tag.to_owned())
        .unwrap_or_else(|| "?".into())
}

fn fail(summary: impl Into<String>) -> StepResult {
    StepResult::failed(summary)
}

impl Plan {
    async fn new(step: &ReleaseStep, ctx: &StepCtx) -> Result<Plan, StepResult> {
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
        let canary = step.canary.as_ref();
        let router = canary.map(|c| c.router).unwrap_or_default();
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
        let blue_green = step.blue_green.as_ref();
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
            .unwrap_or_else(|| format!("{}-canary", stable_service.as_deref().unwrap_or(&name)));
        let route = canary.and_then(|c| c.route.clone()).or_else(|| {
            others
                .iter()
                .find(|o| o["kind"] == "HTTPRoute")
                .map(|o| meta(o, "name").to_owned())
                .or_else(|| stable_service.clone())
        });
        if router == Router::GatewayApi && stable_service.is_none() {
            return Err(fail(format!(
                "the gateway-api router needs the stable Service: add one selecting {name}'s pods to the manifests, or set canary.stableService"
            )));
        }
        Ok(Plan {
            cluster,
            deployment,
            others,
            name,
            namespace,
            router,
            stable_service,
            canary_service,
            route: if blue_green.is_some() { None } else { route },
            track: if blue_green.is_some() {
                "preview"
            } else {
                "canary"
            },
        })
    }

    /// How this release splits traffic, as recorded on the stable Deployment.
    fn info(&self) -> Value {
        json!({
            "router": if self.router == Router::GatewayApi { "gateway-api" } else { "replicas" },
            "route": self.route, "stableService": self.stable_service,
            "canaryService": self.canary_service, "track": self.track,
        })
    }

    /// A plan for the release in progress (or last promoted) on `name`, from the cluster
    /// alone.
    async fn from_cluster(cluster: Cluster, name: &str) -> Result<(Plan, Value), String> {
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
        let info: Value = stable
            .pointer(&format!(
                "/metadata/annotations/{}",
                RELEASE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(json!({}));
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let plan = Plan {
            cluster,
            deployment: stable.clone(),
            others: Vec::new(),
            name: name.to_owned(),
            namespace,
            router: if text("router").as_deref() == Some("gateway-api") {
                Router::GatewayApi
            } else {
                Router::Replicas
            },
            stable_service: text("stableService"),
            canary_service: text("canaryService").unwrap_or_else(|| format!("{name}-canary")),
            route: text("route"),
            track: if text("track").as_deref() == Some("preview") {
                "preview"
            } else {
                "canary"
            },
        };
        Ok((plan, stable))
    }

    fn object(&self, api_version: &str, kind: &str, name: &str) -> Value {
        crate::kube::objects::reference(api_version, kind, &self.namespace, name)
    }

    fn stable_ref(&self) -> Value {
        self.object("apps/v1", "Deployment", &self.name)
    }

    fn canary_ref(&self) -> Value {
        self.object(
            "apps/v1",
            "Deployment",
            &format!("{}-{}", self.name, self.track),
        )
    }

    /// The canary Deployment: the new version, its pods labelled as the canary track.
    fn canary(&self, replicas: i64) -> Value {
        let mut c = self.deployment.clone();
        c["metadata"]["name"] = Value::String(format!("{}-{}", self.name, self.track));
        for path in [
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            if let Some(labels) = c.pointer_mut(path).and_then(Value::as_object_mut) {
                labels.insert(TRACK.into(), Value::String(self.track.into()));
            }
        }
        c["spec"]["replicas"] = json!(replicas);
        c
    }

    async fn live_stable(&self) -> Result<Option<Value>, StepResult> {
        self.cluster
            .get(&self.stable_ref())
            .await
            .map_err(infra_failure)
    }

    /// Sets the route's weights: `canary`% to the canary Service, the rest to stable.
    async fn route_weights(&self, canary: u8) -> Result<(), String> {
        let (Some(route), Some(stable)) = (&self.route, &self.stable_service) else {
            return Ok(());
        };
        let r = self.object("gateway.networking.k8s.io/v1", "HTTPRoute", route);
        let live = self
            .cluster
            .get(&r)
            .await?
            .ok_or_else(|| format!("HTTPRoute {}/{route} does not exist", self.namespace))?;
        let mut rules = live
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut found = false;
        for rule in &mut rules {
            let refs = rule
                .get("backendRefs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(stable_ref) = refs.iter().find(|b| b["name"] == stable.as_str()).cloned()
            else {
                continue;
            };
            found = true;
            let mut out: Vec<Value> = refs
                .into_iter()
                .filter(|b| {
                    b["name"] != stable.as_str() && b["name"] != self.canary_service.as_str()
                })
                .collect();
            let mut s = stable_ref.clone();
            s["weight"] = json!(100 - i64::from(canary));
            out.push(s);
            if canary > 0 {
                let mut c = stable_ref;
                c["name"] = Value::String(self.canary_service.clone());
                c["weight"] = json!(i64::from(canary));
                out.push(c);
            }
            rule["backendRefs"] = Value::Array(out);
        }
        if !found {
            return Err(format!(
                "HTTPRoute {route} has no backendRef to the stable Service {stable}"
            ));
        }
        self.cluster
            .merge(&r, &json!({ "spec": { "rules": rules } }))
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// Pins (or unpins, with `None`) the stable Service to one pod-template hash.
    async fn pin_stable_service(&self, hash: Option<&str>) -> Result<(), String> {
        let Some(svc) = &self.stable_service else {
            return Ok(());
        };
        let s = self.object("v1", "Service", svc);
        if self.cluster.get(&s).await?.is_none() {
            return Ok(());
        }
        self.cluster
            .merge(&s, &json!({ "spec": { "selector": { HASH: hash } } }))
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// Gives the second track its own Service (a copy of the stable one selecting the
    /// track's pods) and pins the stable Service to the stable pods.
    async fn split(&self, previous: &Value) -> Result<(), StepResult> {
        let stable_name = self.stable_service.clone().unwrap_or_default();
        let pinned = self.stable_hash(previous).await.map_err(infra_failure)?;
        let declared = self
            .others
            .iter()
            .find(|o| o["kind"] == "Service" && meta(o, "name") == stable_name)
            .cloned();
        let mut svc = match declared {
            Some(s) => s,
            None => match self
                .cluster
                .get(&self.object("v1", "Service", &stable_name))
                .await
            {
                Ok(Some(s)) => json!({ "apiVersion": "v1", "kind": "Service",
                    "metadata": { "name": stable_name, "namespace": self.namespace },
                    "spec": { "selector": s.pointer("/spec/selector").cloned().unwrap_or(json!({})),
                        "ports": s.pointer("/spec/ports").cloned().unwrap_or(json!([])) } }),
                Ok(None) => return Err(fail(format!("Service {stable_name} does not exist"))),
                Err(e) => return Err(infra_failure(e)),
            },
        };
        svc["metadata"]["name"] = Value::String(self.canary_service.clone());
        if let Some(a) = svc
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(crate::sandbox::workload::annotations::ENDPOINT);
        }
        if let Some(sel) = svc
            .pointer_mut("/spec/selector")
            .and_then(Value::as_object_mut)
        {
            sel.remove(HASH);
            sel.insert(TRACK.into(), Value::String(self.track.into()));
        }
        self.cluster
            .apply(&svc, false)
            .await
            .map_err(|e| fail(format!("cannot create the {} Service: {e}", self.track)))?;
        self.pin_stable_service(pinned.as_deref())
            .await
            .map_err(infra_failure)
    }

    /// Points the active Service at the preview pods (`true`), or back at the stable pods of
    /// template `hash` (`false`).
    async fn switch_active(&self, to_preview: bool, hash: Option<&str>) -> Result<(), String> {
        let Some(svc) = &self.stable_service else {
            return Ok(());
        };
        let selector = if to_preview {
            json!({ TRACK: self.track, HASH: null })
        } else {
            json!({ TRACK: null, HASH: hash })
        };
        self.cluster
            .merge(
                &self.object("v1", "Service", svc),
                &json!({ "spec": { "selector": selector } }),
            )
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// The pod-template hash of the stable Deployment's current ReplicaSet.
    async fn stable_hash(&self, stable: &Value) -> Result<Option<String>, String> {
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

    async fn scale(&self, o: &Value, replicas: i64) -> Result<(), String> {
        self.cluster
            .merge(o, &json!({ "spec": { "replicas": replicas } }))
            .await
            .map(drop)
            .map_err(String::from)
    }

    /// Waits until the Deployment `o` names is rolled out.
    async fn rolled_out(
        &self,
        io: &super::StepIo,
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

    /// Fails when the release was rolled back from outside (`glidepath rollback` removed
    /// the release's mark), so this run never undoes an operator's rollback.
    async fn still_ours(&self) -> Result<(), String> {
        let live = self.cluster.get(&self.stable_ref()).await?;
        let marked = live
            .as_ref()
            .and_then(|l| {
                l.pointer(&format!(
                    "/metadata/annotations/{}",
                    RELEASE.replace('/', "~1")
                ))
            })
            .is_some();
        if marked {
            Ok(())
        } else {
            Err("the release was rolled back outside this run; nothing more is changed".into())
        }
    }

    /// What the cluster shows now: the percent the router sends to the new version, the
    /// percent the replica counts plan (with replicas as the router), and each version's
    /// readiness. `Err` when a request failed: nothing is known then.
    async fn observe(&self) -> Result<Observed, String> {
        let mut replicas = Vec::new();
        let mut ready = [0u32; 2];
        let mut desired = [0u32; 2];
        for (i, (role, o)) in [("stable", self.stable_ref()), ("new", self.canary_ref())]
            .into_iter()
            .enumerate()
        {
            let Some(live) = self.cluster.get(&o).await? else {
                continue;
            };
            let count = |path: &str| {
                live.pointer(path)
                    .and_then(Value::as_u64)
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
            };
            ready[i] = count("/status/readyReplicas");
            desired[i] = count("/spec/replicas");
            replicas.push(VersionReplicas {
                role: role.into(),
                version: version_of(&live),
                ready: ready[i],
                desired: desired[i],
            });
        }
        let share = |of: [u32; 2]| {
            let total = of[0] + of[1];
            (total > 0).then(|| (f64::from(of[1]) * 100.0 / f64::from(total)).round() as u8)
        };
        let (actual, planned) = match (self.track, self.router) {
            ("preview", _) => (None, None),
            (_, Router::GatewayApi) => (self.route_share().await?, None),
            (_, Router::Replicas) => (share(ready), share(desired)),
        };
        Ok(Observed {
            actual,
            planned,
            replicas,
        })
    }

    /// The percent the live HTTPRoute sends to the canary Service.
    async fn route_share(&self) -> Result<Option<u8>, String> {
        let (Some(route), Some(stable)) = (self.route.as_ref(), self.stable_service.as_ref())
        else {
            return Ok(None);
        };
        let r = self.object("gateway.networking.k8s.io/v1", "HTTPRoute", route);
        let Some(live) = self.cluster.get(&r).await? else {
            return Ok(None);
        };
        let refs = live
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| rule.get("backendRefs")?.as_array())
            .find(|refs| refs.iter().any(|b| b["name"] == stable.as_str()));
        let Some(refs) = refs else { return Ok(None) };
        let weight = |name: &str| {
            refs.iter()
                .find(|b| b["name"] == name)
                .map_or(0, |b| b["weight"].as_u64().unwrap_or(1))
        };
        let (s, c) = (weight(stable), weight(&self.canary_service));
        Ok((s + c > 0).then(|| (c as f64 * 100.0 / (s + c) as f64).round() as u8))
    }

    /// Reports the traffic asked for (`weight`) with what the cluster shows; `settled`
    /// (after a promotion or rollback, the canary gone) reports the one version left as
    /// serving `weight`.
    async fn report_traffic(&self, io: &super::StepIo, weight: u8, note: impl Into<String>) {
        match self.observe().await {
            Ok(o) => io.traffic(weight, o.actual, o.planned, o.replicas, note),
            Err(_) => io.traffic(weight, None, None, Vec::new(), note),
        }
    }

    /// Reports where traffic ended: after a promotion the stable Deployment runs the new
    /// version and serves everything; after a rollback it runs the old one.
    async fn report_settled(&self, io: &super::StepIo, promoted: bool, note: impl Into<String>) {
        let weight = if promoted { 100 } else { 0 };
        let mut replicas = self.observe().await.map(|o| o.replicas).unwrap_or_default();
        if promoted {
            for r in &mut replicas {
                r.role = "new".into();
            }
        }
        io.traffic(weight, Some(weight), None, replicas, note);
    }

    /// Reports the traffic again whenever what the cluster shows changes (a pod dies, the
    /// route is edited), every two seconds while the release runs. `desired` is the
    /// percent the release last asked for; while `moving` (a weight change in progress)
    /// nothing is reported, and a sample taken across a change is dropped.
    async fn follow_traffic(&self, io: &super::StepIo, desired: &AtomicU8, moving: &AtomicBool) {
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let weight = desired.load(Ordering::SeqCst);
            if moving.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(seen) = self.observe().await else {
                continue;
            };
            if moving.load(Ordering::SeqCst) || desired.load(Ordering::SeqCst) != weight {
                continue;
            }
            let seen = (weight, seen);
            if last.as_ref() != Some(&seen) {
                if last.is_some() {
                    let o = seen.1.clone();
                    io.traffic(
                        weight,
                        o.actual,
                        o.planned,
                        o.replicas,
                        "observed on the cluster",
                    );
                }
                last = Some(seen);
            }
        }
    }

    /// Moves `weight`% of traffic to the canary, out of `total` stable replicas.
    async fn set_weight(&self, ctx: &StepCtx, weight: u8, total: i64) -> Result<(), String> {
        let canary_replicas = if weight == 0 {
            0
        } else {
            ((total * i64::from(weight)) as f64 / 100.0).ceil().max(1.0) as i64
        };
        self.cluster
            .apply(&self.canary(canary_replicas), false)
            .await?;
        self.rolled_out(&ctx.io, &self.canary_ref(), ROLLOUT_TIMEOUT)
            .await?;
        match self.router {
            Router::Replicas => {
                // As Argo Rollouts rounds without a traffic router: both sides rounded up,
                // so stable keeps serving until the canary takes everything.
                let stable = ((total * (100 - i64::from(weight))) as f64 / 100.0).ceil() as i64;
                self.scale(&self.stable_ref(), stable).await?;
                self.rolled_out(&ctx.io, &self.stable_ref(), ROLLOUT_TIMEOUT)
                    .await?;
                let note = format!("{canary_replicas} canary and {stable} stable replicas ready");
                ctx.io.log("traffic", format!("canary {weight}%: {note}"));
                self.report_traffic(&ctx.io, weight, note).await;
            }
            Router::GatewayApi => {
                self.route_weights(weight).await?;
                let note = format!(
                    "HTTPRoute {} weights {}/{} (stable/canary), {canary_replicas} canary replicas",
                    self.route.as_deref().unwrap_or(""),
                    100 - weight,
                    weight
                );
                ctx.io.log("traffic", format!("canary {weight}%: {note}"));
                self.report_traffic(&ctx.io, weight, note).await;
            }
        }
        ctx.io
            .set_phase(super::Phase::Running, format!("canary {weight}%"));
        Ok(())
    }

    /// Traffic back on stable, then the canary removed. Idempotent; reads the cluster only.
    async fn abort(&self, io: &super::StepIo) -> Result<String, String> {
        let canary = self.cluster.get(&self.canary_ref()).await?;
        let Some(stable) = self.cluster.get(&self.stable_ref()).await? else {
            return Ok("nothing to roll back".into());
        };
        let total = stable
            .pointer(&format!(
                "/metadata/annotations/{}",
                STABLE_REPLICAS.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<i64>().ok());
        if canary.is_none() && total.is_none() {
            return Ok("no canary in progress".into());
        }
        let started = Instant::now();
        let blue_green = self.track == "preview";
        if blue_green {
            // The active Service goes back to the old colour's pods at once.
            let hash = self.stable_hash(&stable).await?;
            self.switch_active(false, hash.as_deref()).await?;
            io.log(
                "traffic",
                "all traffic back on the old colour (active Service switched back)",
            );
            self.report_traffic(io, 0, "active Service switched back to the old colour")
                .await;
        }
        if self.router == Router::GatewayApi {
            self.route_weights(0).await?;
            io.log(
                "traffic",
                "all traffic back on stable (HTTPRoute weights 100/0)",
            );
            self.report_traffic(io, 0, "HTTPRoute weights 100/0: all traffic back on stable")
                .await;
        }
        let total = total.unwrap_or_else(|| {
            stable
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        });
        if self.router == Router::Replicas && !blue_green {
            // Stable gets its full capacity back before the canary's pods go, so users
            // are never left with fewer pods than they had.
            self.scale(&self.stable_ref(), total).await?;
            self.rolled_out(io, &self.stable_ref(), ROLLOUT_TIMEOUT)
                .await?;
        }
        self.cluster.delete(&self.canary_ref()).await?;
        let back = started.elapsed();
        self.scale(&self.stable_ref(), total).await?;
        self.cluster
            .merge(
                &self.stable_ref(),
                &json!({ "metadata": { "annotations": { STABLE_REPLICAS: null, RELEASE: null } } }),
            )
            .await?;
        if self.router == Router::GatewayApi || blue_green {
            self.pin_stable_service(None).await?;
            self.cluster
                .delete(&self.object("v1", "Service", &self.canary_service))
                .await?;
        }
        let note = format!(
            "{} removed; all traffic on stable after {} ms",
            self.track,
            back.as_millis()
        );
        io.log("traffic", note.clone());
        self.report_settled(io, false, note).await;
        Ok(format!(
            "traffic back on stable in {} ms, {} removed",
            back.as_millis(),
            self.track
        ))
    }

    /// The new version becomes stable; the canary goes.
    async fn promote(&self, ctx: &StepCtx, previous: &Value, total: i64) -> Result<(), String> {
        if self.router == Router::GatewayApi {
            // All traffic on the canary while the stable Deployment rolls to the new version:
            // first give the canary the full replica count.
            self.scale(&self.canary_ref(), total).await?;
            self.rolled_out(&ctx.io, &self.canary_ref(), ROLLOUT_TIMEOUT)
                .await?;
            self.route_weights(100).await?;
            self.pin_stable_service(None).await?;
        }
        let mut next = self.deployment.clone();
        next["spec"]["replicas"] = json!(total);
        let template = previous
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(json!({}));
        next["metadata"]["annotations"][PREVIOUS_TEMPLATE] = Value::String(template.to_string());
        next["metadata"]["annotations"][PROMOTED_BY] =
            Value::String(format!("{}/{}", ctx.run, ctx.stage));
        self.cluster.apply(&next, false).await?;
        self.rolled_out(&ctx.io, &self.stable_ref(), ROLLOUT_TIMEOUT)
            .await?;
        if self.router == Router::GatewayApi {
            self.route_weights(0).await?;
        }
        let blue_green = self.track == "preview";
        if blue_green {
            // The active Service selects the app again, all of it now the new version.
            self.switch_active(false, None).await?;
        }
        self.cluster.delete(&self.canary_ref()).await?;
        if self.router == Router::GatewayApi || blue_green {
            self.cluster
                .delete(&self.object("v1", "Service", &self.canary_service))
                .await?;
        }
        self.cluster
            .merge(
                &self.stable_ref(),
                &json!({ "metadata": { "annotations": { STABLE_REPLICAS: null, RELEASE: null } } }),
            )
            .await?;
        let note = format!(
            "promoted: {} runs the new version on {total} replicas",
            self.name
        );
        ctx.io.log("traffic", note.clone());
        self.report_settled(&ctx.io, true, note).await;
        Ok(())
    }
}

fn infra_failure(e: impl Into<String>) -> StepResult {
    StepResult {
        infra_error: true,
        ..StepResult::failed(e)
    }
}

/// One analysis run: the SLO's verdict over `window` for the canary's version.
struct Analyst {
    slo: Slo,
    /// Prometheus, unless every SLI is the stage's own measurement (`load.*`).
    client: Option<Client>,
    measured: super::Measurements,
    vars: std::collections::BTreeMap<String, String>,
    window: Duration,
    interval: Duration,
    failure_limit: u32,
    inconclusive_limit: u32,
    /// Evaluations that passed (or warned) so far.
    passed: std::sync::atomic::AtomicU32,
    /// The stable version's `version` label, measured beside the canary for the cockpit.
    stable_version: Option<String>,
}

impl Analyst {
    fn new(a: &Analysis, ctx: &StepCtx) -> Result<Analyst, StepResult> {
        let slo =
            Slo::load(&ctx.base_dir.join(&a.slo.value), None).map_err(|e| fail(e.to_string()))?;
        let client = match (&ctx.prometheus, slo.queries_prometheus()) {
            (_, false) => None,
            (Some(settings), true) => {
                Some(Client::from_settings(settings).map_err(|e| infra_failure(e.to_string()))?)
            }
            (None, true) => {
                return Err(fail(format!(
                    "stage {} has no prometheus for the analysis",
                    ctx.stage
                )));
            }
        };
        let interval = a
            .interval
            .map(|i| i.get())
            .unwrap_or(Duration::from_secs(30));
        Ok(Analyst {
            slo,
            client,
            measured: ctx.measured.clone(),
            vars: ctx.vars.clone(),
            window: interval.max(Duration::from_secs(30)),
            interval,
            failure_limit: a.failure_limit.unwrap_or(0),
            inconclusive_limit: a.inconclusive_limit.unwrap_or(0),
            passed: std::sync::atomic::AtomicU32::new(0),
            stable_version: None,
        })
    }

    /// Tells the cockpit what this analysis measured, against which targets.
    async fn report(&self, io: &super::StepIo, verdict: &crate::slo::Evaluation) {
        let values = verdict
            .objectives
            .iter()
            .map(|o| (o.sli.clone(), o.value))
            .collect();
        let first = |sets: &[Vec<crate::slo::criteria::Criterion>]| {
            sets.iter().flatten().next().map(|c| c.to_string())
        };
        let targets = self
            .slo
            .objectives
            .iter()
            .filter_map(|o| first(&o.pass).map(|c| (o.sli.clone(), c)))
            .collect();
        let warnings = self
            .slo
            .objectives
            .iter()
            .filter_map(|o| first(&o.warning).map(|c| (o.sli.clone(), c)))
            .collect();
        // The same SLIs for the stable version, when there is one to compare with: a
        // chart's second series. Failures here only leave the series empty.
        let stable = match (&self.stable_version, &self.client) {
            (Some(v), Some(client)) => {
                let mut vars = self.vars.clone();
                vars.insert("version".into(), v.clone());
                live::measure(
                    &self.slo,
                    live::Sources::only(client),
                    &vars,
                    self.window,
                    None,
                )
                .await
                .unwrap_or_default()
            }
            _ => Default::default(),
        };
        io.analysis(values, stable, targets, warnings, verdict.result);
    }

    /// The SLIs now, from Prometheus and the stage's own measurements.
    async fn measure(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Option<f64>>, crate::metrics::QueryError> {
        // Load figures count while the load test beside the release keeps them current;
        // a test that ended leaves the analysis without data, which never passes.
        let fresh = (self.interval * 2).max(Duration::from_secs(3));
        let sources = live::Sources {
            prometheus: self.client.as_ref(),
            measured: &self.measured.fresh(fresh),
        };
        live::measure(&self.slo, sources, &self.vars, self.window, None).await
    }

    /// Before a blue-green switch: three evaluations at the interval; too many failures or
    /// inconclusive results refuse the switch.
    async fn pre_promotion(&self, io: &super::StepIo) -> Result<(), (String, Vec<Evidence>)> {
        let watch = self.watch(io);
        match tokio::time::timeout(self.interval * 3 + self.interval / 2, watch).await {
            Ok(failure) => Err(failure),
            Err(_) => Ok(()),
        }
    }

    /// When no evaluation has passed yet, evaluations at the interval until one passes (no
    /// promotion without evidence): a failure, or more inconclusive results than the limit,
    /// refuses the promotion.
    async fn at_least_once(&self, io: &super::StepIo) -> Result<(), (String, Vec<Evidence>)> {
        let mut inconclusive = 0;
        while self.passed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(self.interval).await;
            let verdict = match self.measure().await {
                Ok(values) => evaluate(&self.slo, &values, &[]),
                Err(e) => {
                    inconclusive += 1;
                    if inconclusive > self.inconclusive_limit {
                        return Err((
                            format!("the analysis before promotion could not run: {e}"),
                            Vec::new(),
                        ));
                    }
                    continue;
                }
            };
            io.log(
                "analysis",
                format!(
                    "analysis before promotion: score {:.1}, {} ({})",
                    verdict.score, verdict.result, verdict.message
                ),
            );
            self.report(io, &verdict).await;
            match verdict.result {
                Verdict::Pass | Verdict::Warning => return Ok(()),
                Verdict::Fail => {
                    return Err((
                        format!("analysis before promotion: {}", verdict.message),
                        verdict.evidence(),
                    ));
                }
                Verdict::Error => {
                    inconclusive += 1;
                    if inconclusive > self.inconclusive_limit {
                        return Err((
                            format!(
                                "analysis before promotion inconclusive: {}",
                                verdict.message
                            ),
                            verdict.evidence(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs until the failures or inconclusive results pass their limits; returns why.
    async fn watch(&self, ctx_io: &super::StepIo) -> (String, Vec<Evidence>) {
        let (mut failed, mut inconclusive, mut n) = (0u32, 0u32, 0u32);
        loop {
            tokio::time::sleep(self.interval).await;
            n += 1;
            let verdict = match self.measure().await {
                Ok(values) => evaluate(&self.slo, &values, &[]),
                Err(e) => {
                    inconclusive += 1;
                    ctx_io.log("analysis", format!("analysis {n}: Prometheus failed: {e}"));
                    if inconclusive > self.inconclusive_limit {
                        return (
                            format!(
                                "analysis inconclusive {inconclusive} times (limit {}): {e}",
                                self.inconclusive_limit
                            ),
                            Vec::new(),
                        );
                    }
                    continue;
                }
            };
            ctx_io.log(
                "analysis",
                format!(
                    "analysis {n}: score {:.1}, {} ({})",
                    verdict.score, verdict.result, verdict.message
                ),
            );
            self.report(ctx_io, &verdict).await;
            match verdict.result {
                Verdict::Pass | Verdict::Warning => {
                    self.passed
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Verdict::Fail => failed += 1,
                Verdict::Error => inconclusive += 1,
            }
            if failed > self.failure_limit {
                return (
                    format!(
                        "analysis failed {failed} times (limit {}): {}",
                        self.failure_limit, verdict.message
                    ),
                    verdict.evidence(),
                );
            }
            if inconclusive > self.inconclusive_limit {
                return (
                    format!(
                        "analysis inconclusive {inconclusive} times (limit {}): {}",
                        self.inconclusive_limit, verdict.message
                    ),
                    verdict.evidence(),
                );
            }
        }
    }
}

/// Runs a release step.
pub async fn run(step: &ReleaseStep, ctx: &mut StepCtx) -> StepResult {
    let plan = match Plan::new(step, ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match &step.canary {
        Some(c) => canary(&plan, c, ctx).await,
        None => match &step.blue_green {
            Some(bg) => blue_green(&plan, bg, ctx).await,
            None => fail("a release is exactly one of `canary` or `blueGreen`"),
        },
    }
}

async fn canary(plan: &Plan, c: &Canary, ctx: &mut StepCtx) -> StepResult {
    let (analyst, previous, total) = match begin(plan, c.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if plan.router == Router::GatewayApi
        && let Err(r) = plan.split(&previous).await
    {
        return r;
    }
    let io = ctx.io.clone();
    let desired = AtomicU8::new(0);
    let moving = AtomicBool::new(false);
    let steps = async {
        for s in &c.steps {
            if let Some(w) = s.value.weight {
                plan.still_ours().await?;
                moving.store(true, Ordering::SeqCst);
                desired.store(w, Ordering::SeqCst);
                let r = plan.set_weight(ctx, w, total).await;
                moving.store(false, Ordering::SeqCst);
                r?;
            } else if let Some(p) = &s.value.pause {
                let r = super::pause::run(p, ctx).await;
                ctx.io.log("release", r.summary);
                ctx.io.set_phase(super::Phase::Running, "canary running");
            }
        }
        Ok::<(), String>(())
    };
    let watch = async {
        match &analyst {
            Some(a) => a.watch(&io).await,
            None => std::future::pending().await,
        }
    };
    let mut outcome = tokio::select! {
        r = steps => r.map_err(|e| (e, Vec::new(), false)),
        (why, evidence) = watch => Err((why, evidence, true)),
        () = plan.follow_traffic(&io, &desired, &moving) => unreachable!("following traffic never ends"),
    };
    if outcome.is_ok()
        && let Some(a) = &analyst
    {
        outcome = a
            .at_least_once(&ctx.io)
            .await
            .map_err(|(why, ev)| (why, ev, true));
    }
    match outcome {
        Ok(()) => match async {
            plan.still_ours().await?;
            plan.promote(ctx, &previous, total).await
        }
        .await
        {
            Ok(()) => StepResult::judged(
                Verdict::Pass,
                format!(
                    "canary of {} promoted after {} steps",
                    plan.name,
                    c.steps.len()
                ),
                vec![Evidence::new("canary", Verdict::Pass, "promoted")],
            ),
            Err(e) => {
                rolled_back(
                    plan,
                    ctx,
                    format!("promotion failed: {e}"),
                    Vec::new(),
                    false,
                )
                .await
            }
        },
        Err((why, evidence, judged)) => rolled_back(plan, ctx, why, evidence, judged).await,
    }
}

/// Sets up the analysis, applies the manifests the release carries besides its
/// Deployment, and reads the live stable Deployment and its replica count. `Err` ends the
/// step: with the first release rolled out directly (there
/// is nothing to compare it with), or with a failure.
async fn begin(
    plan: &Plan,
    analysis: Option<&Analysis>,
    ctx: &StepCtx,
) -> Result<(Option<Analyst>, Value, i64), StepResult> {
    // The analysis is set up first: a bad SLO file fails before anything changes.
    let mut analyst = analysis.map(|a| Analyst::new(a, ctx)).transpose()?;
    let live = plan.live_stable().await?;
    let resuming = live.as_ref().is_some_and(|l| {
        l.pointer(&format!(
            "/metadata/annotations/{}",
            RELEASE.replace('/', "~1")
        ))
        .is_some()
    });
    for o in &plan.others {
        // A release already in progress (a resumed run) keeps the route's current split.
        if resuming && o["kind"] == "HTTPRoute" {
            continue;
        }
        if let Err(e) = plan.cluster.apply(o, false).await {
            return Err(fail(format!("apply failed: {e}")));
        }
    }
    let previous = match live {
        Some(p) => p,
        None => {
            if let Err(e) = plan.cluster.apply(&plan.deployment, false).await {
                return Err(fail(format!("apply failed: {e}")));
            }
            return Err(
                match plan
                    .rolled_out(&ctx.io, &plan.stable_ref(), ROLLOUT_TIMEOUT)
                    .await
                {
                    Ok(()) => StepResult::passed(format!(
                        "first release of {}: no stable version to compare with, rolled out directly",
                        plan.name
                    )),
                    Err(e) => fail(e),
                },
            );
        }
    };
    if let Some(a) = analyst.as_mut() {
        a.stable_version = previous
            .pointer("/spec/template/metadata/labels/version")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let total = previous
        .pointer(&format!(
            "/metadata/annotations/{}",
            STABLE_REPLICAS.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or_else(|| {
            previous
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        });
    // Remember the stable size before anything changes, so a rollback after a crash knows it.
    plan.cluster
        .merge(
            &plan.stable_ref(),
            &json!({ "metadata": { "annotations": {
                STABLE_REPLICAS: total.to_string(),
                RELEASE: plan.info().to_string(),
            } } }),
        )
        .await
        .map_err(infra_failure)?;
    Ok((analyst, previous, total))
}

/// Blue-green: the new colour comes up beside the old behind the preview Service, the
/// analysis runs against it, the active Service switches, and the old colour stays for the
/// scale-down delay so a rollback is one selector change.
async fn blue_green(plan: &Plan, bg: &BlueGreen, ctx: &mut StepCtx) -> StepResult {
    let (analyst, previous, total) = match begin(plan, bg.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = plan.split(&previous).await {
        return r;
    }
    let outcome: Result<(), (String, Vec<Evidence>, bool)> = async {
        plan.cluster
            .apply(&plan.canary(total), false)
            .await
            .map_err(|e| (e.into(), Vec::new(), false))?;
        plan.rolled_out(&ctx.io, &plan.canary_ref(), ROLLOUT_TIMEOUT)
            .await
            .map_err(|e| (e, Vec::new(), false))?;
        ctx.io.log(
            "traffic",
            format!(
                "preview: {total} pods of the new version behind Service {}",
                plan.canary_service
            ),
        );
        if let Some(a) = &analyst {
            a.pre_promotion(&ctx.io)
                .await
                .map_err(|(why, ev)| (why, ev, true))?;
        }
        plan.still_ours()
            .await
            .map_err(|e| (e, Vec::new(), false))?;
        plan.switch_active(true, None)
            .await
            .map_err(|e| (e, Vec::new(), false))?;
        let note = format!(
            "switched Service {} to the new version",
            plan.stable_service.as_deref().unwrap_or("")
        );
        ctx.io.log("traffic", note.clone());
        plan.report_traffic(&ctx.io, 100, note).await;
        ctx.io
            .set_phase(super::Phase::Running, "switched; keeping the old colour");
        let delay = bg
            .scale_down_delay
            .unwrap_or(crate::pipeline::units::Span(Duration::from_secs(30)));
        let r = super::pause::run(
            &PauseStep {
                duration: Some(delay),
            },
            ctx,
        )
        .await;
        ctx.io
            .log("release", format!("old colour kept: {}", r.summary));
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => match plan.promote(ctx, &previous, total).await {
            Ok(()) => StepResult::judged(
                Verdict::Pass,
                format!("blue-green release of {} switched and finished", plan.name),
                vec![Evidence::new("blue-green", Verdict::Pass, "switched")],
            ),
            Err(e) => fail(format!("finishing the switch failed: {e}")),
        },
        Err((why, evidence, judged)) => rolled_back(plan, ctx, why, evidence, judged).await,
    }
}

/// Rolls back after a failure and says so.
async fn rolled_back(
    plan: &Plan,
    ctx: &StepCtx,
    why: String,
    mut evidence: Vec<Evidence>,
    judged: bool,
) -> StepResult {
    let (undone, rollback_ok) = match plan.abort(&ctx.io).await {
        Ok(done) => (done, true),
        Err(e) => (format!("rollback failed too: {e}"), false),
    };
    let rollback_verdict = if rollback_ok {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    evidence.push(Evidence::new("rollback", rollback_verdict, undone.clone()));
    let verdict = if judged {
        Verdict::Fail
    } else {
        Verdict::Error
    };
    StepResult {
        infra_error: !judged || !rollback_ok,
        ..StepResult::judged(verdict, format!("{why}; rolled back: {undone}"), evidence)
    }
}

/// Puts the stable Deployment back on `template` as fast as the cluster allows: the whole
/// previous version surges at once (no pod of the current one goes before a replacement is
/// ready), then the Deployment's own strategy is restored.
async fn restore(
    plan: &Plan,
    io: &super::StepIo,
    stable: &Value,
    template: Value,
) -> Result<(), String> {
    let strategy = stable
        .pointer("/spec/strategy")
        .cloned()
        .unwrap_or(Value::Null);
    // The whole template is replaced (a merge would keep what the newer version added, such
    // as an init container), against the resourceVersion read.
    let mut live = plan
        .cluster
        .get(&plan.stable_ref())
        .await?
        .ok_or_else(|| format!("{} disappeared", describe(&plan.stable_ref())))?;
    live["spec"]["template"] = template;
    live["spec"]["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "100%", "maxUnavailable": 0 } });
    if let Some(a) = live
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(PREVIOUS_TEMPLATE);
        a.remove(PROMOTED_BY);
    }
    if let Some(meta) = live.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    plan.cluster.replace(&live).await?;
    let rolled = plan
        .rolled_out(io, &plan.stable_ref(), ROLLOUT_TIMEOUT)
        .await;
    // The owner's strategy comes back whatever happened.
    let back = match &strategy {
        Value::Null => json!({ "spec": { "strategy": { "rollingUpdate": null } } }),
        s => json!({ "spec": { "strategy": { "type": s.get("type").cloned().unwrap_or(Value::Null),
            "rollingUpdate": s.get("rollingUpdate").cloned().unwrap_or(Value::Null) } } }),
    };
    plan.cluster.merge(&plan.stable_ref(), &back).await?;
    rolled
}

/// `glidepath rollback SERVICE`: an unfinished canary or blue-green release on Deployment
/// `name` is aborted (traffic to stable first); otherwise the last promotion is reverted to
/// the version it replaced, which had passed its own gates. Needs only the cluster.
pub async fn rollback_service(
    cluster: Cluster,
    name: &str,
    io: &super::StepIo,
) -> Result<String, String> {
    let (mut plan, stable) = Plan::from_cluster(cluster, name).await?;
    for track in ["canary", "preview"] {
        plan.track = track;
        if plan.cluster.get(&plan.canary_ref()).await?.is_some() {
            return plan.abort(io).await;
        }
    }
    let annotation = |k: &str| {
        stable
            .pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let template: Value = annotation(PREVIOUS_TEMPLATE)
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "{name} has no release in progress and no earlier version recorded by glidepath"
            )
        })?;
    let from = stable
        .pointer("/spec/template/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("the current version")
        .to_owned();
    let to = template
        .pointer("/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("the previous version")
        .to_owned();
    restore(&plan, io, &stable, template).await?;
    Ok(format!("{name} rolled back from {from} to {to}"))
}

/// Undoes a release when its stage is rolled back: an unfinished canary is aborted; a
/// promotion this run made is reverted to the template it replaced.
pub async fn rollback(step: &ReleaseStep, ctx: &mut StepCtx) -> Option<StepResult> {
    let plan = match Plan::new(step, ctx).await {
        Ok(p) => p,
        Err(r) => return Some(r),
    };
    match plan.cluster.get(&plan.canary_ref()).await {
        Ok(Some(_)) => {
            return Some(match plan.abort(&ctx.io).await {
                Ok(s) => StepResult::passed(s),
                Err(e) => fail(e),
            });
        }
        Ok(None) => {}
        Err(e) => return Some(infra_failure(e)),
    }
    let stable = match plan.live_stable().await {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(r) => return Some(r),
    };
    let annotation = |k: &str| {
        stable
            .pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if annotation(PROMOTED_BY) != Some(format!("{}/{}", ctx.run, ctx.stage)) {
        return None;
    }
    let template: Value =
        annotation(PREVIOUS_TEMPLATE).and_then(|t| serde_json::from_str(&t).ok())?;
    Some(match restore(&plan, &ctx.io, &stable, template).await {
        Ok(()) => StepResult::passed(format!(
            "{} restored to the version before this run",
            plan.name
        )),
        Err(e) => fail(e),
    })
}
