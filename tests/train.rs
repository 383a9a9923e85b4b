//! Release train files (`kind: Train`): checked whole, as pipelines are. The example train
//! validates and passes its members' pre-flight on the sandbox; every mistake a train file
//! can hold is named with its file, line and column.

use std::path::{Path, PathBuf};
use std::process::Command;

use glidepath::pipeline::Variables;
use glidepath::train;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn glidepath(args: &[&str], home: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .env("GLIDEPATH_HOME", home)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_train_checks_with_its_waves_and_its_members_preflight() {
    let home = tempfile::tempdir().unwrap();
    let file = root().join("config/examples/train/train.yaml");
    let (code, out, err) = glidepath(&["check", file.to_str().unwrap(), "--sandbox"], home.path());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("train checkout-2 (3 members through staging → prod)"),
        "{out}"
    );
    assert!(out.contains("wave 1: payments, inventory"), "{out}");
    assert!(
        out.contains("wave 2: checkout (after payments, inventory)"),
        "{out}"
    );
    for member in ["payments", "inventory", "checkout"] {
        assert!(out.contains(&format!("ok: member {member} (")), "{out}");
    }
    let t = train::load_file(&file, &Variables::default()).unwrap();
    assert_eq!(t.waves, vec![vec![0, 1], vec![2]]);
    // Each member's pipeline got its own `set` values.
    assert_eq!(t.members[0].pipeline.sets["version"], "3.1.0");
    assert_eq!(t.members[2].pipeline.sets["version"], "2.0.0");
}

#[test]
fn a_train_runs_every_stage_and_says_so_when_given_one() {
    // (`diff` of a train shows each member's diff: tests/train_run.rs.)
    let home = tempfile::tempdir().unwrap();
    let file = root().join("config/examples/train/train.yaml");
    let (code, _, err) = glidepath(
        &[
            "run",
            file.to_str().unwrap(),
            "--headless",
            "--stage",
            "prod",
        ],
        home.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--stage prod: a train moves all its members"),
        "{err}"
    );
}

/// A folder with the example's three member pipelines and `train` as the train file.
fn with_train(train: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("config/examples/train");
    std::fs::create_dir(dir.path().join("k8s")).unwrap();
    for member in ["payments", "inventory", "checkout"] {
        for name in [format!("{member}.yaml"), format!("k8s/{member}.yaml")] {
            std::fs::copy(example.join(&name), dir.path().join(&name)).unwrap();
        }
    }
    let path = dir.path().join("train.yaml");
    std::fs::write(&path, train).unwrap();
    (dir, path)
}

const HEAD: &str = "apiVersion: glidepath/v1\nkind: Train\nmetadata: { name: t }\nspec:\n";

fn error_of(body: &str) -> String {
    let (_dir, path) = with_train(&format!("{HEAD}{body}"));
    let e = train::load_file(&path, &Variables::default()).unwrap_err();
    // Relative to the train file's folder, so the message reads as an operator sees it.
    e.to_string()
        .replace(&format!("{}/", path.parent().unwrap().display()), "")
}

#[test]
fn every_mistake_in_a_train_file_is_named_where_it_is() {
    let cases = [
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml }\n    - { name: checkout, pipeline: checkout.yaml, after: [paymnts] }\n",
            "train.yaml:8:58: member `checkout` comes after `paymnts`, which is not a member of the train (did you mean `payments`?); members: payments, checkout",
        ),
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml, after: [checkout] }\n    - { name: inventory, pipeline: inventory.yaml, after: [payments] }\n    - { name: checkout, pipeline: checkout.yaml, after: [inventory] }\n",
            "train.yaml:7:15: the members' `after` make a cycle: `payments` comes after `checkout`, `checkout` comes after `inventory`, `inventory` comes after `payments`; none of them could ever start",
        ),
        (
            "  stages: [staging, canary, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml }\n",
            "train.yaml:5:21: member `payments` has no stage `canary` (its stages: staging, prod)",
        ),
        (
            "  stages: [prod]\n  members:\n    - { name: payments, pipeline: payments.yaml }\n",
            "train.yaml:7:35: member `payments` has a stage `staging` the train does not move through",
        ),
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml }\n    - { name: payments, pipeline: inventory.yaml }\n",
            "train.yaml:8:15: member `payments` is named twice; names are unique",
        ),
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: billing.yaml }\n",
            "train.yaml:7:35: member `payments`: no pipeline file",
        ),
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml, after: [payments] }\n",
            "train.yaml:7:58: member `payments` cannot come after itself",
        ),
        (
            "  stages: [staging, staging]\n  members:\n    - { name: payments, pipeline: payments.yaml }\n",
            "train.yaml:5:21: stage `staging` is listed twice",
        ),
        (
            "  stages: [staging, prod]\n  members: []\n",
            "train.yaml:6:12: members: a train has at least one member",
        ),
        (
            "  stages: [staging, prod]\n  members:\n    - { name: payments, pipeline: payments.yaml, wait: [x] }\n",
            "train.yaml:7:",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(body, expected)| (error_of(body), *expected))
        .filter(|(e, expected)| !e.starts_with(expected))
        .map(|(e, expected)| format!("expected {expected:?}\n     got {e:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_members_own_mistake_is_named_in_its_own_file_and_the_member() {
    let (dir, path) = with_train(&format!(
        "{HEAD}  stages: [staging, prod]\n  members:\n    - {{ name: payments, pipeline: payments.yaml }}\n"
    ));
    std::fs::write(
        dir.path().join("payments.yaml"),
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: payments }\nspec:\n  stages:\n    - name: staging\n      steps:\n        - deplo: {}\n",
    )
    .unwrap();
    let e = train::load_file(&path, &Variables::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("payments.yaml:8:"), "{e}");
    assert!(e.ends_with("(member `payments` of the train)"), "{e}");
}

#[test]
fn train_variables_and_sets_fill_the_train_file() {
    let (_dir, path) = with_train(&format!(
        "{HEAD}  variables: {{ checkout: \"2.0.0\" }}\n  stages: [staging, prod]\n  members:\n    - {{ name: checkout, pipeline: checkout.yaml, set: {{ version: \"${{checkout}}\" }} }}\n"
    ));
    let t = train::load_file(&path, &Variables::default()).unwrap();
    assert_eq!(t.members[0].pipeline.sets["version"], "2.0.0");
    let sets = Variables {
        sets: [("checkout".to_owned(), "2.0.1".to_owned())].into(),
        use_env: false,
    };
    let t = train::load_file(&path, &sets).unwrap();
    assert_eq!(t.members[0].pipeline.sets["version"], "2.0.1");
}

#[test]
fn the_shipped_train_schema_is_current() {
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("assets/train.schema.json")).unwrap(),
    )
    .unwrap();
    // Regenerate with `glidepath schema --train > assets/train.schema.json`.
    assert_eq!(
        shipped,
        train::json_schema(),
        "assets/train.schema.json is stale"
    );
    let members = &shipped["$defs"]["Member"]["properties"];
    assert!(members.get("after").is_some(), "{members}");
}
