//! Unit tests of `patch.rs`: JSON merge, strategic merge and JSON patches as the API server applies them.

use super::*;
use serde_json::json;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    })
}

// ---- merge patch ----

#[test]
fn merge_patch_follows_rfc7386() {
    let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
    merge_patch(
        &mut doc,
        &json!({"a": "z", "c": {"f": null, "h": {"x": null, "y": 1}}, "list": [3]}),
    );
    assert_eq!(
        doc,
        json!({"a": "z", "c": {"d": "e", "h": {"y": 1}}, "list": [3]})
    );
}

#[test]
fn merge_patch_non_object_patch_replaces() {
    let mut doc = json!({"a": 1});
    merge_patch(&mut doc, &json!(["x"]));
    assert_eq!(doc, json!(["x"]));
    let mut scalar = json!("s");
    merge_patch(&mut scalar, &json!({"a": 1, "b": null}));
    assert_eq!(scalar, json!({"a": 1}));
}

// ---- json patch ----

#[test]
fn json_patch_all_operations() {
    let mut doc =
        json!({"spec": {"replicas": 1, "list": ["a", "c"]}, "metadata": {"labels": {"app": "x"}}});
    let ops = json!([
        {"op": "add", "path": "/spec/list/1", "value": "b"},
        {"op": "add", "path": "/spec/list/-", "value": "d"},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/a~1b~0c", "value": "v"},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
        {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "test", "path": "/spec/replicas", "value": 3.0}
    ]);
    json_patch(&mut doc, &ops).unwrap();
    assert_eq!(
        doc,
        json!({
            "spec": {"replicas": 3, "list": ["b", "c", "d"]},
            "metadata": {
                "labels": {"copy": "x", "moved": "x"},
                "annotations": {"a/b~c": "v"}
            }
        })
    );
}

#[test]
fn json_patch_error_names_op_and_path_and_leaves_target() {
    let mut doc = json!({"spec": {"a": 1}});
    let ops = json!([
        {"op": "add", "path": "/spec/b", "value": 2},
        {"op": "replace", "path": "/spec/a", "value": 5},
        {"op": "remove", "path": "/spec/x"}
    ]);
    let err = json_patch(&mut doc, &ops).unwrap_err();
    assert_eq!(
        err.to_string(),
        "json patch op 2 (remove /spec/x): path does not exist"
    );
    assert_eq!(doc, json!({"spec": {"a": 1}}));
}

#[test]
fn json_patch_rejects_malformed_operations() {
    let mut doc = json!({"a": [1, 2], "o": {}});
    let cases = [
        (
            json!({"op": "test", "path": "/a/0", "value": 2}),
            "test failed",
        ),
        (
            json!({"op": "add", "path": "/a/5", "value": 0}),
            "out of bounds",
        ),
        (
            json!({"op": "add", "path": "/a/01", "value": 0}),
            "invalid array index",
        ),
        (json!({"op": "remove", "path": "/a/-"}), "past the end"),
        (
            json!({"op": "add", "path": "/missing/x", "value": 0}),
            "parent path does not exist",
        ),
        (
            json!({"op": "add", "path": "a", "value": 0}),
            "must start with '/'",
        ),
        (
            json!({"op": "add", "path": "/o/~2"}),
            "'~' must be followed",
        ),
        (json!({"op": "add", "path": "/o/x"}), "missing \"value\""),
        (json!({"op": "move", "path": "/o/x"}), "missing \"from\""),
        (
            json!({"op": "move", "from": "/o", "path": "/o/x"}),
            "own children",
        ),
        (json!({"op": "frob", "path": "/o"}), "unknown operation"),
        (json!({"path": "/o"}), "missing \"op\""),
        (json!({"op": "add", "value": 1}), "missing \"path\""),
        (json!("add"), "must be an object"),
        (json!({"op": "remove", "path": ""}), "whole document"),
    ];
    for (op, expected) in cases {
        let err = json_patch(&mut doc, &json!([op])).unwrap_err().to_string();
        assert!(err.contains(expected), "{op}: {err}");
        assert!(err.starts_with("json patch op 0 ("), "{err}");
    }
    assert!(matches!(
        json_patch(&mut doc, &json!({})),
        Err(PatchError::NotAnArray(_))
    ));
}

#[test]
fn json_patch_root_and_self_move() {
    let mut doc = json!({"a": 1});
    json_patch(
        &mut doc,
        &json!([{"op": "move", "from": "/a", "path": "/a"}]),
    )
    .unwrap();
    assert_eq!(doc, json!({"a": 1}));
    json_patch(
        &mut doc,
        &json!([{"op": "replace", "path": "", "value": [1]}]),
    )
    .unwrap();
    assert_eq!(doc, json!([1]));
    json_patch(
        &mut doc,
        &json!([{"op": "add", "path": "", "value": {"b": 2}}]),
    )
    .unwrap();
    assert_eq!(doc, json!({"b": 2}));
}

// ---- strategic merge patch ----

#[test]
fn smp_kubectl_set_element_order_and_env_merge() {
    let mut doc = deployment();
    let patch = json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"name":"A","value":"2"}],"image":"nginx:2","name":"web"}]}}}});
    strategic_merge_patch(&mut doc, &patch).unwrap();
    let container = &doc["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:2");
    assert_eq!(
        container["env"],
        json!([{"name": "A", "value": "2"}, {"name": "B", "value": "1"}])
    );
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert!(!doc.to_string().contains('$'), "{doc}");
}

#[test]
fn smp_set_element_order_reorders_and_appends() {
    let mut doc = deployment();
    let patch = json!({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}],
        "containers":[{"name":"sidecar","image":"envoy"}]
    }}}});
    strategic_merge_patch(&mut doc, &patch).unwrap();
    let names: Vec<_> = doc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("sidecar"), json!("web")]);
}

#[test]
fn smp_delete_directive_removes_container() {
    let mut doc = deployment();
    strategic_merge_patch(
        &mut doc,
        &json!({"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    strategic_merge_patch(
        &mut doc,
        &json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"web"}]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"],
        json!([{"name": "side", "image": "busybox"}])
    );
}

#[test]
fn smp_service_ports_merge_by_port() {
    let mut svc = json!({"spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443}
    ]}});
    strategic_merge_patch(
        &mut svc,
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 9000, "name": "m"}]}}),
    )
    .unwrap();
    assert_eq!(
        svc["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 9090},
            {"name": "https", "port": 443, "targetPort": 8443},
            {"name": "m", "port": 9000}
        ])
    );
}

#[test]
fn smp_container_ports_merge_by_container_port() {
    let mut doc = deployment();
    strategic_merge_patch(
        &mut doc,
        &json!({"spec":{"template":{"spec":{"containers":[{"name":"web","ports":[
            {"containerPort": 80, "name": "http"},
            {"containerPort": 9090, "name": "metrics"}
        ]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 9090, "name": "metrics"}
        ])
    );
}

#[test]
fn smp_null_deletes_and_scalars_replace_and_atomic_lists_replace() {
    let mut doc =
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"], "n": 1}});
    strategic_merge_patch(
        &mut doc,
        &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"args": ["z"], "n": 2, "new": {"k": null, "v": 1}}}),
    )
    .unwrap();
    assert_eq!(
        doc,
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"args": ["z"], "n": 2, "new": {"v": 1}}})
    );
}

#[test]
fn smp_retain_keys() {
    let mut doc = deployment();
    strategic_merge_patch(
        &mut doc,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    )
    .unwrap();
    assert_eq!(doc["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn smp_map_and_list_replace_directives() {
    let mut doc = deployment();
    strategic_merge_patch(
        &mut doc,
        &json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
    )
    .unwrap();
    assert_eq!(doc["metadata"]["labels"], json!({"only": "this"}));

    strategic_merge_patch(
        &mut doc,
        &json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"solo","image":"x"}]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"],
        json!([{"name": "solo", "image": "x"}])
    );

    strategic_merge_patch(
        &mut doc,
        &json!({"spec": {"strategy": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(doc["spec"]["strategy"], json!({}));
}

#[test]
fn smp_primitive_lists() {
    let mut doc = json!({"metadata": {"finalizers": ["a", "b"]}});
    strategic_merge_patch(
        &mut doc,
        &json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}),
    )
    .unwrap();
    assert_eq!(doc["metadata"]["finalizers"], json!(["c", "b", "a"]));
    strategic_merge_patch(
        &mut doc,
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "c"]}}),
    )
    .unwrap();
    assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
    strategic_merge_patch(
        &mut doc,
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    )
    .unwrap();
    assert_eq!(doc, json!({"metadata": {}}));
}

#[test]
fn smp_volume_mounts_conditions_and_new_fields_are_cleaned() {
    let mut pod = json!({
        "spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "a", "mountPath": "/a"}]}]},
        "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}
    });
    strategic_merge_patch(
        &mut pod,
        &json!({
            "spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "a2", "mountPath": "/a", "readOnly": true}]}],
                     "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"], "$patch": "merge"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }),
    )
    .unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "a2", "mountPath": "/a", "readOnly": true}])
    );
    assert_eq!(
        pod["spec"]["hostAliases"],
        json!([{"ip": "1.2.3.4", "hostnames": ["x"]}])
    );
    assert_eq!(
        pod["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
    );
}

#[test]
fn smp_errors_leave_target_untouched() {
    let original = deployment();
    let cases = [
        (
            json!({"spec": {"$patch": "explode"}}),
            "unknown $patch directive",
        ),
        (json!({"spec": {"$bogus": 1}}), "unknown patch directive"),
        (
            json!({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}),
            "no merge key \"name\"",
        ),
        (
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}),
            "no merge key",
        ),
        (
            json!({"spec": {"args": [{"$patch": "delete", "x": 1}]}}),
            "no merge key",
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            "must be a list",
        ),
    ];
    for (patch, expected) in cases {
        let mut doc = original.clone();
        let err = strategic_merge_patch(&mut doc, &patch)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{patch}: {err}");
        assert_eq!(doc, original);
    }
    let err = strategic_merge_patch(&mut deployment(), &json!([1])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge patch at /: patch must be a JSON object, got an array"
    );
    let err = strategic_merge_patch(
        &mut deployment(),
        &json!({"spec":{"template":{"spec":{"containers":[{"name":"web"},{"image":"x"}]}}}}),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("strategic merge patch at /spec/template/spec/containers/1:"),
        "{err}"
    );
}

// ---- server-side apply ----

#[test]
fn apply_merges_lists_by_key_and_keeps_unmentioned_fields() {
    let live = deployment();
    let applied = json!({
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{
                "name": "web",
                "image": "nginx:3",
                "env": [{"name": "C", "value": "3"}],
                "args": ["--fast"],
                "ports": [{"containerPort": 80, "name": "http"}]
            }]}}
        },
        "metadata": {"labels": {"tier": null}}
    });
    let merged = server_side_apply(&live, &applied);
    let container = &merged["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(merged["spec"]["replicas"], 3);
    assert_eq!(merged["spec"]["strategy"], live["spec"]["strategy"]);
    assert_eq!(
        merged["metadata"]["labels"],
        json!({"app": "web", "tier": "front"})
    );
    assert_eq!(container["image"], "nginx:3");
    assert_eq!(container["args"], json!(["--fast"]));
    assert_eq!(
        container["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "1"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
    assert_eq!(
        container["volumeMounts"],
        live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    );
}

#[test]
fn apply_onto_empty_and_malformed_lists_never_fails() {
    let merged = server_side_apply(
        &Value::Null,
        &json!({"kind": "ConfigMap", "data": {"a": "1"}}),
    );
    assert_eq!(merged, json!({"kind": "ConfigMap", "data": {"a": "1"}}));
    let live = json!({"spec": {"containers": [{"name": "a"}]}});
    let merged = server_side_apply(&live, &json!({"spec": {"containers": [{"image": "x"}]}}));
    assert_eq!(merged, json!({"spec": {"containers": [{"image": "x"}]}}));
}
