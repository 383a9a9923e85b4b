//! Loading a pipeline file: YAML with positions, `${var}` templating, deserialization and
//! the checks serde cannot make (one kind per step, unique names, files that exist, gate
//! references). Every error names the file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::model::{
    CommandLine, HttpSuite, HttpSuiteRef, OnFailure, PipelineFile, StepSpec, Target,
};
use super::{Pipeline, Stage, Step, StepKind};
use crate::slo::queries::Part;
use crate::yaml::{self, Pos, Spanned};

pub use crate::yaml::LoadError;

/// Where template variables come from, besides the file's own `spec.variables`.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// `--set k=v` values; they win over the file's.
    pub sets: BTreeMap<String, String>,
    /// Read the process environment for names neither `--set` nor the file defines.
    pub use_env: bool,
}

impl Variables {
    /// `--set` values and the environment, as the CLI uses them.
    pub fn from_sets(sets: BTreeMap<String, String>) -> Self {
        Variables {
            sets,
            use_env: true,
        }
    }
}

/// Loads, templates and validates a pipeline file.
pub fn load_file(path: &Path, vars: &Variables) -> Result<Pipeline, LoadError> {
    let text = crate::input::read_text(path).map_err(|e| LoadError {
        file: path.to_owned(),
        pos: None,
        message: format!("cannot read the pipeline file: {e}"),
    })?;
    load_str(&text, path, vars)
}

/// Loads a pipeline from text; `path` names it in errors and anchors relative file paths.
pub fn load_str(text: &str, path: &Path, vars: &Variables) -> Result<Pipeline, LoadError> {
    let at = located(path);
    let (root, file_vars) = templated(text, path, vars)?;
    let lookup = Lookup {
        vars,
        file_vars: &file_vars,
    };
    let file: PipelineFile = yaml::from_node(&root).map_err(&at)?;
    super::checks::durations(&root).map_err(&at)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Validator {
        path,
        base_dir: &base_dir,
        lookup: &lookup,
    }
    .pipeline(file, text)
}

/// The file as written and templated, without the checks that read the files it names
/// (SLOs, manifests, contracts): what a journaled run's pipeline says, even where its
/// files are gone (`glidepath replay`).
pub fn load_model(text: &str, path: &Path, vars: &Variables) -> Result<PipelineFile, LoadError> {
    let (root, _) = templated(text, path, vars)?;
    yaml::from_node(&root).map_err(located(path))
}

/// A YAML error as a load error of the file at `path`.
fn located(path: &Path) -> impl Fn(yaml::Error) -> LoadError + '_ {
    move |e| LoadError {
        file: path.to_owned(),
        pos: e.pos,
        message: e.message,
    }
}

/// The file parsed and templated, with its own `spec.variables`.
fn templated(
    text: &str,
    path: &Path,
    vars: &Variables,
) -> Result<(yaml::Node, BTreeMap<String, String>), LoadError> {
    let at = located(path);
    let mut root = yaml::parse_one(text).map_err(&at)?;
    template(&mut root, vars).map_err(&at)?;
    // `spec.variables` is kept as written by templating, so it reads the same after.
    let file_vars = read_file_variables(&root).map_err(&at)?;
    Ok((root, file_vars))
}

/// Fills `${name}` in a parsed file from `vars` and the file's own `spec.variables`, as a
/// pipeline is templated (trains use it for their own files).
pub(crate) fn template(root: &mut yaml::Node, vars: &Variables) -> Result<(), yaml::Error> {
    let file_vars = read_file_variables(root)?;
    let lookup = Lookup {
        vars,
        file_vars: &file_vars,
    };
    substitute(root, &lookup)
}

/// The file's own `spec.variables`, read before templating so `${name}` can use them.
fn read_file_variables(root: &yaml::Node) -> Result<BTreeMap<String, String>, yaml::Error> {
    let Some(vars) = root.get("spec").and_then(|s| s.get("variables")) else {
        return Ok(BTreeMap::new());
    };
    yaml::from_node::<BTreeMap<String, String>>(vars)
}

struct Lookup<'a> {
    vars: &'a Variables,
    file_vars: &'a BTreeMap<String, String>,
}

impl Lookup<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.vars
            .sets
            .get(name)
            .or_else(|| self.file_vars.get(name))
            .cloned()
            .or_else(|| {
                if self.vars.use_env {
                    std::env::var(name).ok()
                } else {
                    None
                }
            })
    }
}

/// Replaces `${name}` in every scalar except `spec.variables` itself; `$${` is a literal `${`.
fn substitute(root: &mut yaml::Node, lookup: &Lookup<'_>) -> Result<(), yaml::Error> {
    // The variables block holds the raw values; templating it would make order matter.
    let saved = root.get("spec").and_then(|s| s.get("variables")).cloned();
    root.scalars_mut(&mut |text, plain, pos| {
        if text.contains('$') {
            *text = render(text, plain, pos, lookup)?;
        }
        Ok(())
    })?;
    if let (Some(saved), Some(spec)) = (saved, root.get_mut("spec"))
        && let Some(vars) = spec.get_mut("variables")
    {
        *vars = saved;
    }
    Ok(())
}

fn render(text: &str, plain: bool, pos: Pos, lookup: &Lookup<'_>) -> Result<String, yaml::Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    // Column of a character inside the scalar; exact for one-line scalars.
    let col_of = |i: usize| {
        let quote = usize::from(!plain);
        if text[..i].contains('\n') {
            pos
        } else {
            Pos {
                line: pos.line,
                col: pos.col + quote + text[..i].chars().count(),
            }
        }
    };
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            offset += i + 3;
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            offset += i + 1;
            rest = after;
            continue;
        };
        let start = offset + i;
        let Some(end) = body.find('}') else {
            return Err(yaml::Error::at(
                col_of(start),
                "`${` is not closed; write `${name}`, or `$${` for a literal `${`",
            ));
        };
        let name = body[..end].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(yaml::Error::at(
                col_of(start),
                format!(
                    "`${{{name}}}` is not a variable name; names start with a letter and hold letters, digits, `_`, `-` and `.`"
                ),
            ));
        }
        match lookup.get(name) {
            Some(value) => out.push_str(&value),
            None => {
                let mut known: Vec<&str> = lookup.file_vars.keys().map(String::as_str).collect();
                known.extend(lookup.vars.sets.keys().map(String::as_str));
                let hint = yaml::closest(name, &known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(yaml::Error::at(
                    col_of(start),
                    format!(
                        "unknown variable `{name}`{hint}; define it under spec.variables, pass --set {name}=VALUE, or set it in the environment"
                    ),
                ));
            }
        }
        offset += i + 2 + end + 1;
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Validator<'a> {
    path: &'a Path,
    base_dir: &'a Path,
    lookup: &'a Lookup<'a>,
}

/// Every step kind, as written in files.
pub const STEP_KINDS: &[&str] = &[
    "preflight",
    "infra",
    "monitoring",
    "deploy",
    "test",
    "chaos",
    "evaluate",
    "approval",
    "gate",
    "release",
    "command",
    "pause",
];

impl Validator<'_> {
    fn err(&self, pos: Pos, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.path.to_owned(),
            pos: Some(pos),
            message: message.into(),
        }
    }

    /// A webhook: one of `url` and `urlEnv`, an http(s) URL.
    fn notify(&self, n: &Spanned<crate::pipeline::model::Notify>) -> Result<(), LoadError> {
        match (&n.value.url, &n.value.url_env) {
            (Some(_), Some(_)) => Err(self.err(n.pos, "give `url` or `urlEnv`, not both")),
            (None, None) => Err(self.err(n.pos, "a webhook needs `url` or `urlEnv`")),
            (Some(url), None) => match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                Ok(u) => Err(self.err(
                    n.pos,
                    format!("webhook URL scheme `{}`: use http or https", u.scheme()),
                )),
                // The URL may hold a token: the error names its problem, not the URL.
                Err(e) => Err(self.err(n.pos, format!("invalid webhook URL: {e}"))),
            },
            (None, Some(_)) => Ok(()),
        }
    }

    fn pipeline(&self, file: PipelineFile, source: &str) -> Result<Pipeline, LoadError> {
        self.header(&file)?;
        let mut stage_names: HashMap<&str, Pos> = HashMap::new();
        let mut stages = Vec::new();
        let mut earlier: Vec<(String, Vec<String>)> = Vec::new();
        let mut last_deploy: Option<super::model::DeployStep> = None;
        for stage in file.spec.stages.iter() {
            self.name(&stage.name, "stage")?;
            if let Some(first) = stage_names.insert(&stage.name.value, stage.name.pos) {
                return Err(self.err(
                    stage.name.pos,
                    format!("duplicate stage name `{}` (first used on line {}); stage names must be unique", stage.name.value, first.line),
                ));
            }
            if stage.steps.is_empty() {
                return Err(self.err(
                    stage.name.pos,
                    format!(
                        "stage `{}` has no steps; add at least one under steps",
                        stage.name.value
                    ),
                ));
            }
            super::checks::approval_rules(&stage.approvers, stage.min_approvers.as_ref())
                .map_err(|(pos, m)| self.err(pos, m))?;
            let steps = self.steps_of(stage, &earlier, &mut last_deploy)?;
            // The sandbox serves a Prometheus API of its own.
            let has_prometheus = stage.prometheus.is_some()
                || file.spec.prometheus.is_some()
                || is_sandbox(stage.target.as_ref().or(file.spec.target.as_ref()));
            if !has_prometheus && let Some(step) = steps.iter().find(|s| self.reads_prometheus(s)) {
                return Err(self.err(
                    step.pos,
                    format!(
                        "step `{}` reads Prometheus, but stage `{}` has none; set spec.prometheus or the stage's prometheus",
                        step.name, stage.name.value
                    ),
                ));
            }
            earlier.push((
                stage.name.value.clone(),
                steps.iter().map(|s| s.name.clone()).collect(),
            ));
            stages.push(Stage {
                name: stage.name.value.clone(),
                protected: stage.protected,
                target: stage.target.clone().or_else(|| file.spec.target.clone()),
                prometheus: stage
                    .prometheus
                    .clone()
                    .or_else(|| file.spec.prometheus.clone()),
                approval: stage.rules(),
                steps,
            });
        }
        let service = file
            .spec
            .service
            .clone()
            .unwrap_or_else(|| file.metadata.name.value.clone());
        Ok(Pipeline {
            name: file.metadata.name.value.clone(),
            service,
            path: self.path.to_owned(),
            base_dir: self.base_dir.to_owned(),
            source: source.to_owned(),
            sets: self.lookup.vars.sets.clone(),
            stages,
            file,
        })
    }

    /// The file as a whole: webhooks, apiVersion, kind, name, at least one stage, and the
    /// contract's files.
    fn header(&self, file: &PipelineFile) -> Result<(), LoadError> {
        for n in &file.spec.notify {
            self.notify(n)?;
        }
        super::checks::approver_groups(&file.spec.groups).map_err(|(pos, m)| self.err(pos, m))?;
        if file.api_version.value != "glidepath/v1" {
            return Err(self.err(
                file.api_version.pos,
                format!(
                    "unsupported apiVersion `{}`; expected `glidepath/v1`",
                    file.api_version.value
                ),
            ));
        }
        if file.kind.value != "Pipeline" {
            return Err(self.err(
                file.kind.pos,
                format!(
                    "kind `{}` is not a pipeline; expected `Pipeline`",
                    file.kind.value
                ),
            ));
        }
        self.name(&file.metadata.name, "pipeline")?;
        if file.spec.stages.is_empty() {
            return Err(self.err(
                file.spec.stages.pos,
                "the pipeline has no stages; add at least one under spec.stages",
            ));
        }
        if let Some(contract) = &file.spec.contract {
            if let Some(f) = &contract.file {
                self.exists(f)?;
            }
            contract
                .policies
                .iter()
                .try_for_each(|p| self.exists(p).map(drop))?;
        }
        Ok(())
    }

    /// A stage's steps: unique names, a release without manifests takes the last deploy's,
    /// and gates refer to steps that have ended before them.
    fn steps_of(
        &self,
        stage: &super::model::Stage,
        earlier: &[(String, Vec<String>)],
        last_deploy: &mut Option<super::model::DeployStep>,
    ) -> Result<Vec<Step>, LoadError> {
        let mut step_names: HashMap<String, Pos> = HashMap::new();
        let mut steps = Vec::new();
        for mut step in self.stage_steps(&stage.steps)? {
            match &mut step.kind {
                StepKind::Deploy(d) => *last_deploy = Some(d.clone()),
                StepKind::Release(r) if r.manifests.is_empty() => match last_deploy {
                    Some(d) => {
                        r.manifests = d.manifests.clone();
                        if r.image.is_none() {
                            r.image = d.image.clone();
                        }
                    }
                    None => {
                        return Err(self.err(
                            step.pos,
                            "a release needs `manifests` (the new version's Deployment and its Services), or an earlier deploy step to take them from",
                        ));
                    }
                },
                _ => {}
            }
            if let Some(first) = step_names.insert(step.name.clone(), step.pos) {
                return Err(self.err(
                    step.pos,
                    format!(
                        "duplicate step name `{}` in stage `{}` (first used on line {}); give one of them a different `name:`",
                        step.name, stage.name.value, first.line
                    ),
                ));
            }
            if let StepKind::Gate(gate) = &step.kind {
                // A partner in the same `parallel` group has not ended when the gate runs.
                let this_stage: Vec<&str> = steps
                    .iter()
                    .filter(|s: &&Step| s.group.is_none() || s.group != step.group)
                    .map(|s| s.name.as_str())
                    .collect();
                for r in &gate.steps {
                    self.gate_reference(r, &stage.name.value, &this_stage, earlier)?;
                }
            }
            steps.push(step);
        }
        Ok(steps)
    }

    /// Whether a step needs Prometheus: an error-budget gate, or an evaluation whose SLO
    /// queries it (one of load-test SLIs only is judged without).
    fn reads_prometheus(&self, step: &Step) -> bool {
        match &step.kind {
            StepKind::Evaluate(e) => {
                let sli = e.sli.as_ref().map(|s| self.base_dir.join(&s.value));
                crate::slo::Slo::load(&self.base_dir.join(&e.slo.value), sli.as_deref())
                    .map(|slo| slo.queries_prometheus())
                    .unwrap_or(true)
            }
            StepKind::Gate(g) => g.error_budget.is_some(),
            _ => false,
        }
    }

    /// Names become Kubernetes labels and report keys: lowercase DNS labels.
    fn name(&self, name: &Spanned<String>, what: &str) -> Result<(), LoadError> {
        let n = &name.value;
        let ok = !n.is_empty()
            && n.len() <= 63
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(self.err(
                name.pos,
                format!("invalid {what} name `{n}`; use lowercase letters, digits and `-` (at most 63, not starting or ending with `-`)"),
            ))
        }
    }

    /// An SLO file a step uses loads, and its queries parse with the variables the step
    /// fills: the pipeline's, `--set`'s, the stage's, and `extra`.
    fn slo_file(
        &self,
        slo: &Spanned<String>,
        sli: Option<&Spanned<String>>,
        used: Part,
        extra: &[&str],
    ) -> Result<(), LoadError> {
        let sli_path = sli.map(|s| self.base_dir.join(&s.value));
        crate::slo::Slo::load(&self.base_dir.join(&slo.value), sli_path.as_deref()).map_err(
            |mut e| {
                e.message = format!(
                    "{} (used at {}:{})",
                    e.message,
                    self.path.display(),
                    slo.pos
                );
                e
            },
        )?;
        let names = self.filled(extra);
        super::checks::slo_queries(self.path, self.base_dir, slo, sli, &names, used)
    }

    /// The variables a stage fills in queries and manifests: the pipeline's, `--set`'s,
    /// the stage's own, and `extra`.
    fn filled(&self, extra: &[&str]) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> =
            self.lookup.file_vars.keys().cloned().collect();
        names.extend(self.lookup.vars.sets.keys().cloned());
        names.extend(
            super::checks::STAGE_VARIABLES
                .iter()
                .chain(extra)
                .map(|n| (*n).to_owned()),
        );
        names
    }

    /// The `${name}` templates of manifests a step applies are all filled.
    fn manifests(&self, manifests: &[Spanned<String>]) -> Result<(), LoadError> {
        let names = self.filled(&[]);
        super::checks::manifest_templates(self.path, self.base_dir, manifests, &names)
    }

    fn exists(&self, file: &Spanned<String>) -> Result<PathBuf, LoadError> {
        let full = self.base_dir.join(&file.value);
        if full.exists() {
            Ok(full)
        } else {
            Err(self.err(
                file.pos,
                format!("file `{}` does not exist (looked for {}); paths are relative to the pipeline file", file.value, full.display()),
            ))
        }
    }

    fn step(&self, spec: &Spanned<StepSpec>) -> Result<Step, LoadError> {
        let s = &spec.value;
        let present: Vec<&str> = [
            s.preflight.is_some(),
            s.infra.is_some(),
            s.monitoring.is_some(),
            s.deploy.is_some(),
            s.test.is_some(),
            s.chaos.is_some(),
            s.evaluate.is_some(),
            s.approval.is_some(),
            s.gate.is_some(),
            s.release.is_some(),
            s.command.is_some(),
            s.pause.is_some(),
        ]
        .iter()
        .zip(STEP_KINDS)
        .filter_map(|(set, kind)| set.then_some(*kind))
        .collect();
        let kind_name = match present.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.err(
                    spec.pos,
                    format!(
                        "this step has no kind; expected exactly one of {}, or a `parallel` group",
                        STEP_KINDS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            [a, b, ..] => {
                return Err(self.err(spec.pos, format!("a step has exactly one kind, found `{a}` and `{b}`; split it into two steps")));
            }
        };
        let (name, pos) = match &s.name {
            Some(n) => {
                self.name(n, "step")?;
                (n.value.clone(), spec.pos)
            }
            None => (kind_name.to_owned(), spec.pos),
        };
        let kind = self.kind(s, spec.pos)?;
        Ok(Step {
            name,
            kind,
            timeout: s.timeout.map(|t| t.get()),
            on_failure: s.on_failure.unwrap_or(OnFailure::Stop),
            group: None,
            pos,
        })
    }

    /// A stage's steps with `parallel` groups flattened: each of a group's steps carries
    /// the group's name.
    fn stage_steps(&self, specs: &[Spanned<StepSpec>]) -> Result<Vec<Step>, LoadError> {
        let mut out = Vec::new();
        let mut groups: HashMap<String, Pos> = HashMap::new();
        for spec in specs {
            let Some(inner) = &spec.value.parallel else {
                out.push(self.step(spec)?);
                continue;
            };
            let group = StepSpec {
                name: None,
                parallel: None,
                ..spec.value.clone()
            };
            if serde_json::to_value(&group).is_ok_and(|v| v != serde_json::json!({})) {
                return Err(self.err(
                    spec.pos,
                    "a `parallel` group has a `name` and its steps only; put timeouts and kinds on the steps inside it",
                ));
            }
            let name = match &spec.value.name {
                Some(n) => {
                    self.name(n, "group")?;
                    n.value.clone()
                }
                None => format!("parallel-{}", groups.len() + 1),
            };
            if let Some(first) = groups.insert(name.clone(), spec.pos) {
                return Err(self.err(
                    spec.pos,
                    format!(
                        "duplicate group name `{name}` (first used on line {})",
                        first.line
                    ),
                ));
            }
            if inner.len() < 2 {
                return Err(self.err(
                    spec.pos,
                    "a `parallel` group runs two or more steps at the same time; list them under it, or drop `parallel`",
                ));
            }
            for s in inner {
                if s.value.parallel.is_some() {
                    return Err(self.err(s.pos, "`parallel` groups do not nest"));
                }
                let mut step = self.step(s)?;
                step.group = Some(name.clone());
                out.push(step);
            }
        }
        Ok(out)
    }

    fn kind(&self, s: &StepSpec, pos: Pos) -> Result<StepKind, LoadError> {
        if let Some(c) = &s.command {
            return self.command(c);
        }
        if let Some(t) = &s.test {
            return self.test(t, pos);
        }
        if let Some(g) = &s.gate {
            if g.error_budget.is_some() && !g.steps.is_empty() {
                return Err(self.err(pos, "a gate judges either `steps` or `errorBudget`, not both; split it into two gates"));
            }
            if let Some(b) = &g.error_budget {
                self.exists(&b.slo)?;
                self.slo_file(&b.slo, None, Part::ServiceLevel, &[])?;
            }
            return Ok(StepKind::Gate(g.clone()));
        }
        if let Some(a) = &s.approval {
            super::checks::approval_rules(&a.approvers, a.min_approvers.as_ref())
                .map_err(|(pos, m)| self.err(pos, m))?;
            return Ok(StepKind::Approval(a.clone()));
        }
        if let Some(p) = &s.pause {
            return Ok(StepKind::Pause(p.clone()));
        }
        if let Some(d) = &s.deploy {
            d.manifests
                .iter()
                .try_for_each(|m| self.exists(m).map(drop))?;
            self.manifests(&d.manifests)?;
            return Ok(StepKind::Deploy(d.clone()));
        }
        if let Some(i) = &s.infra {
            if i.manifests.is_empty() && i.render.is_none() {
                return Err(self.err(pos, "an infra step needs `manifests` or `render`"));
            }
            i.manifests
                .iter()
                .try_for_each(|m| self.exists(m).map(drop))?;
            self.manifests(&i.manifests)?;
            return Ok(StepKind::Infra(i.clone()));
        }
        if let Some(m) = &s.monitoring {
            self.exists(&m.slo)?;
            self.slo_file(&m.slo, None, Part::ServiceLevel, &[])?;
            return Ok(StepKind::Monitoring(m.clone()));
        }
        if let Some(e) = &s.evaluate {
            self.exists(&e.slo)?;
            if let Some(sli) = &e.sli {
                self.exists(sli)?;
            }
            self.slo_file(&e.slo, e.sli.as_ref(), Part::Sli, &[])?;
            return Ok(StepKind::Evaluate(e.clone()));
        }
        if let Some(c) = &s.chaos {
            if c.count.is_some() == c.percent.is_some() {
                return Err(self.err(
                    pos,
                    "a chaos step needs exactly one of `count` or `percent`",
                ));
            }
            return Ok(StepKind::Chaos(c.clone()));
        }
        if let Some(r) = &s.release {
            return self.release(r, pos);
        }
        if let Some(p) = &s.preflight {
            return Ok(StepKind::Preflight(p.clone()));
        }
        Err(self.err(pos, "this step has no kind"))
    }

    /// A command: a program and arguments, or a shell line with `shell: true`; its
    /// workdir a directory that exists.
    fn command(&self, c: &super::model::CommandStep) -> Result<StepKind, LoadError> {
        match &c.run.value {
            CommandLine::Line(_) if !c.shell => {
                return Err(self.err(
                    c.run.pos,
                    "`run` is a single string, which needs `shell: true`; give a list such as [program, arg] to run without a shell",
                ));
            }
            CommandLine::Args(args) if args.is_empty() => {
                return Err(self.err(c.run.pos, "`run` is empty; expected [program, arg, ...]"));
            }
            CommandLine::Line(line) if line.trim().is_empty() => {
                return Err(self.err(c.run.pos, "`run` is empty; expected a shell line"));
            }
            _ => {}
        }
        if let Some(dir) = &c.workdir {
            let full = self.exists(dir)?;
            if !full.is_dir() {
                return Err(self.err(
                    dir.pos,
                    format!("workdir `{}` is not a directory", dir.value),
                ));
            }
        }
        Ok(StepKind::Command(c.clone()))
    }

    /// A test: exactly one of `http` (inline or a file), `load` (a valid plan, known
    /// thresholds) or `job`.
    fn test(&self, t: &super::model::TestStep, pos: Pos) -> Result<StepKind, LoadError> {
        let kinds: Vec<&str> = [
            ("http", t.http.is_some()),
            ("load", t.load.is_some()),
            ("job", t.job.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| *k)
        .collect();
        if kinds.len() != 1 {
            return Err(self.err(
                pos,
                if kinds.is_empty() {
                    "a test needs exactly one of `http`, `load` or `job`".to_owned()
                } else {
                    format!("a test has exactly one of `http`, `load` or `job`, found `{}` and `{}`; split it into two steps", kinds[0], kinds[1])
                },
            ));
        }
        if let Some(load) = &t.load {
            self.load_test(load, pos)?;
        }
        if let Some(http) = &t.http {
            let suite = match http {
                HttpSuiteRef::Inline(suite) => (**suite).clone(),
                HttpSuiteRef::File(f) => self.suite_file(f)?,
            };
            return Ok(StepKind::Http(suite));
        }
        Ok(StepKind::Test(t.clone()))
    }

    /// A load test makes a plan, and its thresholds limit results it measures.
    fn load_test(&self, load: &super::model::LoadTest, pos: Pos) -> Result<(), LoadError> {
        crate::loadgen::plan_for(load, self.base_dir)
            .map_err(|e| self.err(pos, format!("load test: {e}")))?;
        for name in load.thresholds.keys() {
            let full = if name.starts_with("load.") {
                name.clone()
            } else {
                format!("load.{name}")
            };
            if !crate::loadgen::SLI_NAMES.contains(&full.as_str()) {
                let short: Vec<&str> = crate::loadgen::SLI_NAMES
                    .iter()
                    .map(|n| n.trim_start_matches("load."))
                    .collect();
                let hint = yaml::closest(full.trim_start_matches("load."), &short)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(self.err(
                    pos,
                    format!(
                        "load test: no result is called `{name}`{hint}; thresholds can limit {}",
                        short.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn release(&self, r: &super::model::ReleaseStep, pos: Pos) -> Result<StepKind, LoadError> {
        r.manifests
            .iter()
            .try_for_each(|m| self.exists(m).map(drop))?;
        self.manifests(&r.manifests)?;
        match (&r.canary, &r.blue_green) {
            (Some(c), None) => {
                if c.steps.is_empty() {
                    return Err(self.err(
                        pos,
                        "a canary needs at least one step such as { weight: 10 }",
                    ));
                }
                for step in &c.steps {
                    if step.value.weight.is_some() == step.value.pause.is_some() {
                        return Err(self.err(
                            step.pos,
                            "a canary step is exactly one of `weight: N` or `pause: DURATION | {}`",
                        ));
                    }
                }
                super::checks::canary_weights(&c.steps).map_err(|(pos, m)| self.err(pos, m))?;
                if let Some(a) = &c.analysis {
                    self.exists(&a.slo)?;
                    self.slo_file(&a.slo, None, Part::Sli, &["version"])?;
                    self.statistical(a)?;
                    if a.statistical().is_some() {
                        super::checks::baseline_weights(&c.steps)
                            .map_err(|(pos, m)| self.err(pos, m))?;
                    }
                }
            }
            (None, Some(bg)) => {
                if let Some(a) = &bg.analysis {
                    self.exists(&a.slo)?;
                    self.slo_file(&a.slo, None, Part::Sli, &["version"])?;
                    self.statistical(a)?;
                }
            }
            _ => return Err(self.err(pos, "a release is exactly one of `canary` or `blueGreen`")),
        }
        self.bake(r)?;
        Ok(StepKind::Release(r.clone()))
    }

    /// The statistical judge's settings, checked: thresholds in order, weights and scores
    /// in range. They are checked under `judge: thresholds` too, where they wait unused,
    /// so a variable (`judge: ${judge}`) can switch judges without editing the file.
    fn statistical(&self, a: &super::model::Analysis) -> Result<(), LoadError> {
        let Some(s) = &a.statistical else {
            return Ok(());
        };
        s.value
            .check()
            .map_err(|(field, why)| self.err(s.pos, format!("{field}: {why}")))
    }

    /// A bake keeps the analysis running after promotion: it needs one, and some time.
    fn bake(&self, r: &super::model::ReleaseStep) -> Result<(), LoadError> {
        let (bake, analysed) = match (&r.canary, &r.blue_green) {
            (Some(c), _) => (&c.bake, c.analysis.is_some()),
            (_, Some(bg)) => (&bg.bake, bg.analysis.is_some()),
            _ => return Ok(()),
        };
        match bake {
            Some(b) if !analysed => Err(self.err(
                b.pos,
                "`bake` keeps the release's analysis running after promotion; add an `analysis` to the release, or remove `bake`",
            )),
            Some(b) if b.value.get().is_zero() => Err(self.err(
                b.pos,
                "`bake: 0s` bakes nothing; give it a duration such as 5m, or remove it",
            )),
            _ => Ok(()),
        }
    }

    fn suite_file(&self, f: &Spanned<String>) -> Result<HttpSuite, LoadError> {
        let full = self.exists(f)?;
        let text = crate::input::read_text(&full)
            .map_err(|e| self.err(f.pos, format!("cannot read smoke suite `{}`: {e}", f.value)))?;
        let at = |e: yaml::Error| LoadError {
            file: full.clone(),
            pos: e.pos,
            message: e.message,
        };
        let mut node = yaml::parse_one(&text).map_err(at)?;
        substitute(&mut node, self.lookup).map_err(at)?;
        let suite = yaml::from_node(&node).map_err(at)?;
        super::checks::durations(&node).map_err(at)?;
        Ok(suite)
    }

    fn gate_reference(
        &self,
        r: &Spanned<String>,
        stage: &str,
        this_stage: &[&str],
        earlier: &[(String, Vec<String>)],
    ) -> Result<(), LoadError> {
        let found = match r.value.split_once('/') {
            None => this_stage.contains(&r.value.as_str()),
            Some((s, step)) => {
                s == stage && this_stage.contains(&step)
                    || earlier
                        .iter()
                        .any(|(name, steps)| name == s && steps.iter().any(|x| x == step))
            }
        };
        if found {
            Ok(())
        } else {
            let mut known: Vec<String> = this_stage.iter().map(|s| (*s).to_owned()).collect();
            for (s, steps) in earlier {
                known.extend(steps.iter().map(|x| format!("{s}/{x}")));
            }
            let refs: Vec<&str> = known.iter().map(String::as_str).collect();
            let hint = yaml::closest(&r.value, &refs)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            Err(self.err(
                r.pos,
                format!(
                    "gate refers to `{}`{hint}, which is not an earlier step; expected `step` from this stage or `stage/step` from an earlier one",
                    r.value
                ),
            ))
        }
    }
}

/// True when the target is the embedded sandbox.
pub fn is_sandbox(target: Option<&Target>) -> bool {
    target.is_some_and(Target::is_sandbox)
}
