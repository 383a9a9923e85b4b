//! The "platform" preset: what a platform team's cluster promises, so pre-flight checks have
//! a real contract to check against: a database-claim CRD, a GatewayClass, storage and
//! ingress classes, and an application namespace. Gateway API itself is in every sandbox.

use serde_json::{Value, json};

use super::Cluster;

fn crd(group: &str, kind: &str, plural: &str, short: &[&str], scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group, "scope": scope,
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "shortNames": short, "listKind": format!("{kind}List") },
            "versions": [{ "name": "v1", "served": true, "storage": true, "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }],
        },
    })
}

/// Gateway API, which every sandbox serves (HTTPRoute weights are a traffic router).
pub fn gateway_api_crds() -> Vec<Value> {
    let g = "gateway.networking.k8s.io";
    let mut crds = vec![
        crd(g, "GatewayClass", "gatewayclasses", &["gc"], "Cluster"),
        crd(g, "Gateway", "gateways", &["gtw"], "Namespaced"),
        crd(g, "HTTPRoute", "httproutes", &[], "Namespaced"),
    ];
    // A real API server refuses a CRD in a *.k8s.io group without this approval, which
    // released Gateway API CRDs carry.
    for c in &mut crds {
        c["metadata"]["annotations"] = json!({
            "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466",
        });
    }
    crds
}

/// The platform's own CRDs: a database claim that infrastructure steps wait on, and the
/// Prometheus operator's monitoring kinds.
pub fn platform_crds() -> Vec<Value> {
    let m = "monitoring.coreos.com";
    vec![
        crd(
            "platform.example.org",
            "XDatabase",
            "xdatabases",
            &["xdb"],
            "Namespaced",
        ),
        crd(
            m,
            "PrometheusRule",
            "prometheusrules",
            &["promrule"],
            "Namespaced",
        ),
        crd(
            m,
            "ServiceMonitor",
            "servicemonitors",
            &["smon"],
            "Namespaced",
        ),
    ]
}

/// Installs Gateway API into a new cluster.
pub fn gateway_api(cluster: &Cluster) {
    install_crds(cluster, gateway_api_crds());
}

/// Creates CRDs and establishes them at once, so their kinds are served right away.
fn install_crds(cluster: &Cluster, crds: Vec<Value>) {
    for c in crds {
        create(
            cluster,
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            c,
        );
    }
    super::controllers::establish_crds(cluster);
}

fn create(cluster: &Cluster, group: &str, plural: &str, namespace: Option<&str>, mut obj: Value) {
    if let Some(kind) = cluster.kind(group, plural)
        && let Err(e) = cluster.create(&kind, namespace, &mut obj, false, Some("glidepath-sandbox"))
        && e.code != 409
    {
        tracing::warn!("sandbox preset: {}", e.message);
    }
}

/// Loads the platform preset (less what the cluster's scenario leaves out); its CRDs are
/// served as soon as this returns.
pub fn platform(cluster: &Cluster) {
    let (crds, rest) = platform_objects(&cluster.telemetry.scenario);
    install_crds(cluster, crds);
    for o in rest {
        let (group, plural) = match o["kind"].as_str().unwrap_or_default() {
            "GatewayClass" => ("gateway.networking.k8s.io", "gatewayclasses"),
            "Namespace" => ("", "namespaces"),
            "StorageClass" => ("storage.k8s.io", "storageclasses"),
            _ => ("networking.k8s.io", "ingressclasses"),
        };
        create(cluster, group, plural, None, o);
    }
}

/// The platform preset as objects for any API server: the CRDs (Gateway API's and the
/// platform's, less what `scenario` leaves out), then the GatewayClass, namespaces,
/// StorageClasses and IngressClass.
pub fn platform_objects(scenario: &super::scenario::Scenario) -> (Vec<Value>, Vec<Value>) {
    let missing = scenario.missing_crds;
    let crds = gateway_api_crds()
        .into_iter()
        .chain(platform_crds().into_iter().filter(|c| {
            let name = c
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            !missing.contains(&name)
        }))
        .collect();
    let mut rest = vec![json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": { "name": "glidepath-sandbox" }, "spec": { "controllerName": "sandbox.glidepath.dev/gateway" },
    })];
    for name in ["shop", "shop-staging"] {
        rest.push(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name, "labels": { "team": "checkout" } } }));
    }
    for (name, default) in [("standard", true), ("fast-ssd", false)] {
        rest.push(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": { "name": name, "annotations": { "storageclass.kubernetes.io/is-default-class": default.to_string() } },
            "provisioner": "sandbox.glidepath.dev/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        }));
    }
    rest.push(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": { "name": "nginx" }, "spec": { "controller": "k8s.io/ingress-nginx" },
    }));
    (crds, rest)
}
