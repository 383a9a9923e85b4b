//! RBAC for impersonated requests. The sandbox's own user (no `Impersonate-User` header)
//! may do anything, as a cluster admin; a request that impersonates someone (`kubectl
//! --as`, a kubeconfig's `as:`) is allowed only when a Role or ClusterRole bound to that
//! user, one of their groups or their ServiceAccount grants it, the way the Kubernetes
//! RBAC authorizer decides. SelfSubjectAccessReviews answer for the impersonated user, so
//! a least-privilege role can be tried out on the sandbox before it goes to a cluster.

use serde_json::Value;

use super::Cluster;

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user name (`system:serviceaccount:NAMESPACE:NAME` for a ServiceAccount).
    pub user: String,
    /// Groups: those impersonated, and the ones Kubernetes adds (`system:authenticated`,
    /// and for a ServiceAccount `system:serviceaccounts` and `system:serviceaccounts:NS`).
    pub groups: Vec<String>,
}

impl Subject {
    /// The impersonated subject of a request: `Ok(None)` without impersonation headers;
    /// an error for headers the API server would refuse (groups without a user, values
    /// that are not text).
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Result<Option<Subject>, String> {
        let text = |v: &axum::http::HeaderValue| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| "an impersonation header is not valid text".to_owned())
        };
        let mut groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .map(text)
            .collect::<Result<_, _>>()?;
        let Some(user) = headers.get("impersonate-user") else {
            if groups.is_empty() {
                return Ok(None);
            }
            return Err("requested groups without impersonating a user".into());
        };
        let user = text(user)?;
        // As the API server adds them: a ServiceAccount's groups when none were asked
        // for, and `system:authenticated` for everyone but the anonymous user.
        if groups.is_empty()
            && let Some(ns) = user
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':').map(|(ns, _)| ns))
        {
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{ns}"));
        }
        if user != "system:anonymous" {
            groups.push("system:authenticated".into());
        }
        Ok(Some(Subject { user, groups }))
    }
}

/// What a request does, as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`, `log`), if any.
    pub subresource: Option<String>,
    /// The namespace of a namespaced request.
    pub namespace: Option<String>,
    /// The object's name, when the request names one.
    pub name: Option<String>,
}

impl Attributes {
    /// `deployments.apps "checkout"` as error messages name it.
    fn describe(&self) -> String {
        let resource = match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        };
        let qualified = if self.group.is_empty() {
            resource
        } else {
            format!("{resource}.{}", self.group)
        };
        match &self.name {
            Some(n) => format!("{qualified} \"{n}\""),
            None => qualified,
        }
    }

    /// The Forbidden message the real API server gives.
    pub fn forbidden(&self, who: &Subject) -> String {
        let scope = match &self.namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".into(),
        };
        let resource = match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        };
        format!(
            "{} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
            self.describe(),
            who.user,
            self.verb,
            self.group
        )
    }
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether one PolicyRule grants `a`.
fn rule_grants(rule: &Value, a: &Attributes) -> bool {
    let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
    let resource = match &a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.clone(),
    };
    let names = strings(rule, "resourceNames");
    // As Kubernetes matches resources: `*`, the exact `resource/subresource`, or
    // `*/subresource` (there is no `resource/*`).
    any(&strings(rule, "verbs"), &a.verb)
        && any(&strings(rule, "apiGroups"), &a.group)
        && (any(&strings(rule, "resources"), &resource)
            || a.subresource.as_ref().is_some_and(|sub| {
                strings(rule, "resources")
                    .iter()
                    .any(|r| *r == format!("*/{sub}"))
            }))
        && (names.is_empty() || a.name.as_ref().is_some_and(|n| names.contains(n)))
}

/// Whether a binding's subject list names `who` (`default_ns`: a RoleBinding's own
/// namespace, for ServiceAccount subjects that leave theirs out).
fn binds(binding: &Value, who: &Subject, default_ns: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str().unwrap_or_default() {
            "User" => who.user == name,
            "Group" => who.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let ns = s["namespace"].as_str().unwrap_or(default_ns);
                who.user == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

/// The rules of the role a binding refers to.
fn role_rules(cluster: &Cluster, binding: &Value, namespace: Option<&str>) -> Vec<Value> {
    let kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
    let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    if binding["roleRef"]["apiGroup"] != "rbac.authorization.k8s.io" {
        return Vec::new();
    }
    // A ClusterRoleBinding can only refer to a ClusterRole.
    let (plural, ns) = match (kind, namespace) {
        ("ClusterRole", _) => ("clusterroles", None),
        ("Role", Some(ns)) => ("roles", Some(ns)),
        _ => return Vec::new(),
    };
    let Some(k) = cluster.kind("rbac.authorization.k8s.io", plural) else {
        return Vec::new();
    };
    cluster
        .list(&k, ns)
        .0
        .iter()
        .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Whether `who` may do `a`; `Ok` carries the reason, as a SubjectAccessReview gives it.
pub fn authorize(cluster: &Cluster, who: &Subject, a: &Attributes) -> Result<String, String> {
    if who.groups.iter().any(|g| g == "system:masters") {
        return Ok("member of system:masters".into());
    }
    let kind = |plural| cluster.kind("rbac.authorization.k8s.io", plural);
    if let Some(k) = kind("clusterrolebindings") {
        for b in cluster.list(&k, None).0 {
            if binds(&b, who, "")
                && role_rules(cluster, &b, None)
                    .iter()
                    .any(|r| rule_grants(r, a))
            {
                return Ok(format!(
                    "allowed by ClusterRoleBinding \"{}\"",
                    b.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ));
            }
        }
    }
    if let (Some(ns), Some(k)) = (&a.namespace, kind("rolebindings")) {
        for b in cluster.list(&k, Some(ns)).0 {
            if binds(&b, who, ns)
                && role_rules(cluster, &b, Some(ns))
                    .iter()
                    .any(|r| rule_grants(r, a))
            {
                return Ok(format!(
                    "allowed by RoleBinding \"{}/{ns}\"",
                    b.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ));
            }
        }
    }
    Err(a.forbidden(who))
}

/// The user the sandbox's own kubeconfig authenticates as (it may do anything, as a member
/// of `system:masters` on a real cluster).
pub const OWN_USER: &str = "sandbox-admin";

/// A SelfSubjectReview's `status.userInfo`: the impersonated subject, else the sandbox's
/// own user, with the groups the API server would add.
pub fn user_info(subject: Option<&Subject>) -> Value {
    match subject {
        Some(s) => serde_json::json!({ "username": s.user, "groups": s.groups }),
        None => serde_json::json!({
            "username": OWN_USER,
            "groups": ["system:masters", "system:authenticated"],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let a = |verb: &str, resource: &str, sub: Option<&str>, name: Option<&str>| Attributes {
            verb: verb.into(),
            group: "apps".into(),
            resource: resource.into(),
            subresource: sub.map(str::to_owned),
            namespace: Some("shop".into()),
            name: name.map(str::to_owned),
        };
        let rule = json!({ "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"] });
        assert!(rule_grants(
            &rule,
            &a("get", "deployments", None, Some("x"))
        ));
        assert!(!rule_grants(
            &rule,
            &a("delete", "deployments", None, Some("x"))
        ));
        assert!(!rule_grants(
            &rule,
            &a("get", "deployments", Some("scale"), Some("x"))
        ));
        assert!(!rule_grants(&rule, &a("get", "replicasets", None, None)));
        let named = json!({ "apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"], "resourceNames": ["x"] });
        let no_such_form =
            json!({ "apiGroups": ["*"], "resources": ["deployments/*"], "verbs": ["*"] });
        assert!(!rule_grants(
            &no_such_form,
            &a("update", "deployments", Some("scale"), Some("x"))
        ));
        assert!(!rule_grants(
            &named,
            &a("update", "deployments", None, Some("x"))
        ));
        assert!(rule_grants(
            &named,
            &a("update", "deployments", Some("scale"), Some("x"))
        ));
        assert!(!rule_grants(
            &named,
            &a("update", "deployments", Some("scale"), Some("y"))
        ));
        let who = Subject {
            user: "system:serviceaccount:ci:glidepath".into(),
            groups: vec!["system:serviceaccounts:ci".into()],
        };
        assert!(binds(
            &json!({ "subjects": [{ "kind": "ServiceAccount", "name": "glidepath" }] }),
            &who,
            "ci"
        ));
        assert!(!binds(
            &json!({ "subjects": [{ "kind": "ServiceAccount", "name": "glidepath" }] }),
            &who,
            "shop"
        ));
        assert!(binds(
            &json!({ "subjects": [{ "kind": "Group", "name": "system:serviceaccounts:ci" }] }),
            &who,
            ""
        ));
        assert_eq!(
            a("patch", "deployments", None, Some("checkout")).forbidden(&who),
            "deployments.apps \"checkout\" is forbidden: User \"system:serviceaccount:ci:glidepath\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
        );
    }
}
