//! Traffic changed outside a running release: the HTTPRoute's weights (gateway-api) or the
//! Deployments' `spec.replicas` (replicas router) are no longer what the release set, as
//! when a GitOps controller syncs the original manifests or someone scales by hand. Found
//! by comparing the live objects with the release's last step, and worded with the field
//! managers that own the field now, so the run names who did it.

use serde_json::Value;

use super::plan::{Plan, replicas_split};
use super::routers::TrafficRouter;
use crate::events::{Evidence, Verdict};
use crate::kube::objects::reference;
use crate::kube::route;

/// One field of one object that no longer holds what the release set.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OutsideChange {
    /// `Deployment shop/checkout`, `HTTPRoute shop/checkout`.
    pub object: String,
    /// The field, as the API server's conflicts name it (`.spec.replicas`).
    pub field: &'static str,
    /// What it holds now: the replicas, or the percent the route sends to the new version.
    pub found: i64,
    /// What the release set there.
    pub set: i64,
    /// The traffic step the release was at (percent to the new version).
    pub weight: u8,
    /// The field managers that own the field now (glidepath's own name included when it
    /// owns it: another glidepath apply).
    pub managers: Vec<String>,
}

impl OutsideChange {
    /// The sentence the log, the traffic report and the step's summary carry.
    pub fn why(&self) -> String {
        let by = if self.managers.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = self.managers.iter().map(|m| format!("\"{m}\"")).collect();
            format!(" ({} now managed by {})", self.field, names.join(", "))
        };
        format!(
            "{}: it was changed outside the release{by}; stop the other writer (a GitOps sync, an autoscaler, a hand edit) while glidepath releases, then run again",
            self.shows()
        )
    }

    /// What the object shows against what the release set.
    fn shows(&self) -> String {
        let (object, found, set) = (&self.object, self.found, self.set);
        if self.field == REPLICAS {
            format!(
                "{object} has spec.replicas {found}, not the {set} the release set at {}%",
                self.weight
            )
        } else {
            format!("{object} sends {found}% to the new version, not the {set}% the release set")
        }
    }

    /// The step's evidence: the object's field, what it holds, what the release set, who.
    pub fn evidence(&self) -> Evidence {
        let by = if self.managers.is_empty() {
            "no field manager recorded".to_owned()
        } else {
            format!("managed by {}", self.managers.join(", "))
        };
        Evidence::new(
            format!("{} {}", self.object, self.field),
            Verdict::Error,
            format!("{} ({by})", self.found),
        )
        .expected(format!(
            "{} (set by the release at {}%)",
            self.set, self.weight
        ))
        .detail(self.why())
    }
}

/// The Deployment field the replicas router sets.
const REPLICAS: &str = ".spec.replicas";
/// The HTTPRoute field the gateway-api router sets (the backendRefs' weights).
const RULES: &str = ".spec.rules";

impl Plan {
    /// What of the traffic the release set at `weight` (out of `total` stable replicas)
    /// the cluster no longer shows; None while all of it holds or cannot be read.
    pub(super) async fn changed_outside(
        &self,
        weight: u8,
        total: i32,
        seen: &super::observe::Observed,
    ) -> Option<OutsideChange> {
        match self.router {
            TrafficRouter::HttpRoute => self.route_changed(weight, seen.actual?).await,
            TrafficRouter::Replicas => self.replicas_changed(weight, total, seen).await,
            TrafficRouter::ActiveService => None,
        }
    }

    /// The live HTTPRoute sends `actual`% to the canary, not the `weight`% set.
    async fn route_changed(&self, weight: u8, actual: u8) -> Option<OutsideChange> {
        if actual == weight {
            return None;
        }
        let route = self.route.as_deref()?;
        let ns = &self.cluster.namespace;
        let r = reference(route::API_VERSION, "HTTPRoute", ns, route);
        let live = self.cluster.get(&r).await.ok().flatten();
        Some(OutsideChange {
            object: format!("HTTPRoute {ns}/{route}"),
            field: RULES,
            found: i64::from(actual),
            set: i64::from(weight),
            weight,
            managers: live.as_ref().map(|l| owners(l, RULES)).unwrap_or_default(),
        })
    }

    /// The first Deployment of the release whose `spec.replicas` is not what the replicas
    /// router sized it to at `weight`.
    async fn replicas_changed(
        &self,
        weight: u8,
        total: i32,
        seen: &super::observe::Observed,
    ) -> Option<OutsideChange> {
        let [stable, canary, baseline] = replicas_split(total, weight, self.baseline.is_some());
        let expected = [
            ("stable", self.name.clone(), stable),
            ("new", self.canary_name(), canary),
            ("baseline", self.baseline_name(), baseline),
        ];
        for (role, name, want) in expected {
            let found = seen.desired(role);
            if i64::from(found) == i64::from(want) {
                continue;
            }
            let object = self.describe(&name);
            let r = reference("apps/v1", "Deployment", &self.cluster.namespace, &name);
            let live = self.cluster.get(&r).await.ok().flatten();
            return Some(OutsideChange {
                object,
                field: REPLICAS,
                found: i64::from(found),
                set: i64::from(want),
                weight,
                managers: live
                    .as_ref()
                    .map(|l| owners(l, REPLICAS))
                    .unwrap_or_default(),
            });
        }
        None
    }
}

/// The field managers of `live` that own `field` (`.spec.replicas`) or anything under it,
/// from its `managedFields`, each named once in the order the server lists them.
pub(super) fn owners(live: &Value, field: &str) -> Vec<String> {
    let path: String = field
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| format!("/f:{p}"))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    for m in entries.into_iter().flatten() {
        let owns = m.get("fieldsV1").and_then(|f| f.pointer(&path)).is_some();
        if let (true, Some(name)) = (owns, m["manager"].as_str())
            && !out.iter().any(|o| o == name)
        {
            out.push(name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_owners_of_a_field_come_from_managed_fields() {
        let live = json!({ "metadata": { "managedFields": [
            { "manager": "glidepath", "operation": "Apply",
              "fieldsV1": { "f:metadata": { "f:labels": {} }, "f:spec": { "f:template": {} } } },
            { "manager": "argocd", "operation": "Apply",
              "fieldsV1": { "f:spec": { "f:replicas": {}, "f:template": {} } } },
            { "manager": "kubectl", "operation": "Update", "subresource": "scale",
              "fieldsV1": { "f:spec": { "f:replicas": {} } } },
            { "manager": "argocd", "operation": "Update",
              "fieldsV1": { "f:spec": { "f:replicas": {} } } }
        ] } });
        assert_eq!(owners(&live, ".spec.replicas"), ["argocd", "kubectl"]);
        assert_eq!(owners(&live, ".spec.template"), ["glidepath", "argocd"]);
        assert!(owners(&live, ".spec.rules").is_empty());
        assert!(owners(&json!({}), ".spec.replicas").is_empty());
    }

    #[test]
    fn a_replicas_reset_names_the_object_the_field_and_the_manager() {
        let change = OutsideChange {
            object: "Deployment shop/checkout".into(),
            field: REPLICAS,
            found: 4,
            set: 3,
            weight: 25,
            managers: vec!["argocd".into()],
        };
        assert_eq!(
            change.why(),
            "Deployment shop/checkout has spec.replicas 4, not the 3 the release set at 25%: it was changed outside the release (.spec.replicas now managed by \"argocd\"); stop the other writer (a GitOps sync, an autoscaler, a hand edit) while glidepath releases, then run again"
        );
        let e = change.evidence();
        assert_eq!(e.check, "Deployment shop/checkout .spec.replicas");
        assert_eq!(e.verdict, Verdict::Error);
        assert_eq!(e.value.as_deref(), Some("4 (managed by argocd)"));
        assert_eq!(e.expected.as_deref(), Some("3 (set by the release at 25%)"));
        let route = OutsideChange {
            object: "HTTPRoute shop/checkout".into(),
            field: RULES,
            found: 0,
            set: 20,
            weight: 20,
            managers: vec![],
        };
        assert!(route.why().starts_with(
            "HTTPRoute shop/checkout sends 0% to the new version, not the 20% the release set: it was changed outside the release; stop"
        ));
    }
}
