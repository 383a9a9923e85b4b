//! Every PromQL query an SLO file holds, found where it is written and parsed before a run
//! (or `slo eval|budget|rules`) sends it: a typo shows up as file:line:col with the
//! parser's message, not as "no data" in the middle of a release.
//!
//! Templates are filled with placeholders of the right shape first: `${window}` with a
//! duration, other variables (and Keptn's `$SERVICE`...) with a label-safe word.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::yaml::{self, LoadError, Node, Pos, Value};

/// One query and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedQuery {
    /// The file it is in (the SLO file, or Keptn's sli.yaml).
    pub file: PathBuf,
    /// The SLI (or service-level part) it measures.
    pub sli: String,
    /// Where the query's scalar starts.
    pub pos: Pos,
    /// Whether that scalar is plain (unquoted), so columns inside it can be counted.
    plain: bool,
    /// What the query is used for.
    pub part: Part,
    /// The template, as written.
    pub text: String,
}

/// What a query is used for: an objective's SLI, the service level behind error budgets and
/// rules, or (OpenSLO's ratio) both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Measured for objectives (`evaluate`, analysis, `slo eval`).
    Sli,
    /// The service level's ratio (`gate: errorBudget`, `monitoring`, `slo budget|rules`).
    ServiceLevel,
    /// Both.
    Both,
}

impl Part {
    fn serves(self, use_: Part) -> bool {
        self == Part::Both || use_ == Part::Both || self == use_
    }
}

/// Which `${name}` variables something will fill.
#[derive(Debug, Clone, Copy)]
pub enum Fills<'a> {
    /// Any: only the syntax is checked (`slo eval --values`, which sends no query).
    Any,
    /// These names (and `window`); any other is an error that ends with `hint`.
    Only {
        /// Names that will be filled.
        names: &'a BTreeSet<String>,
        /// What to do about a name that will not be, such as "pass --set NAME=VALUE".
        hint: &'a str,
    },
}

/// A placeholder a duration fits (`rate(x[${window}])`).
const WINDOW: &str = "5m";
/// A placeholder a label value, a metric name part or a label name fits.
const WORD: &str = "placeholder";
/// Keptn's placeholders and what stands in for them.
const KEPTN: [(&str, &str); 5] = [
    ("$DURATION_SECONDS", "300s"),
    ("$SERVICE", WORD),
    ("$STAGE", WORD),
    ("$PROJECT", WORD),
    ("$DEPLOYMENT", WORD),
];

/// Loads the SLO file's queries and parses each; the first error names the file, the SLI,
/// the line and column, and what was wrong. `fills` applies to the queries of the part in
/// use; the others are sent by nobody here, so any variable passes in them.
pub fn check_file(
    path: &Path,
    sli: Option<&Path>,
    fills: Fills<'_>,
    used: Part,
) -> Result<(), LoadError> {
    for q in locate(path, sli)? {
        check(
            &q,
            if q.part.serves(used) {
                fills
            } else {
                Fills::Any
            },
        )?;
    }
    Ok(())
}

/// Every query of an SLO file (Keptn's from its sli.yaml), with its position.
pub fn locate(path: &Path, sli: Option<&Path>) -> Result<Vec<LocatedQuery>, LoadError> {
    let docs = parse(path)?;
    let mut out = Vec::new();
    let Some(first) = docs.first() else {
        return Ok(out);
    };
    let api = first
        .get("apiVersion")
        .and_then(Node::as_str)
        .unwrap_or_default();
    if api.starts_with("openslo/") {
        for d in &docs {
            let name = d
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Node::as_str)
                .unwrap_or("indicator");
            openslo_queries(path, name, d, &mut Vec::new(), &mut out);
        }
        for q in &mut out {
            q.part = Part::Both;
        }
    } else if api == "glidepath/v1" {
        let spec = first.get("spec");
        let slis = spec.and_then(|s| s.get("slis"));
        entries(path, slis, &mut out);
        let level = spec.and_then(|s| s.get("serviceLevel"));
        for part in ["good", "bad", "total"] {
            if let Some(node) = level.and_then(|l| l.get(part)) {
                push(path, &format!("serviceLevel.{part}"), node, &mut out);
                if let Some(q) = out.last_mut() {
                    q.part = Part::ServiceLevel;
                }
            }
        }
    } else if let Some(sli) = sli {
        let docs = parse(sli)?;
        let indicators = docs.first().and_then(|d| d.get("indicators"));
        entries(sli, indicators, &mut out);
    }
    Ok(out)
}

fn parse(path: &Path) -> Result<Vec<Node>, LoadError> {
    let text = crate::input::read_text(path).map_err(|e| LoadError {
        file: path.to_owned(),
        pos: None,
        message: format!("cannot read the SLO file: {e}"),
    })?;
    yaml::parse_documents(&text).map_err(|e| LoadError {
        file: path.to_owned(),
        pos: e.pos,
        message: e.message,
    })
}

/// A mapping of SLI name → query.
fn entries(path: &Path, map: Option<&Node>, out: &mut Vec<LocatedQuery>) {
    if let Some(Node {
        value: Value::Map(items),
        ..
    }) = map
    {
        for (k, v) in items {
            push(path, k.as_str().unwrap_or_default(), v, out);
        }
    }
}

fn push(path: &Path, sli: &str, node: &Node, out: &mut Vec<LocatedQuery>) {
    if let Value::Scalar { text, plain } = &node.value {
        out.push(LocatedQuery {
            file: path.to_owned(),
            sli: sli.to_owned(),
            pos: node.pos,
            plain: *plain,
            part: Part::Sli,
            text: text.clone(),
        });
    }
}

/// OpenSLO: every `metricSource.spec.query`, named by its document and ratio part.
fn openslo_queries<'a>(
    path: &Path,
    doc: &str,
    node: &'a Node,
    keys: &mut Vec<&'a str>,
    out: &mut Vec<LocatedQuery>,
) {
    match &node.value {
        Value::Scalar { .. } => {
            if keys.ends_with(&["metricSource", "spec", "query"]) {
                let part = keys.iter().rev().nth(3).copied().unwrap_or("query");
                push(path, &format!("{doc} ({part})"), node, out);
            }
        }
        Value::Seq(items) => items
            .iter()
            .for_each(|i| openslo_queries(path, doc, i, keys, out)),
        Value::Map(items) => {
            for (k, v) in items {
                keys.push(k.as_str().unwrap_or_default());
                openslo_queries(path, doc, v, keys, out);
                keys.pop();
            }
        }
    }
}

/// Fills the query's placeholders and parses it.
pub fn check(q: &LocatedQuery, fills: Fills<'_>) -> Result<(), LoadError> {
    let err = |pos: Pos, message: String| LoadError {
        file: q.file.clone(),
        pos: Some(pos),
        message: format!("SLI `{}`: {message}", q.sli),
    };
    let mut filled = String::with_capacity(q.text.len());
    let mut rest = q.text.as_str();
    let mut offset = 0;
    while let Some(i) = rest.find("${") {
        filled.push_str(&rest[..i]);
        let start = offset + i;
        let Some(end) = rest[i..].find('}') else {
            return Err(err(
                q.column(start),
                "`${` is not closed; write `${name}`".into(),
            ));
        };
        let name = rest[i + 2..i + end].trim();
        filled.push_str(&placeholder(name, fills).map_err(|m| err(q.column(start), m))?);
        offset = start + end + 1;
        rest = &rest[i + end + 1..];
    }
    filled.push_str(rest);
    for (keptn, value) in KEPTN {
        filled = filled.replace(keptn, value);
    }
    promql_parser::parser::parse(&filled)
        .map(drop)
        .map_err(|m| {
            err(
                q.pos,
                format!("the query is not valid PromQL: {}", m.trim()),
            )
        })
}

/// What stands in for `${name}`, or why nothing will fill it.
fn placeholder(name: &str, fills: Fills<'_>) -> Result<String, String> {
    if name == "window" {
        return Ok(WINDOW.into());
    }
    match fills {
        Fills::Any => Ok(WORD.into()),
        Fills::Only { names, .. } if names.contains(name) => Ok(WORD.into()),
        Fills::Only { names, hint } => {
            let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
            known.push("window");
            known.sort_unstable();
            let near = yaml::closest(name, &known)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            Err(format!(
                "`${{{name}}}`{near} is filled by nothing here, so the query would match nothing; known: {}; {}",
                known.join(", "),
                hint.replace("NAME", name)
            ))
        }
    }
}

impl LocatedQuery {
    /// The position of byte `i` of the query: exact in a plain one-line scalar, else
    /// the scalar's start.
    fn column(&self, i: usize) -> Pos {
        if self.plain && !self.text[..i].contains('\n') {
            Pos {
                line: self.pos.line,
                col: self.pos.col + self.text[..i].chars().count(),
            }
        } else {
            self.pos
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const NATIVE: &str = "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: shop }\nspec:\n  slis:\n    error_rate: sum(rate(http_requests_total{code=~\"5..\", service=\"${service}\"}[${window}]))\n    latency: histogram_quantile(0.95, sum by (le) (rate(x_bucket[${window}]))\n  objectives:\n    - { sli: error_rate, pass: [\"<=0.01\"] }\n";

    #[test]
    fn a_query_that_does_not_parse_names_file_sli_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let slo = file(dir.path(), "slo.yaml", NATIVE);
        let e = check_file(&slo, None, Fills::Any, Part::Both).unwrap_err();
        assert_eq!(e.file, slo);
        assert_eq!(e.pos, Some(Pos { line: 7, col: 14 }));
        assert!(
            e.message
                .starts_with("SLI `latency`: the query is not valid PromQL: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn good_queries_of_every_format_parse() {
        let dir = tempfile::tempdir().unwrap();
        let good = NATIVE.replace(
            "[${window}]))\n  objectives",
            "[${window}])))\n  objectives",
        );
        let slo = file(dir.path(), "slo.yaml", &good);
        let names = BTreeSet::from(["service".to_owned()]);
        let fills = Fills::Only {
            names: &names,
            hint: "pass --set NAME=VALUE",
        };
        check_file(&slo, None, fills, Part::Sli).unwrap();
        assert_eq!(locate(&slo, None).unwrap().len(), 2);
        let keptn = file(dir.path(), "k.yaml", "objectives: []\n");
        let sli = file(
            dir.path(),
            "sli.yaml",
            "indicators:\n  rt: avg(rate(x{job=\"$SERVICE-$STAGE\"}[$DURATION_SECONDS]))\n  bad: sum(x\n",
        );
        let e = check_file(&keptn, Some(&sli), Fills::Any, Part::Sli).unwrap_err();
        assert_eq!(e.file, sli);
        assert_eq!(e.pos, Some(Pos { line: 3, col: 8 }));
        assert!(e.message.starts_with("SLI `bad`:"), "{}", e.message);
    }

    #[test]
    fn openslo_queries_are_found_and_checked() {
        let text = std::fs::read_to_string("tests/fixtures/slo/openslo.yaml").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ok = file(dir.path(), "o.yaml", &text);
        let found = locate(&ok, None).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        check_file(&ok, None, Fills::Any, Part::Sli).unwrap();
        let broken = file(dir.path(), "b.yaml", &text.replacen("sum(", "sum((", 1));
        let e = check_file(&broken, None, Fills::Any, Part::ServiceLevel).unwrap_err();
        assert!(e.message.contains("is not valid PromQL"), "{}", e.message);
    }

    /// Every SLO file of the repository that loads has queries that parse: the check
    /// refuses only what Prometheus would.
    #[test]
    fn every_slo_file_that_loads_passes_the_query_check() {
        let mut files = Vec::new();
        for dir in [
            "tests/fixtures/slo",
            "tests/fixtures/delivery",
            "config/demo",
            "config/examples/checkout/slo",
        ] {
            for e in std::fs::read_dir(dir).unwrap() {
                files.push(e.unwrap().path());
            }
        }
        let mut checked = 0;
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        {
            if crate::slo::Slo::load(f, None).is_err() || f.ends_with("invalid-promql.yaml") {
                continue;
            }
            check_file(f, None, Fills::Any, Part::Both)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} SLO files checked");
    }

    #[test]
    fn a_variable_nothing_fills_is_named_with_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let good = NATIVE.replace(
            "[${window}]))\n  objectives",
            "[${window}])))\n  objectives",
        );
        let slo = file(dir.path(), "slo.yaml", &good);
        let none = BTreeSet::new();
        let fills = Fills::Only {
            names: &none,
            hint: "pass --set NAME=VALUE",
        };
        let e = check_file(&slo, None, fills, Part::Sli).unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 6, col: 68 }));
        assert_eq!(
            e.message,
            "SLI `error_rate`: `${service}` is filled by nothing here, so the query would match nothing; known: window; pass --set service=VALUE"
        );
    }
}
