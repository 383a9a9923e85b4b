//! Who may answer a step that waits for approval: the step's rules (approvers, distinct
//! approvers, self-approval) applied to the command's sender, with the approvals so far.

use super::Engine;
use crate::events::CommandKind;
use crate::identity::{ApprovalRules, Sender};
use crate::pipeline::{Step, StepKind};

/// What an admitted approve or reject does.
pub(super) enum Answer {
    /// The step is decided: approved by these principals, or rejected by one.
    Decided(String),
    /// More distinct approvers are needed; the note says how many.
    Pending(String),
}

impl Engine {
    /// Applies `step`'s rules to an approve or reject from `sender`; the error is the
    /// refusal's reason, journaled as such.
    pub(super) fn answer(
        &mut self,
        kind: CommandKind,
        step: &Step,
        sender: Option<&Sender>,
    ) -> Result<Answer, String> {
        // The step's own rules, else its stage's (a release held for the operator too).
        let own = match &step.kind {
            StepKind::Approval(a) => a.rules(),
            _ => None,
        };
        let rules = own
            .or_else(|| {
                let stage = self.pipeline.stages.iter().find(|s| {
                    s.steps
                        .iter()
                        .any(|t| t.pos == step.pos && t.name == step.name)
                })?;
                Some(stage.approval.clone())
            })
            .unwrap_or_else(|| ApprovalRules::new(&[], None, None));
        let Some(sender) = sender else {
            return if rules == ApprovalRules::new(&[], None, None) {
                Ok(Answer::Decided("the operator".into()))
            } else {
                Err("the sender is unknown, and this step names who may approve it".into())
            };
        };
        let key = format!("{}:{}:{}", step.name, step.pos.line, step.pos.col);
        let groups = self.pipeline.approver_groups();
        let driver = self.options.driver.clone();
        let approved = self.approvals.entry(key.clone()).or_default();
        let who = sender.principal();
        if kind == CommandKind::Reject {
            // Anyone allowed to approve may decline, the driver too; a repeat does not count.
            let open = ApprovalRules {
                allow_self_approval: true,
                ..rules
            };
            open.admit(sender, None, &groups, &[])?;
            self.approvals.remove(&key);
            return Ok(Answer::Decided(who));
        }
        let self_of_driver = driver
            .as_ref()
            .is_some_and(|d| d.names().contains(&who) || d.principal() == who);
        if !rules.allow_self_approval && self_of_driver {
            return Err(format!(
                "{who} drives this run and may not approve it (allowSelfApproval is false); another approver must"
            ));
        }
        rules.admit(sender, None, &groups, approved)?;
        approved.push(who);
        let need = rules.min_approvers as usize;
        if approved.len() >= need {
            let by = approved.join(", ");
            self.approvals.remove(&key);
            return Ok(Answer::Decided(by));
        }
        Ok(Answer::Pending(format!(
            "approval {} of {need} (by {}); waiting for {} more distinct approver(s)",
            approved.len(),
            approved.join(", "),
            need - approved.len()
        )))
    }
}
