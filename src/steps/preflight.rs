//! `preflight`: the platform contract, checked before anything changes. Every check is a
//! line of evidence with the value found: the server version against a semver range;
//! StorageClasses, IngressClasses, GatewayClasses, PriorityClasses, CRDs (present and
//! Established) and namespaces; every manifest later steps of the stage will apply (its
//! kind is served, the classes it names exist, the server accepts it in a dry run); and the
//! permissions the run needs (SelfSubjectAccessReview). One failing check fails the step,
//! with every failing check listed.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::apply::connect;
use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::kube::objects::{Cluster, Comparison, describe, load_manifests};
use crate::kube::{Error, kinds};
use crate::pipeline::StepKind;
use crate::pipeline::model::{Contract, PreflightStep};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// A `kind: PlatformContract` file: the platform team's promise, kept apart from pipelines.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractFile {
    /// `glidepath/v1`.
    pub api_version: String,
    /// `PlatformContract`.
    pub kind: String,
    /// Its name.
    #[serde(default)]
    pub metadata: Value,
    /// The promises.
    pub spec: Contract,
}

/// Reads a contract file.
pub fn load_contract(path: &std::path::Path) -> Result<Contract, Error> {
    let text = crate::input::read_text(path)
        .map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))?;
    let file: ContractFile = crate::yaml::from_str(&text)
        .map_err(|e: crate::yaml::Error| Error::BadInput(e.in_file(path).to_string()))?;
    if file.kind != "PlatformContract" {
        return Err(Error::BadInput(format!(
            "{}: kind is {}; expected PlatformContract",
            path.display(),
            file.kind
        )));
    }
    // Policy files are named relative to the contract file.
    let mut spec = file.spec;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    for p in &mut spec.policies {
        p.value = dir.join(&p.value).display().to_string();
    }
    Ok(spec)
}

/// `a` with `b`'s promises added.
fn merge(mut a: Contract, b: Contract) -> Contract {
    a.kubernetes = a.kubernetes.or(b.kubernetes);
    a.storage_classes.extend(b.storage_classes);
    a.ingress_classes.extend(b.ingress_classes);
    a.gateway_classes.extend(b.gateway_classes);
    a.priority_classes.extend(b.priority_classes);
    a.crds.extend(b.crds);
    a.namespaces.extend(b.namespaces);
    a.policies.extend(b.policies);
    a
}

/// A version as `(major, minor, patch)` from `v1.32.4-gke.1` or `1.32`.
fn version(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let core = s.split(['-', '+']).next()?;
    let mut parts = core
        .split('.')
        .map(|p| p.trim_end_matches('+').parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, patch))
}

/// Whether `found` satisfies a range such as `>=1.27, <1.34`, `^1.28`, `~1.29` or `1.32`.
pub fn in_range(found: (u64, u64, u64), range: &str) -> Result<bool, Error> {
    let mut ok = true;
    // `>= 1.27` is `>=1.27`: an operator binds to the version after it.
    let mut compact = range.to_owned();
    for op in [">=", "<=", ">", "<", "=", "^", "~"] {
        while compact.contains(&format!("{op} ")) {
            compact = compact.replace(&format!("{op} "), op);
        }
    }
    for c in compact
        .split([',', ' '])
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let (op, rest) = [">=", "<=", ">", "<", "=", "^", "~"]
            .iter()
            .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("", c));
        let v = version(rest)
            .ok_or_else(|| Error::BadInput(format!("`{c}` is not a version constraint")))?;
        let minor_only = rest.trim().trim_start_matches('v').split('.').count() < 3;
        let holds = match op {
            ">=" => found >= v,
            "<=" => found <= v || (minor_only && (found.0, found.1) == (v.0, v.1)),
            ">" => found > v && !(minor_only && (found.0, found.1) == (v.0, v.1)),
            "<" => found < v,
            "^" => found >= v && found.0 == v.0,
            "~" => found >= v && (found.0, found.1) == (v.0, v.1),
            _ if minor_only => (found.0, found.1) == (v.0, v.1),
            _ => found == v,
        };
        ok &= holds;
    }
    Ok(ok)
}

fn pass(check: String, value: impl Into<String>) -> Evidence {
    Evidence::new(check, Verdict::Pass, value)
}

fn failed(check: String, value: impl Into<String>, expected: impl Into<String>) -> Evidence {
    Evidence {
        expected: Some(expected.into()),
        ..Evidence::new(check, Verdict::Fail, value)
    }
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Whether the cluster-scoped `name` of kind `K` exists.
async fn exists<K>(cluster: &Cluster, name: &str) -> Result<bool, Error>
where
    K: kinds::Kind + ::kube::Resource<Scope = ::kube::core::ClusterResourceScope>,
{
    Ok(kinds::get(&cluster.cluster_scoped::<K>(), name)
        .await?
        .is_some())
}

/// Whether the class `kind` `name` exists. A GatewayClass is looked up through discovery,
/// since a cluster without the Gateway API does not serve the kind at all (and says so).
async fn class_exists(cluster: &Cluster, kind: &str, name: &str) -> Result<bool, Error> {
    match kind {
        "StorageClass" => exists::<StorageClass>(cluster, name).await,
        "IngressClass" => exists::<IngressClass>(cluster, name).await,
        "PriorityClass" => exists::<PriorityClass>(cluster, name).await,
        _ => {
            let o = json!({ "apiVersion": "gateway.networking.k8s.io/v1", "kind": kind, "metadata": { "name": name } });
            Ok(cluster.get(&o).await?.is_some())
        }
    }
}

/// `check` as evidence: `present`, `missing` or why it could not be read.
fn presence(check: String, found: Result<bool, Error>) -> Evidence {
    match found {
        Ok(true) => pass(check, "present"),
        Ok(false) => failed(check, "missing", "present"),
        Err(e) => failed(check, e.to_string(), "present"),
    }
}

/// Checks the cluster against a contract; one piece of evidence per promise.
pub async fn check_contract(cluster: &Cluster, contract: &Contract) -> Vec<Evidence> {
    let mut out = Vec::new();
    if let Some(range) = &contract.kubernetes {
        let check = format!("Kubernetes version {range}");
        match cluster.client.apiserver_version().await {
            Ok(info) => {
                let text = info.git_version.clone();
                match (
                    version(&text),
                    in_range(version(&text).unwrap_or_default(), range),
                ) {
                    (Some(_), Ok(true)) => out.push(pass(check, text)),
                    (Some(_), Ok(false)) => out.push(failed(check, text, range.clone())),
                    (_, Err(e)) => out.push(failed(check, text, e.to_string())),
                    (None, _) => out.push(failed(check, text, "a version the server reports")),
                }
            }
            Err(e) => out.push(failed(
                check,
                format!("cannot read /version: {e}"),
                range.clone(),
            )),
        }
    }
    let sorted = |names: &[String]| names.iter().cloned().collect::<BTreeSet<_>>();
    for (kind, names) in [
        ("StorageClass", &contract.storage_classes),
        ("IngressClass", &contract.ingress_classes),
        ("GatewayClass", &contract.gateway_classes),
        ("PriorityClass", &contract.priority_classes),
    ] {
        for name in sorted(names) {
            let found = class_exists(cluster, kind, &name).await;
            out.push(presence(format!("{kind} {name}"), found));
        }
    }
    let crds = cluster.cluster_scoped::<CustomResourceDefinition>();
    for name in sorted(&contract.crds) {
        let check = format!("CRD {name}");
        match kinds::get(&crds, &name).await {
            Ok(Some(crd)) if established(&crd) => out.push(pass(check, "Established")),
            Ok(Some(_)) => out.push(failed(check, "present, not Established", "Established")),
            Ok(None) => out.push(failed(check, "missing", "present and Established")),
            Err(e) => out.push(failed(check, e.to_string(), "present and Established")),
        }
    }
    for name in sorted(&contract.namespaces) {
        let found = exists::<Namespace>(cluster, &name).await;
        out.push(presence(format!("Namespace {name}"), found));
    }
    out
}

/// The class references a manifest makes: `(kind, name)`.
fn references(o: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut add = |kind: &'static str, p: &str| {
        // An empty class name is a valid choice (no class), not a reference.
        if let Some(n) = o
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            out.push((kind, n.to_owned()));
        }
    };
    add("StorageClass", "/spec/storageClassName");
    add("IngressClass", "/spec/ingressClassName");
    add("GatewayClass", "/spec/gatewayClassName");
    add("PriorityClass", "/spec/priorityClassName");
    add("PriorityClass", "/spec/template/spec/priorityClassName");
    if let Some(claims) = o
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
    {
        for c in claims {
            if let Some(n) = c.pointer("/spec/storageClassName").and_then(Value::as_str) {
                out.push(("StorageClass", n.to_owned()));
            }
        }
    }
    out
}

/// The manifests a step applies (infra, deploy, release), image set, `${var}` filled.
pub fn step_manifests(
    step: &crate::pipeline::Step,
    base_dir: &std::path::Path,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Value>, Error> {
    let (paths, image) = match &step.kind {
        StepKind::Infra(i) => (
            i.manifests
                .iter()
                .map(|m| m.value.clone())
                .collect::<Vec<_>>(),
            None,
        ),
        StepKind::Deploy(d) => (
            d.manifests.iter().map(|m| m.value.clone()).collect(),
            d.image.clone(),
        ),
        StepKind::Release(r) => (
            r.manifests.iter().map(|m| m.value.clone()).collect(),
            r.image.clone(),
        ),
        _ => return Ok(Vec::new()),
    };
    let mut objs = load_manifests(&paths, base_dir, vars)?;
    if let Some(image) = image {
        let workload = |o: &Value| {
            o["kind"]
                .as_str()
                .is_some_and(|k| ["Deployment", "StatefulSet", "DaemonSet"].contains(&k))
        };
        let only_one = objs.iter().filter(|o| workload(o)).count() == 1;
        for o in objs.iter_mut().filter(|o| workload(o)) {
            crate::kube::objects::set_image(o, &image, only_one);
        }
    }
    Ok(objs)
}

/// The manifests the steps after this one in the stage will apply.
pub fn stage_manifests(ctx: &StepCtx) -> Result<Vec<Value>, Error> {
    let Some(stage) = ctx.pipeline.stages.iter().find(|s| s.name == ctx.stage) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for step in stage
        .steps
        .iter()
        .skip_while(|s| s.name != ctx.step)
        .skip(1)
    {
        out.extend(step_manifests(step, &ctx.base_dir, &ctx.vars)?);
    }
    Ok(out)
}

/// Checks each manifest: kind served, classes present, accepted by a server dry run.
async fn check_manifests(cluster: &Cluster, objs: &mut [Value]) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (mut drifted, mut new) = (0, 0);
    for o in objs.iter_mut() {
        let what = describe(o);
        if let Err(e) = cluster.place(o).await {
            out.push(failed(
                format!("{what}: kind served"),
                e.to_string(),
                "served by the cluster",
            ));
            continue;
        }
        let what = describe(o);
        for (kind, name) in references(o) {
            let found = class_exists(cluster, kind, &name).await;
            out.push(presence(format!("{what}: {kind} {name}"), found));
        }
        // The apply as the deploy will make it (unforced): a field another manager holds
        // fails here, naming that manager, before anything is changed.
        let applied = cluster.apply(o, true).await;
        match applied.and(cluster.compare(o).await) {
            Ok(c) => {
                out.push(pass(format!("{what}: server dry run"), "accepted"));
                match c {
                    Comparison::Differs(..) => drifted += 1,
                    Comparison::New(_) => new += 1,
                    Comparison::Same => {}
                }
            }
            Err(e) => out.push(failed(
                format!("{what}: server dry run"),
                e.to_string(),
                "accepted",
            )),
        }
    }
    if !objs.is_empty() {
        out.push(pass(
            "drift".into(),
            format!(
                "{drifted} of {} objects differ from the cluster, {new} are new",
                objs.len()
            ),
        ));
    }
    out
}

/// Asks the server whether the run may do what it needs, per resource.
async fn check_permissions(cluster: &Cluster, objs: &[Value]) -> Vec<Evidence> {
    use std::collections::BTreeMap;
    let mut wanted: BTreeMap<(String, String, String), BTreeSet<&str>> = BTreeMap::new();
    for o in objs {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let Ok((ar, _)) = cluster.resource(api_version, kind).await else {
            continue;
        };
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let verbs = wanted
            .entry((ar.group.clone(), ar.plural.clone(), ns))
            .or_default();
        verbs.extend(["get", "create", "patch"]);
        if kind == "Deployment" {
            verbs.insert("delete");
        }
    }
    let api = cluster.cluster_scoped::<SelfSubjectAccessReview>();
    let mut out = Vec::new();
    for ((group, resource, ns), verbs) in wanted {
        for verb in verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(group.clone()),
                        resource: Some(resource.clone()),
                        verb: Some(verb.to_owned()),
                        namespace: Some(ns.clone()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let check = format!(
                "may {verb} {resource}{}{}",
                if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                },
                if ns.is_empty() {
                    String::new()
                } else {
                    format!(" in {ns}")
                }
            );
            let answer = kinds::create(&api, &review).await;
            match answer.map(|r| r.status.unwrap_or_default()) {
                Ok(status) if status.allowed => out.push(pass(check, "allowed")),
                Ok(status) => out.push(failed(
                    check,
                    format!(
                        "denied{}",
                        status.reason.map(|x| format!(": {x}")).unwrap_or_default()
                    ),
                    "allowed",
                )),
                Err(e) => out.push(failed(check, e.to_string(), "allowed")),
            }
        }
    }
    out
}

/// The pipeline's contract, with its contract file's promises added. Policy paths come out
/// resolved: the pipeline's relative to its folder, the contract file's relative to that
/// file.
pub fn contract_of(ctx: &StepCtx) -> Result<Contract, Error> {
    let Some(mut c) = ctx.pipeline.file.spec.contract.clone() else {
        return Ok(Contract::default());
    };
    for p in &mut c.policies {
        p.value = ctx.base_dir.join(&p.value).display().to_string();
    }
    match &c.file {
        Some(f) => Ok(merge(
            c.clone(),
            load_contract(&ctx.base_dir.join(&f.value))?,
        )),
        None => Ok(c),
    }
}

/// Runs a `preflight` step.
pub async fn run(step: &PreflightStep, ctx: &mut StepCtx) -> StepResult {
    let contract = match contract_of(ctx) {
        Ok(c) => c,
        Err(e) => return StepResult::failed(e.to_string()),
    };
    let cluster = match connect(ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut evidence = check_contract(&cluster, &contract).await;
    let mut objs = match stage_manifests(ctx) {
        Ok(o) => o,
        Err(e) => return StepResult::failed(e.to_string()),
    };
    if step.manifests.unwrap_or(true) {
        evidence.extend(check_manifests(&cluster, &mut objs).await);
    } else {
        // Permissions are asked in the namespaces the objects will land in.
        for o in &mut objs {
            let _ = cluster.place(o).await;
        }
    }
    if step.permissions.unwrap_or(true) {
        evidence.extend(check_permissions(&cluster, &objs).await);
    }
    if !contract.policies.is_empty() {
        let paths: Vec<std::path::PathBuf> = contract
            .policies
            .iter()
            .map(|p| std::path::PathBuf::from(&p.value))
            .collect();
        evidence.extend(crate::policy::check(&paths, &objs));
    }
    for e in &evidence {
        ctx.io.log(
            "preflight",
            format!(
                "{} {}: {}",
                if e.verdict == Verdict::Pass {
                    "✓"
                } else {
                    "✗"
                },
                e.check,
                e.value.as_deref().unwrap_or("")
            ),
        );
    }
    let failing: Vec<String> = evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .map(|e| format!("{} ({})", e.check, e.value.as_deref().unwrap_or("")))
        .collect();
    if failing.is_empty() {
        StepResult::judged(
            Verdict::Pass,
            format!("{} pre-flight checks passed", evidence.len()),
            evidence,
        )
    } else {
        let shown: Vec<&str> = failing.iter().take(5).map(String::as_str).collect();
        let more = if failing.len() > 5 {
            format!(" and {} more", failing.len() - 5)
        } else {
            String::new()
        };
        StepResult::judged(
            Verdict::Fail,
            format!(
                "{} of {} pre-flight checks failed, nothing was changed: {}{more}",
                failing.len(),
                evidence.len(),
                shown.join("; ")
            ),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        let v = version("v1.32.4-gke.100").unwrap();
        assert_eq!(v, (1, 32, 4));
        assert!(in_range(v, ">=1.27").unwrap());
        assert!(in_range(v, ">=1.27, <1.34").unwrap());
        assert!(!in_range(v, "<1.32").unwrap());
        assert!(in_range(v, "<=1.32").unwrap());
        assert!(in_range(v, "1.32").unwrap());
        assert!(!in_range(v, "1.31").unwrap());
        assert!(in_range(v, "~1.32").unwrap());
        assert!(in_range(v, "^1.28").unwrap());
        assert!(!in_range(v, ">1.32").unwrap());
        assert!(in_range(v, "bogus").is_err());
        assert!(in_range(v, ">= 1.27, < 1.34").unwrap());
    }
}
