//! Policies written in Rego (OPA), evaluated in-process with `regorus` over rendered
//! manifests. Each policy file declares a package with a `deny` set of messages (Rego v1:
//! `deny contains msg if { ... }`); a message is a violation of the object given as
//! `input`. Shipped examples: `config/policies/`.

use std::path::PathBuf;

use serde_json::Value;

mod nesting;

use crate::events::{Evidence, Verdict};
use crate::kube::objects::describe;

/// Why policies could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A policy does not compile; the detail names the line.
    #[error("policy {}: {detail}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// What the Rego compiler said.
        detail: String,
    },
    /// A policy's `deny` rule failed while it ran.
    #[error("policy {policy}: {rule}: {detail}")]
    Eval {
        /// The policy (its file's stem).
        policy: String,
        /// The rule (`data.package.deny`).
        rule: String,
        /// What the evaluator said.
        detail: String,
    },
    /// An object or a result could not be carried between JSON and Rego values.
    #[error("{0}")]
    Value(String),
}

/// Loads the policies; the packages found, with an engine holding them.
fn engine(paths: &[PathBuf]) -> Result<(regorus::Engine, Vec<(String, String)>), Error> {
    let mut engine = regorus::Engine::new();
    let mut packages = Vec::new();
    for p in paths {
        let text = crate::input::read_text(p).map_err(|e| Error::Read {
            path: p.clone(),
            source: e.into(),
        })?;
        nesting::check(&text).map_err(|detail| Error::Compile {
            path: p.clone(),
            detail,
        })?;
        let package = engine
            .add_policy(p.display().to_string(), text)
            .map_err(|e| Error::Compile {
                path: p.clone(),
                detail: e.to_string(),
            })?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        packages.push((name, package));
    }
    Ok((engine, packages))
}

/// The messages of every policy's `deny` set for one object, as `(policy, message)`.
pub fn violations(paths: &[PathBuf], object: &Value) -> Result<Vec<(String, String)>, Error> {
    let (mut engine, packages) = engine(paths)?;
    let input = regorus::Value::from_json_str(&object.to_string())
        .map_err(|e| Error::Value(e.to_string()))?;
    engine.set_input(input);
    let mut out = Vec::new();
    for (name, package) in packages {
        let rule = format!("{package}.deny");
        let denied = engine.eval_rule(rule.clone()).map_err(|e| Error::Eval {
            policy: name.clone(),
            rule: rule.clone(),
            detail: e.to_string(),
        })?;
        let json = denied
            .to_json_str()
            .map_err(|e| Error::Value(e.to_string()))?;
        match serde_json::from_str::<Value>(&json).map_err(|e| Error::Value(e.to_string()))? {
            Value::Array(messages) => {
                for m in messages {
                    out.push((
                        name.clone(),
                        m.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| m.to_string()),
                    ));
                }
            }
            Value::Null => {}
            other => out.push((name.clone(), other.to_string())),
        }
    }
    Ok(out)
}

/// One piece of evidence per object and policy: a pass, or each violation naming the object
/// and the rule.
pub fn check(paths: &[PathBuf], objects: &[Value]) -> Vec<Evidence> {
    let mut out = Vec::new();
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    for o in objects {
        match violations(paths, o) {
            Ok(v) => {
                for name in &names {
                    let mine: Vec<&String> = v
                        .iter()
                        .filter(|(n, _)| n == name)
                        .map(|(_, m)| m)
                        .collect();
                    let check = format!("policy {name}: {}", describe(o));
                    if mine.is_empty() {
                        out.push(Evidence::new(check, Verdict::Pass, "no violation"));
                    } else {
                        for m in mine {
                            out.push(Evidence::new(check.clone(), Verdict::Fail, m.clone()));
                        }
                    }
                }
            }
            Err(e) => out.push(Evidence::new(
                format!("policies: {}", describe(o)),
                Verdict::Error,
                e.to_string(),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("p.rego");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_string_and_regex_builtins_the_shipped_policies_use_are_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            &dir,
            "package t\ndeny contains msg if {\n  regex.match(`^latest$`, input.tag)\n  \
             msg := sprintf(\"tag %s\", [input.tag])\n}\n",
        );
        let found = violations(&[p], &serde_json::json!({ "tag": "latest" })).unwrap();
        assert_eq!(found, vec![("p".to_owned(), "tag latest".to_owned())]);
    }

    #[test]
    fn a_builtin_left_out_of_the_build_is_an_error_naming_it_never_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(
            &dir,
            "package t\ndeny contains msg if {\n  time.now_ns() > 0\n  msg := \"late\"\n}\n",
        );
        let e = violations(&[p], &serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains("time.now_ns"), "{e}");
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    #[test]
    fn deeply_nested_policies_are_errors_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body, limit) in [
            (
                "arrays.rego",
                format!("x := {}1{}", "[".repeat(20_000), "]".repeat(20_000)),
                "12 levels of `[` and `{`",
            ),
            (
                "sets.rego",
                format!("x := {}1{}", "{".repeat(40), "}".repeat(40)),
                "12 levels of `[` and `{`",
            ),
            (
                "parens.rego",
                format!("x := {}1{}", "(".repeat(20_000), ")".repeat(20_000)),
                "64 levels of `(`",
            ),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("package t\n{body}\n")).unwrap();
            let e = violations(&[p], &serde_json::json!({})).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
            assert!(e.to_string().contains(limit), "{e}");
        }
        // Eleven levels, and more in strings and comments too, are fine.
        let p = dir.path().join("ok.rego");
        let twelve = format!("{}1{}", "[".repeat(11), "]".repeat(11));
        std::fs::write(&p, format!("package t\n# [[[[[[[[[[[[[[\nx := \"[[[[[[[[[[[[[[\"\ny := {twelve}\ndeny contains \"deep\" if {{ y[0][0] == 2 }}\n")).unwrap();
        assert_eq!(violations(&[p], &serde_json::json!({})).unwrap(), vec![]);
    }
}
