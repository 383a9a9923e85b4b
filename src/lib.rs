//! glidepath: a terminal delivery cockpit.
//!
//! Module map (DESIGN.md, "Architecture"): events flow out of the engine, commands flow in.
//! - [`pipeline`]: the pipeline file model, loading with file:line:col errors, templating,
//!   the JSON Schema.
//! - [`events`]: events and commands, the vocabulary every other module shares.
//! - [`engine`]: the run state machine, operator commands, timeouts, failure policies, resume.
//! - [`steps`]: one module per step kind; each reports only through its context.
//! - [`store`]: the SQLite journal, run history and the command inbox.
//! - [`kube`]: kube-rs clients for targets, discovery checks, server-side apply.
//! - [`metrics`]: the Prometheus HTTP API client.
//! - [`report`]: reports built from a run's events (JSON, JUnit XML, Markdown, SVG).
//! - [`notify`]: webhooks told about the run, never holding it up.
//! - [`headless`]: the CI runner's printer.
//! - [`sandbox`]: the embedded Kubernetes API server with simulated controllers.
//! - [`slo`]: SLO files (glidepath, Keptn, OpenSLO), scoring, error budgets and burn rates.
//! - [`yaml`]: YAML with positions, shared by every file glidepath reads.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod engine;
pub mod events;
pub mod headless;
pub mod kube;
pub mod loadgen;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod sandbox;
pub mod slo;
pub mod steps;
pub mod store;
pub mod tls;
pub mod ui;
pub mod units;
pub mod yaml;
