//! Reading the three SLO formats into one [`Slo`]. Keptn files are read as Keptn reads
//! them (unknown fields ignored, its defaults applied); glidepath's own format is strict.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::criteria::{self, Criterion};
use super::{
    Aggregate, CompareWith, Comparison, Format, IncludeResults, Objective, ServiceLevel, Slo,
    TotalScore,
};
use crate::units::{Percent, Span};
use crate::yaml::LoadError;
use crate::yaml::{self, Node, Pos, Spanned};

fn read(path: &Path) -> Result<String, LoadError> {
    crate::input::read_text(path).map_err(|e| LoadError {
        file: path.to_owned(),
        pos: None,
        message: format!("cannot read the SLO file: {e}"),
    })
}

fn at(path: &Path) -> impl Fn(yaml::Error) -> LoadError + '_ {
    move |e| LoadError {
        file: path.to_owned(),
        pos: e.pos,
        message: e.message,
    }
}

/// Loads any of the three formats, told apart by their content.
pub fn load_file(path: &Path, sli: Option<&Path>) -> Result<Slo, LoadError> {
    let text = read(path)?;
    let docs = yaml::parse_documents(&text).map_err(at(path))?;
    let first = docs.first().ok_or_else(|| LoadError {
        file: path.to_owned(),
        pos: Some(Pos { line: 1, col: 1 }),
        message: "the file is empty; expected an SLO".into(),
    })?;
    let api = first
        .get("apiVersion")
        .and_then(Node::as_str)
        .unwrap_or_default();
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("slo")
        .to_owned();
    if api.starts_with("openslo/") {
        return super::openslo::load(path, &docs);
    }
    if api == "glidepath/v1" {
        return native(path, first);
    }
    if first.get("objectives").is_some() || first.get("spec_version").is_some() {
        let indicators = match sli {
            Some(p) => keptn_sli(p)?,
            None => BTreeMap::new(),
        };
        return keptn(path, first, indicators, name);
    }
    Err(LoadError {
        file: path.to_owned(),
        pos: Some(first.pos),
        message: "not an SLO file: expected `apiVersion: glidepath/v1` with `kind: SLO`, `apiVersion: openslo/v1`, or a Keptn slo.yaml with `objectives`".into(),
    })
}

fn parse_criteria(
    path: &Path,
    pos: Pos,
    sets: &[Vec<String>],
) -> Result<Vec<Vec<Criterion>>, LoadError> {
    sets.iter()
        .map(|set| {
            set.iter()
                .map(|c| {
                    criteria::parse(c).map_err(|m| LoadError {
                        file: path.to_owned(),
                        pos: Some(pos),
                        message: m,
                    })
                })
                .collect()
        })
        .collect()
}

/// An objective's weight: a number above zero (its share of the total score).
fn weight(path: &Path, w: &Spanned<f64>) -> Result<f64, LoadError> {
    if w.value.is_finite() && w.value > 0.0 {
        return Ok(w.value);
    }
    Err(LoadError {
        file: path.to_owned(),
        pos: Some(w.pos),
        message: format!(
            "weight {} is not a number above 0; a weight is the objective's share of the score, such as 1 or 2 (leave it out for 1; an objective that should not count can have no pass criteria)",
            w.value
        ),
    })
}

// ---------------------------------------------------------------- Keptn

#[derive(Deserialize)]
struct KeptnSlo {
    #[serde(default)]
    comparison: Option<Spanned<KeptnComparison>>,
    /// Keptn skips empty (`~`) items.
    #[serde(default)]
    objectives: Vec<Spanned<Option<KeptnObjective>>>,
    #[serde(default)]
    total_score: Option<Spanned<KeptnTotal>>,
}

#[derive(Deserialize, Default)]
struct KeptnComparison {
    #[serde(default)]
    aggregate_function: Option<Spanned<String>>,
    #[serde(default)]
    compare_with: Option<Spanned<String>>,
    #[serde(default)]
    include_result_with_score: Option<Spanned<String>>,
    #[serde(default)]
    number_of_comparison_results: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
struct KeptnObjective {
    sli: String,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default)]
    key_sli: bool,
    #[serde(default)]
    pass: Option<Vec<Spanned<Option<KeptnCriteria>>>>,
    #[serde(default)]
    warning: Option<Vec<Spanned<Option<KeptnCriteria>>>>,
    /// An integer in Keptn; 0 or absent is 1.
    #[serde(default)]
    weight: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
struct KeptnCriteria {
    #[serde(default)]
    criteria: Vec<String>,
}

#[derive(Deserialize)]
struct KeptnTotal {
    #[serde(default)]
    pass: Option<String>,
    #[serde(default)]
    warning: Option<String>,
}

#[derive(Deserialize)]
struct KeptnSli {
    #[serde(default)]
    indicators: BTreeMap<String, String>,
}

fn keptn_sli(path: &Path) -> Result<BTreeMap<String, String>, LoadError> {
    let text = read(path)?;
    let node = yaml::parse_one(&text).map_err(at(path))?;
    let sli: KeptnSli = yaml::from_node(&node).map_err(at(path))?;
    Ok(sli.indicators)
}

fn refuse(path: &Path, pos: Pos, message: String) -> LoadError {
    LoadError {
        file: path.to_owned(),
        pos: Some(pos),
        message,
    }
}

/// One of `allowed`, or an error at `value` naming them. Keptn reads a misspelt value as a
/// default (or, for `aggregate_function`, compares with 0), so glidepath refuses it.
fn keptn_choice<'a>(
    path: &Path,
    field: &str,
    value: &Spanned<String>,
    allowed: &[&'a str],
) -> Result<&'a str, LoadError> {
    let wanted = if field == "include_result_with_score" {
        value.value.to_lowercase()
    } else {
        value.value.clone()
    };
    allowed
        .iter()
        .find(|a| **a == wanted)
        .copied()
        .ok_or_else(|| {
            let hint = yaml::closest(&wanted, allowed)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            refuse(
                path,
                value.pos,
                format!(
                    "comparison.{field} `{}` is not one of {}{hint}",
                    value.value,
                    allowed.join(", ")
                ),
            )
        })
}

/// Keptn's defaults: no comparison block is single_result/all/1/avg. In a block, a missing
/// `compare_with` compares with 3 results, whatever `number_of_comparison_results` says; a
/// missing or 0 number is 3; a missing include is all; a missing aggregate is avg.
fn keptn_comparison(
    path: &Path,
    c: Option<&Spanned<KeptnComparison>>,
) -> Result<Comparison, LoadError> {
    let Some(c) = c else {
        return Ok(Comparison::default());
    };
    let number = match &c.value.number_of_comparison_results {
        Some(n) if n.value < 0 => {
            return Err(refuse(
                path,
                n.pos,
                format!(
                    "comparison.number_of_comparison_results is {}; expected a count of earlier results (0 means 3)",
                    n.value
                ),
            ));
        }
        Some(n) if n.value > 0 => usize::try_from(n.value).unwrap_or(usize::MAX),
        _ => 3,
    };
    let compare_with = c
        .value
        .compare_with
        .as_ref()
        .map(|v| {
            keptn_choice(
                path,
                "compare_with",
                v,
                &["single_result", "several_results"],
            )
        })
        .transpose()?;
    let (compare_with, number_of_results) = match compare_with {
        Some("single_result") => (CompareWith::SingleResult, 1),
        Some(_) => (CompareWith::SeveralResults, number),
        None => (CompareWith::SeveralResults, 3),
    };
    let include = c
        .value
        .include_result_with_score
        .as_ref()
        .map(|v| {
            keptn_choice(
                path,
                "include_result_with_score",
                v,
                &["all", "pass", "pass_or_warn"],
            )
        })
        .transpose()?;
    let aggregate = c
        .value
        .aggregate_function
        .as_ref()
        .map(|v| keptn_choice(path, "aggregate_function", v, &["avg", "p50", "p90", "p95"]))
        .transpose()?;
    Ok(Comparison {
        compare_with,
        number_of_results,
        include: match include {
            Some("pass") => IncludeResults::Pass,
            Some("pass_or_warn") => IncludeResults::PassOrWarn,
            _ => IncludeResults::All,
        },
        aggregate: match aggregate {
            Some("p50") => Aggregate::P50,
            Some("p90") => Aggregate::P90,
            Some("p95") => Aggregate::P95,
            _ => Aggregate::Avg,
        },
    })
}

/// `total_score` as lighthouse reads it: `pass` is required; each is a number with an
/// optional `%` (`90%`, `90`); glidepath also wants 0 to 100.
fn keptn_total(path: &Path, node: &Node, file: &KeptnSlo) -> Result<TotalScore, LoadError> {
    let total = file.total_score.as_ref();
    let total_pos = total.map(|t| t.pos).unwrap_or(node.pos);
    let pass = total
        .and_then(|t| t.value.pass.as_deref())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| refuse(path, total_pos, "no target score defined: add total_score with pass (and warning), such as pass: \"90%\"".into()))?;
    let percent = |what: &str, v: &str| {
        let number = v.strip_suffix('%').unwrap_or(v);
        criteria::go_float(number)
            .filter(|x| (0.0..=100.0).contains(x))
            .ok_or_else(|| {
                refuse(
                    path,
                    total_pos,
                    format!(
                        "total_score.{what} `{v}` is not a percentage from 0 to 100 such as \"90%\""
                    ),
                )
            })
    };
    let pass = percent("pass", pass)?;
    let warning = match total
        .and_then(|t| t.value.warning.as_deref())
        .filter(|w| !w.is_empty())
    {
        Some(w) => Some(percent("warning", w)?),
        None => None,
    };
    Ok(TotalScore { pass, warning })
}

/// Criteria sets of a Keptn objective; an empty (`~`) set is refused (lighthouse would
/// crash on it), an empty criteria list is kept (it passes, and scores nothing).
fn keptn_sets(
    path: &Path,
    what: &str,
    sets: &Option<Vec<Spanned<Option<KeptnCriteria>>>>,
) -> Result<Vec<Vec<Criterion>>, LoadError> {
    let mut out = Vec::new();
    for set in sets.iter().flatten() {
        let Some(c) = &set.value else {
            return Err(refuse(
                path,
                set.pos,
                format!("an empty item in `{what}`; write `- criteria: [\"<=600\"]` or remove it"),
            ));
        };
        out.extend(parse_criteria(
            path,
            set.pos,
            std::slice::from_ref(&c.criteria),
        )?);
    }
    Ok(out)
}

fn keptn_objective(path: &Path, o: &KeptnObjective) -> Result<Objective, LoadError> {
    let weight = match &o.weight {
        Some(w) if w.value < 0 => {
            return Err(refuse(
                path,
                w.pos,
                format!(
                    "weight {} is negative; expected a whole number of points (0 or absent means 1)",
                    w.value
                ),
            ));
        }
        Some(w) if w.value > 0 => w.value as f64,
        _ => 1.0,
    };
    Ok(Objective {
        sli: o.sli.clone(),
        display_name: o.display_name.clone(),
        pass: keptn_sets(path, "pass", &o.pass)?,
        warning: keptn_sets(path, "warning", &o.warning)?,
        weight,
        key_sli: o.key_sli,
    })
}

fn keptn(
    path: &Path,
    node: &Node,
    indicators: BTreeMap<String, String>,
    name: String,
) -> Result<Slo, LoadError> {
    let file: KeptnSlo = yaml::from_node(node).map_err(at(path))?;
    let comparison = keptn_comparison(path, file.comparison.as_ref())?;
    let total_score = keptn_total(path, node, &file)?;
    let objectives = file
        .objectives
        .iter()
        .filter_map(|o| o.value.as_ref().map(|v| keptn_objective(path, v)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Slo {
        name,
        format: Format::Keptn,
        slis: indicators,
        objectives,
        total_score,
        comparison,
        service_levels: Vec::new(),
    })
}

// ---------------------------------------------------------------- glidepath

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeFile {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    kind: Spanned<String>,
    metadata: NativeMeta,
    spec: NativeSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeMeta {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeSpec {
    #[serde(default)]
    slis: BTreeMap<String, String>,
    #[serde(default)]
    objectives: Vec<Spanned<NativeObjective>>,
    #[serde(default)]
    total_score: Option<NativeTotal>,
    #[serde(default)]
    comparison: Option<NativeComparison>,
    #[serde(default)]
    service_level: Option<NativeServiceLevel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeObjective {
    sli: Spanned<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    pass: CriteriaSets,
    #[serde(default)]
    warning: CriteriaSets,
    #[serde(default)]
    weight: Option<Spanned<f64>>,
    #[serde(default)]
    key: bool,
}

/// `["<=1", "<+10%"]` (one set, ANDed) or `[["<=1"], ["<=2", "<+5%"]]` (sets, ORed).
#[derive(Default)]
struct CriteriaSets(Vec<Vec<String>>);

impl<'de> Deserialize<'de> for CriteriaSets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            One(String),
            Set(Vec<String>),
        }
        let items = Vec::<Item>::deserialize(d)?;
        let mut single = Vec::new();
        let mut sets = Vec::new();
        for item in items {
            match item {
                Item::One(c) => single.push(c),
                Item::Set(s) => sets.push(s),
            }
        }
        if !single.is_empty() && !sets.is_empty() {
            return Err(serde::de::Error::custom(
                "mix of criteria and criteria lists; write either [\"<=1\", \"<+10%\"] or [[\"<=1\"], [\"<=2\"]]",
            ));
        }
        if !single.is_empty() {
            sets.push(single);
        }
        Ok(CriteriaSets(sets))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeTotal {
    pass: Percent,
    #[serde(default)]
    warning: Option<Percent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeComparison {
    #[serde(default)]
    compare_with: Option<NativeCompareWith>,
    #[serde(default)]
    number_of_results: Option<usize>,
    #[serde(default)]
    include: Option<NativeInclude>,
    #[serde(default)]
    aggregate: Option<NativeAggregate>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum NativeCompareWith {
    SingleResult,
    SeveralResults,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum NativeInclude {
    All,
    Pass,
    PassOrWarn,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum NativeAggregate {
    Avg,
    P50,
    P90,
    P95,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeServiceLevel {
    #[serde(default)]
    good: Option<String>,
    #[serde(default)]
    bad: Option<String>,
    total: String,
    target: Spanned<Percent>,
    window: Span,
}

fn native(path: &Path, node: &Node) -> Result<Slo, LoadError> {
    let f: NativeFile = yaml::from_node(node).map_err(at(path))?;
    if f.kind.value != "SLO" {
        return Err(LoadError {
            file: path.to_owned(),
            pos: Some(f.kind.pos),
            message: format!("kind `{}` is not an SLO; expected `SLO`", f.kind.value),
        });
    }
    let objectives = f
        .spec
        .objectives
        .iter()
        .map(|o| native_objective(path, &f.spec.slis, o))
        .collect::<Result<Vec<_>, _>>()?;
    let comparison = f
        .spec
        .comparison
        .as_ref()
        .map(native_comparison)
        .unwrap_or_default();
    let total_score = match &f.spec.total_score {
        Some(t) => TotalScore {
            pass: t.pass.0,
            warning: t.warning.map(|w| w.0),
        },
        // glidepath's documented default, the values Keptn's examples use.
        None => TotalScore {
            pass: 90.0,
            warning: Some(75.0),
        },
    };
    let service_levels = f
        .spec
        .service_level
        .map(|sl| native_service_level(path, sl))
        .transpose()?
        .into_iter()
        .collect();
    Ok(Slo {
        name: f.metadata.name,
        format: Format::Glidepath,
        slis: f.spec.slis,
        objectives,
        total_score,
        comparison,
        service_levels,
    })
}

/// An objective of glidepath's format, whose SLI is defined in the file or measured by a
/// load test.
fn native_objective(
    path: &Path,
    slis: &BTreeMap<String, String>,
    o: &Spanned<NativeObjective>,
) -> Result<Objective, LoadError> {
    let name = &o.value.sli.value;
    let measured_by_load = crate::loadgen::SLI_NAMES.contains(&name.as_str());
    if !slis.contains_key(name) && !measured_by_load {
        let mut known: Vec<&str> = slis.keys().map(String::as_str).collect();
        known.extend(crate::loadgen::SLI_NAMES);
        let hint = yaml::closest(&o.value.sli.value, &known)
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        return Err(LoadError {
            file: path.to_owned(),
            pos: Some(o.value.sli.pos),
            message: format!(
                "unknown SLI `{name}`{hint}; define it under spec.slis, or use a load test's (`load.latency_p95_ms`...)"
            ),
        });
    }
    Ok(Objective {
        sli: o.value.sli.value.clone(),
        display_name: o.value.display_name.clone(),
        pass: parse_criteria(path, o.pos, &o.value.pass.0)?,
        warning: parse_criteria(path, o.pos, &o.value.warning.0)?,
        weight: o
            .value
            .weight
            .as_ref()
            .map(|w| weight(path, w))
            .transpose()?
            .unwrap_or(1.0),
        key_sli: o.value.key,
    })
}

fn native_comparison(c: &NativeComparison) -> Comparison {
    Comparison {
        compare_with: match c.compare_with {
            Some(NativeCompareWith::SeveralResults) => CompareWith::SeveralResults,
            _ => CompareWith::SingleResult,
        },
        number_of_results: c.number_of_results.filter(|n| *n > 0).unwrap_or(3),
        include: match c.include {
            Some(NativeInclude::Pass) => IncludeResults::Pass,
            Some(NativeInclude::PassOrWarn) => IncludeResults::PassOrWarn,
            _ => IncludeResults::All,
        },
        aggregate: match c.aggregate {
            Some(NativeAggregate::P50) => Aggregate::P50,
            Some(NativeAggregate::P90) => Aggregate::P90,
            Some(NativeAggregate::P95) => Aggregate::P95,
            _ => Aggregate::Avg,
        },
    }
}

fn native_service_level(path: &Path, sl: NativeServiceLevel) -> Result<ServiceLevel, LoadError> {
    if sl.good.is_some() == sl.bad.is_some() {
        return Err(LoadError {
            file: path.to_owned(),
            pos: Some(sl.target.pos),
            message: "a service level needs exactly one of `good` or `bad`, beside `total`".into(),
        });
    }
    Ok(ServiceLevel::windowed_ratio(
        sl.good,
        sl.bad,
        sl.total,
        sl.target.value.fraction(),
        sl.window.get(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<Slo, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load_file(&path, None).map_err(|mut e| {
            e.file = PathBuf::from(name);
            e
        })
    }

    const NATIVE: &str = "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: shop }\nspec:\n  slis: { errors: sum(x) }\n  objectives:\n    - sli: errors\n      pass: [\"<=1\"]\n      weight: WEIGHT\n";
    const KEPTN: &str = "objectives:\n  - sli: errors\n    weight: WEIGHT\n    pass: [{criteria: [\"<=1\"]}]\ntotal_score: {pass: \"90%\"}\n";

    use std::path::PathBuf;

    #[test]
    fn a_negative_or_zero_native_weight_is_refused_where_it_is_written() {
        let e = load("slo.yaml", &NATIVE.replace("WEIGHT", "-2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "slo.yaml:9:15: weight -2 is not a number above 0; a weight is the objective's share of the score, such as 1 or 2 (leave it out for 1; an objective that should not count can have no pass criteria)"
        );
        let e = load("slo.yaml", &NATIVE.replace("WEIGHT", "0")).unwrap_err();
        assert!(
            e.to_string().starts_with("slo.yaml:9:15: weight 0 is not"),
            "{e}"
        );
        let e = load("slo.yaml", &NATIVE.replace("WEIGHT", ".nan")).unwrap_err();
        assert!(
            e.to_string().starts_with("slo.yaml:9:15: weight NaN"),
            "{e}"
        );
        let e = load("slo.yaml", &NATIVE.replace("WEIGHT", "heavy")).unwrap_err();
        assert!(e.to_string().starts_with("slo.yaml:9:15: "), "{e}");
        let slo = load("slo.yaml", &NATIVE.replace("WEIGHT", "2.5")).unwrap();
        assert_eq!(slo.objectives[0].weight, 2.5);
    }

    #[test]
    fn keptn_weights_read_as_keptn_reads_them_but_never_negative() {
        let slo = load("slo.yaml", &KEPTN.replace("WEIGHT", "0")).unwrap();
        assert_eq!(slo.objectives[0].weight, 1.0, "Keptn's zero value is 1");
        let slo = load("slo.yaml", &KEPTN.replace("WEIGHT", "3")).unwrap();
        assert_eq!(slo.objectives[0].weight, 3.0);
        let e = load("slo.yaml", &KEPTN.replace("WEIGHT", "-1")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("slo.yaml:3:13: weight -1 is negative"),
            "{e}"
        );
        let e = load("slo.yaml", &KEPTN.replace("WEIGHT", "x")).unwrap_err();
        assert!(e.to_string().starts_with("slo.yaml:3:13: "), "{e}");
    }
}
