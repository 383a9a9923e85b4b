//! The resource types the sandbox serves: the built-in kinds, and the kinds CRDs add at run
//! time. Discovery, routing and validation all read this one registry.

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, such as `v1`.
    pub version: String,
    /// Kind, such as `Deployment`.
    pub kind: String,
    /// Plural resource name in URLs, such as `deployments`.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names kubectl accepts (`deploy`).
    pub short_names: Vec<String>,
    /// Subresources served (`status`, `scale`, `log`).
    pub subresources: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Which verbs the resource serves.
    pub verbs: Verbs,
}

/// The verb sets resources come with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbs {
    /// Every verb.
    All,
    /// Only `create` (reviews such as SelfSubjectAccessReview).
    CreateOnly,
}

impl Kind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The lower-cased kind, as kubectl names one object of it.
    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }

    /// `plural.group` (or `plural` in the core group), as errors name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The verbs, as discovery lists them.
    pub fn verb_list(&self) -> Vec<&'static str> {
        match self.verbs {
            Verbs::All => vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::CreateOnly => vec!["create"],
        }
    }

    /// True when objects of this kind carry a `spec` whose changes bump `metadata.generation`.
    pub fn has_generation(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "ConfigMap" | "Secret" | "Event" | "ServiceAccount" | "Namespace" | "Lease"
        )
    }
}

/// Namespaced or cluster-scoped, in the built-in table.
const NAMESPACED: bool = true;
const CLUSTER: bool = false;

/// A row of the built-in table: (group, version, kind), plural, scope, short names,
/// subresources, in the `all` category, verbs.
type Builtin = (
    (&'static str, &'static str, &'static str),
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    Verbs,
);

/// The kinds every sandbox serves from the start.
#[rustfmt::skip]
const BUILTINS: [Builtin; 25] = [
    (("", "v1", "Namespace"), "namespaces", CLUSTER, &["ns"], &["status"], false, Verbs::All),
    (("", "v1", "ConfigMap"), "configmaps", NAMESPACED, &["cm"], &[], false, Verbs::All),
    (("", "v1", "Secret"), "secrets", NAMESPACED, &[], &[], false, Verbs::All),
    (("", "v1", "Service"), "services", NAMESPACED, &["svc"], &["status"], true, Verbs::All),
    (("", "v1", "ServiceAccount"), "serviceaccounts", NAMESPACED, &["sa"], &[], false, Verbs::All),
    (("", "v1", "Pod"), "pods", NAMESPACED, &["po"], &["status", "log"], true, Verbs::All),
    (("", "v1", "Event"), "events", NAMESPACED, &["ev"], &[], false, Verbs::All),
    (("", "v1", "Node"), "nodes", CLUSTER, &["no"], &["status"], false, Verbs::All),
    (("", "v1", "PersistentVolumeClaim"), "persistentvolumeclaims", NAMESPACED, &["pvc"], &["status"], false, Verbs::All),
    (("apps", "v1", "Deployment"), "deployments", NAMESPACED, &["deploy"], &["status", "scale"], true, Verbs::All),
    (("apps", "v1", "ReplicaSet"), "replicasets", NAMESPACED, &["rs"], &["status", "scale"], true, Verbs::All),
    (("batch", "v1", "Job"), "jobs", NAMESPACED, &[], &["status"], true, Verbs::All),
    (("coordination.k8s.io", "v1", "Lease"), "leases", NAMESPACED, &[], &[], false, Verbs::All),
    (("storage.k8s.io", "v1", "StorageClass"), "storageclasses", CLUSTER, &["sc"], &[], false, Verbs::All),
    (("networking.k8s.io", "v1", "IngressClass"), "ingressclasses", CLUSTER, &[], &[], false, Verbs::All),
    (("networking.k8s.io", "v1", "Ingress"), "ingresses", NAMESPACED, &["ing"], &["status"], false, Verbs::All),
    (("policy", "v1", "PodDisruptionBudget"), "poddisruptionbudgets", NAMESPACED, &["pdb"], &["status"], false, Verbs::All),
    (("rbac.authorization.k8s.io", "v1", "Role"), "roles", NAMESPACED, &[], &[], false, Verbs::All),
    (("rbac.authorization.k8s.io", "v1", "RoleBinding"), "rolebindings", NAMESPACED, &[], &[], false, Verbs::All),
    (("rbac.authorization.k8s.io", "v1", "ClusterRole"), "clusterroles", CLUSTER, &[], &[], false, Verbs::All),
    (("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), "clusterrolebindings", CLUSTER, &[], &[], false, Verbs::All),
    (("scheduling.k8s.io", "v1", "PriorityClass"), "priorityclasses", CLUSTER, &["pc"], &[], false, Verbs::All),
    (("apiextensions.k8s.io", "v1", "CustomResourceDefinition"), "customresourcedefinitions", CLUSTER, &["crd", "crds"], &["status"], false, Verbs::All),
    (("authorization.k8s.io", "v1", "SelfSubjectAccessReview"), "selfsubjectaccessreviews", CLUSTER, &[], &[], false, Verbs::CreateOnly),
    (("authentication.k8s.io", "v1", "SelfSubjectReview"), "selfsubjectreviews", CLUSTER, &[], &[], false, Verbs::CreateOnly),
];

/// The kinds every sandbox serves from the start.
pub fn builtins() -> Vec<Kind> {
    BUILTINS
        .iter()
        .map(
            |&((group, version, kind), plural, namespaced, short, sub, all, verbs)| Kind {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                namespaced,
                short_names: short.iter().map(|s| (*s).into()).collect(),
                subresources: sub.iter().map(|s| (*s).into()).collect(),
                categories: if all { vec!["all".into()] } else { Vec::new() },
                verbs,
            },
        )
        .collect()
}

/// The kinds a CRD object declares (one per served version), if it is well formed.
pub fn from_crd(crd: &Value) -> Result<Vec<Kind>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind is required")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural is required")?;
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("Namespaced");
    let expected = format!("{plural}.{group}");
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != expected {
        return Err(format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group: \"{expected}\""
        ));
    }
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name is required")?;
        let mut sub = Vec::new();
        if v.pointer("/subresources/status").is_some() {
            sub.push("status".to_owned());
        }
        if v.pointer("/subresources/scale").is_some() {
            sub.push("scale".to_owned());
        }
        out.push(Kind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: scope != "Cluster",
            short_names: strings(names.get("shortNames")),
            subresources: sub,
            categories: strings(names.get("categories")),
            verbs: Verbs::All,
        });
    }
    if out.is_empty() {
        return Err("spec.versions has no served version".into());
    }
    Ok(out)
}

/// The registry: built-ins first, then CRD kinds in the order they were established.
#[derive(Debug, Clone)]
pub struct Registry {
    kinds: Vec<Kind>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { kinds: builtins() }
    }
}

impl Registry {
    /// Every served kind.
    pub fn all(&self) -> &[Kind] {
        &self.kinds
    }

    /// The kind served at `group/version/plural`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&Kind> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// The kind with this apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Kind> {
        self.kinds
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind)
    }

    /// Adds (or replaces) the kinds of a CRD.
    pub fn register(&mut self, kinds: Vec<Kind>) {
        for k in kinds {
            self.kinds.retain(|x| {
                !(x.group == k.group && x.version == k.version && x.plural == k.plural)
            });
            self.kinds.push(k);
        }
    }

    /// Removes the kinds of a deleted CRD.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.kinds
            .retain(|k| !(k.group == group && k.plural == plural));
    }

    /// Groups in discovery order (core excluded), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for k in self.kinds.iter().filter(|k| !k.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == k.group) {
                Some((_, versions)) if !versions.contains(&k.version) => {
                    versions.push(k.version.clone())
                }
                Some(_) => {}
                None => out.push((k.group.clone(), vec![k.version.clone()])),
            }
        }
        out
    }

    /// The kinds of one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&Kind> {
        self.kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .collect()
    }
}

/// The resource entry of aggregated discovery (`apidiscovery.k8s.io/v2`).
pub fn aggregated_resource(k: &Kind) -> Value {
    let mut subs = Vec::new();
    for s in &k.subresources {
        let (kind, group, version) = match s.as_str() {
            "scale" => ("Scale", "autoscaling", "v1"),
            "log" => ("", "", ""),
            _ => (k.kind.as_str(), k.group.as_str(), k.version.as_str()),
        };
        let verbs: Vec<&str> = match s.as_str() {
            "log" => vec!["get"],
            _ => vec!["get", "patch", "update"],
        };
        let mut sub = json!({ "subresource": s, "verbs": verbs });
        if !kind.is_empty() {
            sub["responseKind"] = json!({ "group": group, "version": version, "kind": kind });
        }
        subs.push(sub);
    }
    json!({
        "resource": k.plural,
        "responseKind": { "group": k.group, "version": k.version, "kind": k.kind },
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular(),
        "verbs": k.verb_list(),
        "shortNames": k.short_names,
        "categories": k.categories,
        "subresources": subs,
    })
}

/// The resource entries of a legacy `APIResourceList`.
pub fn legacy_resources(k: &Kind) -> Vec<Value> {
    let mut out = vec![json!({
        "name": k.plural,
        "singularName": k.singular(),
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": k.verb_list(),
        "shortNames": k.short_names,
        "categories": k.categories,
    })];
    for s in &k.subresources {
        let kind = if s == "scale" {
            "Scale"
        } else {
            k.kind.as_str()
        };
        out.push(json!({
            "name": format!("{}/{s}", k.plural),
            "singularName": "",
            "namespaced": k.namespaced,
            "kind": kind,
            "verbs": if s == "log" { vec!["get"] } else { vec!["get", "patch", "update"] },
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_declares_its_kinds() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}
        });
        let kinds = from_crd(&crd).unwrap();
        assert_eq!(kinds.len(), 1);
        assert_eq!(kinds[0].api_version(), "example.com/v1");
        assert_eq!(kinds[0].short_names, vec!["wd"]);
        assert_eq!(kinds[0].subresources, vec!["status"]);
        let bad = json!({"metadata": {"name": "wrong"}, "spec": crd["spec"].clone()});
        assert_eq!(
            from_crd(&bad).unwrap_err(),
            "metadata.name must be spec.names.plural+\".\"+spec.group: \"widgets.example.com\""
        );
    }

    #[test]
    fn registry_groups_and_lookups() {
        let r = Registry::default();
        assert!(
            r.by_plural("apps", "v1", "deployments")
                .is_some_and(|k| k.kind == "Deployment")
        );
        assert!(r.by_kind("v1", "Pod").is_some_and(|k| k.namespaced));
        assert!(
            r.groups()
                .iter()
                .any(|(g, v)| g == "apps" && v == &vec!["v1".to_owned()])
        );
    }
}
