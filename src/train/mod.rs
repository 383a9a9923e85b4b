//! Release trains: several services released together. A train file names member
//! pipelines, their dependencies (`after`) and the stages they move through together.
//! Loading one checks it whole, as a pipeline is checked: every error names its file,
//! line and column; unknown members, dependency cycles (named with the cycle) and stages a
//! member lacks are refused; each member's pipeline is loaded with its own `set` values.
//! Inside a stage, members release in dependency waves: a wave's members side by side,
//! each wave after the one before.

pub mod approval;
pub mod drive;
pub mod model;
pub mod resume;
pub mod rollback;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::pipeline::{LoadError, Pipeline, Variables};
use crate::yaml::{self, Pos, Spanned};
use model::{TrainFailure, TrainFile};

/// A checked train.
#[derive(Debug, Clone)]
pub struct Train {
    /// `metadata.name`.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// The stages, in order.
    pub stages: Vec<String>,
    /// The members, in the file's order.
    pub members: Vec<TrainMember>,
    /// Dependency waves: indices into `members`; each wave only after the one before.
    pub waves: Vec<Vec<usize>>,
    /// What a failure in a stage does.
    pub on_failure: TrainFailure,
    /// The train's own rules for its approvals between stages (members' rules add to
    /// them: [`approval::Gate`]).
    pub approval: crate::identity::ApprovalRules,
}

/// One member, its pipeline loaded.
#[derive(Debug, Clone)]
pub struct TrainMember {
    /// Its name in the train.
    pub name: String,
    /// Its pipeline, loaded with the member's `set` values.
    pub pipeline: Pipeline,
    /// The members it waits for in each stage.
    pub after: Vec<String>,
}

/// Whether a parsed file is a train (`kind: Train`) rather than a pipeline.
pub fn is_train(text: &str) -> bool {
    yaml::parse_one(text)
        .ok()
        .and_then(|root| {
            root.get("kind")
                .and_then(|k| k.as_str().map(|k| k == "Train"))
        })
        .unwrap_or(false)
}

/// Loads and checks a train file and every member pipeline it names.
pub fn load_file(path: &Path, vars: &Variables) -> Result<Train, LoadError> {
    let text = crate::input::read_text(path).map_err(|e| LoadError {
        file: path.to_owned(),
        pos: None,
        message: format!("cannot read the train file: {e}"),
    })?;
    load_str(&text, path, vars)
}

/// Loads a train from text; `path` names it in errors and anchors member paths.
pub fn load_str(text: &str, path: &Path, vars: &Variables) -> Result<Train, LoadError> {
    let at = |e: yaml::Error| e.in_file(path);
    let mut root = yaml::parse_one(text).map_err(at)?;
    crate::pipeline::load::template(&mut root, vars).map_err(at)?;
    let file: TrainFile = yaml::from_node(&root).map_err(at)?;
    let fail = |pos: Pos, message: String| yaml::Error::at(pos, message).in_file(path);
    if file.api_version.value != "glidepath/v1" {
        return Err(fail(
            file.api_version.pos,
            format!(
                "apiVersion `{}`: expected glidepath/v1",
                file.api_version.value
            ),
        ));
    }
    if file.kind.value != "Train" {
        return Err(fail(
            file.kind.pos,
            format!("kind `{}`: a train file has kind: Train", file.kind.value),
        ));
    }
    let stages = stage_names(&file, &fail)?;
    let spec = &file.spec;
    crate::pipeline::checks::approval_rules(&spec.approvers, spec.min_approvers.as_ref())
        .map_err(|(pos, message)| fail(pos, message))?;
    let approval = crate::pipeline::model::rules_of(
        &spec.approvers,
        spec.min_approvers.as_ref(),
        spec.allow_self_approval,
    );
    let names = member_names(&file, &fail)?;
    let after = dependencies(&file, &names, &fail)?;
    let waves = waves(&names, &after).map_err(|cycle| {
        let first = &file.spec.members.value[cycle[0]];
        let chain: Vec<String> = cycle
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let next = &names[cycle[(k + 1) % cycle.len()]];
                format!("`{}` comes after `{next}`", names[*i])
            })
            .collect();
        fail(
            first.name.pos,
            format!(
                "the members' `after` make a cycle: {}; none of them could ever start",
                chain.join(", ")
            ),
        )
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut members = Vec::new();
    for (m, after) in file.spec.members.value.iter().zip(after) {
        let pipeline = member_pipeline(m, &base, &stages, &fail)?;
        members.push(TrainMember {
            name: m.name.value.clone(),
            pipeline,
            after: after.iter().map(|i| names[*i].clone()).collect(),
        });
    }
    Ok(Train {
        name: file.metadata.name.value.clone(),
        path: path.to_owned(),
        stages: stages.into_iter().map(|s| s.value).collect(),
        members,
        waves,
        on_failure: file.spec.on_failure,
        approval,
    })
}

type Fail<'a> = dyn Fn(Pos, String) -> LoadError + 'a;

/// The train's stages: at least one, each once.
fn stage_names(file: &TrainFile, fail: &Fail<'_>) -> Result<Vec<Spanned<String>>, LoadError> {
    let stages = &file.spec.stages;
    if stages.value.is_empty() {
        return Err(fail(
            stages.pos,
            "stages: a train moves through at least one stage".into(),
        ));
    }
    for (i, s) in stages.value.iter().enumerate() {
        if stages.value[..i].iter().any(|o| o.value == s.value) {
            return Err(fail(s.pos, format!("stage `{}` is listed twice", s.value)));
        }
    }
    Ok(stages.value.clone())
}

/// The members' names: at least one member, each name once.
fn member_names(file: &TrainFile, fail: &Fail<'_>) -> Result<Vec<String>, LoadError> {
    let members = &file.spec.members;
    if members.value.is_empty() {
        return Err(fail(
            members.pos,
            "members: a train has at least one member".into(),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for m in &members.value {
        if names.contains(&m.name.value) {
            return Err(fail(
                m.name.pos,
                format!("member `{}` is named twice; names are unique", m.name.value),
            ));
        }
        names.push(m.name.value.clone());
    }
    Ok(names)
}

/// Each member's `after` as indices: every name a member of the train, not itself.
fn dependencies(
    file: &TrainFile,
    names: &[String],
    fail: &Fail<'_>,
) -> Result<Vec<Vec<usize>>, LoadError> {
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut all = Vec::new();
    for m in &file.spec.members.value {
        let mut deps = Vec::new();
        for a in &m.after {
            let Some(i) = names.iter().position(|n| *n == a.value) else {
                let hint = yaml::closest(&a.value, &known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(fail(
                    a.pos,
                    format!(
                        "member `{}` comes after `{}`, which is not a member of the train{hint}; members: {}",
                        m.name.value,
                        a.value,
                        known.join(", ")
                    ),
                ));
            };
            if names[i] == m.name.value {
                return Err(fail(
                    a.pos,
                    format!("member `{}` cannot come after itself", m.name.value),
                ));
            }
            if !deps.contains(&i) {
                deps.push(i);
            }
        }
        all.push(deps);
    }
    Ok(all)
}

/// Dependency waves (each member in the first wave after all it waits for), or a cycle
/// as the members on it, in order.
pub fn waves(names: &[String], after: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, Vec<usize>> {
    let mut wave_of: Vec<Option<usize>> = vec![None; names.len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    while wave_of.iter().any(Option::is_none) {
        let ready: Vec<usize> = (0..names.len())
            .filter(|&i| wave_of[i].is_none())
            .filter(|&i| after[i].iter().all(|d| wave_of[*d].is_some()))
            .collect();
        if ready.is_empty() {
            return Err(cycle(after, &wave_of));
        }
        for &i in &ready {
            wave_of[i] = Some(waves.len());
        }
        waves.push(ready);
    }
    Ok(waves)
}

/// A cycle among the members not yet placed: follow unplaced dependencies until one
/// repeats.
fn cycle(after: &[Vec<usize>], placed: &[Option<usize>]) -> Vec<usize> {
    let Some(start) = placed.iter().position(Option::is_none) else {
        return Vec::new();
    };
    let mut path = vec![start];
    loop {
        let here = path[path.len() - 1];
        let Some(&next) = after[here].iter().find(|d| placed[**d].is_none()) else {
            return path;
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            return path.split_off(i);
        }
        path.push(next);
    }
}

/// A member's pipeline, loaded with its `set` values; it must have every train stage,
/// and no stage the train does not move through.
fn member_pipeline(
    m: &model::Member,
    base: &Path,
    stages: &[Spanned<String>],
    fail: &Fail<'_>,
) -> Result<Pipeline, LoadError> {
    let file = base.join(&m.pipeline.value);
    if !file.is_file() {
        return Err(fail(
            m.pipeline.pos,
            format!(
                "member `{}`: no pipeline file {} (paths are relative to the train file)",
                m.name.value,
                file.display()
            ),
        ));
    }
    let sets: BTreeMap<String, String> = m.set.clone();
    let pipeline =
        crate::pipeline::load_file(&file, &Variables::from_sets(sets)).map_err(|e| LoadError {
            message: format!("{} (member `{}` of the train)", e.message, m.name.value),
            ..e
        })?;
    let has: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    for s in stages {
        if !has.contains(&s.value.as_str()) {
            return Err(fail(
                s.pos,
                format!(
                    "member `{}` has no stage `{}` (its stages: {})",
                    m.name.value,
                    s.value,
                    has.join(", ")
                ),
            ));
        }
    }
    if let Some(extra) = has.iter().find(|h| !stages.iter().any(|s| s.value == **h)) {
        return Err(fail(
            m.pipeline.pos,
            format!(
                "member `{}` has a stage `{extra}` the train does not move through; list it in the train's stages or remove it from {}",
                m.name.value,
                file.display()
            ),
        ));
    }
    Ok(pipeline)
}

impl Train {
    /// What the train will do, for `check` and the start of a run.
    pub fn plan(&self) -> String {
        let mut out = format!(
            "train {} ({} members through {})\n",
            self.name,
            self.members.len(),
            self.stages.join(" → ")
        );
        for stage in &self.stages {
            out.push_str(&format!("  stage {stage}\n"));
            for (i, wave) in self.waves.iter().enumerate() {
                let names: Vec<String> = wave
                    .iter()
                    .map(|m| {
                        let m = &self.members[*m];
                        if m.after.is_empty() {
                            m.name.clone()
                        } else {
                            format!("{} (after {})", m.name, m.after.join(", "))
                        }
                    })
                    .collect();
                out.push_str(&format!("    wave {}: {}\n", i + 1, names.join(", ")));
            }
        }
        out.push_str(&format!(
            "  on failure: {}\n",
            match self.on_failure {
                TrainFailure::RollbackStage =>
                    "roll back the members promoted in that stage, in reverse order",
                TrainFailure::Stop => "stop; promoted members stay",
            }
        ));
        out
    }
}

/// The JSON Schema of train files.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(TrainFile);
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://glidepath.dev/schema/train-v1.json".into(),
        );
        obj.insert(
            "title".into(),
            "glidepath release train (glidepath/v1)".into(),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn waves_follow_dependencies_and_a_cycle_is_named() {
        let n = names(&["payments", "inventory", "checkout", "web"]);
        let after = vec![vec![], vec![], vec![0, 1], vec![2]];
        assert_eq!(
            waves(&n, &after).unwrap(),
            vec![vec![0, 1], vec![2], vec![3]]
        );
        // payments → checkout → web → payments
        let after = vec![vec![3], vec![], vec![0, 1], vec![2]];
        let mut c = waves(&n, &after).unwrap_err();
        c.sort_unstable();
        assert_eq!(c, vec![0, 2, 3]);
        assert_eq!(waves(&names(&["a"]), &[vec![]]).unwrap(), vec![vec![0]]);
    }
}
