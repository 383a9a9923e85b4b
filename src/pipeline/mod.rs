//! Pipelines: the file model, loading with file:line:col errors, templating, the JSON
//! Schema, and the validated form the engine runs.

pub(crate) mod checks;
pub mod load;
pub mod model;
pub mod statistical;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{LoadError, STEP_KINDS, Variables, load_file, load_model, load_str};
use model::{
    ApprovalStep, ChaosStep, CommandStep, DeployStep, EvaluateStep, GateStep, HttpSuite, InfraStep,
    MonitoringStep, OnFailure, PauseStep, PipelineFile, PreflightStep, Prometheus, ReleaseStep,
    Target, TestStep,
};

/// A loaded, validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `metadata.name`.
    pub name: String,
    /// The service it releases.
    pub service: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Relative paths in the file are relative to this folder.
    pub base_dir: PathBuf,
    /// The file's text, before templating (kept so a run can be resumed as it started).
    pub source: String,
    /// The `--set` values it was loaded with.
    pub sets: BTreeMap<String, String>,
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// The file as written (after templating).
    pub file: PipelineFile,
}

/// A validated stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Unique name.
    pub name: String,
    /// Destructive actions need the service name typed.
    pub protected: bool,
    /// The stage's target (its own, or the pipeline's).
    pub target: Option<Target>,
    /// The stage's Prometheus (its own, or the pipeline's).
    pub prometheus: Option<Prometheus>,
    /// Who may answer what waits for a person in it, where the step sets no rules.
    pub approval: crate::identity::ApprovalRules,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within its stage.
    pub name: String,
    /// What it does.
    pub kind: StepKind,
    /// Fails when running longer.
    pub timeout: Option<Duration>,
    /// What a failure does to the run.
    pub on_failure: OnFailure,
    /// The `parallel` group it runs in, with the group's other steps at the same time.
    pub group: Option<String>,
    /// Where it is written.
    pub pos: crate::yaml::Pos,
}

/// What a step does. `test` with `http` is resolved to [`StepKind::Http`] at load.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Platform contract checks.
    Preflight(PreflightStep),
    /// Infrastructure manifests.
    Infra(InfraStep),
    /// Prometheus rules.
    Monitoring(MonitoringStep),
    /// Application rollout.
    Deploy(DeployStep),
    /// An HTTP smoke suite (loaded, with files resolved).
    Http(HttpSuite),
    /// Load or Job tests.
    Test(TestStep),
    /// Pod deletion.
    Chaos(ChaosStep),
    /// SLO quality gate.
    Evaluate(EvaluateStep),
    /// Manual or automatic approval.
    Approval(ApprovalStep),
    /// Gate on outcomes or budget.
    Gate(GateStep),
    /// Canary or blue-green.
    Release(ReleaseStep),
    /// A program.
    Command(CommandStep),
    /// A wait.
    Pause(PauseStep),
}

impl StepKind {
    /// The word used in files and output.
    pub fn word(&self) -> &'static str {
        match self {
            StepKind::Preflight(_) => "preflight",
            StepKind::Infra(_) => "infra",
            StepKind::Monitoring(_) => "monitoring",
            StepKind::Deploy(_) => "deploy",
            StepKind::Http(_) => "test",
            StepKind::Test(t) if t.load.is_some() => "test",
            StepKind::Test(_) => "test",
            StepKind::Chaos(_) => "chaos",
            StepKind::Evaluate(_) => "evaluate",
            StepKind::Approval(_) => "approval",
            StepKind::Gate(_) => "gate",
            StepKind::Release(_) => "release",
            StepKind::Command(_) => "command",
            StepKind::Pause(_) => "pause",
        }
    }

    /// One line on what the step will do or touch, for `check` and the UI.
    pub fn describe(&self) -> String {
        match self {
            StepKind::Preflight(_) => "check the platform contract and policies".into(),
            StepKind::Infra(i) => format!("apply {} and wait until ready", list(&i.manifests)),
            StepKind::Monitoring(m) => format!("generate Prometheus rules from {}", m.slo.value),
            StepKind::Deploy(d) => format!("apply {} and wait for the rollout", list(&d.manifests)),
            StepKind::Http(s) => {
                let n = s.checks.len();
                format!(
                    "HTTP smoke suite: {n} check{}",
                    if n == 1 { "" } else { "s" }
                )
            }
            StepKind::Test(t) => match (&t.load, &t.job) {
                (Some(l), _) => l.describe(),
                (_, Some(j)) => format!("Job with image {}", j.image),
                _ => "test".into(),
            },
            StepKind::Chaos(c) => format!("delete pods matching {} for {}", c.selector, c.duration),
            StepKind::Evaluate(e) => format!("SLO gate from {}", e.slo.value),
            StepKind::Approval(a) => {
                format!("approval (pass: {:?}, warning: {:?})", a.pass, a.warning).to_lowercase()
            }
            StepKind::Gate(g) => match &g.error_budget {
                Some(b) => format!("error-budget gate from {}", b.slo.value),
                None if g.steps.is_empty() => "gate on every earlier step of this stage".into(),
                None => format!(
                    "gate on {}",
                    g.steps
                        .iter()
                        .map(|s| s.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            StepKind::Release(r) => match (&r.canary, &r.blue_green) {
                (Some(c), _) => format!("canary in {} steps", c.steps.len()),
                (_, Some(b)) => format!("blue-green via {}", b.active_service),
                _ => "release".into(),
            },
            StepKind::Command(c) => match &c.run.value {
                model::CommandLine::Args(a) => format!("run {}", a.join(" ")),
                model::CommandLine::Line(l) => format!("run sh -c {l:?}"),
            },
            StepKind::Pause(p) => match p.duration {
                Some(d) => format!("pause {d}"),
                None => "pause until the operator resumes".into(),
            },
        }
    }
}

fn list(items: &[crate::yaml::Spanned<String>]) -> String {
    items
        .iter()
        .map(|s| s.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Pipeline {
    /// `spec.groups`, as names (what `approvers: [group:NAME]` matches).
    pub fn approver_groups(&self) -> BTreeMap<String, Vec<String>> {
        self.file
            .spec
            .groups
            .iter()
            .map(|(g, members)| (g.clone(), members.iter().map(|m| m.value.clone()).collect()))
            .collect()
    }

    /// The values of the secrets this pipeline names, read now from where it says they
    /// are: Prometheus bearer tokens, basic-auth passwords and header values (`env:` and
    /// `file:` ones read), webhook URLs and their headers. The redactor hides them in
    /// everything a run writes (credentials in any URL are hidden whatever their source).
    pub fn secrets(&self) -> Vec<String> {
        let env = |name: &str| std::env::var(name).ok();
        // Where the reader of the secret would look: as written (from the working folder),
        // else beside the pipeline file.
        let file = |path: &str| {
            read_small(std::path::Path::new(path)).or_else(|| read_small(&self.base_dir.join(path)))
        };
        let header = |v: &String| match (v.strip_prefix("env:"), v.strip_prefix("file:")) {
            (Some(name), _) => env(name),
            (_, Some(path)) => file(path),
            _ => Some(v.clone()),
        };
        let mut out = Vec::new();
        for p in self.stages.iter().filter_map(|s| s.prometheus.as_ref()) {
            out.extend(p.bearer_token_env.as_deref().and_then(env));
            out.extend(p.bearer_token_file.as_deref().and_then(file));
            if let Some(b) = &p.basic_auth {
                out.extend(b.password_env.as_deref().and_then(env));
                out.extend(b.password_file.as_deref().and_then(file));
            }
            out.extend(p.headers.values().filter_map(header));
        }
        for n in &self.file.spec.notify {
            out.extend(n.value.url.clone());
            out.extend(n.value.url_env.as_deref().and_then(env));
            out.extend(n.value.headers.values().filter_map(header));
        }
        out
    }

    /// Finds a step by stage and step name.
    pub fn step(&self, stage: &str, step: &str) -> Option<&Step> {
        self.stages
            .iter()
            .find(|s| s.name == stage)?
            .steps
            .iter()
            .find(|s| s.name == step)
    }

    /// Variables for query templates in a stage: the pipeline's variables (with `--set`),
    /// then `service`, `stage` and the target's `namespace`.
    pub fn query_vars(&self, stage: &Stage) -> BTreeMap<String, String> {
        let mut vars = self.file.spec.variables.clone();
        vars.extend(self.sets.clone());
        vars.insert("service".into(), self.service.clone());
        vars.insert("stage".into(), stage.name.clone());
        let namespace = match &stage.target {
            Some(Target::Cluster(c)) => c.namespace.clone(),
            Some(Target::SandboxIn(t)) => Some(t.namespace.clone()),
            _ => None,
        };
        vars.insert(
            "namespace".into(),
            namespace.unwrap_or_else(|| "default".into()),
        );
        vars
    }

    /// The plan, as `glidepath check` prints it.
    pub fn plan(&self) -> String {
        let mut out = format!("pipeline {} (service {})\n", self.name, self.service);
        for stage in &self.stages {
            let target = match &stage.target {
                Some(Target::Sandbox(_)) => "sandbox".to_owned(),
                Some(Target::SandboxIn(t)) => format!("sandbox/{}", t.namespace),
                Some(Target::Cluster(c)) => format!(
                    "{}/{}",
                    c.context.as_deref().unwrap_or("current-context"),
                    c.namespace.as_deref().unwrap_or("default")
                ),
                None => "local, no cluster".to_owned(),
            };
            out.push_str(&format!(
                "  stage {} → {target}{}\n",
                stage.name,
                if stage.protected { " (protected)" } else { "" }
            ));
            for step in &stage.steps {
                let mut extra = String::new();
                if let Some(t) = step.timeout {
                    extra.push_str(&format!(", timeout {}", crate::units::format_duration(t)));
                }
                if step.on_failure != OnFailure::Stop {
                    extra.push_str(&format!(", on failure {:?}", step.on_failure).to_lowercase());
                }
                out.push_str(&format!(
                    "    {:<10} {:<14} {}{extra}\n",
                    step.kind.word(),
                    step.name,
                    step.kind.describe()
                ));
            }
        }
        out
    }
}

/// The JSON Schema of the pipeline file, for editors and CI.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PipelineFile);
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://glidepath.dev/schema/pipeline-v1.json".into(),
        );
        obj.insert("title".into(), "glidepath pipeline (glidepath/v1)".into());
    }
    value
}

/// A secret file's text (the first 64 KiB: tokens and passwords are short).
fn read_small(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// What to hide of a run's journaled pipeline text and `--set` values wherever they leave
/// the journal (`history --json`, `journal export` and `copy`): the secrets the file writes
/// inline (Prometheus and webhook headers, webhook URLs), the `--set` values templated
/// into them, and the credentials of every URL. Secrets read from the environment or
/// from files were never in the text. A text that no longer parses hides only URL
/// credentials.
pub fn journaled_redactor(
    source: &str,
    path: &std::path::Path,
    sets: &BTreeMap<String, String>,
) -> crate::redact::Redactor {
    let vars = Variables::from_sets(sets.clone());
    let Ok(file) = load_model(source, path, &vars) else {
        return crate::redact::Redactor::default();
    };
    let inline = |v: &String| !v.starts_with("env:") && !v.starts_with("file:");
    let mut secrets: Vec<String> = Vec::new();
    let stages = file.spec.stages.value.iter().map(|s| s.prometheus.as_ref());
    for p in std::iter::once(file.spec.prometheus.as_ref())
        .chain(stages)
        .flatten()
    {
        secrets.extend(p.headers.values().filter(|v| inline(v)).cloned());
    }
    for n in &file.spec.notify {
        secrets.extend(n.value.url.clone());
        secrets.extend(n.value.headers.values().filter(|v| inline(v)).cloned());
    }
    // A `--set` value templated into a secret is as secret as it.
    let from_sets: Vec<String> = sets
        .values()
        .filter(|v| v.trim().len() >= 4 && secrets.iter().any(|s| s.contains(v.trim())))
        .cloned()
        .collect();
    crate::redact::Redactor::new(secrets.into_iter().chain(from_sets))
}
