//! Server-side apply field ownership, as kube-apiserver keeps it in `metadata.managedFields`:
//! each manager owns the fields it applied (or changed with an update), and an apply that
//! would change a field another manager owns is refused with a 409 naming the manager and
//! the field, unless it is forced, which takes the field over.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Kind;
use super::store::ApiError;

/// One step into an object: a field (`f:name`) or a list item by its key (`k:{"name":"x"}`).
type Path = Vec<String>;

/// Fields the server sets or that identify the object; nobody owns them.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

/// The leaf fields an object (or applied configuration) sets, as fieldsV1 paths.
pub fn leaves(obj: &Value, kind: &Kind) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (field, value) in map {
        let skip = matches!(field.as_str(), "apiVersion" | "kind")
            || (field == "status" && kind.subresources.iter().any(|s| s == "status"));
        if skip {
            continue;
        }
        if field == "metadata" {
            for (m, v) in value.as_object().into_iter().flatten() {
                if !UNOWNED_METADATA.contains(&m.as_str()) {
                    walk(v, m, vec!["f:metadata".into(), format!("f:{m}")], &mut out);
                }
            }
            continue;
        }
        walk(value, field, vec![format!("f:{field}")], &mut out);
    }
    out
}

fn walk(value: &Value, field: &str, path: Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(v, k, p, out);
            }
        }
        Value::Array(items) => match super::patch::merge_key(field, items.iter()) {
            Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("k:{}", json!({ key: item[key] })));
                    walk(item, "", p, out);
                }
            }
            _ => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a fieldsV1 path, if the object has it.
fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for step in path {
        cur = if let Some(f) = step.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let want: Map<String, Value> = serde_json::from_str(step.strip_prefix("k:")?).ok()?;
            cur.as_array()?
                .iter()
                .find(|item| want.iter().all(|(k, v)| item.get(k) == Some(v)))?
        };
    }
    Some(cur)
}

/// A path as kube-apiserver writes it in a conflict: `.spec.containers[name="web"].image`.
fn display(path: &[String]) -> String {
    let mut s = String::new();
    for step in path {
        if let Some(f) = step.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(Ok(Value::Object(key))) =
            step.strip_prefix("k:").map(serde_json::from_str::<Value>)
        {
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// The paths a managedFields entry owns.
fn owned(entry: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    collect(
        entry.get("fieldsV1").unwrap_or(&Value::Null),
        Vec::new(),
        &mut out,
    );
    out
}

fn collect(tree: &Value, path: Path, out: &mut BTreeSet<Path>) {
    let children: Vec<(&String, &Value)> = tree
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != ".")
        .collect();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path);
        }
        return;
    }
    for (k, v) in children {
        let mut p = path.clone();
        p.push(k.clone());
        collect(v, p, out);
    }
}

/// The fieldsV1 tree of a set of paths.
fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for path in paths {
        let mut cur = &mut root;
        for step in path {
            cur = &mut cur[step.as_str()];
            if cur.is_null() {
                *cur = json!({});
            }
        }
    }
    root
}

fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Refuses an apply by `manager` that would change fields other managers own: a 409 with
/// a cause per field, worded as kube-apiserver words them.
pub fn check_apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    kind: &Kind,
) -> Result<(), ApiError> {
    let wanted = leaves(applied, kind);
    // (who, field) per conflict, `who` as kube-apiserver names a manager.
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for entry in entries(live) {
        let other = entry["manager"].as_str().unwrap_or_default();
        if other == manager && entry["operation"] == "Apply" {
            continue;
        }
        let who = match entry["operation"].as_str() {
            Some("Apply") => format!("\"{other}\""),
            _ => format!(
                "\"{other}\" using {}",
                entry["apiVersion"].as_str().unwrap_or_default()
            ),
        };
        for path in owned(&entry).intersection(&wanted) {
            if value_at(live, path) != value_at(applied, path) {
                conflicts.push((who.clone(), display(path)));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(who, field)| {
            json!({ "reason": "FieldManagerConflict",
            "message": format!("conflict with {who}"), "field": field })
        })
        .collect();
    Err(ApiError {
        code: 409,
        reason: "Conflict",
        message: conflict_message(&conflicts),
        details: Some(json!({ "causes": causes })),
    })
}

/// `Apply failed with 1 conflict: conflict with "a": .f`, or with several, one line per
/// field under each manager.
fn conflict_message(conflicts: &[(String, String)]) -> String {
    let n = conflicts.len();
    if let [(who, field)] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {who}: {field}");
    }
    let mut by_manager: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (who, field) in conflicts {
        by_manager.entry(who).or_default().push(field);
    }
    let mut lines = Vec::new();
    for (who, fields) in by_manager {
        lines.push(format!("conflicts with {who}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
}

/// Records that `manager` now owns `paths` with `operation` (replacing what an Apply owned
/// before, adding to what an Update owned), and takes `taken` (the fields it changed) from
/// every other manager, as a forced apply or an update does.
pub fn record(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    paths: BTreeSet<Path>,
    taken: &BTreeSet<Path>,
    kind: &Kind,
) {
    record_in(obj, (manager, operation, None), paths, taken, kind);
}

/// [`record`] for a write through a subresource (`scale`, `status`), which kube-apiserver
/// keeps in an entry of its own (`subresource: scale`).
pub fn record_in(
    obj: &mut Value,
    (manager, operation, subresource): (&str, &str, Option<&str>),
    paths: BTreeSet<Path>,
    taken: &BTreeSet<Path>,
    kind: &Kind,
) {
    let mut list = Vec::new();
    let mut mine = paths.clone();
    for mut entry in entries(obj) {
        let same = entry["manager"] == manager
            && entry["operation"] == operation
            && entry.get("subresource").and_then(Value::as_str) == subresource;
        if same {
            if operation != "Apply" {
                mine.extend(owned(&entry));
            }
            continue;
        }
        let left: BTreeSet<Path> = owned(&entry).difference(taken).cloned().collect();
        if left.is_empty() {
            continue;
        }
        entry["fieldsV1"] = fields_v1(&left);
        list.push(entry);
    }
    let mut entry = json!({
        "manager": manager, "operation": operation, "apiVersion": kind.api_version(),
        "time": super::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&mine),
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    list.push(entry);
    obj["metadata"]["managedFields"] = Value::Array(list);
}

/// The leaves whose value differs between `before` and `after`: what an update changed.
pub fn changed(before: &Value, after: &Value, kind: &Kind) -> BTreeSet<Path> {
    leaves(after, kind)
        .into_iter()
        .filter(|p| value_at(before, p) != value_at(after, p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> Kind {
        super::super::kinds::builtins()
            .into_iter()
            .find(|k| k.kind == name)
            .unwrap()
    }

    fn applied(obj: &mut Value, manager: &str, body: &Value, force: bool) -> Result<(), ApiError> {
        let k = kind("Deployment");
        if !force {
            check_apply(obj, body, manager, &k)?;
        }
        let before = obj.clone();
        *obj = super::super::patch::server_side_apply(obj, body);
        let taken = changed(&before, obj, &k);
        record(obj, manager, "Apply", leaves(body, &k), &taken, &k);
        Ok(())
    }

    fn web(image: &str, replicas: i64) -> Value {
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "replicas": replicas, "template": { "spec": {
                "containers": [{ "name": "web", "image": image }] } } } })
    }

    #[test]
    fn a_second_manager_changing_an_owned_field_conflicts_with_the_field_named() {
        let mut obj = json!({});
        applied(&mut obj, "deploy", &web("nginx:1", 2), false).unwrap();
        let err = applied(&mut obj, "gitops", &web("nginx:2", 2), false).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let field = ".spec.template.spec.containers[name=\"web\"].image";
        let causes = err.details.unwrap()["causes"].clone();
        assert_eq!(
            causes,
            json!([{ "reason": "FieldManagerConflict", "field": field,
                "message": "conflict with \"deploy\"" }])
        );
        assert_eq!(
            err.message,
            format!("Apply failed with 1 conflict: conflict with \"deploy\": {field}")
        );
        // The same values are no conflict: both managers own them.
        applied(&mut obj, "gitops", &web("nginx:1", 2), false).unwrap();
        assert_eq!(
            obj["metadata"]["managedFields"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn a_forced_apply_takes_the_fields_and_an_update_takes_what_it_changed() {
        let k = kind("Deployment");
        let mut obj = json!({});
        applied(&mut obj, "deploy", &web("nginx:1", 2), false).unwrap();
        applied(&mut obj, "gitops", &web("nginx:2", 2), true).unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        // deploy still owns replicas (and the container's name), not the image any more.
        let deploy = entries(&obj)
            .into_iter()
            .find(|e| e["manager"] == "deploy")
            .unwrap();
        assert!(
            !owned(&deploy)
                .iter()
                .any(|p| p.last().is_some_and(|s| s == "f:image"))
        );
        let before = obj.clone();
        obj["spec"]["replicas"] = json!(5);
        let fields = changed(&before, &obj, &k);
        record(&mut obj, "rollout", "Update", fields.clone(), &fields, &k);
        let err = applied(&mut obj, "deploy", &web("nginx:1", 2), false).unwrap_err();
        let mut fields: Vec<&str> = err.details.as_ref().unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["field"].as_str())
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"web\"].image"
            ]
        );
        assert_eq!(
            err.message,
            "Apply failed with 2 conflicts: conflicts with \"gitops\":\n- .spec.template.spec.containers[name=\"web\"].image\nconflicts with \"rollout\" using apps/v1:\n- .spec.replicas"
        );
    }
}
