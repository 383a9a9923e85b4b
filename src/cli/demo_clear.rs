//! What an earlier `demo --kubeconfig` left on a real cluster, removed before the next one
//! starts its data plane (see [`clear_apps`](super::demo_cluster::clear_apps)).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams};
use kube::{Client, Resource, ResourceExt};

use crate::kube::Error;
use crate::kube::kinds::{self, Kind};
use crate::kube::route::HttpRoute;

/// Deletes the Deployments, ReplicaSets, Services, HTTPRoutes and pods `selector` matches
/// in each of `namespaces`, and waits (up to `timeout`) until none is left. Pods go at once:
/// no kubelet or data plane is there to end them, and a ReplicaSet being deleted may still
/// make one.
pub(super) async fn clear(
    client: &Client,
    namespaces: &[&str],
    selector: &str,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + timeout;
    let mut removed = 0;
    for ns in namespaces {
        removed += delete_all::<Deployment>(client, ns, selector).await?;
        removed += delete_all::<ReplicaSet>(client, ns, selector).await?;
        removed += delete_all::<Service>(client, ns, selector).await?;
        // Its weights may be where a killed canary left them. A cluster without the
        // Gateway API has none to remove.
        removed += match delete_all::<HttpRoute>(client, ns, selector).await {
            Err(Error::NotFound { .. }) => 0,
            found => found?,
        };
    }
    loop {
        let mut left = 0;
        for ns in namespaces {
            removed += delete_pods(client, ns, selector).await?;
            left += count::<Deployment>(client, ns, selector).await?;
            left += count::<ReplicaSet>(client, ns, selector).await?;
            left += count::<Pod>(client, ns, selector).await?;
        }
        if left == 0 {
            return Ok(removed);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{left} objects matching {selector} in {} were still there after {timeout:?}",
                namespaces.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes every `K` matching `selector` in `ns` (in the background); how many it found.
async fn delete_all<K>(client: &Client, ns: &str, selector: &str) -> Result<usize, Error>
where
    K: Kind + Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let found = kinds::list(&api, selector).await?;
    for o in &found {
        kinds::delete(&api, &o.name_any()).await?;
    }
    Ok(found.len())
}

/// Deletes the pods matching `selector` in `ns` with no grace period; how many it found.
async fn delete_pods(client: &Client, ns: &str, selector: &str) -> Result<usize, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let found = kinds::list(&api, selector).await?;
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    for p in &found {
        let name = p.name_any();
        if let Err(e) = api.delete(&name, &now).await {
            match Error::from_kube(kinds::what(&api, &name), e) {
                Error::NotFound { .. } => {}
                e => return Err(e),
            }
        }
    }
    Ok(found.len())
}

/// How many `K` match `selector` in `ns`.
async fn count<K>(client: &Client, ns: &str, selector: &str) -> Result<usize, Error>
where
    K: Kind + Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(kinds::list(&api, selector).await?.len())
}
