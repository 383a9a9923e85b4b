//! Discovery and OpenAPI: what kubectl and kube-rs ask before they touch an object.
//! Aggregated discovery must echo the media type it chose exactly, or kubectl reads zero
//! groups (../shared/notes/kubectl-wire.md, 1.1).

use serde_json::{Value, json};

use super::kinds::{Kind, Registry, aggregated_resource, legacy_resources};

/// The discovery formats a client may ask for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `apidiscovery.k8s.io/v2` (kubectl 1.30+).
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1` (kubectl 1.27–1.29).
    AggregatedV2Beta1,
    /// `APIVersions` / `APIGroupList` plus one request per group-version.
    Legacy,
}

impl Format {
    /// Picks the format from the Accept header.
    pub fn negotiate(accept: &str) -> Format {
        if accept.contains("g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList") {
            Format::AggregatedV2
        } else if accept.contains("g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList") {
            Format::AggregatedV2Beta1
        } else {
            Format::Legacy
        }
    }

    /// The Content-Type to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::AggregatedV2 => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
            Format::AggregatedV2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
            Format::Legacy => "application/json",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Format::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
            _ => "apidiscovery.k8s.io/v2",
        }
    }
}

/// `/version`. The minor version also decides which kubectl the GKE dispatcher runs.
pub fn version(minor: u32) -> Value {
    json!({
        "major": "1", "minor": minor.to_string(), "gitVersion": format!("v1.{minor}.0"),
        "gitCommit": "glidepath-sandbox", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// Groups, each with its versions and their kinds.
type GroupKinds<'a> = Vec<(String, Vec<(String, Vec<&'a Kind>)>)>;

fn aggregated(format: Format, groups: GroupKinds<'_>) -> Value {
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            json!({
                "metadata": { "name": group, "creationTimestamp": null },
                "versions": versions.into_iter().map(|(v, kinds)| json!({
                    "version": v,
                    "resources": kinds.into_iter().map(aggregated_resource).collect::<Vec<_>>(),
                    "freshness": "Current",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": format.api_version(), "metadata": {}, "items": items })
}

/// `/api`.
pub fn core(registry: &Registry, format: Format) -> Value {
    match format {
        Format::Legacy => {
            json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                { "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }
            ]})
        }
        _ => aggregated(
            format,
            vec![(
                String::new(),
                vec![("v1".into(), registry.in_group_version("", "v1"))],
            )],
        ),
    }
}

/// `/apis`.
pub fn groups(registry: &Registry, format: Format) -> Value {
    match format {
        Format::Legacy => json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": registry.groups().into_iter().map(|(g, versions)| api_group(&g, &versions)).collect::<Vec<_>>(),
        }),
        _ => {
            let groups = registry
                .groups()
                .into_iter()
                .map(|(g, versions)| {
                    let versions = versions
                        .iter()
                        .map(|v| (v.clone(), registry.in_group_version(&g, v)))
                        .collect();
                    (g, versions)
                })
                .collect();
            aggregated(format, groups)
        }
    }
}

/// `/apis/GROUP`.
pub fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({ "kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null) })
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&Kind> = registry.in_group_version(group, version);
    if kinds.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
        "resources": kinds.into_iter().flat_map(legacy_resources).collect::<Vec<_>>(),
    }))
}

/// `/openapi/v3`: one document per group-version.
pub fn openapi_v3_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({ "serverRelativeURL": "/openapi/v3/api/v1" }),
    );
    for (g, versions) in registry.groups() {
        for v in versions {
            let p = format!("apis/{g}/{v}");
            paths.insert(
                p.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{p}") }),
            );
        }
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/G/V`: a PATCH operation per kind that declares
/// `fieldValidation`, which is all kubectl 1.29+ checks before it lets the server validate.
pub fn openapi_v3_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for k in registry.in_group_version(group, version) {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if k.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", k.plural)
        } else {
            format!("{prefix}/{}/{{name}}", k.plural)
        };
        paths.insert(
            path,
            json!({ "patch": {
                "x-kubernetes-group-version-kind": { "group": k.group, "version": k.version, "kind": k.kind },
                "parameters": [{ "name": "fieldValidation", "in": "query", "schema": { "type": "string" } }],
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(
        json!({ "openapi": "3.0.0", "info": { "title": "Kubernetes", "version": "v1" }, "paths": paths }),
    )
}
