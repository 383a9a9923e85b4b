//! The released CRDs `demo --kubeconfig` installs on a real control plane in place of the
//! sandbox's simplified ones (`--crds DIR`, as `tests/realcluster/crds.sh` fetches them):
//! Gateway API's from a sigs.k8s.io/gateway-api release and prometheus-operator's
//! monitoring kinds. A real API server validates and defaults with their schemas, which the
//! sandbox's permissive CRDs never do.

use std::path::Path;

use serde_json::Value;

use crate::kube::objects::{Cluster, parse_manifests};

/// The CRDs the sandbox simplifies and a real control plane gets in their released form.
pub(super) const RELEASED: &[&str] = &[
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
];

fn name(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Every CRD in the `.yaml` files of `dir`, by name.
pub(super) fn read_dir(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let shown = dir.display();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("--crds {shown}: {e}; run `bash tests/realcluster/crds.sh` and pass the folder it prints"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for f in files {
        let text =
            crate::input::read_text(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        for o in parse_manifests(&text, &f.display().to_string())? {
            if o["kind"] == "CustomResourceDefinition" {
                crds.push(o);
            }
        }
    }
    Ok(crds)
}

/// `simplified` with each CRD of [`RELEASED`] taken from `released`; an error naming the
/// first one `released` lacks.
pub(super) fn replace(
    simplified: Vec<Value>,
    released: &[Value],
    dir: &Path,
) -> anyhow::Result<Vec<Value>> {
    simplified
        .into_iter()
        .map(|c| {
            if !RELEASED.contains(&name(&c)) {
                return Ok(c);
            }
            released
                .iter()
                .find(|r| name(r) == name(&c))
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--crds {} holds no CRD {}; run `bash tests/realcluster/crds.sh` and pass the folder it prints",
                        dir.display(),
                        name(&c)
                    )
                })
        })
        .collect()
}

/// Without `--crds`: the simplified CRDs less those of [`RELEASED`], which the cluster must
/// already serve (a cluster keeps its own Gateway API); an error naming the first missing.
pub(super) async fn keep_installed(
    cluster: &Cluster,
    simplified: Vec<Value>,
) -> anyhow::Result<Vec<Value>> {
    let mut rest = Vec::new();
    for c in simplified {
        if !RELEASED.contains(&name(&c)) {
            rest.push(c);
            continue;
        }
        if cluster.get(&c).await?.is_none() {
            anyhow::bail!(
                "the cluster has no CRD {}, and the demo installs only released ones there: run `bash tests/realcluster/crds.sh` (it fetches Gateway API and prometheus-operator CRDs through the Go module proxy) and pass --crds <the folder it prints>, or set GLIDEPATH_DEMO_CRDS",
                name(&c)
            );
        }
    }
    Ok(rest)
}
