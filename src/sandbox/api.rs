//! The Kubernetes REST API over HTTP: routing, CRUD, patches, server-side apply,
//! subresources and watch. Every error is a real `Status` with the code kubectl prints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::Cluster;
use super::discovery::{self, Format};
use super::kinds::{Kind, Registry, Verbs};
use super::ownership;
use super::patch;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ApiError, ChangeKind, Key};

/// The largest request body accepted (the real API server's limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Answers one request.
pub async fn handle(
    axum::extract::State(cluster): axum::extract::State<Arc<Cluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let req = Request {
        method,
        user_agent,
        path: uri.path().to_owned(),
        query,
        accept,
        content_type,
        body,
        subject: match super::rbac::Subject::from_headers(&headers) {
            Ok(s) => s,
            Err(e) => return error_response(&ApiError::bad_request(e)),
        },
    };
    match route(&cluster, &req).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

struct Request {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    body: Bytes,
    /// The client's User-Agent (`kubectl/v1.33.4 (linux/amd64) ...`).
    user_agent: String,
    /// Who the request impersonates; `None` is the sandbox's all-powerful user.
    subject: Option<super::rbac::Subject>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The field manager of an update: `fieldManager`, else the User-Agent up to its first
    /// `/`, as kube-apiserver names it (`kubectl scale` shows as `kubectl`).
    fn update_manager(&self) -> String {
        match self.param("fieldManager") {
            Some(m) => m.to_owned(),
            None => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .chars()
                .take(128)
                .collect(),
        }
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self
            .content_type
            .starts_with("application/vnd.kubernetes.protobuf")
        {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: "the sandbox speaks JSON only; protobuf request bodies are not supported"
                    .into(),
                details: None,
            });
        }
        if self.body.is_empty() {
            return Err(ApiError::bad_request(
                "the request body is empty; expected a JSON object",
            ));
        }
        serde_json::from_slice(&self.body).or_else(|e| {
            // Server-side apply may send YAML.
            if self
                .content_type
                .starts_with("application/apply-patch+yaml")
            {
                let text = std::str::from_utf8(&self.body)
                    .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
                crate::yaml::parse_one(text)
                    .map(|n| n.to_json())
                    .map_err(|y| {
                        ApiError::bad_request(format!(
                            "the request body is neither JSON nor YAML: {y}"
                        ))
                    })
            } else {
                Err(ApiError::bad_request(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        })
    }
}

/// Answers 413 from the Content-Length alone, before reading a body that is too large.
pub async fn refuse_oversized(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        let e = ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("the request body is larger than {MAX_BODY} bytes"),
            details: None,
        };
        return error_response(&e);
    }
    next.run(req).await
}

/// The JSON response with a status code.
pub fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}

/// A resource URL, parsed.
struct Target {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Resolved {
    Done(Response),
    Resource(Target),
}

/// Answers discovery and finds the resource a URL names. Synchronous, so the registry lock
/// is never held across an await.
fn resolve(cluster: &Arc<Cluster>, req: &Request) -> Result<Resolved, ApiError> {
    let parts: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let registry = cluster.registry();
    if let Some(answer) = discover(cluster, &registry, req, &parts) {
        return answer;
    }
    target(&registry, req, &parts).map(Resolved::Resource)
}

/// The version, health and discovery documents (API groups and versions, OpenAPI), or
/// None for a URL that names a resource.
fn discover(
    cluster: &Cluster,
    registry: &Registry,
    req: &Request,
    parts: &[&str],
) -> Option<Result<Resolved, ApiError>> {
    let format = Format::negotiate(&req.accept);
    let discovery = |v: Value, ct: &'static str| {
        Ok(Resolved::Done(
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], v.to_string()).into_response(),
        ))
    };
    let found = |v: Option<Value>| {
        v.map(|d| Resolved::Done(json_response(StatusCode::OK, &d)))
            .ok_or_else(|| not_found_path(&req.path))
    };
    Some(match parts {
        ["version"] => discovery(discovery::version(cluster.minor), "application/json"),
        ["healthz" | "livez" | "readyz"] => {
            Ok(Resolved::Done((StatusCode::OK, "ok").into_response()))
        }
        ["api"] => discovery(discovery::core(registry, format), format.content_type()),
        ["apis"] => discovery(discovery::groups(registry, format), format.content_type()),
        ["openapi", "v2"] => {
            // A zero-length protobuf is a valid empty document: kubectl 1.27/1.28 validate nothing.
            Ok(Resolved::Done(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    Vec::<u8>::new(),
                )
                    .into_response(),
            ))
        }
        ["openapi", "v3"] => discovery(discovery::openapi_v3_index(registry), "application/json"),
        ["openapi", "v3", "api", v] => found(discovery::openapi_v3_group_version(registry, "", v)),
        ["openapi", "v3", "apis", g, v] => {
            found(discovery::openapi_v3_group_version(registry, g, v))
        }
        ["api", v] => found(discovery::resource_list(registry, "", v)),
        ["apis", g] => found(
            registry
                .groups()
                .into_iter()
                .find(|(name, _)| name == g)
                .map(|(name, versions)| discovery::api_group(&name, &versions)),
        ),
        ["apis", g, v] => found(discovery::resource_list(registry, g, v)),
        _ => return None,
    })
}

/// The resource a URL names: `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]` or the same
/// under `/apis/GROUP/VERSION`, served and scoped as the URL says.
fn target(registry: &Registry, req: &Request, parts: &[&str]) -> Result<Target, ApiError> {
    let (group, version, rest) = match parts {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found_path(&req.path)),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some((*ns).to_owned()), {
                let mut r = vec![*plural];
                r.extend_from_slice(more);
                r
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
        _ => return Err(not_found_path(&req.path)),
    };
    let kind = registry
        .by_plural(group, version, plural)
        .cloned()
        .ok_or_else(|| not_found_path(&req.path))?;
    if namespace.is_some() && !kind.namespaced {
        return Err(not_found_path(&req.path));
    }
    if let Some(s) = &sub
        && !kind.subresources.contains(s)
    {
        return Err(not_found_path(&req.path));
    }
    Ok(Target {
        kind,
        namespace,
        name,
        sub,
    })
}

async fn route(cluster: &Arc<Cluster>, req: &Request) -> Result<Response, ApiError> {
    let target = match resolve(cluster, req)? {
        Resolved::Done(response) => return Ok(response),
        Resolved::Resource(target) => target,
    };
    if target.kind.verbs != Verbs::CreateOnly
        && let Some(who) = &req.subject
    {
        let attributes = attributes(req, &target);
        super::rbac::authorize(cluster, who, &attributes).map_err(|message| ApiError {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(forbidden_details(&attributes)),
        })?;
    }
    if target.kind.verbs == Verbs::CreateOnly {
        return match (&req.method, &target.name) {
            (&Method::POST, None) => review(cluster, req, &target),
            _ => Err(ApiError::method_not_allowed(format!(
                "{} only accepts create",
                target.kind.qualified()
            ))),
        };
    }
    match (&req.method, &target.name, target.sub.as_deref()) {
        (&Method::GET, None, _) if is_true(req.param("watch")) => {
            watch(cluster, req, &target).await
        }
        (&Method::GET, None, _) => list(cluster, req, &target),
        (&Method::GET, Some(_), Some("log")) => {
            super::logs::serve(
                cluster,
                req.param("follow").is_some_and(|f| is_true(Some(f))),
                req.param("tailLines"),
                &target.namespace,
                target.name.as_deref(),
            )
            .await
        }
        (&Method::GET, Some(name), sub) => {
            let obj = cluster
                .get(&key(&target, name))
                .ok_or_else(|| ApiError::not_found(&target.kind.qualified(), name))?;
            if sub.is_none() && super::table::wanted(&req.accept) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let t = super::table::table(
                    &target.kind,
                    std::iter::once(obj.as_ref()),
                    json!({ "resourceVersion": rv }),
                );
                return Ok(json_response(StatusCode::OK, &t));
            }
            Ok(json_response(StatusCode::OK, &project(&obj, sub)))
        }
        (&Method::POST, None, None) => create(cluster, req, &target),
        (&Method::PUT, Some(name), sub) => update(cluster, req, &target, name, sub),
        (&Method::PATCH, Some(name), sub) => patch_object(cluster, req, &target, name, sub),
        (&Method::DELETE, Some(name), None) => delete(cluster, req, &target, name),
        (&Method::DELETE, None, None) => delete_collection(cluster, req, &target),
        _ => Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            req.method, req.path
        ))),
    }
}

fn is_true(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1"))
}

fn not_found_path(path: &str) -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: format!("the server could not find the requested resource ({path})"),
        details: None,
    }
}

fn key(t: &Target, name: &str) -> Key {
    Key {
        group: t.kind.group.clone(),
        plural: t.kind.plural.clone(),
        namespace: t.namespace.clone().unwrap_or_default(),
        name: name.to_owned(),
    }
}

/// The object as a subresource shows it: `scale` is an autoscaling/v1 Scale.
fn project(obj: &Value, sub: Option<&str>) -> Value {
    match sub {
        Some("scale") => {
            let selector = obj
                .pointer("/spec/selector")
                .and_then(|s| super::selector::from_label_selector_json(s).ok())
                .map(|s| s.to_string())
                .unwrap_or_default();
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
                    "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
                    "creationTimestamp": obj["metadata"]["creationTimestamp"],
                },
                "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
                "status": { "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector },
            })
        }
        _ => obj.clone(),
    }
}

fn selectors(req: &Request) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.param("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(req.param("fieldSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn selected(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    let empty = serde_json::Map::new();
    let obj_labels = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    labels.matches(obj_labels) && fields.matches(obj)
}

fn list(cluster: &Arc<Cluster>, req: &Request, t: &Target) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(req)?;
    let (items, rv) = cluster.list_encoded(&t.kind, t.namespace.as_deref());
    let mut items: Vec<(Arc<Value>, Bytes)> = items
        .into_iter()
        .filter(|(o, _)| selected(o, &labels, &fields))
        .collect();
    // `continue` carries the last key returned; items are in key order.
    if let Some(token) = req.param("continue") {
        let after = token
            .split_once(':')
            .map(|(_, k)| k.to_owned())
            .unwrap_or_default();
        items.retain(|(o, _)| list_key(o).as_str() > after.as_str());
    }
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if let Some(limit) = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some((last, _)) = items.last() {
            metadata["continue"] = json!(format!("{rv}:{}", list_key(last)));
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    if super::table::wanted(&req.accept) {
        let t = super::table::table(&t.kind, items.iter().map(|(o, _)| o.as_ref()), metadata);
        return Ok(json_response(StatusCode::OK, &t));
    }
    // Items are sent as the bytes encoded when they were stored: a large list costs a copy,
    // not an encoding of every object.
    let head = json!({ "kind": format!("{}List", t.kind.kind), "apiVersion": t.kind.api_version(), "metadata": metadata });
    let head = head.to_string();
    let mut out =
        Vec::with_capacity(head.len() + items.iter().map(|(_, b)| b.len() + 1).sum::<usize>() + 16);
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, (_, json)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.extend_from_slice(b"]}");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

fn list_key(o: &Value) -> String {
    format!(
        "{}/{}",
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// A change to send a watcher: its kind, the object and its stored bytes.
type Watched = (ChangeKind, Arc<Value>, Bytes);

async fn watch(cluster: &Arc<Cluster>, req: &Request, t: &Target) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(req)?;
    // A streaming list (sendInitialEvents=true) starts from the current objects, whatever
    // resourceVersion it names, and marks their end with a bookmark when bookmarks are on.
    let initial_events = is_true(req.param("sendInitialEvents"));
    let from: Option<u64> = match req.param("resourceVersion") {
        _ if initial_events => None,
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let bookmarks = is_true(req.param("allowWatchBookmarks"));
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    // Subscribe and snapshot under one lock, so no change falls between them.
    let (rx, initial, current_rv) = {
        let store = cluster.store();
        let rx = store.subscribe();
        let initial = match from {
            None => store
                .list_encoded(&t.kind.group, &t.kind.plural, t.namespace.as_deref())
                .into_iter()
                .map(|(o, json)| (ChangeKind::Added, o, json))
                .collect(),
            Some(rv) => match changes_since(&store, t, rv) {
                Some(changes) => changes,
                None => {
                    let gone = ApiError::gone(rv);
                    let line =
                        json!({ "type": "ERROR", "object": gone.status() }).to_string() + "\n";
                    return Ok((
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        line,
                    )
                        .into_response());
                }
            },
        };
        (rx, initial, store.rv())
    };
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let watcher = Watcher {
        kind: t.kind.clone(),
        namespace: t.namespace.clone(),
        name: t.name.clone(),
        as_table: super::table::wanted(&req.accept),
        labels,
        fields,
        bookmarks,
        initial_events_end: initial_events && bookmarks,
        timeout,
    };
    tokio::spawn(watcher.run(rx, initial, current_rv, tx));
    let stream = tokio_stream::wrappers::ReceiverStream::new(out).map(|r| r);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

/// One watch: what it selects and how it encodes, until its deadline.
struct Watcher {
    kind: Kind,
    namespace: Option<String>,
    /// Only this object, for a watch on one name.
    name: Option<String>,
    /// kubectl get -w asks for Table rows; other clients get the stored bytes.
    as_table: bool,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    /// A bookmark annotated `k8s.io/initial-events-end` follows the initial changes.
    initial_events_end: bool,
    /// How long it lasts once the initial changes are sent (`timeoutSeconds`).
    timeout: Option<Duration>,
}

type Sink = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

impl Watcher {
    /// Sends the initial changes, then every change as it happens (and a bookmark every
    /// second when asked), until the deadline, the client leaving, or falling behind.
    async fn run(
        self,
        mut rx: tokio::sync::broadcast::Receiver<super::store::Change>,
        initial: Vec<Watched>,
        current_rv: u64,
        tx: Sink,
    ) {
        let send = |change: ChangeKind, obj: &Value, json: &[u8]| {
            event_line(&self.kind, self.as_table, change, obj, json)
        };
        for (k, obj, json) in &initial {
            if selected(obj, &self.labels, &self.fields)
                && self
                    .name
                    .as_ref()
                    .is_none_or(|n| obj["metadata"]["name"] == **n)
                && tx.send(Ok(send(*k, obj, json))).await.is_err()
            {
                return;
            }
        }
        if self.initial_events_end
            && tx
                .send(Ok(bookmark(&self.kind, current_rv, true)))
                .await
                .is_err()
        {
            return;
        }
        let deadline = self.timeout.map(|d| tokio::time::Instant::now() + d);
        let mut last_rv = current_rv;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                change = next => match change {
                    None => return, // timeoutSeconds reached: the client reconnects
                    Some(Ok(c)) => {
                        last_rv = c.rv;
                        let ours = c.key.group == self.kind.group && c.key.plural == self.kind.plural
                            && self.namespace.as_ref().is_none_or(|ns| &c.key.namespace == ns);
                        if ours && selected(&c.object, &self.labels, &self.fields) && tx.send(Ok(send(c.kind, &c.object, &c.json))).await.is_err() {
                            return;
                        }
                    }
                    // A watcher that fell too far behind is closed; it relists, as with a real server.
                    Some(Err(_)) => return,
                },
                _ = tick.tick(), if self.bookmarks => {
                    if tx.send(Ok(bookmark(&self.kind, last_rv, false))).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The target's changes after `rv`, or None when they are no longer kept (410 Gone).
fn changes_since(store: &super::store::Store, t: &Target, rv: u64) -> Option<Vec<Watched>> {
    Some(
        store
            .changes_since(rv)?
            .into_iter()
            .filter(|c| c.key.group == t.kind.group && c.key.plural == t.kind.plural)
            .filter(|c| t.namespace.as_ref().is_none_or(|ns| &c.key.namespace == ns))
            .map(|c| (c.kind, c.object, c.json))
            .collect(),
    )
}

/// A watch event line: the object's stored bytes, or a Table row for `kubectl get -w`.
fn event_line(kind: &Kind, as_table: bool, change: ChangeKind, obj: &Value, json: &[u8]) -> Bytes {
    if as_table {
        let t = super::table::table(
            kind,
            std::iter::once(obj),
            json!({ "resourceVersion": obj["metadata"]["resourceVersion"] }),
        );
        return Bytes::from(json!({ "type": change.word(), "object": t }).to_string() + "\n");
    }
    let mut line = Vec::with_capacity(json.len() + 32);
    line.extend_from_slice(format!("{{\"type\":\"{}\",\"object\":", change.word()).as_bytes());
    line.extend_from_slice(json);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// A bookmark at the latest resource version seen; `initial_events_end` marks the end of a
/// streaming list's initial objects, as kube-apiserver does.
fn bookmark(kind: &Kind, rv: u64, initial_events_end: bool) -> Bytes {
    let mut mark = json!({ "type": "BOOKMARK", "object": {
        "kind": kind.kind, "apiVersion": kind.api_version(),
        "metadata": { "resourceVersion": rv.to_string() },
    }});
    if initial_events_end {
        mark["object"]["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    Bytes::from(mark.to_string() + "\n")
}

/// Checks apiVersion/kind of a body against the URL's resource.
fn check_type(body: &Value, kind: &Kind) -> Result<(), ApiError> {
    let av = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let k = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !av.is_empty() && av != kind.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    if !k.is_empty() && k != kind.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            kind.kind
        )));
    }
    Ok(())
}

fn create(cluster: &Arc<Cluster>, req: &Request, t: &Target) -> Result<Response, ApiError> {
    let mut body = req.json_body()?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type(&body, &t.kind)?;
    // A create is an update: its manager owns what it set, as operation Update.
    if let Some(manager) = req.param("fieldManager") {
        let fields = ownership::leaves(&body, &t.kind);
        ownership::record(
            &mut body,
            manager,
            "Update",
            fields,
            &Default::default(),
            &t.kind,
        );
    }
    let obj = cluster.create(
        &t.kind,
        t.namespace.as_deref(),
        &mut body,
        req.dry_run(),
        None,
    )?;
    Ok(json_response(StatusCode::CREATED, &obj))
}

fn update(
    cluster: &Arc<Cluster>,
    req: &Request,
    t: &Target,
    name: &str,
    sub: Option<&str>,
) -> Result<Response, ApiError> {
    let body = req.json_body()?;
    let k = key(t, name);
    match sub {
        Some("scale") => {
            let replicas = body
                .pointer("/spec/replicas")
                .cloned()
                .ok_or_else(|| ApiError::bad_request("a Scale needs spec.replicas"))?;
            let obj = cluster.modify(&t.kind, &k, req.dry_run(), |live| {
                let before = live.clone();
                live["spec"]["replicas"] = replicas.clone();
                record_update(req, &before, live, &t.kind, Some("scale"));
                Ok(())
            })?;
            Ok(json_response(StatusCode::OK, &project(&obj, Some("scale"))))
        }
        Some("status") => {
            check_type(&body, &t.kind)?;
            let status = body.get("status").cloned().unwrap_or(json!({}));
            let want_rv = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let obj = cluster.modify(&t.kind, &k, req.dry_run(), |live| {
                check_rv(live, want_rv.as_deref(), &t.kind, name)?;
                live["status"] = status.clone();
                Ok(())
            })?;
            Ok(json_response(StatusCode::OK, &obj))
        }
        _ => {
            check_type(&body, &t.kind)?;
            if body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    body["metadata"]["name"]
                )));
            }
            if cluster.get(&k).is_none() {
                return Err(ApiError::not_found(&t.kind.qualified(), name));
            }
            let want_rv = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let obj = cluster.modify(&t.kind, &k, req.dry_run(), |live| {
                check_rv(live, want_rv.as_deref(), &t.kind, name)?;
                let before = live.clone();
                replace_keeping_system_fields(live, body.clone(), &t.kind);
                record_update(req, &before, live, &t.kind, None);
                Ok(())
            })?;
            Ok(json_response(StatusCode::OK, &obj))
        }
    }
}

/// Records the fields an update (through `subresource`, if any) changed as its manager's,
/// taken from every other manager, as kube-apiserver keeps `managedFields`.
fn record_update(
    req: &Request,
    before: &Value,
    live: &mut Value,
    kind: &Kind,
    subresource: Option<&str>,
) {
    let fields = ownership::changed(before, live, kind);
    if fields.is_empty() {
        return;
    }
    let manager = req.update_manager();
    ownership::record_in(
        live,
        (&manager, "Update", subresource),
        fields.clone(),
        &fields,
        kind,
    );
}

fn check_rv(live: &Value, want: Option<&str>, kind: &Kind, name: &str) -> Result<(), ApiError> {
    match want {
        Some(rv)
            if live
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                != Some(rv) =>
        {
            Err(ApiError::conflict(&kind.qualified(), name))
        }
        _ => Ok(()),
    }
}

/// A PUT replaces the object, but uid, creation time and (with a status subresource) the
/// status stay the server's.
fn replace_keeping_system_fields(live: &mut Value, mut new: Value, kind: &Kind) {
    for field in ["uid", "creationTimestamp", "generation", "managedFields"] {
        if let Some(v) = live.pointer(&format!("/metadata/{field}")).cloned() {
            new["metadata"][field] = v;
        }
    }
    new["metadata"]["namespace"] = live["metadata"]["namespace"].clone();
    if kind.subresources.iter().any(|s| s == "status") {
        match live.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    new["apiVersion"] = json!(kind.api_version());
    new["kind"] = json!(kind.kind);
    *live = new;
}

fn patch_object(
    cluster: &Arc<Cluster>,
    req: &Request,
    t: &Target,
    name: &str,
    sub: Option<&str>,
) -> Result<Response, ApiError> {
    let ct = req
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = req.json_body()?;
    if ct == "application/apply-patch+yaml" {
        return apply_object(cluster, req, t, name, sub, &body);
    }
    let k = key(t, name);
    let builtin = super::kinds::builtins()
        .iter()
        .any(|b| b.group == t.kind.group && b.plural == t.kind.plural);
    let apply = |live: &mut Value, doc: &Value| apply_patch(&ct, builtin, live, doc);
    let obj = cluster.modify(&t.kind, &k, req.dry_run(), |live| match sub {
        Some("scale") => {
            let before = live.clone();
            let mut scale = project(live, Some("scale"));
            apply(&mut scale, &body)?;
            live["spec"]["replicas"] = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            record_update(req, &before, live, &t.kind, Some("scale"));
            Ok(())
        }
        _ => {
            // A resourceVersion in the patch is a precondition, as with an update.
            let want_rv = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            check_rv(live, want_rv, &t.kind, name)?;
            let before = live.clone();
            let before_status = live.get("status").cloned();
            apply(live, &body)?;
            if sub.is_none() && t.kind.subresources.iter().any(|s| s == "status") {
                // Status changes go through the status subresource only.
                match before_status {
                    Some(s) => live["status"] = s,
                    None => {
                        if let Some(o) = live.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            record_update(req, &before, live, &t.kind, None);
            Ok(())
        }
    })?;
    Ok(json_response(StatusCode::OK, &project(&obj, sub)))
}

/// Server-side apply: creates the object when it is missing, else merges the applied
/// fields (into the status alone for the status subresource), as the field manager asks.
fn apply_object(
    cluster: &Arc<Cluster>,
    req: &Request,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    body: &Value,
) -> Result<Response, ApiError> {
    let k = key(t, name);
    let manager = req.param("fieldManager").ok_or_else(|| {
        ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
    })?;
    check_type(body, &t.kind)?;
    let force = is_true(req.param("force"));
    if sub.is_none() && cluster.get(&k).is_none() {
        let mut obj = body.clone();
        obj["metadata"]["name"] = json!(name);
        let created = cluster.create(
            &t.kind,
            t.namespace.as_deref(),
            &mut obj,
            req.dry_run(),
            Some(manager),
        )?;
        return Ok(json_response(StatusCode::CREATED, &created));
    }
    let obj = cluster.modify(&t.kind, &k, req.dry_run(), |live| {
        let merged = match sub {
            Some("status") => {
                let mut m = live.clone();
                m["status"] = patch::server_side_apply(
                    &live["status"],
                    body.get("status").unwrap_or(&json!({})),
                );
                m
            }
            _ => {
                if !force {
                    ownership::check_apply(live, body, manager, &t.kind)?;
                }
                patch::server_side_apply(live, body)
            }
        };
        let before = std::mem::replace(live, merged);
        match sub {
            Some(_) => super::record_manager(live, manager, "Apply", &t.kind),
            None => {
                // What the apply changed is its own now (past the check, only a forced
                // apply changes fields that others own).
                let taken = ownership::changed(&before, live, &t.kind);
                let fields = ownership::leaves(body, &t.kind);
                ownership::record(live, manager, "Apply", fields, &taken, &t.kind);
            }
        }
        Ok(())
    })?;
    Ok(json_response(StatusCode::OK, &project(&obj, sub)))
}

/// Applies a patch document of content type `ct`; a strategic merge patch only to a
/// built-in kind, as a real server.
fn apply_patch(ct: &str, builtin: bool, live: &mut Value, doc: &Value) -> Result<(), ApiError> {
    match ct {
        "application/merge-patch+json" => {
            patch::merge_patch(live, doc);
            Ok(())
        }
        "application/strategic-merge-patch+json" if builtin => {
            patch::strategic_merge_patch(live, doc).map_err(|e| ApiError::bad_request(e.to_string()))
        }
        "application/strategic-merge-patch+json" => Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
            details: None,
        }),
        "application/json-patch+json" => patch::json_patch(live, doc).map_err(|e| ApiError {
            code: 422,
            reason: "Invalid",
            message: e.to_string(),
            details: None,
        }),
        other => Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"),
            details: None,
        }),
    }
}

fn delete(
    cluster: &Arc<Cluster>,
    req: &Request,
    t: &Target,
    name: &str,
) -> Result<Response, ApiError> {
    let options: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body).unwrap_or(json!({}))
    };
    let policy = options
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(req.param("propagationPolicy"))
        .unwrap_or("Background")
        .to_owned();
    let obj = cluster.delete(&key(t, name), &t.kind, policy == "Orphan", req.dry_run())?;
    // kube-apiserver answers the object while it lingers (finalizers, a terminating
    // Namespace) and for Pods; an object gone at once is answered with a Success Status.
    let lingers = obj.pointer("/metadata/deletionTimestamp").is_some();
    if lingers || matches!(t.kind.kind.as_str(), "Pod" | "Namespace") {
        return Ok(json_response(StatusCode::OK, &obj));
    }
    let mut details = json!({ "name": name, "kind": t.kind.plural, "uid": obj["metadata"]["uid"] });
    if !t.kind.group.is_empty() {
        details["group"] = json!(t.kind.group);
    }
    let status = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Success", "details": details });
    Ok(json_response(StatusCode::OK, &status))
}

fn delete_collection(
    cluster: &Arc<Cluster>,
    req: &Request,
    t: &Target,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(req)?;
    let (items, _) = cluster.list(&t.kind, t.namespace.as_deref());
    let mut deleted = Vec::new();
    for o in items.into_iter().filter(|o| selected(o, &labels, &fields)) {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let k = Key {
            group: t.kind.group.clone(),
            plural: t.kind.plural.clone(),
            namespace: ns.unwrap_or_default(),
            name,
        };
        deleted.push(cluster.delete(&k, &t.kind, false, req.dry_run())?);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "kind": format!("{}List", t.kind.kind), "apiVersion": t.kind.api_version(), "metadata": {}, "items": deleted }),
    ))
}

/// `details` of a 403: kube-apiserver leaves out an empty name and the core group.
fn forbidden_details(attributes: &super::rbac::Attributes) -> Value {
    let mut d = json!({ "kind": attributes.resource });
    if let Some(name) = &attributes.name {
        d["name"] = json!(name);
    }
    if !attributes.group.is_empty() {
        d["group"] = json!(attributes.group);
    }
    d
}

/// What a resource request does, as RBAC sees it.
fn attributes(req: &Request, t: &Target) -> super::rbac::Attributes {
    let verb = match (&req.method, &t.name) {
        (&Method::GET, None) if is_true(req.param("watch")) => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, None) => "deletecollection",
        (&Method::DELETE, Some(_)) => "delete",
        _ => "unknown",
    };
    // A Namespace's own URL is in that namespace, as the API server's request info says.
    let namespace = match (&t.namespace, t.kind.plural.as_str(), &t.name) {
        (None, "namespaces", Some(name)) if t.kind.group.is_empty() => Some(name.clone()),
        _ => t.namespace.clone(),
    };
    super::rbac::Attributes {
        verb: verb.into(),
        group: t.kind.group.clone(),
        resource: t.kind.plural.clone(),
        subresource: t.sub.clone(),
        namespace,
        name: t.name.clone(),
    }
}

/// SelfSubjectAccessReview: the sandbox's own user may do anything; an impersonated one
/// (`kubectl --as`, a kubeconfig's `as:`) gets what its RBAC bindings grant.
fn review(cluster: &Arc<Cluster>, req: &Request, t: &Target) -> Result<Response, ApiError> {
    let mut body = req.json_body()?;
    check_type(&body, &t.kind)?;
    if t.kind.plural == "selfsubjectreviews" {
        body["status"] = json!({ "userInfo": super::rbac::user_info(req.subject.as_ref()) });
        return Ok(json_response(StatusCode::CREATED, &body));
    }
    let Some(who) = &req.subject else {
        body["status"] = json!({ "allowed": true, "reason": "the glidepath sandbox grants its own user every request" });
        return Ok(json_response(StatusCode::CREATED, &body));
    };
    let ra = &body["spec"]["resourceAttributes"];
    let text = |f: &str| ra[f].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let attributes = super::rbac::Attributes {
        verb: text("verb").unwrap_or_default(),
        group: text("group").unwrap_or_default(),
        resource: text("resource").unwrap_or_default(),
        subresource: text("subresource"),
        namespace: text("namespace"),
        name: text("name"),
    };
    body["status"] = match super::rbac::authorize(cluster, who, &attributes) {
        Ok(reason) => json!({ "allowed": true, "reason": reason }),
        Err(_) => {
            json!({ "allowed": false, "reason": format!("no RBAC rule grants {} this", who.user) })
        }
    };
    Ok(json_response(StatusCode::CREATED, &body))
}
