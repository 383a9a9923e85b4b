//! The real control plane that `tests/realcluster/up.sh` starts (etcd, kube-apiserver and
//! kube-controller-manager on loopback), found through `GLIDEPATH_REALCLUSTER_KUBECONFIG`.
//! `.ci/run` starts it and sets the variable. Under `CI=true` a missing control plane fails
//! the test; elsewhere the test says how to start one and passes over it.
//! Included with `#[path = "support/realcluster.rs"]`.
#![allow(dead_code)]

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The variable that names the admin kubeconfig `up.sh` wrote.
pub const KUBECONFIG_VAR: &str = "GLIDEPATH_REALCLUSTER_KUBECONFIG";

/// The admin kubeconfig of the running control plane, or None (outside CI) when no
/// control plane was started. Panics under `CI=true` when it is missing.
pub fn kubeconfig() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let path = match std::env::var_os(KUBECONFIG_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let what = format!(
                "{KUBECONFIG_VAR} is not set: start the control plane with `bash tests/realcluster/up.sh` and export {KUBECONFIG_VAR}=<the path it prints>"
            );
            assert!(!ci, "CI=true and no real control plane: {what}");
            eprintln!("not run against a real control plane: {what}");
            return None;
        }
    };
    assert!(
        path.is_file(),
        "{KUBECONFIG_VAR}={} names no file: run `bash tests/realcluster/up.sh` again",
        path.display()
    );
    Some(path)
}

/// A kube-rs client for the kubeconfig at `path` (its current context).
pub async fn client(path: &std::path::Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {} is not usable: {e}", path.display()));
    Client::try_from(config).unwrap_or_else(|e| panic!("no client for {}: {e}", path.display()))
}
