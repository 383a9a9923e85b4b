//! Who sent a command: the OS user and host of the process that sent it, the name given with
//! `--as` (for CI), and the Kubernetes identity the stage's API server confirmed with a
//! SelfSubjectReview. Also the approval rules a protected stage sets (who may approve, how
//! many distinct approvers, whether the driver may approve its own release).
//!
//! The OS user, host and `--as` name are claims the journal cannot check; the Kubernetes
//! identity is the API server's answer to the sender's own credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A user as a Kubernetes API server names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeIdentity {
    /// `status.userInfo.username`.
    pub username: String,
    /// `status.userInfo.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// Who sent a command, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The OS user of the sending process.
    pub user: String,
    /// The machine it ran on.
    pub host: String,
    /// The name given with `--as` (or `GLIDEPATH_AS`).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    /// What the stage's Kubernetes API server says the sender is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeIdentity>,
}

/// The `--as` name of this process, set once by the command line.
static AS_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records this process's `--as NAME` (first call wins).
pub fn set_as_name(name: &str) {
    let _ = AS_NAME.set(name.to_owned());
}

impl Sender {
    /// This process, as `--as` named it.
    pub fn me() -> Sender {
        Sender::local(AS_NAME.get().map(String::as_str))
    }

    /// This process, with the `--as` name if one was given.
    pub fn local(as_name: Option<&str>) -> Sender {
        Sender {
            user: crate::store::this_user(),
            host: this_host(),
            as_name: as_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            kube: None,
        }
    }

    /// The one name the rules count: the `--as` name, else the Kubernetes user name, else
    /// `user@host`. Two approvals with the same principal are one approver.
    pub fn principal(&self) -> String {
        if let Some(a) = &self.as_name {
            return a.clone();
        }
        if let Some(k) = &self.kube {
            return k.username.clone();
        }
        format!("{}@{}", self.user, self.host)
    }

    /// Every name an `approvers` entry may match.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![self.user.clone(), format!("{}@{}", self.user, self.host)];
        names.extend(self.as_name.clone());
        names.extend(self.kube.as_ref().map(|k| k.username.clone()));
        names
    }

    /// For a person: `alice (root@ci-7, kubernetes: alice)`.
    pub fn label(&self) -> String {
        let mut parts = vec![format!("{}@{}", self.user, self.host)];
        if let Some(k) = &self.kube {
            parts.push(format!("kubernetes: {}", k.username));
        }
        match &self.as_name {
            Some(name) => format!("{name} ({})", parts.join(", ")),
            None => parts.join(", "),
        }
    }
}

/// The machine's host name (`/etc/hostname`).
fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Who may approve an approval step, written on the step or its stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalRules {
    /// Names and `group:NAME` entries; empty means anyone.
    pub approvers: Vec<String>,
    /// Distinct approvers needed (at least 1).
    pub min_approvers: u32,
    /// Whether the driver of the run may approve it.
    pub allow_self_approval: bool,
}

impl ApprovalRules {
    /// The rules from a file's fields. Self-approval is allowed by default only when the
    /// step sets no approvers and no count: a team that names approvers wants four eyes.
    pub fn new(approvers: &[String], min: Option<u32>, allow_self: Option<bool>) -> Self {
        let guarded = !approvers.is_empty() || min.is_some_and(|m| m > 1);
        ApprovalRules {
            approvers: approvers.to_vec(),
            min_approvers: min.unwrap_or(1).max(1),
            allow_self_approval: allow_self.unwrap_or(!guarded),
        }
    }

    /// Whether `sender` may approve (or reject) now, given the driver and the principals
    /// that approved already; the refusal says why.
    pub fn admit(
        &self,
        sender: &Sender,
        driver: Option<&Sender>,
        groups: &BTreeMap<String, Vec<String>>,
        approved: &[String],
    ) -> Result<(), String> {
        let who = sender.principal();
        if !self.allow_self_approval
            && let Some(d) = driver
            && d.principal() == who
        {
            return Err(format!(
                "{who} drives this run and may not approve it (allowSelfApproval is false); another approver must"
            ));
        }
        if !self.approvers.is_empty() && !self.approvers.iter().any(|e| matches(e, sender, groups))
        {
            return Err(format!(
                "{who} is not among the approvers of this step ({}); ask one of them",
                self.approvers.join(", ")
            ));
        }
        if approved.contains(&who) {
            return Err(format!(
                "{who} has approved already; {} more distinct approver(s) needed",
                self.min_approvers as usize - approved.len().min(self.min_approvers as usize)
            ));
        }
        Ok(())
    }
}

/// Whether an `approvers` entry names the sender: a name matches the `--as` name, the
/// Kubernetes user name, the OS user or `user@host`; `group:NAME` matches a Kubernetes
/// group of the sender, or a member of the pipeline's `groups.NAME`.
fn matches(entry: &str, sender: &Sender, groups: &BTreeMap<String, Vec<String>>) -> bool {
    let names = sender.names();
    match entry.strip_prefix("group:") {
        Some(group) => {
            sender
                .kube
                .as_ref()
                .is_some_and(|k| k.groups.iter().any(|g| g == group))
                || groups
                    .get(group)
                    .is_some_and(|members| members.iter().any(|m| names.contains(m)))
        }
        None => names.iter().any(|n| n == entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(user: &str, as_name: Option<&str>, kube: Option<(&str, &[&str])>) -> Sender {
        Sender {
            user: user.into(),
            host: "h".into(),
            as_name: as_name.map(Into::into),
            kube: kube.map(|(u, g)| KubeIdentity {
                username: u.into(),
                groups: g.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn principal_prefers_as_then_kubernetes_then_user_at_host() {
        assert_eq!(
            sender("ann", Some("ci"), Some(("k", &[]))).principal(),
            "ci"
        );
        assert_eq!(sender("ann", None, Some(("k", &[]))).principal(), "k");
        assert_eq!(sender("ann", None, None).principal(), "ann@h");
        assert_eq!(
            sender("ann", Some("ci"), Some(("k", &[]))).label(),
            "ci (ann@h, kubernetes: k)"
        );
    }

    #[test]
    fn approvers_match_names_kubernetes_groups_and_pipeline_groups() {
        let rules = ApprovalRules::new(&["alice".into(), "group:sre".into()], None, None);
        let groups = BTreeMap::from([("sre".to_string(), vec!["carol".to_string()])]);
        let ok = |s: &Sender| rules.admit(s, None, &groups, &[]);
        assert!(ok(&sender("x", Some("alice"), None)).is_ok());
        assert!(ok(&sender("carol", None, None)).is_ok());
        assert!(ok(&sender("x", None, Some(("dave", &["sre"])))).is_ok());
        let refused = ok(&sender("mallory", None, None)).unwrap_err();
        assert!(
            refused.contains("mallory@h is not among the approvers"),
            "{refused}"
        );
    }

    #[test]
    fn self_approval_is_refused_by_default_when_approvers_are_named() {
        let driver = sender("ci", None, None);
        let open = ApprovalRules::new(&[], None, None);
        assert!(
            open.admit(&driver, Some(&driver), &BTreeMap::new(), &[])
                .is_ok()
        );
        let guarded = ApprovalRules::new(&[], Some(2), None);
        let why = guarded
            .admit(&driver, Some(&driver), &BTreeMap::new(), &[])
            .unwrap_err();
        assert!(why.contains("drives this run"), "{why}");
        let allowed = ApprovalRules::new(&[], Some(2), Some(true));
        assert!(
            allowed
                .admit(&driver, Some(&driver), &BTreeMap::new(), &[])
                .is_ok()
        );
    }

    #[test]
    fn the_same_principal_counts_once() {
        let rules = ApprovalRules::new(&[], Some(2), None);
        let bob = sender("x", Some("bob"), None);
        let why = rules
            .admit(&bob, None, &BTreeMap::new(), &["bob".into()])
            .unwrap_err();
        assert!(why.contains("bob has approved already; 1 more"), "{why}");
    }
}
