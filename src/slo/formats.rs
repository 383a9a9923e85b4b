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
    std::fs::read_to_string(path).map_err(|e| LoadError {
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

fn percent_of(text: &str) -> Option<f64> {
    crate::units::parse_percent(text).ok()
}

// ---------------------------------------------------------------- Keptn

#[derive(Deserialize)]
struct KeptnSlo {
    #[serde(default)]
    comparison: Option<KeptnComparison>,
    #[serde(default)]
    objectives: Vec<Spanned<KeptnObjective>>,
    #[serde(default)]
    total_score: Option<Spanned<KeptnTotal>>,
}

#[derive(Deserialize, Default)]
struct KeptnComparison {
    #[serde(default)]
    aggregate_function: Option<String>,
    #[serde(default)]
    compare_with: Option<String>,
    #[serde(default)]
    include_result_with_score: Option<String>,
    #[serde(default)]
    number_of_comparison_results: Option<usize>,
}

#[derive(Deserialize)]
struct KeptnObjective {
    sli: String,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default)]
    key_sli: bool,
    #[serde(default)]
    pass: Option<Vec<KeptnCriteria>>,
    #[serde(default)]
    warning: Option<Vec<KeptnCriteria>>,
    #[serde(default)]
    weight: Option<f64>,
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

fn keptn(
    path: &Path,
    node: &Node,
    indicators: BTreeMap<String, String>,
    name: String,
) -> Result<Slo, LoadError> {
    let file: KeptnSlo = yaml::from_node(node).map_err(at(path))?;
    // Keptn's defaults: no comparison block means single_result/all/1/avg; a block with
    // fields missing gets all/3/avg.
    let comparison = match file.comparison {
        None => Comparison::default(),
        Some(c) => Comparison {
            compare_with: match c.compare_with.as_deref() {
                Some("several_results") => CompareWith::SeveralResults,
                _ => CompareWith::SingleResult,
            },
            number_of_results: c
                .number_of_comparison_results
                .filter(|n| *n > 0)
                .unwrap_or(3),
            include: match c
                .include_result_with_score
                .as_deref()
                .map(str::to_lowercase)
                .as_deref()
            {
                Some("pass") => IncludeResults::Pass,
                Some("pass_or_warn") => IncludeResults::PassOrWarn,
                _ => IncludeResults::All,
            },
            aggregate: match c.aggregate_function.as_deref() {
                Some("p50") => Aggregate::P50,
                Some("p90") => Aggregate::P90,
                Some("p95") => Aggregate::P95,
                _ => Aggregate::Avg,
            },
        },
    };
    let total = file.total_score.as_ref();
    let pass = total.and_then(|t| t.value.pass.as_deref()).filter(|p| !p.is_empty()).ok_or_else(|| LoadError {
        file: path.to_owned(),
        pos: Some(total.map(|t| t.pos).unwrap_or(node.pos)),
        message: "no target score defined: add total_score with pass (and warning), such as pass: \"90%\"".into(),
    })?;
    let bad_percent = |what: &str, v: &str, pos| LoadError {
        file: path.to_owned(),
        pos: Some(pos),
        message: format!("total_score.{what} `{v}` is not a percentage such as \"90%\""),
    };
    let total_pos = total.map(|t| t.pos).unwrap_or(node.pos);
    let pass = percent_of(pass).ok_or_else(|| bad_percent("pass", pass, total_pos))?;
    let warning = match total
        .and_then(|t| t.value.warning.as_deref())
        .filter(|w| !w.is_empty())
    {
        Some(w) => Some(percent_of(w).ok_or_else(|| bad_percent("warning", w, total_pos))?),
        None => None,
    };
    let mut objectives = Vec::new();
    for o in &file.objectives {
        let sets = |c: &Option<Vec<KeptnCriteria>>| -> Vec<Vec<String>> {
            c.iter().flatten().map(|k| k.criteria.clone()).collect()
        };
        let weight = o.value.weight.filter(|w| *w != 0.0).unwrap_or(1.0);
        objectives.push(Objective {
            sli: o.value.sli.clone(),
            display_name: o.value.display_name.clone(),
            pass: parse_criteria(path, o.pos, &sets(&o.value.pass))?,
            warning: parse_criteria(path, o.pos, &sets(&o.value.warning))?,
            weight,
            key_sli: o.value.key_sli,
        });
    }
    Ok(Slo {
        name,
        format: Format::Keptn,
        slis: indicators,
        objectives,
        total_score: TotalScore { pass, warning },
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
    weight: Option<f64>,
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
        weight: o.value.weight.filter(|w| *w > 0.0).unwrap_or(1.0),
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
