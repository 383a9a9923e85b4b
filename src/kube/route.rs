//! Gateway API HTTPRoutes as a traffic router: the fields glidepath reads and writes
//! (`spec.rules[].backendRefs[]` names and weights), typed, with every other field kept as
//! it is. The `gateway-api` crate's bindings need kube 4 and k8s-openapi 0.28, so the type
//! is our own.

use std::borrow::Cow;

use ::kube::Resource;
use ::kube::core::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Error;
use super::kinds;
use super::objects::Cluster;

/// The Gateway API group and version glidepath writes.
pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// A `gateway.networking.k8s.io/v1` HTTPRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// `gateway.networking.k8s.io/v1`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// `HTTPRoute`.
    #[serde(default = "kind")]
    pub kind: String,
    /// Its metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Its spec.
    #[serde(default)]
    pub spec: HttpRouteSpec,
    /// Its status, as the controllers wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

fn api_version() -> String {
    API_VERSION.into()
}

fn kind() -> String {
    "HTTPRoute".into()
}

/// An HTTPRoute's spec: its rules, and the fields glidepath does not touch (parentRefs,
/// hostnames).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Every other field, kept as it is.
    #[serde(flatten)]
    pub other: Map<String, Value>,
    /// The routing rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
}

/// One rule: where its requests go, and the fields glidepath does not touch (matches,
/// filters, timeouts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Every other field, kept as it is.
    #[serde(flatten)]
    pub other: Map<String, Value>,
    /// The backends requests are split between.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
}

/// A backend (a Service) and its share of the rule's requests. Fields are written in the
/// order manifests usually have them (`name`, `port`, then `weight`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    /// The Service's name.
    pub name: String,
    /// Every other field (port, namespace, kind, filters), kept as it is.
    #[serde(flatten)]
    pub other: Map<String, Value>,
    /// Its weight; the Gateway API's default is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

impl Resource for HttpRoute {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "HTTPRoute".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "gateway.networking.k8s.io".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "httproutes".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HttpRoute {
    /// The first rule that sends requests to `stable`.
    pub fn rule_to(&self, stable: &str) -> Option<&HttpRouteRule> {
        self.spec
            .rules
            .iter()
            .find(|r| r.backend_refs.iter().any(|b| b.name == stable))
    }

    /// The percent of `stable`'s rule that goes to `canary` (`None`: no rule routes to
    /// `stable`, or neither has any weight).
    pub fn share(&self, stable: &str, canary: &str) -> Option<u8> {
        let refs = &self.rule_to(stable)?.backend_refs;
        let weight = |name: &str| {
            refs.iter()
                .find(|b| b.name == name)
                .map_or(0, |b| b.weight.map_or(1, |w| u64::try_from(w).unwrap_or(1)))
        };
        // Out of every backend of the rule: a baseline beside the canary takes its share too.
        let total: u64 = refs
            .iter()
            .map(|b| b.weight.map_or(1, |w| u64::try_from(w).unwrap_or(1)))
            .sum();
        let (s, c) = (weight(stable), weight(canary));
        (s + c > 0 && total > 0).then(|| (c as f64 * 100.0 / total as f64).round() as u8)
    }

    /// Splits every rule that routes to `stable`: `percent` to `canary` (a copy of the
    /// stable backend, left out at 0), the rest to `stable`; other backends stay. `false`
    /// when no rule routes to `stable`.
    pub fn split(&mut self, stable: &str, canary: &str, percent: u8) -> bool {
        self.split_shares(stable, &[(canary, percent)])
    }

    /// As [`HttpRoute::split`] with several other backends (a canary and its baseline):
    /// each gets its percent (a backend with 0 is taken out), stable the rest.
    pub fn split_shares(&mut self, stable: &str, shares: &[(&str, u8)]) -> bool {
        let mut found = false;
        let others: u32 = shares.iter().map(|(_, p)| u32::from(*p)).sum();
        let stable_share = 100i32.saturating_sub(i32::try_from(others).unwrap_or(100));
        for rule in &mut self.spec.rules {
            let Some(stable_ref) = rule.backend_refs.iter().find(|b| b.name == stable).cloned()
            else {
                continue;
            };
            found = true;
            rule.backend_refs
                .retain(|b| b.name != stable && !shares.iter().any(|(n, _)| b.name == *n));
            rule.backend_refs.push(BackendRef {
                weight: Some(stable_share.max(0)),
                ..stable_ref.clone()
            });
            for (name, percent) in shares.iter().filter(|(_, p)| *p > 0) {
                rule.backend_refs.push(BackendRef {
                    name: (*name).to_owned(),
                    weight: Some(i32::from(*percent)),
                    ..stable_ref.clone()
                });
            }
        }
        found
    }
}

/// The live HTTPRoute `name` in the target's namespace, if it exists.
pub async fn get(cluster: &Cluster, name: &str) -> Result<Option<HttpRoute>, Error> {
    kinds::get(&cluster.namespaced::<HttpRoute>(), name).await
}

/// Sets the weights of route `name`: `percent` to the `canary` Service, the rest to
/// `stable` (see [`HttpRoute::split`]), as a merge patch of its rules.
pub async fn set_route_weights(
    cluster: &Cluster,
    name: &str,
    stable: &str,
    canary: &str,
    percent: u8,
) -> Result<(), Error> {
    set_route_shares(cluster, name, stable, &[(canary, percent)]).await
}

/// Sets the weights of route `name`: each of `shares` its percent, the rest to `stable`
/// (see [`HttpRoute::split_shares`]), as a merge patch of its rules.
pub async fn set_route_shares(
    cluster: &Cluster,
    name: &str,
    stable: &str,
    shares: &[(&str, u8)],
) -> Result<(), Error> {
    let api = cluster.namespaced::<HttpRoute>();
    let mut live = kinds::get(&api, name)
        .await?
        .ok_or_else(|| Error::missing(format!("HTTPRoute {}/{name}", cluster.namespace)))?;
    if !live.split_shares(stable, shares) {
        return Err(Error::BadInput(format!(
            "HTTPRoute {name} has no backendRef to the stable Service {stable}"
        )));
    }
    let patch = serde_json::json!({ "spec": { "rules": live.spec.rules } });
    kinds::merge(&api, name, &patch).await.map(drop)
}

/// The percent the live route `name` sends to `canary` (`None`: no such route, or no rule
/// routes to `stable`).
pub async fn route_share(
    cluster: &Cluster,
    name: &str,
    stable: &str,
    canary: &str,
) -> Result<Option<u8>, Error> {
    Ok(get(cluster, name)
        .await?
        .and_then(|r| r.share(stable, canary)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route() -> HttpRoute {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION, "kind": "HTTPRoute",
            "metadata": { "name": "checkout", "namespace": "shop" },
            "spec": { "parentRefs": [{ "name": "gw" }], "rules": [
                { "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                  "backendRefs": [{ "name": "checkout", "port": 80 }, { "name": "mirror", "port": 80, "weight": 0 }] },
                { "backendRefs": [{ "name": "other", "port": 8080 }] } ] },
        }))
        .unwrap()
    }

    #[test]
    fn splitting_keeps_what_glidepath_does_not_own() {
        let mut r = route();
        assert_eq!(r.share("checkout", "checkout-canary"), Some(0));
        assert!(r.split("checkout", "checkout-canary", 20));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["spec"]["parentRefs"], json!([{ "name": "gw" }]));
        assert_eq!(
            v["spec"]["rules"][0],
            json!({ "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                "backendRefs": [{ "name": "mirror", "port": 80, "weight": 0 },
                    { "name": "checkout", "port": 80, "weight": 80 },
                    { "name": "checkout-canary", "port": 80, "weight": 20 }] })
        );
        assert_eq!(r.share("checkout", "checkout-canary"), Some(20));
        assert!(r.split("checkout", "checkout-canary", 0));
        assert_eq!(r.spec.rules[0].backend_refs.len(), 2, "no canary at 0%");
        assert!(!r.split("absent", "absent-canary", 10));
    }

    #[test]
    fn a_baseline_takes_the_canary_s_share_from_stable_and_leaves_with_it() {
        let mut r = route();
        assert!(r.split_shares(
            "checkout",
            &[("checkout-canary", 25), ("checkout-baseline", 25)]
        ));
        let weights: Vec<(String, Option<i32>)> = r.spec.rules[0]
            .backend_refs
            .iter()
            .map(|b| (b.name.clone(), b.weight))
            .collect();
        assert_eq!(
            weights,
            [
                ("mirror".to_owned(), Some(0)),
                ("checkout".to_owned(), Some(50)),
                ("checkout-canary".to_owned(), Some(25)),
                ("checkout-baseline".to_owned(), Some(25)),
            ]
        );
        assert_eq!(r.share("checkout", "checkout-canary"), Some(25));
        assert!(r.split_shares(
            "checkout",
            &[("checkout-canary", 0), ("checkout-baseline", 0)]
        ));
        assert_eq!(
            r.spec.rules[0].backend_refs.len(),
            2,
            "canary and baseline gone"
        );
    }
}
