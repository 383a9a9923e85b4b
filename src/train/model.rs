//! The train file, as written: `apiVersion: glidepath/v1`, `kind: Train`.
//!
//! ```yaml
//! apiVersion: glidepath/v1
//! kind: Train
//! metadata: { name: checkout-2 }
//! spec:
//!   stages: [staging, prod]
//!   members:
//!     - name: payments
//!       pipeline: payments/pipeline.yaml
//!       set: { version: "3.1.0" }
//!     - name: inventory
//!       pipeline: inventory/pipeline.yaml
//!     - name: checkout
//!       pipeline: checkout/pipeline.yaml
//!       after: [payments, inventory]
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::pipeline::model::Metadata;
use crate::yaml::Spanned;

/// A whole train file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrainFile {
    /// Always `glidepath/v1`.
    pub api_version: Spanned<String>,
    /// Always `Train`.
    pub kind: Spanned<String>,
    /// Name and labels.
    pub metadata: Metadata,
    /// The members and the stages they move through.
    pub spec: TrainSpec,
}

/// The body of a train.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrainSpec {
    /// Values for `${name}` in this file. `--set name=value` overrides them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The stages every member moves through together, in order: all members finish a
    /// stage before any starts the next. Each member's pipeline has each of them.
    pub stages: Spanned<Vec<Spanned<String>>>,
    /// The services released together.
    pub members: Spanned<Vec<Member>>,
    /// What a member's failure in a stage does to the members this train already promoted
    /// in that stage.
    #[serde(default)]
    pub on_failure: TrainFailure,
    /// Who may answer the train's approval between stages, besides what each member's
    /// next stage asks (its stage's and its approval steps' rules, all of which apply):
    /// names and `group:NAME` (a Kubernetes group of the sender).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Spanned<String>>,
    /// Distinct approvers the train's approval needs (default 1; the strictest count of
    /// every rule that applies wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_approvers: Option<Spanned<u32>>,
    /// Whether the train's driver may approve it. Default: yes when neither `approvers`
    /// nor `minApprovers` above 1 is set, no otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_self_approval: Option<bool>,
}

/// One service of the train.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Member {
    /// Unique in the train (`after` names it).
    pub name: Spanned<String>,
    /// Its pipeline file, relative to the train file.
    pub pipeline: Spanned<String>,
    /// Values for the member pipeline's `${name}`, as `--set` gives a pipeline (the
    /// version, say).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Members that must be released in a stage before this one starts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Spanned<String>>,
}

/// What the train does when a member fails in a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TrainFailure {
    /// Roll back, in reverse dependency order, the members this train already promoted in
    /// the stage (members of earlier stages stay).
    #[default]
    RollbackStage,
    /// Stop: leave the members already promoted as they are.
    Stop,
}
