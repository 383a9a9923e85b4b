//! Patch semantics of the Kubernetes API server on untyped JSON: RFC 7386 merge patch,
//! RFC 6902 JSON patch, strategic merge patch and a simplified server-side apply.
//!
//! The sandbox stores objects without their Go types, so the patch strategy the real server
//! reads from struct tags is recovered here from field names.

use serde_json::{Map, Value};

/// Why a patch could not be applied; messages go back to kubectl as they are.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body of a JSON patch was not an array.
    #[error("json patch must be an array of operations, got {0}")]
    NotAnArray(&'static str),
    /// One operation of a JSON patch failed, which rejects the whole patch.
    #[error("json patch op {index} ({op} {path}): {reason}")]
    Op {
        /// Position of the operation in the patch array.
        index: usize,
        /// The operation name as sent (`?` when it was missing).
        op: String,
        /// The operation's target pointer as sent.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A strategic merge patch was malformed at the given location.
    #[error("strategic merge patch at {path}: {reason}")]
    Strategic {
        /// Slash-separated location inside the patch (list items by patch index).
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Applies an RFC 7386 merge patch, as the server does for `application/merge-patch+json`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch; on error `target` is left unchanged.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(list) = ops else {
        return Err(PatchError::NotAnArray(type_name(ops)));
    };
    // The server rejects a patch as a whole, so work on a copy and commit only at the end.
    let mut doc = target.clone();
    for (index, op) in list.iter().enumerate() {
        let fields = op.as_object();
        let name = fields
            .and_then(|f| f.get("op"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let path = fields
            .and_then(|f| f.get("path"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let result = match fields {
            None => Err(format!(
                "operation must be an object, got {}",
                type_name(op)
            )),
            Some(f) if !f.contains_key("op") => Err("missing \"op\"".to_string()),
            Some(f) if !f.get("path").is_some_and(Value::is_string) => {
                Err("missing \"path\"".to_string())
            }
            Some(f) => apply_op(&mut doc, f, name, path),
        };
        result.map_err(|reason| PatchError::Op {
            index,
            op: name.to_string(),
            path: path.to_string(),
            reason,
        })?;
    }
    *target = doc;
    Ok(())
}

fn apply_op(
    doc: &mut Value,
    op: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<(), String> {
    let to = parse_pointer(path)?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| "missing \"value\"".to_string())
    };
    let from = || -> Result<(&str, Vec<String>), String> {
        let raw = op
            .get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| "missing \"from\"".to_string())?;
        Ok((raw, parse_pointer(raw)?))
    };
    match name {
        "add" => add(doc, &to, value()?),
        "remove" => remove(doc, &to).map(drop),
        "replace" => {
            let new = value()?;
            *get_mut(doc, &to)? = new;
            Ok(())
        }
        "move" => {
            let (raw, from) = from()?;
            if from == to {
                get(doc, &from).map_err(|e| format!("from {raw}: {e}"))?;
                return Ok(());
            }
            if to.starts_with(&from) {
                return Err(format!("cannot move {raw} into one of its own children"));
            }
            let moved = remove(doc, &from).map_err(|e| format!("from {raw}: {e}"))?;
            add(doc, &to, moved)
        }
        "copy" => {
            let (raw, from) = from()?;
            let copied = get(doc, &from)
                .map_err(|e| format!("from {raw}: {e}"))?
                .clone();
            add(doc, &to, copied)
        }
        "test" => {
            let expected = value()?;
            let actual = get(doc, &to)?;
            if json_equal(actual, &expected) {
                Ok(())
            } else {
                Err(format!(
                    "test failed: value is {actual}, expected {expected}"
                ))
            }
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "invalid JSON pointer {pointer:?}: must start with '/'"
        ));
    };
    rest.split('/')
        .map(|token| unescape_token(pointer, token))
        .collect()
}

fn unescape_token(pointer: &str, token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(format!(
                    "invalid JSON pointer {pointer:?}: '~' must be followed by 0 or 1"
                ));
            }
        }
    }
    Ok(out)
}

/// `allow_end` admits the index one past the last element (and `-`), which only add may use.
fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" {
        return if allow_end {
            Ok(len)
        } else {
            Err("'-' refers past the end of the array".to_string())
        };
    }
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let index = if well_formed {
        token.parse::<usize>().ok()
    } else {
        None
    };
    let Some(index) = index else {
        return Err(format!("invalid array index {token:?}"));
    };
    if index > len || (index == len && !allow_end) {
        return Err(format!("array index {index} out of bounds (length {len})"));
    }
    Ok(index)
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Result<&'a Value, String> {
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get(token),
            Value::Array(items) => items.get(array_index(token, items.len(), false)?),
            _ => None,
        }
        .ok_or_else(|| "path does not exist".to_string())?;
    }
    Ok(current)
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => {
                let index = array_index(token, items.len(), false)?;
                items.get_mut(index)
            }
            _ => None,
        }
        .ok_or_else(|| "path does not exist".to_string())?;
    }
    Ok(current)
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = get_mut(doc, parent).map_err(|_| "parent path does not exist".to_string())?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len(), true)?;
            items.insert(index, value);
            Ok(())
        }
        other => Err(format!(
            "parent is {}, not an object or array",
            type_name(other)
        )),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = tokens.split_last() else {
        return Err("cannot remove the whole document".to_string());
    };
    match get_mut(doc, parent)? {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| "path does not exist".to_string()),
        Value::Array(items) => {
            let index = array_index(last, items.len(), false)?;
            Ok(items.remove(index))
        }
        _ => Err("path does not exist".to_string()),
    }
}

/// RFC 6902 compares numbers by value, so `1` and `1.0` are equal for `test`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Apply shares the list rules of strategic merge but has no directives, keeps fields the
/// patch sets to null, and must never fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strategic,
    Apply,
}

/// Applies a strategic merge patch as kubectl sends it for built-in kinds; on error
/// `target` is left unchanged.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_object() {
        return Err(strategic_error(
            "",
            format!("patch must be a JSON object, got {}", type_name(patch)),
        ));
    }
    let mut doc = if target.is_object() {
        target.clone()
    } else {
        Value::Object(Map::new())
    };
    merge_value(&mut doc, patch, "", Mode::Strategic, "")?;
    *target = doc;
    Ok(())
}

/// Merges an applied configuration into the live object the way server-side apply would
/// for a single manager: lists merge by the strategic merge keys, nothing unmentioned is
/// removed, and nulls in `applied` are ignored.
pub fn server_side_apply(live: &Value, applied: &Value) -> Value {
    let mut merged = live.clone();
    match merge_value(&mut merged, applied, "", Mode::Apply, "") {
        Ok(()) => merged,
        // Apply mode has no failing paths; should one appear, keep the live object rather
        // than store something half-merged.
        Err(_) => live.clone(),
    }
}

/// The key that identifies items of a list field, or `None` for lists replaced wholesale.
/// Container ports and Service ports share the field name `ports`, so the items decide.
pub(crate) fn merge_key<'a>(
    field: &str,
    mut items: impl Iterator<Item = &'a Value>,
) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "schedulingGates"
        | "resourceClaims" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => {
            if items.any(|item| item.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Primitive lists that the server merges as sets instead of replacing; kubectl adds to them
/// by sending only the new values.
fn is_primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

fn strategic_error(path: &str, reason: String) -> PatchError {
    PatchError::Strategic {
        path: if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        },
        reason,
    }
}

fn merge_value(
    target: &mut Value,
    patch: &Value,
    field: &str,
    mode: Mode,
    path: &str,
) -> Result<(), PatchError> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_map(t, p, mode, path),
        (Value::Array(t), Value::Array(p)) => merge_list(t, p, field, mode, path),
        (t, p) => {
            *t = fresh(p, field, mode, path)?;
            Ok(())
        }
    }
}

/// The patch value as it lands where nothing existed: directives resolved, nulls dropped.
fn fresh(patch: &Value, field: &str, mode: Mode, path: &str) -> Result<Value, PatchError> {
    match patch {
        Value::Object(p) => {
            let mut map = Map::new();
            merge_map(&mut map, p, mode, path)?;
            Ok(Value::Object(map))
        }
        Value::Array(p) => {
            let mut items = Vec::new();
            merge_list(&mut items, p, field, mode, path)?;
            Ok(Value::Array(items))
        }
        other => Ok(other.clone()),
    }
}

fn is_known_directive(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

fn directive_list<'a>(
    key: &str,
    value: &'a Value,
    path: &str,
) -> Result<&'a Vec<Value>, PatchError> {
    value.as_array().ok_or_else(|| {
        strategic_error(
            path,
            format!("{key} must be a list, got {}", type_name(value)),
        )
    })
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    mode: Mode,
    path: &str,
) -> Result<(), PatchError> {
    let mut retain: Option<&Vec<Value>> = None;
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    if mode == Mode::Strategic {
        if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
            match directive.as_str() {
                // Replace is a merge into nothing, so the rest of the patch still has its
                // own directives resolved.
                Some("replace") => target.clear(),
                Some("delete") => {
                    target.clear();
                    return Ok(());
                }
                Some("merge") => {}
                _ => {
                    return Err(strategic_error(
                        path,
                        format!("unknown $patch directive {directive} in a map"),
                    ));
                }
            }
        }
        for (key, value) in patch {
            if key == RETAIN_KEYS {
                let keys = directive_list(key, value, path)?;
                if !keys.iter().all(Value::is_string) {
                    return Err(strategic_error(path, format!("{key} must list strings")));
                }
                retain = Some(keys);
            } else if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                // The server removes these before merging, so the same patch can re-add them.
                let doomed = directive_list(key, value, path)?;
                let now_empty = match target.get_mut(field) {
                    Some(Value::Array(items)) => {
                        items.retain(|item| !doomed.contains(item));
                        items.is_empty()
                    }
                    _ => false,
                };
                if now_empty {
                    target.remove(field);
                }
            } else if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
                orders.push((field, directive_list(key, value, path)?));
            }
        }
    }

    for (key, value) in patch {
        if key.starts_with('$') {
            if mode == Mode::Apply || is_known_directive(key) {
                continue;
            }
            return Err(strategic_error(
                path,
                format!("unknown patch directive {key:?}"),
            ));
        }
        if value.is_null() {
            if mode == Mode::Strategic {
                target.remove(key);
            }
            continue;
        }
        let child = format!("{path}/{key}");
        match target.get_mut(key) {
            Some(existing) => merge_value(existing, value, key, mode, &child)?,
            None => {
                if value.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    continue;
                }
                let landed = fresh(value, key, mode, &child)?;
                target.insert(key.clone(), landed);
            }
        }
    }

    for (field, order) in orders {
        if let Some(Value::Array(items)) = target.get_mut(field) {
            reorder(items, order, field);
        }
    }
    if let Some(keys) = retain {
        target.retain(|key, _| keys.iter().any(|k| k.as_str() == Some(key.as_str())));
    }
    Ok(())
}

/// Items named in `order` come first in that order; the rest keep their relative order after.
fn reorder(items: &mut Vec<Value>, order: &[Value], field: &str) {
    let key = merge_key(field, items.iter().chain(order));
    let same = |entry: &Value, item: &Value| match key {
        Some(k) => entry.get(k).is_some() && entry.get(k) == item.get(k),
        None => entry == item,
    };
    let mut rest: Vec<Option<Value>> = std::mem::take(items).into_iter().map(Some).collect();
    for entry in order {
        let found = rest
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|item| same(entry, item)));
        if let Some(item) = found
            .and_then(|pos| rest.get_mut(pos))
            .and_then(Option::take)
        {
            items.push(item);
        }
    }
    items.extend(rest.into_iter().flatten());
}

fn merge_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    field: &str,
    mode: Mode,
    path: &str,
) -> Result<(), PatchError> {
    let patch = ListPatch::read(patch, mode, path)?;
    let key = merge_key(
        field,
        target
            .iter()
            .chain(patch.items.iter().map(|(_, item)| *item)),
    );
    let keyed = key.filter(|k| {
        // Apply cannot report a malformed list, so it falls back to replacing it.
        mode == Mode::Strategic || patch.items.iter().all(|(_, item)| item.get(*k).is_some())
    });

    if patch.replace || (keyed.is_none() && !is_primitive_merge_list(field)) {
        if !patch.replace {
            if let Some((index, _)) = patch.deletes.first() {
                return Err(strategic_error(
                    &format!("{path}/{index}"),
                    format!(
                        "$patch: delete is not supported in list {field:?}, which has no merge key"
                    ),
                ));
            }
        }
        let mut landed = Vec::with_capacity(patch.items.len());
        for (index, item) in patch.items {
            landed.push(fresh(item, "", mode, &format!("{path}/{index}"))?);
        }
        *target = landed;
        return Ok(());
    }

    let Some(key) = keyed else {
        if let Some((index, _)) = patch.deletes.first() {
            return Err(strategic_error(
                &format!("{path}/{index}"),
                format!(
                    "$patch: delete is not supported in primitive list {field:?}; use $deleteFromPrimitiveList"
                ),
            ));
        }
        for (index, item) in patch.items {
            let landed = fresh(item, "", mode, &format!("{path}/{index}"))?;
            if !target.contains(&landed) {
                target.push(landed);
            }
        }
        return Ok(());
    };
    merge_keyed(target, patch, key, field, mode, path)
}

/// A list in a patch, read for its directives: a bare `$patch: replace` replaces the
/// whole list; `$patch: delete` items delete the matching ones; the rest merge.
struct ListPatch<'a> {
    replace: bool,
    /// (index in the patch, the delete item).
    deletes: Vec<(usize, &'a Map<String, Value>)>,
    /// (index in the patch, the item).
    items: Vec<(usize, &'a Value)>,
}

impl<'a> ListPatch<'a> {
    fn read(patch: &'a [Value], mode: Mode, path: &str) -> Result<ListPatch<'a>, PatchError> {
        let mut replace = false;
        let mut deletes = Vec::new();
        let mut items = Vec::new();
        for (index, item) in patch.iter().enumerate() {
            let directive = match (mode, item) {
                (Mode::Strategic, Value::Object(map)) => map.get(PATCH_DIRECTIVE).map(|d| (map, d)),
                _ => None,
            };
            match directive {
                None => items.push((index, item)),
                Some((map, d)) => match d.as_str() {
                    // A bare replace marker governs the list; one with other keys is an item
                    // whose own map replaces the matching item.
                    Some("replace") if map.len() == 1 => replace = true,
                    Some("delete") => deletes.push((index, map)),
                    Some("replace" | "merge") => items.push((index, item)),
                    _ => {
                        return Err(strategic_error(
                            &format!("{path}/{index}"),
                            format!("unknown $patch directive {d} in a list item"),
                        ));
                    }
                },
            }
        }
        Ok(ListPatch {
            replace,
            deletes,
            items,
        })
    }
}

/// Merges a list by its merge key: deletes first, then each item merged into the one
/// with the same key, or appended.
fn merge_keyed(
    target: &mut Vec<Value>,
    patch: ListPatch<'_>,
    key: &str,
    field: &str,
    mode: Mode,
    path: &str,
) -> Result<(), PatchError> {
    for (index, map) in patch.deletes {
        let Some(wanted) = map.get(key) else {
            return Err(strategic_error(
                &format!("{path}/{index}"),
                format!("$patch: delete item has no merge key {key:?}"),
            ));
        };
        target.retain(|item| item.get(key) != Some(wanted));
    }
    for (index, item) in patch.items {
        let child = format!("{path}/{index}");
        let Some(wanted) = item.get(key) else {
            return Err(strategic_error(
                &child,
                format!("list item in {field:?} has no merge key {key:?}"),
            ));
        };
        match target
            .iter_mut()
            .find(|existing| existing.get(key) == Some(wanted))
        {
            Some(existing) => merge_value(existing, item, "", mode, &child)?,
            None => target.push(fresh(item, "", mode, &child)?),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
