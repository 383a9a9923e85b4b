//! glidepath: a terminal delivery cockpit.
//!
//! Module map (DESIGN.md, "Architecture"; README.md, "Where things live"): events flow out
//! of the engine, commands flow in. From the bottom up (no module imports one above it):
//! - [`units`]: durations and percentages as files write them (a leaf); [`redact`]: secrets
//!   kept out of everything written (a leaf).
//! - [`input`]: reading input files within limits (size, file type, BOM) (a leaf).
//! - [`yaml`]: YAML with positions, and the file error every loader returns; parsing stays
//!   within [`input::Limits`].
//! - [`events`]: events, commands and typed gate evidence, the vocabulary every other
//!   module shares.
//! - [`identity`]: who sent a command and the approval rules (a leaf).
//! - [`tls`]: the one TLS provider (rustls with ring) every client uses.
//! - [`metrics`]: the Prometheus HTTP API client; [`loadgen`]: the HTTP load generator.
//! - [`slo`]: SLO files (glidepath, Keptn, OpenSLO), scoring, error budgets, burn rates.
//! - [`judge`]: the statistical canary judge (rank test, effect sizes, proportions, spread,
//!   scoring), pure functions over samples.
//! - [`pipeline`]: the pipeline file model, loading with file:line:col errors, templating,
//!   the JSON Schema (validation that needs SLO and load-test knowledge sits here, above
//!   them).
//! - [`kube`]: kube-rs clients for targets, typed errors and objects, discovery,
//!   server-side apply, leases.
//! - [`store`]: the journal (SQLite or PostgreSQL), run history, drivers and the command
//!   inbox.
//! - [`train`]: release trains: the `kind: Train` file, its checks and its plan.
//! - [`policy`]: Rego policies over manifests.
//! - [`steps`]: one module per step kind; each reaches the world only through `kube`,
//!   `metrics` and `loadgen`.
//! - [`engine`]: the run state machine, operator commands, timeouts, failure policies,
//!   resume.
//! - [`replay`]: a past run's gates and analyses decided again from its journal with
//!   other SLOs, by the release's own promotion rules.
//! - [`report`]: reports built from a run's events (JSON, JUnit XML, Markdown, SVG);
//!   [`headless`]: the CI runner's printer; [`notify`]: webhooks; [`ui`]: the cockpit.
//!   They read events; none of them drives the engine or opens the journal.
//! - [`sandbox`]: the embedded Kubernetes API server with simulated controllers, traffic
//!   and metrics: a target like any cluster, which only [`cli`] knows of.
//! - [`cli`]: the commands; it resolves targets, starts the sandbox and wires the rest.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod engine;
pub mod events;
pub mod headless;
pub mod identity;
pub mod input;
pub mod judge;
pub mod kube;
pub mod loadgen;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod redact;
pub mod replay;
pub mod report;
pub mod sandbox;
pub mod slo;
pub mod steps;
pub mod store;
pub mod tls;
pub mod train;
pub mod ui;
pub mod units;
pub mod yaml;
