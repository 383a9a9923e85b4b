//! The sandbox's object store: every object as JSON, one resourceVersion counter, and a
//! bounded log of changes that watches replay from and follow.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Where an object lives: its resource and, for namespaced kinds, its namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group (empty for core).
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeKind {
    /// The watch event type.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Added, modified or deleted.
    pub kind: ChangeKind,
    /// Which object.
    pub key: Key,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// The object as JSON, encoded once for every watcher.
    pub json: Bytes,
}

/// An API error, answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`...).
    pub reason: &'static str,
    /// What a person reads.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Value>,
}

impl ApiError {
    /// 404 for a missing object.
    pub fn not_found(resource: &str, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{resource} \"{name}\" not found"),
            details: Some(details(resource, name)),
        }
    }

    /// 409 for a name that is taken.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{resource} \"{name}\" already exists"),
            details: Some(details(resource, name)),
        }
    }

    /// 409 for a stale resourceVersion.
    pub fn conflict(resource: &str, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            details: Some(details(resource, name)),
        }
    }

    /// 400 for a request that cannot be understood.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 422 for an object that fails validation. `message` is worded as kube-apiserver's
    /// field errors (`spec.x: Invalid value: ...`), which gives the cause its field and reason.
    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} \"{name}\" is invalid: {message}"),
            details: Some(json!({ "name": name, "kind": kind, "causes": [cause(&message)] })),
        }
    }

    /// The same error with `details.group` set, as kube-apiserver names a non-core kind's group.
    pub fn in_group(mut self, group: &str) -> Self {
        if let Some(d) = self.details.as_mut().filter(|_| !group.is_empty()) {
            d["group"] = json!(group);
        }
        self
    }

    /// 405 for a verb the resource does not serve.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: None,
        }
    }

    /// 410 for a watch from a resourceVersion the log no longer holds.
    pub fn gone(rv: u64) -> Self {
        ApiError {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {rv}"),
            details: None,
        }
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// `details` naming an object of `resource` (`deployments.apps`, or `configmaps` for core).
fn details(resource: &str, name: &str) -> Value {
    let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
    let mut d = json!({ "name": name, "kind": plural });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

/// A validation cause from a field error worded `FIELD: TYPE: DETAIL`.
fn cause(message: &str) -> Value {
    const TYPES: &[(&str, &str)] = &[
        ("Required value", "FieldValueRequired"),
        ("Invalid value", "FieldValueInvalid"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
        ("Not found", "FieldValueNotFound"),
    ];
    let found = message.split_once(": ").and_then(|(field, rest)| {
        let (_, reason) = TYPES.iter().find(|(t, _)| rest.starts_with(t))?;
        Some(json!({ "reason": reason, "message": rest, "field": field }))
    });
    found.unwrap_or_else(|| json!({ "message": message }))
}

/// How many changes the log keeps for watches that resume from a resourceVersion.
const LOG_LIMIT: usize = 20_000;

/// An object with its JSON encoding, made once when it is written: lists and watches send
/// the bytes instead of encoding the same object again for every reader.
#[derive(Clone)]
struct Stored {
    value: Arc<Value>,
    json: Bytes,
}

impl Stored {
    fn new(value: Value) -> Stored {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Stored {
            value: Arc::new(value),
            json,
        }
    }
}

/// The objects and their change log.
pub struct Store {
    objects: BTreeMap<Key, Stored>,
    rv: u64,
    log: VecDeque<Change>,
    log_limit: usize,
    tx: broadcast::Sender<Change>,
}

impl Default for Store {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(LOG_LIMIT);
        Store {
            objects: BTreeMap::new(),
            rv: 1,
            log: VecDeque::new(),
            log_limit: LOG_LIMIT,
            tx,
        }
    }
}

impl Store {
    /// Keeps at most `limit` changes for resuming watches (older ones answer 410 Gone).
    pub fn set_log_limit(&mut self, limit: usize) {
        self.log_limit = limit.max(1);
        while self.log.len() > self.log_limit {
            self.log.pop_front();
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Follows changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Changes after `rv`, or None when the log no longer reaches back that far.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Change>> {
        match self.log.front() {
            Some(first) if first.rv > rv + 1 => None,
            _ => Some(self.log.iter().filter(|c| c.rv > rv).cloned().collect()),
        }
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.objects.get(key).map(|s| s.value.clone())
    }

    /// The objects of a resource, in one namespace or all, in key order, with their JSON.
    /// Keys sort by resource first, so this reads one range of the map, not every object.
    pub fn list_encoded(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<(Arc<Value>, Bytes)> {
        let start = Key {
            group: group.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.unwrap_or_default().to_owned(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(|(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, s)| (s.value.clone(), s.json.clone()))
            .collect()
    }

    /// The objects of a resource, in one namespace or all, in key order.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.list_encoded(group, plural, namespace)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Every object (for `--state` snapshots).
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Arc<Value>)> {
        self.objects.iter().map(|(k, s)| (k, &s.value))
    }

    /// Stores `object` under `key`, stamping a new resourceVersion, and records the change.
    pub fn put(&mut self, key: Key, mut object: Value) -> Arc<Value> {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let stored = Stored::new(object);
        let kind = if self.objects.insert(key.clone(), stored.clone()).is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            rv: self.rv,
            kind,
            key,
            object: stored.value.clone(),
            json: stored.json,
        });
        stored.value
    }

    /// Removes an object and records the deletion.
    pub fn remove(&mut self, key: &Key) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        self.rv += 1;
        let mut gone = (*old.value).clone();
        gone["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let stored = Stored::new(gone);
        self.record(Change {
            rv: self.rv,
            kind: ChangeKind::Deleted,
            key: key.clone(),
            object: stored.value.clone(),
            json: stored.json,
        });
        Some(stored.value)
    }

    fn record(&mut self, change: Change) {
        if self.log.len() >= self.log_limit {
            self.log.pop_front();
        }
        self.log.push_back(change.clone());
        let _ = self.tx.send(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        Key {
            group: String::new(),
            plural: "configmaps".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn versions_grow_and_the_log_replays() {
        let mut s = Store::default();
        let a = s.put(key("a"), json!({"metadata": {"name": "a"}}));
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        s.put(key("b"), json!({"metadata": {"name": "b"}}));
        s.remove(&key("a"));
        let since = s.changes_since(rv_a).unwrap();
        assert_eq!(
            since.iter().map(|c| c.kind).collect::<Vec<_>>(),
            vec![ChangeKind::Added, ChangeKind::Deleted]
        );
        assert_eq!(s.list("", "configmaps", Some("default")).len(), 1);
    }
}
