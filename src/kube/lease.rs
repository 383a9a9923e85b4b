//! One driver at a time: a run holds a `coordination.k8s.io` Lease per service and stage on
//! the stage's cluster, renewed while it runs and deleted when it ends. A second run finds
//! it held and is refused with who holds it and since when, unless the lease has expired
//! (its holder stopped renewing) or the operator forces it.

use std::time::Duration;

use serde_json::{Value, json};

use super::objects::{Cluster, reference};

/// How long a lease lasts without renewal.
pub const DURATION: Duration = Duration::from_secs(30);
/// How often a held lease is renewed.
pub const RENEW: Duration = Duration::from_secs(10);

fn now_micro() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

fn parse(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// A lease this process holds; renewed in the background, deleted on [`Held::release`].
pub struct Held {
    cluster: std::sync::Arc<Cluster>,
    lease: Value,
    renew: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Stops renewing and deletes the lease.
    pub async fn release(self) {
        self.renew.abort();
        let _ = self.cluster.delete(&self.lease).await;
    }
}

/// The lease name for a service and stage.
pub fn name(service: &str, stage: &str) -> String {
    let clean = |s: &str| {
        s.to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
    };
    format!("glidepath-{}-{}", clean(service), clean(stage))
}

/// Takes the lease `name`, or says who holds it.
pub async fn acquire(
    cluster: std::sync::Arc<Cluster>,
    name: &str,
    holder: &str,
    force: bool,
) -> Result<Held, String> {
    let lease = reference("coordination.k8s.io/v1", "Lease", &cluster.namespace, name);
    if let Some(live) = cluster.get(&lease).await? {
        let other = live
            .pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .unwrap_or("");
        let since = live
            .pointer("/spec/acquireTime")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let renewed = live
            .pointer("/spec/renewTime")
            .and_then(Value::as_str)
            .and_then(parse);
        let seconds = live
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DURATION.as_secs() as i64);
        let alive = renewed.is_some_and(|r| {
            time::OffsetDateTime::now_utc() - r < time::Duration::seconds(seconds)
        });
        if !other.is_empty() && other != holder && alive && !force {
            return Err(format!(
                "{} is being driven by {other} (lease {}/{name}, held since {since}); wait for it to finish, or take over a stale lease with --force-unlock",
                name.trim_start_matches("glidepath-"),
                cluster.namespace
            ));
        }
    }
    let now = now_micro();
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": name, "namespace": cluster.namespace },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": DURATION.as_secs(),
            "acquireTime": now, "renewTime": now },
    });
    cluster.apply(&body, false).await?;
    let renewing = cluster.clone();
    let target = lease.clone();
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            let patch = json!({ "spec": { "renewTime": now_micro() } });
            if let Err(e) = renewing.merge(&target, &patch).await {
                tracing::warn!("cannot renew the lease: {e}");
            }
        }
    });
    Ok(Held {
        cluster,
        lease,
        renew,
    })
}
