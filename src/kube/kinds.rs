//! Kinds known when glidepath is compiled, as k8s-openapi types (or our own for the
//! Gateway API): reads, lists, creates, patches and deletes with the same retries and
//! error kinds as objects of any kind (see [`super::objects`]), so a misspelt field is a
//! compile error rather than a silent `null`.

use std::fmt::Debug;

use ::kube::Resource;
use ::kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use ::kube::core::{ClusterResourceScope, NamespaceResourceScope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::Answer;
use super::objects::{Cluster, retry};
use super::{Error, FIELD_MANAGER};

/// A kind known at compile time.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
}

impl Cluster {
    /// The API of a namespaced kind in the target's namespace.
    pub fn namespaced<K>(&self) -> Api<K>
    where
        K: Kind + Resource<Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The API of a namespaced kind in `namespace`.
    pub fn namespaced_in<K>(&self, namespace: &str) -> Api<K>
    where
        K: Kind + Resource<Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The API of a cluster-scoped kind.
    pub fn cluster_scoped<K>(&self) -> Api<K>
    where
        K: Kind + Resource<Scope = ClusterResourceScope>,
    {
        Api::all(self.client.clone())
    }
}

/// `Kind namespace/name` (or `Kind name`) for messages, as [`super::objects::describe`]
/// words a JSON object.
pub fn what<K: Kind>(api: &Api<K>, name: &str) -> String {
    let kind = K::kind(&());
    match api.namespace() {
        _ if name.is_empty() => kind.into_owned(),
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The live object `name`, if it exists.
pub async fn get<K: Kind>(api: &Api<K>, name: &str) -> Result<Option<K>, Error> {
    retry(|| api.get_opt(name))
        .await
        .map_err(|e| Error::from_kube(what(api, name), e))
}

/// The objects matching a label selector (`""`: all).
pub async fn list<K: Kind>(api: &Api<K>, selector: &str) -> Result<Vec<K>, Error> {
    let params = ListParams::default().labels(selector);
    retry(|| api.list(&params))
        .await
        .map(|l| l.items)
        .map_err(|e| Error::from_kube(format!("list {}", K::kind(&())), e))
}

/// Creates `o` (not retried: a lost answer would turn into a conflict).
pub async fn create<K: Kind>(api: &Api<K>, o: &K) -> Result<K, Error> {
    let name = o.meta().name.clone().unwrap_or_default();
    api.create(&super::ownership::post_params(), o)
        .await
        .map_err(|e| Error::from_kube(what(api, &name), e))
}

/// Replaces `name` with `o`, failing with [`Error::Conflict`] when it changed since `o`'s
/// resourceVersion was read.
pub async fn replace<K: Kind>(api: &Api<K>, name: &str, o: &K) -> Result<K, Error> {
    api.replace(name, &super::ownership::post_params(), o)
        .await
        .map_err(|e| Error::from_kube(what(api, name), e))
}

/// How many writes [`update`] makes before it gives up on an object that keeps changing.
pub const UPDATE_TRIES: u32 = 5;

/// Reads `name`, makes its new state with `change` (given the live object, `None` when
/// there is none) and replaces it against the resourceVersion read. A 409 (someone wrote
/// in between: a controller's status, another client) reads it again and calls `change`
/// on the fresh object; after [`UPDATE_TRIES`] refused writes it fails with
/// [`Error::KeptChanging`]. `change` keeps the resourceVersion it was given.
pub async fn update<K, E>(
    api: &Api<K>,
    name: &str,
    mut change: impl FnMut(Option<K>) -> Result<K, E>,
) -> Result<K, E>
where
    K: Kind,
    E: From<Error>,
{
    let mut refused = None;
    for _ in 0..UPDATE_TRIES {
        let live = get(api, name).await?;
        let mut next = change(live)?;
        // The server works out the field managers of an update itself.
        next.meta_mut().managed_fields = None;
        match replace(api, name, &next).await {
            Err(Error::Conflict { answer, .. }) => refused = Some(answer),
            done => return done.map_err(E::from),
        }
    }
    let answer = refused.unwrap_or_else(|| Answer {
        code: 409,
        reason: "Conflict".into(),
        message: String::new(),
        causes: Vec::new(),
    });
    Err(E::from(Error::KeptChanging {
        what: what(api, name),
        tries: UPDATE_TRIES,
        answer,
    }))
}

/// A JSON merge patch of `name` (`null` removes a field).
pub async fn merge<K: Kind>(api: &Api<K>, name: &str, patch: &Value) -> Result<K, Error> {
    let (params, body) = (super::ownership::update_params(), Patch::Merge(patch));
    retry(|| api.patch(name, &params, &body))
        .await
        .map_err(|e| Error::from_kube(what(api, name), e))
}

/// Server-side applies `o` as `glidepath`, unforced: a conflict with another field
/// manager fails, naming it ([`super::ownership`]).
pub async fn apply<K: Kind>(api: &Api<K>, o: &K) -> Result<K, Error> {
    let name = o.meta().name.clone().unwrap_or_default();
    let (params, body) = (PatchParams::apply(FIELD_MANAGER), Patch::Apply(o));
    let (name_ref, body) = (&name, &body);
    super::ownership::apply_unforced(
        params,
        |p| async move { api.patch(name_ref, &p, body).await },
    )
    .await
    .map_err(|e| Error::from_kube(what(api, &name), e))
}

/// Deletes `name` in the background (absent is fine).
pub async fn delete<K: Kind>(api: &Api<K>, name: &str) -> Result<(), Error> {
    let params = DeleteParams::background();
    match retry(|| api.delete(name, &params)).await {
        Ok(_) => Ok(()),
        Err(e) => match Error::from_kube(what(api, name), e) {
            Error::NotFound { .. } => Ok(()),
            e => Err(e),
        },
    }
}
