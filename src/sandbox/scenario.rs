//! Scenarios: what story the sandbox tells. Each decides how much error budget the 30 days
//! of history already spent, how a new version (one that appears after an app's first
//! version) behaves, and what the platform is missing.

use std::time::Duration;

use super::workload::Behaviour;

/// A named scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (`happy`, `bad-canary`, ...).
    pub name: &'static str,
    /// What it shows, one line.
    pub summary: &'static str,
    /// Fraction of the error budget the 30 days of history spent.
    pub budget_spent: f64,
    /// The availability objective that budget belongs to (0.999).
    pub objective: f64,
    /// How a new version behaves unless its pods say otherwise.
    pub new_version: Behaviour,
    /// CRDs (by name) the platform preset leaves out.
    pub missing_crds: &'static [&'static str],
    /// Custom-resource kinds that never become Ready.
    pub never_ready_kinds: &'static [&'static str],
    /// The apps (`app` label) whose new versions behave as `new_version`; empty: every app.
    /// Other apps' new versions are healthy (a train where one member's canary fails).
    pub new_version_apps: &'static [&'static str],
}

/// Every scenario's name, in the order `--help` lists them.
pub const NAMES: &[&str] = &[
    "happy",
    "bad-canary",
    "slow-canary",
    "subtle-canary",
    "missing-infra",
    "budget-exhausted",
    "train",
    "train-bad",
];

impl Default for Scenario {
    fn default() -> Self {
        Scenario::named("happy").unwrap_or_else(|| Scenario {
            name: "happy",
            summary: "",
            budget_spent: 0.2,
            objective: 0.999,
            new_version: Behaviour::default(),
            missing_crds: &[],
            never_ready_kinds: &[],
            new_version_apps: &[],
        })
    }
}

impl Scenario {
    /// The scenario called `name`.
    pub fn named(name: &str) -> Option<Scenario> {
        let healthy = Behaviour::default();
        let base = Scenario {
            name: "happy",
            summary: "every version is healthy; the history spent 20% of a 99.9% error budget",
            budget_spent: 0.2,
            objective: 0.999,
            new_version: healthy.clone(),
            missing_crds: &[],
            never_ready_kinds: &[],
            new_version_apps: &[],
        };
        Some(match name {
            "happy" => base,
            "bad-canary" => Scenario {
                name: "bad-canary",
                summary: "a new version's error ratio climbs to 12% over the 20 s after its first 10 s",
                new_version: Behaviour {
                    degrade_after: Some(Duration::from_secs(10)),
                    degrade_over: Duration::from_secs(20),
                    degraded_error_ratio: Some(0.12),
                    ..healthy
                },
                ..base
            },
            "slow-canary" => Scenario {
                name: "slow-canary",
                summary: "a new version answers correctly but its latency is four times worse",
                new_version: Behaviour {
                    p50: healthy.p50 * 4.0,
                    p99: healthy.p99 * 4.0,
                    ..healthy
                },
                ..base
            },
            "subtle-canary" => Scenario {
                name: "subtle-canary",
                summary: "a new version is 30% slower than the old one, still well within the latency objective",
                new_version: Behaviour {
                    p50: healthy.p50 * 1.3,
                    p99: healthy.p99 * 1.3,
                    ..healthy
                },
                ..base
            },
            "missing-infra" => Scenario {
                name: "missing-infra",
                summary: "the platform lacks the PrometheusRule CRD and database claims never get Ready",
                missing_crds: &["prometheusrules.monitoring.coreos.com"],
                never_ready_kinds: &["XDatabase"],
                ..base
            },
            // The release-train demo (`demo --scenario train`): every version healthy.
            "train" => Scenario {
                name: "train",
                summary: "three services (payments, inventory, checkout) released as one train; every version is healthy",
                ..base
            },
            "train-bad" => Scenario {
                name: "train-bad",
                summary: "a release train whose checkout's new version fails 15% of its requests from its first pod; payments and inventory are healthy",
                new_version: Behaviour {
                    error_ratio: 0.15,
                    ..healthy
                },
                new_version_apps: &["checkout"],
                ..base
            },
            "budget-exhausted" => Scenario {
                name: "budget-exhausted",
                summary: "the last 30 days already spent 95% of the error budget",
                budget_spent: 0.95,
                ..base
            },
            _ => return None,
        })
    }

    /// How a new version of `app` behaves: the scenario's new version when it concerns
    /// that app, else a healthy one.
    pub fn new_version_of(&self, app: &str) -> Behaviour {
        if self.new_version_apps.is_empty() || self.new_version_apps.contains(&app) {
            self.new_version.clone()
        } else {
            Behaviour::default()
        }
    }
}
