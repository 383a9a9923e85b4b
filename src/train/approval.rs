//! Who may answer a train's approval between stages. The train's one approval stands in for
//! every member's own approvals in the next stage (its members run them with the train's
//! answer), so it asks for every rule those would have asked for: the train's own
//! (`approvers`, `minApprovers`, `allowSelfApproval` in its spec), and each member's rules
//! for that stage (the stage's, and its approval steps'). An approver must satisfy every
//! set; the approval passes when as many distinct approvers as the strictest set needs
//! have approved. One admitted reject declines.

use std::collections::BTreeMap;

use super::Train;
use crate::events::CommandKind;
use crate::identity::{ApprovalRules, Sender};
use crate::pipeline::StepKind;

/// One set of rules, where it comes from, and the names its `group:` entries know.
#[derive(Debug, Clone)]
struct Rules {
    /// `the train`, `payments (stage prod)`.
    whose: String,
    rules: ApprovalRules,
    groups: BTreeMap<String, Vec<String>>,
}

/// The approval before `next`: every rule set that applies, and the approvals so far.
#[derive(Debug, Clone)]
pub struct Gate {
    sets: Vec<Rules>,
    approved: Vec<String>,
}

/// What an admitted answer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Decided: approved by these principals, or declined by one.
    Decided(String),
    /// More distinct approvers are needed; the note says how many.
    Pending(String),
}

impl Gate {
    /// The rules of the approval that moves `train` to stage `next`.
    pub fn before(train: &Train, next: &str) -> Gate {
        let open = ApprovalRules::new(&[], None, None);
        let mut sets = Vec::new();
        if train.approval != open {
            sets.push(Rules {
                whose: "the train".into(),
                rules: train.approval.clone(),
                groups: BTreeMap::new(),
            });
        }
        for m in &train.members {
            let p = &m.pipeline;
            let Some(stage) = p.stages.iter().find(|s| s.name == next) else {
                continue;
            };
            let groups = p.approver_groups();
            let mut found = vec![stage.approval.clone()];
            found.extend(stage.steps.iter().filter_map(|s| match &s.kind {
                StepKind::Approval(a) => a.rules(),
                _ => None,
            }));
            for rules in found {
                if rules == open || sets.iter().any(|s: &Rules| s.rules == rules) {
                    continue;
                }
                sets.push(Rules {
                    whose: format!("{} (stage {next})", m.name),
                    rules,
                    groups: groups.clone(),
                });
            }
        }
        Gate {
            sets,
            approved: Vec::new(),
        }
    }

    /// Whether anyone may answer (no member and not the train names approvers).
    pub fn is_open(&self) -> bool {
        self.sets.is_empty()
    }

    /// The distinct approvers needed: the strictest set's count.
    fn needed(&self) -> usize {
        self.sets
            .iter()
            .map(|s| s.rules.min_approvers as usize)
            .max()
            .unwrap_or(1)
    }

    /// Applies every set to an approve or reject from `sender` (the run's `driver` may not
    /// approve where a set forbids self-approval); the error is the refusal's reason.
    pub fn answer(
        &mut self,
        kind: CommandKind,
        sender: Option<&Sender>,
        driver: Option<&Sender>,
    ) -> Result<Answer, String> {
        let Some(sender) = sender else {
            return if self.is_open() {
                Ok(Answer::Decided("the operator".into()))
            } else {
                Err(format!(
                    "the sender is unknown, and {} name who may approve",
                    self.whose()
                ))
            };
        };
        let who = sender.principal();
        let rejecting = kind == CommandKind::Reject;
        for set in &self.sets {
            let rules = ApprovalRules {
                allow_self_approval: set.rules.allow_self_approval || rejecting,
                ..set.rules.clone()
            };
            let approved: &[String] = if rejecting { &[] } else { &self.approved };
            rules
                .admit(sender, driver, &set.groups, approved)
                .map_err(|e| format!("{e} (the rules of {})", set.whose))?;
        }
        if rejecting {
            self.approved.clear();
            return Ok(Answer::Decided(who));
        }
        if self.approved.contains(&who) {
            return Err(format!("{who} has approved already"));
        }
        self.approved.push(who);
        let need = self.needed();
        if self.approved.len() >= need {
            return Ok(Answer::Decided(self.approved.join(", ")));
        }
        Ok(Answer::Pending(format!(
            "approval {} of {need} (by {}); waiting for {} more distinct approver(s)",
            self.approved.len(),
            self.approved.join(", "),
            need - self.approved.len()
        )))
    }

    /// What the waiting approval asks for, for its message: empty when anyone may answer.
    pub fn rules_note(&self) -> String {
        if self.sets.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .sets
            .iter()
            .map(|s| {
                let who = match s.rules.approvers.is_empty() {
                    true => "anyone".to_owned(),
                    false => s.rules.approvers.join(", "),
                };
                let driver = match s.rules.allow_self_approval {
                    true => "",
                    false => ", not the driver",
                };
                format!("{}: {who}{driver}", s.whose)
            })
            .collect();
        format!(
            " ({} distinct approver(s); {})",
            self.needed(),
            parts.join("; ")
        )
    }

    /// Whose rules apply, for a message.
    fn whose(&self) -> String {
        let names: Vec<&str> = self.sets.iter().map(|s| s.whose.as_str()).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Variables;

    fn sender(user: &str) -> Sender {
        Sender {
            user: user.into(),
            host: "h".into(),
            as_name: None,
            kube: None,
        }
    }

    /// A train whose member `payments` guards prod with `rules` (YAML on the stage).
    fn train(dir: &std::path::Path, stage_rules: &str, train_rules: &str) -> Train {
        let member = format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: payments }}\nspec:\n  target: sandbox\n  stages:\n    - name: staging\n      steps: [{{ preflight: {{}} }}]\n    - name: prod\n{stage_rules}      steps: [{{ preflight: {{}} }}]\n"
        );
        std::fs::write(dir.join("payments.yaml"), member).unwrap();
        let text = format!(
            "apiVersion: glidepath/v1\nkind: Train\nmetadata: {{ name: t }}\nspec:\n{train_rules}  stages: [staging, prod]\n  members:\n    - {{ name: payments, pipeline: payments.yaml }}\n"
        );
        let path = dir.join("train.yaml");
        std::fs::write(&path, &text).unwrap();
        crate::train::load_str(&text, &path, &Variables::default()).unwrap()
    }

    #[test]
    fn a_members_approvers_for_the_next_stage_guard_the_trains_approval() {
        let dir = tempfile::tempdir().unwrap();
        let t = train(
            dir.path(),
            "      approvers: [alice, bob]\n      minApprovers: 2\n",
            "",
        );
        let (alice, bob, mallory) = (sender("alice"), sender("bob"), sender("mallory"));
        let mut gate = Gate::before(&t, "prod");
        assert!(!gate.is_open());
        let no = gate
            .answer(CommandKind::Approve, Some(&mallory), None)
            .unwrap_err();
        assert!(no.contains("not among the approvers"), "{no}");
        assert!(no.contains("payments (stage prod)"), "{no}");
        // The driver may not approve its own release when approvers are named.
        let no = gate
            .answer(CommandKind::Approve, Some(&alice), Some(&alice))
            .unwrap_err();
        assert!(no.contains("drives this run"), "{no}");
        let one = gate.answer(CommandKind::Approve, Some(&alice), None);
        assert!(matches!(one, Ok(Answer::Pending(_))), "{one:?}");
        let again = gate.answer(CommandKind::Approve, Some(&alice), None);
        assert!(again.is_err(), "{again:?}");
        assert_eq!(
            gate.answer(CommandKind::Approve, Some(&bob), None),
            Ok(Answer::Decided("alice@h, bob@h".into()))
        );
        // Staging's approval (before staging: nobody guards it) is open.
        assert!(Gate::before(&t, "staging").is_open());
        // An unknown sender cannot approve a guarded gate.
        assert!(
            Gate::before(&t, "prod")
                .answer(CommandKind::Approve, None, None)
                .is_err()
        );
    }

    #[test]
    fn the_trains_own_approvers_apply_to_every_approval_and_a_reject_declines() {
        let dir = tempfile::tempdir().unwrap();
        let t = train(dir.path(), "", "  approvers: [carol]\n");
        let mut gate = Gate::before(&t, "prod");
        let no = gate
            .answer(CommandKind::Reject, Some(&sender("dave")), None)
            .unwrap_err();
        assert!(no.contains("the rules of the train"), "{no}");
        assert_eq!(
            gate.answer(
                CommandKind::Reject,
                Some(&sender("carol")),
                Some(&sender("carol"))
            ),
            Ok(Answer::Decided("carol@h".into()))
        );
    }
}
