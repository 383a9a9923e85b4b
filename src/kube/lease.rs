//! One driver at a time: a run holds a `coordination.k8s.io` Lease per service and stage on
//! the stage's cluster, renewed while it runs and deleted when it ends. A second run finds
//! it held and is refused with who holds it and since when, unless the lease has expired
//! (its holder stopped renewing) or the operator forces it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::Error;
use super::kinds;
use super::objects::Cluster;

/// How long a lease lasts without renewal.
pub const DURATION: Duration = Duration::from_secs(30);
/// How often a held lease is renewed.
pub const RENEW: Duration = Duration::from_secs(10);

/// Now, as a Lease keeps it (written to the microsecond).
fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// A time as the API server shows it (`2026-01-31T12:00:00.000000Z`).
fn shown(t: &MicroTime) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}

/// A lease this process holds; renewed in the background while it is still the holder,
/// deleted on [`Held::release`] if it still is.
pub struct Held {
    cluster: std::sync::Arc<Cluster>,
    name: String,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

fn holder_of(live: &Lease) -> &str {
    live.spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or("")
}

impl Held {
    /// Stops renewing and deletes the lease, unless someone took it over meanwhile.
    pub async fn release(self) {
        self.renew.abort();
        let api = self.cluster.namespaced::<Lease>();
        if let Ok(Some(live)) = kinds::get(&api, &self.name).await
            && holder_of(&live) == self.holder
        {
            let _ = kinds::delete(&api, &self.name).await;
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

/// Whether `live` was renewed within its duration.
fn alive(live: &LeaseSpec) -> bool {
    let seconds = live
        .lease_duration_seconds
        .map_or(DURATION.as_secs() as i64, i64::from);
    live.renew_time
        .as_ref()
        .is_some_and(|r| Timestamp::now().duration_since(r.0) < SignedDuration::from_secs(seconds))
}

/// Takes the lease `name`, or says who holds it ([`Error::Held`]). Creating it is atomic (a
/// second creator gets a conflict); taking over an expired or forced lease replaces it at
/// the resourceVersion read, so two takers cannot both win.
pub async fn acquire(
    cluster: std::sync::Arc<Cluster>,
    name: &str,
    holder: &str,
    force: bool,
) -> Result<Held, Error> {
    let api = cluster.namespaced::<Lease>();
    let now = now_micro();
    let spec = LeaseSpec {
        holder_identity: Some(holder.to_owned()),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        ..LeaseSpec::default()
    };
    let body = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(cluster.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec.clone()),
    };
    match kinds::create(&api, &body).await {
        Ok(_) => {}
        Err(Error::Conflict { .. }) => {
            let Some(mut live) = kinds::get(&api, name).await? else {
                return Err(Error::LeaseVanished {
                    lease: name.to_owned(),
                });
            };
            let theirs = live.spec.clone().unwrap_or_default();
            let other = holder_of(&live).to_owned();
            if !other.is_empty() && other != holder && alive(&theirs) && !force {
                return Err(Error::Held {
                    subject: name.trim_start_matches("glidepath-").to_owned(),
                    holder: other,
                    lease: format!("{}/{name}", cluster.namespace),
                    since: theirs
                        .acquire_time
                        .as_ref()
                        .map_or_else(|| "?".into(), shown),
                });
            }
            live.spec = Some(spec);
            live.metadata.managed_fields = None;
            kinds::replace(&api, name, &live)
                .await
                .map_err(|e| Error::LeaseTaken {
                    lease: name.to_owned(),
                    source: Box::new(e),
                })?;
        }
        Err(e) => return Err(e),
    }
    let renewing = cluster.clone();
    let lease = name.to_owned();
    let me = holder.to_owned();
    let renew = tokio::spawn(async move {
        let api = renewing.namespaced::<Lease>();
        loop {
            tokio::time::sleep(RENEW).await;
            match kinds::get(&api, &lease).await {
                Ok(Some(live)) if holder_of(&live) == me => {
                    let patch = json!({ "spec": { "renewTime": now_micro() } });
                    if let Err(e) = kinds::merge(&api, &lease, &patch).await {
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
        name: name.to_owned(),
        holder: holder.to_owned(),
        renew,
    })
}
