//! The pipeline file, as written: `apiVersion: glidepath/v1`, `kind: Pipeline`.
//!
//! These types are what the loader deserializes and what `glidepath schema` exports. Fields
//! are camelCase in files. Positions ([`Spanned`]) are kept where later validation needs to
//! point back at the source.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{Percent, Span};
use crate::yaml::Spanned;

pub use super::statistical::{JudgeKind, Statistical};
pub use crate::loadgen::model::{LoadRequest, LoadTest, RampStage};
pub use crate::metrics::settings::{BasicAuth, Prometheus};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PipelineFile {
    /// Always `glidepath/v1`.
    pub api_version: Spanned<String>,
    /// Always `Pipeline`.
    pub kind: Spanned<String>,
    /// Name and labels.
    pub metadata: Metadata,
    /// What the pipeline does.
    pub spec: Spec,
}

/// Name and descriptive labels of a pipeline.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The pipeline's name; also the service name unless `spec.service` is given.
    pub name: Spanned<String>,
    /// A sentence for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The body of a pipeline.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// The service this pipeline releases (defaults to `metadata.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Where the pipeline runs, unless a stage says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The Prometheus that feeds the gates, unless a stage says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
    /// The platform contract checked by `preflight` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<Contract>,
    /// Values for `${name}` in this file. `--set name=value` overrides them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Webhooks told about the run (started, finished, a gate failed, waiting for
    /// approval, rolled back), without ever holding the release up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Spanned<Notify>>,
    /// Named groups of approvers for `approvers: [group:NAME]`, each a list of names (as
    /// `approvers` entries match them); a Kubernetes group of the same name counts too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Vec<Spanned<String>>>,
    /// Stages, run in order.
    pub stages: Spanned<Vec<Stage>>,
}

/// A webhook to notify.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Notify {
    /// The webhook URL. Logs show only its scheme and host: tokens in paths and queries
    /// stay out of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An environment variable holding the URL (read when sending, never written down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// `json` (glidepath's own payload, the default) or `slack` (an incoming-webhook
    /// message, which Mattermost and Rocket.Chat read too).
    #[serde(default)]
    pub format: NotifyFormat,
    /// Which events to send (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotifyEvent>,
    /// Attempts after the first on connection errors, 429 and 5xx (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Per attempt (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Extra request headers; a value `env:NAME` is read from the environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A notification's payload.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// glidepath's JSON.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and a section block).
    Slack,
}

/// What a webhook hears about.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A run started or resumed.
    RunStarted,
    /// A run ended, whatever its outcome.
    RunFinished,
    /// A gate (a judged step) failed.
    GateFailed,
    /// A step waits for an operator's approval.
    WaitingForApproval,
    /// A stage was rolled back.
    RolledBack,
}

/// A cluster to deliver to, or the embedded sandbox.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Target {
    /// The word `sandbox`: glidepath's embedded cluster.
    Sandbox(SandboxWord),
    /// The embedded sandbox, in a namespace of its own: `{ sandbox: true, namespace: shop }`.
    SandboxIn(SandboxIn),
    /// A cluster from a kubeconfig.
    Cluster(ClusterTarget),
}

impl Target {
    /// True for the embedded sandbox, whichever way it is written.
    pub fn is_sandbox(&self) -> bool {
        matches!(self, Target::Sandbox(_) | Target::SandboxIn(_))
    }
}

/// The embedded sandbox with the namespace a stage delivers to.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SandboxIn {
    /// Must be `true`.
    pub sandbox: bool,
    /// The namespace (instead of the `namespace` variable, or `default`).
    pub namespace: String,
}

/// The literal `sandbox`.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub enum SandboxWord {
    /// The embedded sandbox.
    #[serde(rename = "sandbox")]
    Sandbox,
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Target;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`sandbox` or a mapping with `context` and `namespace`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Target, E> {
                if s == "sandbox" {
                    Ok(Target::Sandbox(SandboxWord::Sandbox))
                } else {
                    Err(E::custom(format!(
                        "unknown target `{s}`; expected `sandbox` or a mapping such as {{ context: prod-eu, namespace: shop }}"
                    )))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Target, A::Error> {
                use serde::de::Error;
                let value = serde_json::Value::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                if value.get("sandbox").is_some() {
                    let s = SandboxIn::deserialize(value).map_err(A::Error::custom)?;
                    if !s.sandbox {
                        return Err(A::Error::custom(
                            "`sandbox: false` names no target; drop `sandbox` and give `context`",
                        ));
                    }
                    return Ok(Target::SandboxIn(s));
                }
                ClusterTarget::deserialize(value)
                    .map(Target::Cluster)
                    .map_err(A::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kubernetes cluster reached through a kubeconfig.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterTarget {
    /// The kubeconfig context (defaults to the current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The namespace the service lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A kubeconfig file other than the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
}

/// What the platform promises: versions, classes, CRDs and policies.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// A `kind: PlatformContract` file whose promises are added to the ones below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Spanned<String>>,
    /// A semver range for the Kubernetes server, such as `>=1.27`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
    /// StorageClasses that must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_classes: Vec<String>,
    /// IngressClasses that must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_classes: Vec<String>,
    /// GatewayClasses that must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_classes: Vec<String>,
    /// PriorityClasses that must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_classes: Vec<String>,
    /// CRDs that must exist and be Established.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crds: Vec<String>,
    /// Namespaces that must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Rego policy files evaluated over the rendered manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Spanned<String>>,
}

/// One stage: an environment the release passes through.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stage {
    /// Unique within the pipeline.
    pub name: Spanned<String>,
    /// Overrides the pipeline's target for this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Overrides the pipeline's Prometheus for this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
    /// Destructive operator actions require typing the service name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    /// Who may answer what waits for a person in this stage when the step names no one
    /// itself: a release held on a warning or an inconclusive judgement, and approval
    /// steps without rules of their own. Names and `group:NAME`, as on an approval step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Spanned<String>>,
    /// Distinct approvers those answers need (default 1); one reject declines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvers: Option<Spanned<u32>>,
    /// Whether the run's driver may answer them itself. Default: yes when neither
    /// `approvers` nor `minApprovers` above 1 is set, no otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_self_approval: Option<bool>,
    /// Steps, run in order.
    pub steps: Vec<Spanned<StepSpec>>,
}

impl Stage {
    /// The rules for answers in this stage that a step does not set itself.
    pub fn rules(&self) -> crate::identity::ApprovalRules {
        rules_of(
            &self.approvers,
            self.min_approvers.as_ref(),
            self.allow_self_approval,
        )
    }
}

/// Approval rules as written (on a step, a stage or a train).
pub(crate) fn rules_of(
    approvers: &[Spanned<String>],
    min: Option<&Spanned<u32>>,
    allow_self: Option<bool>,
) -> crate::identity::ApprovalRules {
    let approvers: Vec<String> = approvers.iter().map(|a| a.value.clone()).collect();
    crate::identity::ApprovalRules::new(&approvers, min.map(|m| m.value), allow_self)
}

/// What to do when a step fails.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum OnFailure {
    /// Stop the run; it fails (the default).
    #[default]
    Stop,
    /// Record the failure as a warning and go on.
    Continue,
    /// Roll the stage back and stop the run.
    Rollback,
}

/// A step as written: common fields plus exactly one kind.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepSpec {
    /// Unique within the stage; defaults to the kind (`deploy`, `test`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    /// The step fails when it runs longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// What a failure does to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Platform contract and policy checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightStep>,
    /// Apply infrastructure and wait until it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra: Option<InfraStep>,
    /// Generate and apply Prometheus rules for an SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringStep>,
    /// Apply the application and wait for the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployStep>,
    /// Smoke (http), load, in-cluster Job tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestStep>,
    /// Kill pods while something else runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<ChaosStep>,
    /// An SLO quality gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<EvaluateStep>,
    /// Manual or automatic approval of the previous result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalStep>,
    /// A gate on earlier steps' outcomes or on the error budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStep>,
    /// Canary or blue-green traffic shifting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseStep>,
    /// Run a program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandStep>,
    /// Wait for a duration, or for the operator (`pause: {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    /// Steps that run at the same time (a load test while chaos kills pods); the group
    /// ends when they all have. Its `name` labels the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Vec<Spanned<StepSpec>>>,
}

/// `preflight`: check the platform contract and policies before anything changes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreflightStep {
    /// Also check every manifest later steps of the stage will apply (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<bool>,
    /// Also check the permissions the run needs (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<bool>,
}

/// Readiness to wait for after applying.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitFor {
    /// A status condition type that must be True, such as `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// A JSONPath expression and value instead, such as `{.status.phase}=Bound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonpath: Option<String>,
    /// Give up after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
}

/// `infra`: server-side apply of infrastructure manifests, then wait for readiness.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InfraStep {
    /// Files or folders of manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Spanned<String>>,
    /// A command whose output is the manifests (`helm template ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<Vec<String>>,
    /// What "ready" means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
    /// Delete objects removed from the set since the last apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
}

/// `monitoring`: Prometheus recording and alerting rules from an SLO file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MonitoringStep {
    /// The SLO file.
    pub slo: Spanned<String>,
    /// Write a rules file here instead of applying a PrometheusRule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// `deploy`: apply the application and wait for its rollout.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeployStep {
    /// Files or folders of manifests.
    pub manifests: Vec<Spanned<String>>,
    /// The image to set on the workload's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Wait for readiness this long at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
}

/// `test`: exactly one of `http`, `load` or `job`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestStep {
    /// An HTTP smoke suite: a file path or inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSuiteRef>,
    /// A load test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadTest>,
    /// A Kubernetes Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobTest>,
}

/// A smoke suite given as a file path or written inline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HttpSuiteRef {
    /// A path, relative to the pipeline file, of a suite file.
    File(Spanned<String>),
    /// The suite itself.
    Inline(Box<HttpSuite>),
}

impl<'de> Deserialize<'de> for HttpSuiteRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Spanned::<PathOr<HttpSuite>>::deserialize(d)?;
        Ok(match raw.value {
            PathOr::Path(path) => HttpSuiteRef::File(Spanned {
                pos: raw.pos,
                value: path,
            }),
            PathOr::Inline(suite) => HttpSuiteRef::Inline(suite),
        })
    }
}

/// A file path (a string) or the thing itself (a mapping), told apart by the YAML node.
enum PathOr<T> {
    Path(String),
    Inline(Box<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for PathOr<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = PathOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a file path or an inline definition")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PathOr<T>, E> {
                Ok(PathOr::Path(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PathOr<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|t| PathOr::Inline(Box::new(t)))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An HTTP smoke suite.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSuite {
    /// Prefix for relative request URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Defaults for every check.
    #[serde(default)]
    pub defaults: HttpDefaults,
    /// The checks, run in order.
    pub checks: Vec<Spanned<HttpCheck>>,
}

/// Defaults shared by the checks of a suite.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpDefaults {
    /// Per-request timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Attempts after the first (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Wait before the first retry; doubles each time (default 500ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Span>,
    /// Headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// One request and what its answer must look like.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCheck {
    /// Shown in output and reports.
    pub name: String,
    /// HTTP method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Absolute, or relative to `baseUrl`.
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A request body sent as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A request body sent as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// What the response must satisfy.
    #[serde(default)]
    pub expect: HttpExpect,
    /// Overrides the suite's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Overrides the suite's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Overrides the suite's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Span>,
}

/// Expectations on a response. With none given, any 2xx passes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpExpect {
    /// Accepted status codes (default: any 2xx).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub status: Vec<u16>,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// JSON pointers and the values found there must equal, such as `/status: ok`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, serde_json::Value>,
    /// The response must arrive within this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Span>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u16>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a status code such as 200, or a list of them")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Vec<u16>, E> {
            match u16::try_from(n) {
                Ok(code) if (100..=599).contains(&code) => Ok(vec![code]),
                _ => Err(E::custom(format!(
                    "`{n}` is not an HTTP status code; expected 100 to 599"
                ))),
            }
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Vec<u16>, E> {
            self.visit_u64(u64::try_from(n).unwrap_or(0))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u16>, A::Error> {
            let mut out = Vec::new();
            while let Some(code) = seq.next_element::<u16>()? {
                out.push(code);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A test run as a Kubernetes Job.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobTest {
    /// Container image.
    pub image: String,
    /// Command and arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Annotations on the Job's pod (`sidecar.istio.io/inject: "false"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `chaos`: delete pods of a workload at an interval.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChaosStep {
    /// A label selector of the pods to kill, such as `app=checkout`.
    pub selector: String,
    /// How many pods each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Or what share of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// Time between kills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// How long chaos lasts.
    pub duration: Span,
}

/// `evaluate`: an SLO quality gate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvaluateStep {
    /// The SLO file (glidepath, Keptn slo.yaml or OpenSLO).
    pub slo: Spanned<String>,
    /// Keptn's sli.yaml, when `slo` is a Keptn slo.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sli: Option<Spanned<String>>,
    /// The window the SLIs are measured over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
}

/// Whether a result is approved by itself or waits for a person.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalMode {
    /// Approved without asking.
    Automatic,
    /// Waits for `approve` or `reject`.
    Manual,
}

/// `approval`: Keptn's rule. A failed previous result is declined automatically.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalStep {
    /// When the previous result passed (default manual).
    #[serde(default = "manual")]
    pub pass: ApprovalMode,
    /// When the previous result was a warning (default manual).
    #[serde(default = "manual")]
    pub warning: ApprovalMode,
    /// A sentence shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who may approve or reject: names (matched against `--as`, the Kubernetes user name,
    /// the OS user or `user@host`) and `group:NAME` (a Kubernetes group of the sender, or
    /// a member of `spec.groups.NAME`). Empty: anyone who reaches the journal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Spanned<String>>,
    /// Distinct approvers needed before the step passes (default 1); one reject declines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvers: Option<Spanned<u32>>,
    /// Whether the run's driver may approve its own release. Default: yes when neither
    /// `approvers` nor `minApprovers` above 1 is set, no otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_self_approval: Option<bool>,
}

impl ApprovalStep {
    /// The rules the engine applies to `approve` and `reject`, when the step writes any
    /// (else its stage's apply).
    pub fn rules(&self) -> Option<crate::identity::ApprovalRules> {
        let written = !self.approvers.is_empty()
            || self.min_approvers.is_some()
            || self.allow_self_approval.is_some();
        written.then(|| {
            rules_of(
                &self.approvers,
                self.min_approvers.as_ref(),
                self.allow_self_approval,
            )
        })
    }
}

fn manual() -> ApprovalMode {
    ApprovalMode::Manual
}

/// The least verdict a gate accepts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum MinVerdict {
    /// Only `pass`.
    #[default]
    Pass,
    /// `pass` or `warning`.
    Warning,
}

/// `gate`: on earlier steps' outcomes, or on the error budget.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateStep {
    /// Earlier steps to judge, as `step` (this stage) or `stage/step`.
    /// Default: every earlier step of this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Spanned<String>>,
    /// The least verdict accepted (default `pass`).
    #[serde(default)]
    pub at_least: MinVerdict,
    /// Hold the release when the error budget is too low or burning too fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_budget: Option<ErrorBudgetGate>,
}

/// Error-budget limits.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorBudgetGate {
    /// The SLO file with the service level.
    pub slo: Spanned<String>,
    /// The least budget that must remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_remaining: Option<Percent>,
    /// The highest burn rate accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_burn_rate: Option<f64>,
}

/// `release`: canary or blue-green.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseStep {
    /// The new version's manifests: one Deployment, and the Services and HTTPRoute it is
    /// reached through. Default: those of the nearest earlier `deploy` step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Spanned<String>>,
    /// The image to set on the Deployment's containers. Default: the earlier `deploy`
    /// step's, when the manifests come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Shift traffic in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Switch between two colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
}

/// How traffic is split.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Ratio of canary to stable ready replicas.
    #[default]
    Replicas,
    /// Weights on a Gateway API HTTPRoute's backendRefs.
    GatewayApi,
}

/// Repeated SLO analysis during a release.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Analysis {
    /// The SLO file.
    pub slo: Spanned<String>,
    /// Time between evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// Failed evaluations tolerated before rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    /// Inconclusive evaluations tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<u32>,
    /// The verdicts of the last evaluation that promote (default `[pass]`). A `warning`
    /// not listed holds the release for the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promote_on: Vec<PromoteOn>,
    /// `thresholds` (default): each SLI against the SLO's targets; `statistical`: the
    /// canary against a fresh baseline of the stable version (see `statistical`).
    #[serde(default, skip_serializing_if = "JudgeKind::is_thresholds")]
    pub judge: JudgeKind,
    /// The statistical judge's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical: Option<Box<Spanned<Statistical>>>,
}

impl Analysis {
    /// The statistical judge's settings, when it decides this analysis.
    pub fn statistical(&self) -> Option<Statistical> {
        (self.judge == JudgeKind::Statistical).then(|| {
            self.statistical
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default()
        })
    }
}

/// A verdict that may promote a release.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PromoteOn {
    /// The analysis passed.
    Pass,
    /// The analysis warned.
    Warning,
}

/// Canary release settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Canary {
    /// The traffic router.
    #[serde(default)]
    pub router: Router,
    /// Analysis run under the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// Weights and pauses, in order.
    pub steps: Vec<Spanned<CanaryStep>>,
    /// `gateway-api`: the HTTPRoute whose weights are set (default: the one in the
    /// manifests, else the one named like the stable Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `gateway-api`: the Service of the stable version (default: the Service in the
    /// manifests that selects the Deployment's pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// `gateway-api`: the Service of the canary (default: the stable one's name with
    /// `-canary`; created when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Keep the analysis running this long after promotion; a failure within it rolls
    /// back to the previous version. Needs `analysis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<Spanned<Span>>,
}

/// One canary step: `weight: N` or `pause: DURATION | {}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryStep {
    /// Send this percentage of traffic to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Wait, or wait for the operator with `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
}

/// Blue-green settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlueGreen {
    /// The Service users reach.
    pub active_service: String,
    /// The Service that reaches the new colour before promotion.
    pub preview_service: String,
    /// Analysis before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// Keep the old colour this long after the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<Span>,
    /// Keep the analysis running this long after promotion; a failure within it rolls
    /// back to the previous version. Needs `analysis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<Spanned<Span>>,
}

/// `command`: run a program.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandStep {
    /// The program and its arguments, or with `shell: true` a shell line.
    pub run: Spanned<CommandLine>,
    /// Run `run` through `sh -c` (only then may it be a single string).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the pipeline file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<Spanned<String>>,
    /// A program run when the stage is rolled back after this step succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Spanned<CommandLine>>,
}

/// An argument list, or one string for the shell.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum CommandLine {
    /// `[program, arg, ...]`.
    Args(Vec<String>),
    /// A shell line (needs `shell: true`).
    Line(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list such as [program, arg] or, with `shell: true`, one string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Line(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CommandLine, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(CommandLine::Args(args))
            }
        }
        d.deserialize_any(V)
    }
}

/// `pause`: a duration such as `2m`, or `{}` to wait for the operator.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PauseStep {
    /// How long; none means until the operator resumes or promotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
}

impl<'de> Deserialize<'de> for PauseStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            #[serde(default)]
            duration: Option<Span>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PauseStep;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as `2m`, or `{}` to wait for the operator")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PauseStep, E> {
                crate::units::parse_duration(s)
                    .map(|d| PauseStep {
                        duration: Some(Span(d)),
                    })
                    .map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PauseStep, E> {
                Err(E::custom(format!(
                    "invalid duration `{n}`; a pause needs a unit, such as `{n}s`"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PauseStep, E> {
                self.visit_i64(n as i64)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<PauseStep, E> {
                Ok(PauseStep { duration: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PauseStep, A::Error> {
                let long = Long::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(PauseStep {
                    duration: long.duration,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for PauseStep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PauseStep".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let duration = g.subschema_for::<Span>();
        schemars::json_schema!({
            "description": "A duration such as `2m`, or `{}` (or `{ duration: 2m }`) to wait for the operator",
            "anyOf": [
                duration,
                { "type": "object", "additionalProperties": false, "properties": { "duration": duration } },
                { "type": "null" }
            ]
        })
    }
}
