//! Every command, flag and help text of the command line (what `--help` prints).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// glidepath: release infrastructure and application together, gated on SLOs and error budgets.
#[derive(Debug, Parser)]
#[command(name = "glidepath", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The journal: a SQLite file (default: $GLIDEPATH_HOME/journal.db or the user data
    /// directory), or a shared PostgreSQL database, `postgres://USER@HOST/DB?sslmode=verify-full`
    /// (the password from PGPASSWORD, ~/.pgpass or `password_file=PATH`, see README).
    #[arg(
        long,
        global = true,
        env = "GLIDEPATH_JOURNAL",
        hide_env_values = true,
        value_name = "FILE|URL"
    )]
    pub journal: Option<PathBuf>,
    /// Who you are, for the journal and approval rules (CI names itself here); recorded
    /// beside the OS user and host and any Kubernetes identity, see README "Approvals".
    #[arg(long = "as", global = true, env = "GLIDEPATH_AS", value_name = "NAME")]
    pub as_name: Option<String>,
    #[command(subcommand)]
    pub(super) command: Cmd,
}

#[derive(Debug, Subcommand)]
pub(super) enum Cmd {
    /// Run a pipeline.
    Run(RunArgs),
    /// Validate a pipeline, print its plan and run its pre-flight steps against their
    /// targets, changing nothing.
    Check(CheckArgs),
    /// Continue an interrupted run from its last committed event.
    Resume {
        /// The run (default: the newest interrupted run, one whose driver is gone).
        run: Option<i64>,
        /// Without RUN: the newest interrupted run of this pipeline (its metadata.name).
        #[arg(long, value_name = "NAME", conflicts_with = "run")]
        pipeline: Option<String>,
        #[command(flatten)]
        flags: DriveFlags,
    },
    /// Open the cockpit on a run another glidepath process drives (default: the newest
    /// unfinished one), following its journal; keys send commands through the journal.
    Attach {
        /// The run.
        run: Option<i64>,
        #[command(flatten)]
        cockpit: CockpitFlags,
    },
    /// Approve what a running pipeline waits for.
    Approve {
        /// The run.
        run: i64,
    },
    /// Decline what a running pipeline waits for.
    Reject {
        /// The run.
        run: i64,
    },
    /// List runs, or show one run's events.
    History(HistoryArgs),
    /// Decide a past run's SLO gates and release analyses again from its journal (no
    /// cluster, no Prometheus) with other SLO files: which decisions change and where each
    /// release would have stopped or promoted. Exit 0: every step ends as it did; 1: not.
    Replay(ReplayArgs),
    /// Print the JSON Schema of pipeline files (or, with --train, of train files).
    Schema {
        /// The schema of release train files (`kind: Train`).
        #[arg(long)]
        train: bool,
    },
    /// Print a shell completion script: `glidepath completions bash > /etc/bash_completion.d/glidepath`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder.
    Man {
        /// Write glidepath.1 and glidepath-COMMAND.1 here instead of printing glidepath.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// SLO quality gates and error budgets.
    Slo {
        #[command(subcommand)]
        command: SloCmd,
    },
    /// Move runs between journals (SQLite and PostgreSQL, either way): export to JSON
    /// Lines, import them, or copy straight to another journal.
    Journal {
        #[command(subcommand)]
        command: JournalCmd,
    },
    /// Roll a service back in an incident, from the cluster alone (no pipeline file): an
    /// unfinished release is aborted with traffic moved to stable first, else the last
    /// promotion is reverted.
    Rollback(RollbackArgs),
    /// Show, object by object, what applying a stage would change on its target (server-side
    /// dry run against the live objects); exit 1 when something would change.
    Diff(DiffArgs),
    /// A quick load test (an operator's check during an incident): a progress line per
    /// second, then a table (or JSON). The engine behind `test: { load }` in pipelines.
    Load(LoadArgs),
    /// Platform contracts: what a platform team promises feature teams.
    Contract {
        #[command(subcommand)]
        command: ContractCmd,
    },
    /// The embedded Kubernetes sandbox.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCmd,
    },
    /// Judge a canary's samples against a baseline's offline (Mann-Whitney U test, as Kayenta
    /// does): exit 0 pass, 1 high, low or missing required data, 5 inconclusive or no data.
    Judge(JudgeArgs),
    /// Release the demo service on the embedded sandbox (config/demo/pipeline.yaml): staging,
    /// an approval, a production canary with live SLO analysis. No cluster needed.
    Demo {
        /// Set a template variable of the demo pipeline (`pause=5s`, `soak=5s`).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        sets: Vec<(String, String)>,
        /// Run the demo on the API server of this kubeconfig instead of the embedded
        /// sandbox: its platform is installed there and its nodes are simulated by the
        /// sandbox's data plane in this process (`--context` picks the context).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// With `--kubeconfig`: a folder of released CRD files (Gateway API, PrometheusRule)
        /// to install in place of the sandbox's simplified ones, as
        /// `tests/realcluster/crds.sh` prints it.
        #[arg(
            long,
            value_name = "DIR",
            env = "GLIDEPATH_DEMO_CRDS",
            requires = "kubeconfig"
        )]
        crds: Option<PathBuf>,
        #[command(flatten)]
        flags: DriveFlags,
    },
}

/// `glidepath check`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// The pipeline file.
    pub(super) pipeline: PathBuf,
    /// Set a template variable (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub(super) sets: Vec<(String, String)>,
    /// Validate only: no cluster is contacted.
    #[arg(long)]
    pub(super) no_preflight: bool,
    /// Check every stage against the embedded sandbox instead of its cluster (the
    /// namespaces stay), so a pipeline for a real cluster can be tried anywhere.
    #[arg(long, conflicts_with = "no_preflight")]
    pub(super) sandbox: bool,
    /// The story the embedded sandbox tells.
    #[arg(long, default_value = "happy", value_parser = clap::builder::PossibleValuesParser::new(crate::sandbox::scenario::NAMES))]
    pub(super) scenario: String,
    /// The kubeconfig context for every stage that delivers to a cluster, as `run` takes
    /// it (refused when every stage targets the sandbox).
    #[arg(long, conflicts_with = "sandbox")]
    pub(super) context: Option<String>,
}

/// `glidepath history`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct HistoryArgs {
    /// Show this run's events.
    pub(super) run: Option<i64>,
    /// Print JSON (the run's report with RUN, else the run list).
    #[arg(long)]
    pub(super) json: bool,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    pub(super) limit: usize,
    /// Mark RUN's SLO evaluations invalid, so later comparisons leave them out.
    #[arg(long, requires = "run")]
    pub(super) invalidate: bool,
    /// Write RUN's reports into this folder (as `run --report-dir` does).
    #[arg(long, value_name = "DIR", requires = "run", conflicts_with_all = ["json", "invalidate"])]
    pub(super) report_dir: Option<PathBuf>,
}

/// `glidepath replay`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct ReplayArgs {
    /// The run (`glidepath history` lists them).
    pub(super) run: i64,
    /// Decide every gate and analysis with this SLO file instead of the files the run's
    /// pipeline names (which are read again from where the run read them).
    #[arg(long, value_name = "FILE")]
    pub(super) slo: Option<PathBuf>,
    /// Judge the statistical judge's journaled samples again with these settings (the
    /// fields of an analysis's `statistical:` block, without lookback, step, rateWindow or
    /// baselineVersion).
    #[arg(long, value_name = "FILE")]
    pub(super) judge: Option<PathBuf>,
    /// Print JSON: every decision with its values and both verdicts, and each step's ending.
    #[arg(long)]
    pub(super) json: bool,
}

/// `glidepath rollback`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct RollbackArgs {
    /// The service (its Deployment's name).
    #[arg(required_unless_present = "train")]
    pub(super) service: Option<String>,
    /// Roll back a release train's run instead: the members its last stage promoted, in
    /// reverse dependency order, each along its own rollback path. A train a process still
    /// drives gets the rollback through the journal, and this follows it to its end.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["service", "stage", "context", "namespace", "kubeconfig"])]
    pub(super) train: Option<i64>,
    /// The stage whose target to use, when the current directory has no pipeline.
    #[arg(long)]
    pub(super) stage: Option<String>,
    /// The kubeconfig context (default: the current one).
    #[arg(long)]
    pub(super) context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(long, short = 'n')]
    pub(super) namespace: Option<String>,
    /// A kubeconfig other than the default.
    #[arg(long, value_name = "FILE")]
    pub(super) kubeconfig: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub(super) yes: bool,
}

/// `glidepath diff`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct DiffArgs {
    /// The pipeline file.
    pub(super) pipeline: PathBuf,
    /// Only this stage.
    #[arg(long)]
    pub(super) stage: Option<String>,
    /// A variable, repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub(super) sets: Vec<(String, String)>,
}

/// `glidepath load`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct LoadArgs {
    /// `http://` or `https://` URL (the server of `--requests` entries that give a path).
    #[arg(required_unless_present = "requests")]
    pub(super) url: Option<String>,
    /// Open model: this many requests per second (latency from the intended send time);
    /// with --stage, the rate the ramp starts from.
    #[arg(long)]
    pub(super) rate: Option<f64>,
    /// Closed model: this many connections sending as fast as they are answered; with
    /// --rate, the most requests in flight.
    #[arg(long)]
    pub(super) connections: Option<u32>,
    /// A ramp stage, repeatable: the rate moves linearly to RATE over DURATION (`30s:200`).
    #[arg(long = "stage", value_name = "DURATION:RATE", value_parser = parse_ramp_stage)]
    pub(super) stages: Vec<crate::pipeline::model::RampStage>,
    /// How long (`30s`, `2m`; default 10s; a ramp lasts as long as its stages).
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub(super) duration: Option<Duration>,
    /// Sent first and not counted.
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub(super) warmup: Option<Duration>,
    /// A request slower than this is a `timeout` error (default 10s).
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// The method.
    #[arg(short = 'X', long, default_value = "GET", conflicts_with = "requests")]
    pub(super) method: String,
    /// A header, repeatable (`-H 'Authorization: Bearer x'`).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(super) headers: Vec<String>,
    /// The request body.
    #[arg(long, conflicts_with = "requests")]
    pub(super) body: Option<String>,
    /// A YAML list of weighted requests (`- { method, path | url, headers, body, weight }`).
    #[arg(long, value_name = "FILE")]
    pub(super) requests: Option<PathBuf>,
    /// Speak HTTP/2 (ALPN over TLS, prior knowledge over cleartext).
    #[arg(long)]
    pub(super) http2: bool,
    /// Trust these PEM certificates besides the system's.
    #[arg(long, value_name = "FILE")]
    pub(super) ca_file: Option<PathBuf>,
    /// Accept any server certificate.
    #[arg(long, short = 'k')]
    pub(super) insecure: bool,
    /// Threads sending (default: one per core).
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// The summary as JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
}

/// `--stage DURATION:RATE` of `load`.
fn parse_ramp_stage(text: &str) -> std::result::Result<crate::pipeline::model::RampStage, String> {
    let (duration, rate) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: expected DURATION:RATE, such as 30s:200"))?;
    Ok(crate::pipeline::model::RampStage {
        duration: crate::units::Span(crate::units::parse_duration(duration)?),
        rate: rate
            .parse()
            .map_err(|_| format!("`{rate}` is not a number of requests per second"))?,
    })
}

#[derive(Debug, Subcommand)]
pub(super) enum SloCmd {
    /// Evaluate an SLO file with SLI values from a file or from Prometheus (Keptn's semantics).
    Eval(SloEvalArgs),
    /// Error budget and burn rates of an SLO's service level, from Prometheus.
    Budget(SloBudgetArgs),
    /// Prometheus recording and burn-rate alerting rules for an SLO's service level.
    Rules {
        /// The SLO file (with a service level).
        slo: PathBuf,
        /// A query variable, repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        sets: Vec<(String, String)>,
    },
}

/// `glidepath slo eval`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct SloEvalArgs {
    /// The SLO file: glidepath `kind: SLO`, Keptn slo.yaml, or OpenSLO.
    #[arg(long, value_name = "FILE")]
    pub(super) slo: PathBuf,
    /// Keptn's sli.yaml, for the queries shown beside a Keptn slo.yaml.
    #[arg(long, value_name = "FILE")]
    pub(super) sli: Option<PathBuf>,
    /// SLI values as JSON: {"sli": number or null}.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "prometheus",
        conflicts_with = "prometheus"
    )]
    pub(super) values: Option<PathBuf>,
    /// Measure the SLIs on this Prometheus instead.
    #[arg(long, value_name = "URL")]
    pub(super) prometheus: Option<String>,
    /// With --prometheus: evaluate at this time (unix seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub(super) at: Option<String>,
    /// With --prometheus: the window SLIs are measured over (`${window}`).
    #[arg(long, default_value = "5m")]
    pub(super) window: String,
    /// With --prometheus: a query variable (`${service}`, `${version}`...), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub(super) sets: Vec<(String, String)>,
    /// Earlier evaluations, oldest first: [{"result": "pass", "sli_values": {...}}].
    #[arg(long, value_name = "FILE")]
    pub(super) history: Option<PathBuf>,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Exit 1 when the result is this bad or worse (for CI jobs).
    #[arg(long, value_name = "RESULT", value_parser = ["warning", "fail"])]
    pub(super) fail_on: Option<String>,
    /// With --prometheus: how long to wait for each answer; a query still unanswered then
    /// fails (exit 4) naming its SLI and query. Failed queries are not retried.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub(super) timeout: std::time::Duration,
}

/// `glidepath slo budget`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct SloBudgetArgs {
    /// The SLO file (with a service level).
    #[arg(long, value_name = "FILE")]
    pub(super) slo: PathBuf,
    /// The Prometheus to ask.
    #[arg(long, value_name = "URL")]
    pub(super) prometheus: String,
    /// Compute at this time (unix seconds or RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub(super) at: Option<String>,
    /// A query variable, repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub(super) sets: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// How long to wait for each answer; a query still unanswered then fails (exit 4)
    /// naming its query. Failed queries are not retried.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub(super) timeout: std::time::Duration,
}

/// `--timeout`: a duration above zero.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match crate::units::parse_duration(text)? {
        d if d.is_zero() => Err("a timeout must be longer than 0s".into()),
        d => Ok(d),
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum ContractCmd {
    /// Check a cluster against a `kind: PlatformContract` file: exit 0 kept, 1 broken.
    Verify(ContractVerifyArgs),
}

/// `glidepath contract verify`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct ContractVerifyArgs {
    /// The contract file.
    pub(super) file: PathBuf,
    /// The kubeconfig context (default: the current one).
    #[arg(long)]
    pub(super) context: Option<String>,
    /// A kubeconfig other than the default.
    #[arg(long, value_name = "FILE")]
    pub(super) kubeconfig: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(super) enum SandboxCmd {
    /// Serve the Kubernetes API on 127.0.0.1 until Ctrl-C; kubectl and kube-rs work against it.
    Serve(ServeArgs),
}

/// `glidepath sandbox serve`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub(super) port: u16,
    /// Where to write the kubeconfig (context `glidepath-sandbox`).
    #[arg(long, value_name = "FILE")]
    pub(super) kubeconfig_out: Option<PathBuf>,
    /// Keep objects in this file across restarts.
    #[arg(long, value_name = "FILE")]
    pub(super) state: Option<PathBuf>,
    /// What the cluster holds at start: `platform` (CRDs, classes, a namespace) or `empty`.
    #[arg(long, default_value = "platform", value_parser = ["platform", "empty"])]
    pub(super) preset: String,
    /// The story its traffic and platform tell (README.md, "Scenarios").
    #[arg(long, default_value = "happy", value_parser = clap::builder::PossibleValuesParser::new(crate::sandbox::scenario::NAMES))]
    pub(super) scenario: String,
    /// Run only the data plane (simulated nodes, pods, traffic, Prometheus API) against the
    /// API server of this kubeconfig, e.g. a real kube-apiserver with no kubelets.
    #[arg(long, value_name = "KUBECONFIG", conflicts_with_all = ["state", "kubeconfig_out"])]
    pub(super) control_plane: Option<PathBuf>,
    /// The kubeconfig context of `--control-plane` (default: its current context).
    #[arg(long, requires = "control_plane")]
    pub(super) context: Option<String>,
}

/// `glidepath run`'s flags.
#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// The pipeline file.
    pub(super) pipeline: PathBuf,
    /// Set a template variable (repeatable); wins over spec.variables.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub(super) sets: Vec<(String, String)>,
    /// Run only this stage.
    #[arg(long, value_name = "STAGE")]
    pub(super) stage: Option<String>,
    #[command(flatten)]
    pub(super) flags: DriveFlags,
}

/// How the cockpit looks and what it allows (`run`, `demo`, `resume`, `attach`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct CockpitFlags {
    /// The cockpit's theme (default, light, high-contrast, mono, or your own).
    #[arg(long, value_name = "NAME")]
    pub(super) theme: Option<String>,
    /// A cockpit that only watches: keys that change the release are hidden.
    #[arg(long)]
    pub(super) read_only: bool,
    /// Mouse in the cockpit: the wheel scrolls, a click focuses a pane.
    #[arg(long)]
    pub(super) mouse: bool,
}

/// How a run is driven: in the cockpit or headless, and what it writes when it ends
/// (`run`, `demo`, `resume`).
#[derive(Debug, clap::Args)]
pub(super) struct DriveFlags {
    /// Print progress instead of opening the cockpit (for CI).
    #[arg(long)]
    pub(super) headless: bool,
    #[command(flatten)]
    pub(super) cockpit: CockpitFlags,
    /// Approve manual approvals without asking.
    #[arg(long)]
    pub(super) auto_approve: bool,
    /// Write the JSON report here when the run ends.
    #[arg(long, value_name = "FILE")]
    pub(super) report: Option<PathBuf>,
    /// Write every report into this folder when the run ends: report.json, junit.xml,
    /// summary.md (for a CI step summary) and an SVG chart per analysed SLI.
    #[arg(long, value_name = "DIR")]
    pub(super) report_dir: Option<PathBuf>,
    /// The kubeconfig context for every stage that delivers to a cluster (instead of the
    /// pipeline's, or the current one). Refused when every stage targets the embedded
    /// sandbox; a warning names each sandbox stage otherwise.
    #[arg(long)]
    pub(super) context: Option<String>,
    /// Take over the run lease of a service and stage from a driver that stopped.
    #[arg(long)]
    pub(super) force_unlock: bool,
    /// The story the embedded sandbox tells, for stages with `target: sandbox`.
    #[arg(long, default_value = "happy", value_parser = clap::builder::PossibleValuesParser::new(crate::sandbox::scenario::NAMES))]
    pub(super) scenario: String,
}

/// `--set KEY=VALUE`: the key is trimmed, the value kept as written.
fn parse_set(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, found `{s}`")),
    }
}

/// `glidepath judge`'s flags (README, "The statistical judge").
#[derive(Debug, clap::Args)]
pub(super) struct JudgeArgs {
    /// The canary's samples: a JSON array of numbers, `null` for a missing sample.
    #[arg(long, value_name = "FILE")]
    pub(super) canary: PathBuf,
    /// The baseline's samples, in the same form.
    #[arg(long, value_name = "FILE")]
    pub(super) baseline: PathBuf,
    /// Which way of moving fails.
    #[arg(long, default_value = "either", value_parser = ["increase", "decrease", "either"])]
    pub(super) direction: String,
    /// What a missing sample becomes: left out, or 0.
    #[arg(long, default_value = "remove", value_parser = ["remove", "replace"])]
    pub(super) nan_strategy: String,
    /// A significant increase fails only at this effect size or more (default: no change,
    /// 1 for the mean ratio, 0.5 for CLES).
    #[arg(long, value_name = "R")]
    pub(super) allowed_increase: Option<f64>,
    /// A significant decrease fails only at this effect size or less.
    #[arg(long, value_name = "R")]
    pub(super) allowed_decrease: Option<f64>,
    /// With --critical: an increase of this effect size or more fails the whole judgement
    /// (default: --allowed-increase).
    #[arg(long, value_name = "R")]
    pub(super) critical_increase: Option<f64>,
    /// With --critical: a decrease of this effect size or less fails the whole judgement.
    #[arg(long, value_name = "R")]
    pub(super) critical_decrease: Option<f64>,
    /// The metric is critical: its failure or missing data fails the whole judgement.
    #[arg(long)]
    pub(super) critical: bool,
    /// Missing data fails the metric.
    #[arg(long)]
    pub(super) must_have_data: bool,
    /// How the size of a shift is measured: canary mean / baseline mean, or the chance a
    /// canary value exceeds a baseline value.
    #[arg(long, default_value = "mean-ratio", value_parser = ["mean-ratio", "cles"])]
    pub(super) effect_size: String,
    /// Confidence of the interval of the shift, in (0, 1).
    #[arg(
        long,
        value_name = "C",
        default_value_t = 0.98,
        allow_negative_numbers = true
    )]
    pub(super) confidence: f64,
    /// The share of |estimate| by which the interval must clear zero.
    #[arg(
        long,
        value_name = "T",
        default_value_t = 0.25,
        allow_negative_numbers = true
    )]
    pub(super) tolerance: f64,
    /// Drop outliers (beyond 3 IQRs from the quartiles) before comparing.
    #[arg(long, default_value = "keep", value_parser = ["keep", "remove"])]
    pub(super) outliers: String,
    /// A canary significantly more spread out than the baseline by this ratio or more is
    /// `high` (Brown-Forsythe test; off by default).
    #[arg(long, value_name = "R")]
    pub(super) max_spread_ratio: Option<f64>,
    /// Print the verdict and its evidence as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// `glidepath journal ...`.
#[derive(Debug, Subcommand)]
pub(super) enum JournalCmd {
    /// Write runs (default: all) with their events, operator commands and drivers, as JSON
    /// Lines (format `glidepath-journal`, version 1), to a file or standard output.
    Export {
        /// Only these runs.
        #[arg(long = "run", value_name = "RUN")]
        runs: Vec<i64>,
        /// The file to write (default: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add the runs of an export to the journal; runs already there are not added twice.
    Import {
        /// The export (`-` or nothing: standard input).
        file: Option<PathBuf>,
    },
    /// Copy runs from --journal (or --from) straight into another journal.
    Copy {
        /// The journal to read (default: --journal).
        #[arg(long, value_name = "FILE|URL")]
        from: Option<PathBuf>,
        /// The journal to write.
        #[arg(long, value_name = "FILE|URL")]
        to: PathBuf,
        /// Only these runs.
        #[arg(long = "run", value_name = "RUN")]
        runs: Vec<i64>,
    },
}
