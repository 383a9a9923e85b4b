//! `infra` and `deploy`: server-side apply of manifests, then a wait until every object is
//! ready (infra: each object's readiness; deploy: the workloads' rollouts), streaming what
//! is still pending and, for workloads, why their pods are not ready.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use tokio::time::Instant;

use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::kube::objects::{self, Cluster, Readiness, describe};
use crate::kube::{Error, kinds, workload};
use crate::pipeline::model::{DeployStep, InfraStep, WaitFor};
use crate::units::format_duration;

/// How long a wait lasts when the step names no timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

fn infra_failure(e: Error) -> StepResult {
    StepResult {
        infra_error: true,
        ..StepResult::failed(e.to_string())
    }
}

fn failed(e: Error) -> StepResult {
    StepResult::failed(e.to_string())
}

/// Connects to the stage's cluster, as a step result on failure.
pub async fn connect(ctx: &StepCtx) -> Result<Cluster, StepResult> {
    Cluster::connect(ctx.target.as_ref())
        .await
        .map_err(infra_failure)
}

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// Reads the manifests a step names, placed in the target's namespace.
pub async fn manifests(
    ctx: &StepCtx,
    cluster: &Cluster,
    paths: &[String],
    image: Option<&str>,
) -> Result<Vec<Value>, StepResult> {
    let mut objs = objects::load_manifests(paths, &ctx.base_dir, &ctx.vars).map_err(failed)?;
    // Kinds that CRDs in the same set declare are placed once those CRDs are served.
    let declared: Vec<String> = objs
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .filter_map(|c| {
            c.pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let workloads = objs
        .iter()
        .filter(|o| o["kind"].as_str().is_some_and(|k| WORKLOADS.contains(&k)))
        .count();
    for o in &mut objs {
        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
        if !declared.contains(&kind) {
            cluster.place(o).await.map_err(failed)?;
        }
        if let Some(image) = image
            && WORKLOADS.contains(&kind.as_str())
        {
            objects::set_image(o, image, workloads == 1);
        }
    }
    Ok(objs)
}

/// Applies `objs`: Namespaces and CRDs first (waiting until the CRDs are Established, so
/// custom resources of the same set can follow), then the rest in order, logging each.
pub async fn apply_all(
    ctx: &StepCtx,
    cluster: &Cluster,
    objs: &mut [Value],
) -> Result<(), StepResult> {
    let first = |o: &Value| o["kind"] == "Namespace" || o["kind"] == "CustomResourceDefinition";
    let (early, late): (Vec<usize>, Vec<usize>) = (0..objs.len()).partition(|&i| first(&objs[i]));
    for &i in &early {
        match cluster.apply(&objs[i], false).await {
            Ok(_) => ctx
                .io
                .log("apply", format!("applied {}", describe(&objs[i]))),
            Err(e) => return Err(StepResult::failed(format!("apply failed: {e}"))),
        }
    }
    let crds: Vec<Value> = early
        .iter()
        .map(|&i| objs[i].clone())
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    if !crds.is_empty() {
        wait_ready(ctx, cluster, &crds, None, Duration::from_secs(60)).await?;
    }
    for &i in &late {
        cluster.place(&mut objs[i]).await.map_err(failed)?;
        match cluster.apply(&objs[i], false).await {
            Ok(_) => ctx
                .io
                .log("apply", format!("applied {}", describe(&objs[i]))),
            Err(e) => return Err(StepResult::failed(format!("apply failed: {e}"))),
        }
    }
    Ok(())
}

const READINESS_FAILING: &str = "running, readiness probe failing";

/// Why a workload's pods are not ready, one line per pod with a reason.
async fn pod_problems(cluster: &Cluster, workload: &Value) -> Vec<String> {
    let selector = objects::label_selector(workload.pointer("/spec/selector/matchLabels"));
    if selector.is_empty() {
        return Vec::new();
    }
    let Ok(pods) = workload::pods(cluster, &selector).await else {
        return Vec::new();
    };
    pods.iter().flat_map(pod_problem).collect()
}

/// Why one pod is not ready: its waiting containers, else its scheduling, else a failing
/// readiness probe.
fn pod_problem(p: &k8s_openapi::api::core::v1::Pod) -> Vec<String> {
    let name = p.metadata.name.as_deref().unwrap_or("?");
    let status = p.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.unwrap_or_default();
    let waiting = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
        c.state.as_ref().and_then(|s| s.waiting.clone())
    };
    let mut out = Vec::new();
    for c in &statuses {
        if let Some(reason) = waiting(c).and_then(|w| w.reason) {
            out.push(format!(
                "pod {name}: {reason} (restarts {})",
                c.restart_count
            ));
        }
    }
    let conditions = status.conditions.unwrap_or_default();
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        out.push(format!(
            "pod {name}: unschedulable ({})",
            c.message.as_deref().unwrap_or_default()
        ));
    } else if statuses.iter().all(|c| waiting(c).is_none())
        && conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
        && status.phase.as_deref() == Some("Running")
    {
        out.push(format!("pod {name}: {READINESS_FAILING}"));
    }
    out
}

/// Waits until every object in `objs` is ready, or `timeout` passes. Returns one piece of
/// evidence per object.
pub async fn wait_ready(
    ctx: &StepCtx,
    cluster: &Cluster,
    objs: &[Value],
    wait: Option<&WaitFor>,
    timeout: Duration,
) -> Result<Vec<Evidence>, StepResult> {
    let deadline = Instant::now() + timeout;
    let mut said: HashSet<String> = HashSet::new();
    let mut unready: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
    loop {
        let mut pending = Vec::new();
        let mut evidence = Vec::new();
        for o in objs {
            let live = match cluster.get(o).await {
                Ok(Some(live)) => live,
                Ok(None) => {
                    pending.push(format!("{}: not found", describe(o)));
                    continue;
                }
                Err(e) => return Err(infra_failure(e)),
            };
            let is_workload = live["kind"]
                .as_str()
                .is_some_and(|k| WORKLOADS.contains(&k));
            // An explicit condition applies to the objects that report readiness (not to a
            // Secret or a Service); workloads wait for their rollout.
            let kind = live["kind"].as_str().unwrap_or_default();
            let w = wait.filter(|_| !is_workload && !objects::ready_on_apply(kind));
            match objects::readiness(&live, w) {
                Readiness::Ready => {
                    evidence.push(Evidence::new(describe(o), Verdict::Pass, "ready"))
                }
                Readiness::Failed(why) => {
                    return Err(StepResult::judged(
                        Verdict::Fail,
                        format!("{}: {why}", describe(o)),
                        vec![Evidence::new(describe(o), Verdict::Fail, why)],
                    ));
                }
                Readiness::Pending(why) => {
                    let line = format!("{}: {why}", describe(o));
                    if said.insert(line.clone()) {
                        ctx.io.log("wait", format!("waiting for {line}"));
                    }
                    if is_workload {
                        for problem in pod_problems(cluster, &live).await {
                            // Readiness takes a moment on a healthy pod: only a lasting
                            // failure is worth a line.
                            let since =
                                *unready.entry(problem.clone()).or_insert_with(Instant::now);
                            let lasting = !problem.ends_with(READINESS_FAILING)
                                || since.elapsed() >= Duration::from_secs(5);
                            if lasting && said.insert(problem.clone()) {
                                ctx.io.log("pods", problem);
                            }
                        }
                    }
                    pending.push(line);
                }
            }
        }
        if pending.is_empty() {
            return Ok(evidence);
        }
        if Instant::now() >= deadline {
            let mut ev = evidence;
            ev.extend(pending.iter().map(|p| {
                let (what, why) = p.split_once(": ").unwrap_or((p, ""));
                Evidence::new(what, Verdict::Fail, why)
            }));
            return Err(StepResult::judged(
                Verdict::Fail,
                format!(
                    "not ready after {}: {}",
                    format_duration(timeout),
                    pending.join("; ")
                ),
                ev,
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn timeout_of(w: Option<&WaitFor>) -> Duration {
    w.and_then(|w| w.timeout)
        .map(|t| t.get())
        .unwrap_or(DEFAULT_WAIT)
}

/// Runs an `infra` step.
pub async fn infra(step: &InfraStep, ctx: &mut StepCtx) -> StepResult {
    let cluster = match connect(ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let paths: Vec<String> = step.manifests.iter().map(|m| m.value.clone()).collect();
    let mut objs = match manifests(ctx, &cluster, &paths, None).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(render) = &step.render {
        match rendered(ctx, render).await {
            Ok(mut more) => {
                for o in &mut more {
                    if let Err(e) = cluster.place(o).await {
                        return failed(e);
                    }
                }
                objs.extend(more);
            }
            Err(e) => return failed(e),
        }
    }
    if let Err(r) = apply_all(ctx, &cluster, &mut objs).await {
        return r;
    }
    if step.prune
        && let Err(e) = prune(ctx, &cluster, &objs).await
    {
        return StepResult::failed(format!("prune failed: {e}"));
    }
    match wait_ready(
        ctx,
        &cluster,
        &objs,
        step.wait_for.as_ref(),
        timeout_of(step.wait_for.as_ref()),
    )
    .await
    {
        Ok(evidence) => StepResult::judged(
            Verdict::Pass,
            format!("{} infrastructure objects applied and ready", objs.len()),
            evidence,
        ),
        Err(r) => r,
    }
}

/// Deletes what an earlier run of this step applied and the set no longer holds. The set
/// is kept in a ConfigMap beside it, so any machine's next run sees it.
async fn prune(ctx: &StepCtx, cluster: &Cluster, objs: &[Value]) -> Result<(), Error> {
    let name = crate::kube::lease::name(&ctx.service, &format!("{}-{}", ctx.stage, ctx.step))
        .replacen("glidepath-", "glidepath-applied-", 1);
    let records = cluster.namespaced::<ConfigMap>();
    let identity = |o: &Value| {
        serde_json::json!({
            "apiVersion": o["apiVersion"], "kind": o["kind"],
            "metadata": { "name": o.pointer("/metadata/name"), "namespace": o.pointer("/metadata/namespace") },
        })
    };
    let now: Vec<Value> = objs.iter().map(identity).collect();
    let before: Vec<Value> = kinds::get(&records, &name)
        .await?
        .and_then(|cm| cm.data?.remove("objects"))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for old in before.iter().filter(|o| !now.contains(o)) {
        match cluster.delete(old).await {
            Ok(()) => {}
            // Its kind is gone from the cluster (a CRD removed): so is the object.
            Err(Error::NotServed { .. }) => continue,
            Err(e) => return Err(e),
        }
        ctx.io.log(
            "prune",
            format!("deleted {}, no longer in the set", describe(old)),
        );
    }
    let record = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(cluster.namespace.clone()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "objects".to_owned(),
            Value::Array(now).to_string(),
        )])),
        ..ConfigMap::default()
    };
    kinds::apply(&records, &record).await.map(drop)
}

/// The manifests a render command prints (`helm template ...`, `kubectl kustomize ...`).
async fn rendered(ctx: &StepCtx, argv: &[String]) -> Result<Vec<Value>, Error> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::BadInput("render: an empty command".into()));
    };
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&ctx.base_dir)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::BadInput(format!("render: cannot run {program}: {e}")))?;
    if !out.status.success() {
        return Err(Error::BadInput(format!(
            "render: {program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    objects::parse_manifests(
        &String::from_utf8_lossy(&out.stdout),
        &format!("output of {program}"),
    )
}

/// Runs a `deploy` step.
pub async fn deploy(step: &DeployStep, ctx: &mut StepCtx) -> StepResult {
    let cluster = match connect(ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let paths: Vec<String> = step.manifests.iter().map(|m| m.value.clone()).collect();
    let mut objs = match manifests(ctx, &cluster, &paths, step.image.as_deref()).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = apply_all(ctx, &cluster, &mut objs).await {
        return r;
    }
    let workloads: Vec<Value> = objs
        .iter()
        .filter(|o| o["kind"].as_str().is_some_and(|k| WORKLOADS.contains(&k)))
        .cloned()
        .collect();
    match wait_ready(
        ctx,
        &cluster,
        &workloads,
        None,
        timeout_of(step.wait_for.as_ref()),
    )
    .await
    {
        Ok(evidence) => StepResult::judged(
            Verdict::Pass,
            format!(
                "applied {} objects; {} rolled out",
                objs.len(),
                workloads
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            evidence,
        ),
        Err(r) => r,
    }
}
