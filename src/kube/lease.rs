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

/// A lease this process holds; renewed in the background while it is still the holder,
/// deleted on [`Held::release`] if it still is.
pub struct Held {
    cluster: std::sync::Arc<Cluster>,
    lease: Value,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

fn holder_of(live: &Value) -> &str {
    live.pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Held {
    /// Stops renewing and deletes the lease, unless someone took it over meanwhile.
    pub async fn release(self) {
        self.renew.abort();
        if let Ok(Some(live)) = self.cluster.get(&self.lease).await
            && holder_of(&live) == self.holder
        {
            let _ = self.cluster.delete(&self.lease).await;
        }
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

/// Takes the lease `name`, or says who holds it. Creating it is atomic (a second creator
/// gets a conflict); taking over an expired or forced lease replaces it at the
/// resourceVersion read, so two takers cannot both win.
pub async fn acquire(
    cluster: std::sync::Arc<Cluster>,
    name: &str,
    holder: &str,
    force: bool,
) -> Result<Held, String> {
    let lease = reference("coordination.k8s.io/v1", "Lease", &cluster.namespace, name);
    let now = now_micro();
    let spec = json!({ "holderIdentity": holder, "leaseDurationSeconds": DURATION.as_secs(),
        "acquireTime": now, "renewTime": now });
    let mut body = lease.clone();
    body["spec"] = spec.clone();
    match cluster.create(&body).await {
        Ok(_) => {}
        Err(e) if e.contains("HTTP 409") => {
            let Some(mut live) = cluster.get(&lease).await? else {
                return Err(format!(
                    "lease {name} vanished while it was being taken; try again"
                ));
            };
            let other = holder_of(&live).to_owned();
            let since = live
                .pointer("/spec/acquireTime")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let seconds = live
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(DURATION.as_secs() as i64);
            let alive = live
                .pointer("/spec/renewTime")
                .and_then(Value::as_str)
                .and_then(parse)
                .is_some_and(|r| {
                    time::OffsetDateTime::now_utc() - r < time::Duration::seconds(seconds)
                });
            if !other.is_empty() && other != holder && alive && !force {
                return Err(format!(
                    "{} is being driven by {other} (lease {}/{name}, held since {since}); wait for it to finish, or take over a stale lease with --force-unlock",
                    name.trim_start_matches("glidepath-"),
                    cluster.namespace
                ));
            }
            live["spec"] = spec;
            if let Some(meta) = live.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            cluster
                .replace(&live)
                .await
                .map_err(|e| format!("lease {name} was taken by someone else just now ({e})"))?;
        }
        Err(e) => return Err(e),
    }
    let renewing = cluster.clone();
    let target = lease.clone();
    let me = holder.to_owned();
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            match renewing.get(&target).await {
                Ok(Some(live)) if holder_of(&live) == me => {
                    let patch = json!({ "spec": { "renewTime": now_micro() } });
                    if let Err(e) = renewing.merge(&target, &patch).await {
                        tracing::warn!("cannot renew the lease: {e}");
                    }
                }
                Ok(_) => {
                    tracing::warn!("the run lease was taken over; no longer renewing it");
                    return;
                }
                Err(e) => tracing::warn!("cannot read the lease: {e}"),
            }
        }
    });
    Ok(Held {
        cluster,
        lease,
        holder: holder.to_owned(),
        renew,
    })
}
