//! The ServiceAccount a demo on a real cluster releases as: `assets/rbac/glidepath.yaml`
//! applied there, and a kubeconfig with a token from the TokenRequest API, so the real
//! RBAC authorizer proves that file is enough for the demo pipeline.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::demo_cluster::apply_and_wait;
use crate::kube::objects::parse_manifests;
use crate::pipeline::model::Target;

/// The least-privilege RBAC the demo's release steps run under.
const RBAC: &str = include_str!("../../assets/rbac/glidepath.yaml");
/// The ServiceAccount that file makes: namespace and name.
const ACCOUNT: (&str, &str) = ("glidepath", "glidepath");
/// How long the demo's token lasts.
const TOKEN_SECONDS: i64 = 3600;
/// The context name of the ServiceAccount's kubeconfig.
pub(super) const CONTEXT: &str = "glidepath-demo";

/// Applies the RBAC file as `admin` and writes a kubeconfig for its ServiceAccount at
/// `out`, reaching the cluster of `admin_kubeconfig`'s `context`.
pub(super) async fn least_privilege(
    admin: &Target,
    admin_kubeconfig: &Path,
    context: &str,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let objects = parse_manifests(RBAC, "assets/rbac/glidepath.yaml")?;
    apply_and_wait(admin, objects).await?;
    let client = crate::kube::connect(Some(admin)).await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client, ACCOUNT.0);
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": { "audiences": [], "expirationSeconds": TOKEN_SECONDS },
    }))?;
    let issued = accounts
        .create_token_request(ACCOUNT.1, &PostParams::default(), &request)
        .await
        .with_context(|| {
            format!(
                "TokenRequest for ServiceAccount {}/{}",
                ACCOUNT.0, ACCOUNT.1
            )
        })?;
    let token = issued
        .status
        .map(|s| s.token)
        .context("the TokenRequest was answered without a token")?;
    let config = kube::config::Kubeconfig::read_from(admin_kubeconfig)?;
    let cluster_name = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .with_context(|| format!("{}: no context {context}", admin_kubeconfig.display()))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .with_context(|| format!("{}: no cluster {cluster_name}", admin_kubeconfig.display()))?;
    // JSON is YAML: every kubeconfig reader takes it.
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
        "clusters": [{ "name": CONTEXT, "cluster": serde_json::to_value(&cluster.cluster)? }],
        "contexts": [{ "name": CONTEXT, "context": { "cluster": CONTEXT, "user": CONTEXT } }],
        "users": [{ "name": CONTEXT, "user": { "token": token } }],
    });
    write_private(out, &serde_json::to_string_pretty(&kubeconfig)?)?;
    Ok(out.to_owned())
}

/// Who the API server says the kubeconfig at `path` is (a SelfSubjectReview).
pub(super) async fn identity(path: &Path) -> anyhow::Result<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let target = Target::Cluster(crate::pipeline::model::ClusterTarget {
        context: Some(CONTEXT.into()),
        namespace: None,
        kubeconfig: Some(path.display().to_string()),
    });
    let client = crate::kube::connect(Some(&target)).await?;
    let reviews: Api<SelfSubjectReview> = Api::all(client);
    let review: SelfSubjectReview = serde_json::from_value(json!({}))?;
    let answer = reviews.create(&PostParams::default(), &review).await?;
    answer
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .context("the SelfSubjectReview was answered without a user name")
}

/// Writes `text` readable by this user only: it holds a token.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}
