//! The engine on virtual time: every operator command in the states that matter, timeouts
//! and failure policies. A ten-minute pause runs in milliseconds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use glidepath::engine::{self, Emitter, Outcome, RunHandle, RunOptions};
use glidepath::events::{CommandKind, Envelope, Event, Status, Verdict};
use glidepath::pipeline::{self, Pipeline, Variables};
use tokio::sync::broadcast;
use tokio::time::Instant;

fn pipeline(stages: &str) -> Arc<Pipeline> {
    let text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n{stages}"
    );
    let vars = Variables {
        sets: Default::default(),
        use_env: false,
    };
    Arc::new(
        pipeline::load_str(&text, Path::new("test.yaml"), &vars).unwrap_or_else(|e| panic!("{e}")),
    )
}

struct Run {
    handle: RunHandle,
    rx: broadcast::Receiver<Envelope>,
    seen: Vec<Envelope>,
}

fn start(p: Arc<Pipeline>, options: RunOptions) -> Run {
    let mut rx = None;
    let handle = engine::start_with(p, Emitter::new(1, 1, None), options, |tx| {
        rx = Some(tx.subscribe())
    });
    Run {
        handle,
        rx: rx.unwrap(),
        seen: Vec::new(),
    }
}

impl Run {
    /// Waits for the first event (from now on) that matches.
    async fn until(&mut self, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        loop {
            // No virtual-time limit here: while a real child process runs, the paused clock
            // jumps ahead, and a limit would fire at once.
            let env = self
                .rx
                .recv()
                .await
                .unwrap_or_else(|e| panic!("never saw {what} ({e}); saw {:#?}", self.seen));
            self.seen.push(env.clone());
            if f(&env.event) {
                return env.event;
            }
        }
    }

    async fn state(&mut self, step: &str, status: Status) {
        self.until(&format!("{step} {status}"), |e| matches!(e, Event::StepState { step: s, status: st, .. } if s == step && *st == status))
            .await;
    }

    async fn ended(&mut self, step: &str) {
        self.until(
            &format!("{step} finished"),
            |e| matches!(e, Event::StepFinished { step: s, .. } if s == step),
        )
        .await;
    }

    async fn started(&mut self, step: &str) {
        self.until(
            &format!("{step} started"),
            |e| matches!(e, Event::StepStarted { step: s, .. } if s == step),
        )
        .await;
    }

    fn send(&self, kind: CommandKind) {
        self.handle.send(kind, "tester");
    }

    async fn operator(&mut self, kind: CommandKind) -> (bool, Option<String>) {
        match self
            .until(
                &format!("operator {kind}"),
                |e| matches!(e, Event::Operator { command, .. } if *command == kind),
            )
            .await
        {
            Event::Operator {
                accepted, reason, ..
            } => (accepted, reason),
            _ => unreachable!(),
        }
    }

    async fn finish(mut self) -> (Outcome, Vec<Envelope>) {
        while let Ok(env) = self.rx.try_recv() {
            self.seen.push(env);
        }
        let outcome = self.handle.wait().await;
        while let Ok(env) = self.rx.recv().await {
            let last = matches!(env.event, Event::RunFinished { .. });
            self.seen.push(env);
            if last {
                break;
            }
        }
        (outcome, self.seen)
    }
}

fn finished(events: &[Envelope], step: &str) -> (Status, Option<Verdict>, String) {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::StepFinished {
                step: s,
                status,
                verdict,
                summary,
                ..
            } if s == step => Some((*status, *verdict, summary.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{step} never finished"))
}

const MANUAL_APPROVAL: &str = "    - name: prod\n      steps:\n        - approval: { pass: manual }\n        - name: after\n          pause: 1s\n";

#[tokio::test(start_paused = true)]
async fn approve_a_pending_approval() {
    let mut run = start(pipeline(MANUAL_APPROVAL), RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Approve);
    assert_eq!(run.operator(CommandKind::Approve).await, (true, None));
    let (outcome, events) = run.finish().await;
    assert_eq!(outcome.status, Status::Passed);
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(
        finished(&events, "approval"),
        (
            Status::Passed,
            Some(Verdict::Pass),
            "approved by tester".into()
        )
    );
    assert_eq!(finished(&events, "after").0, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn reject_declines_and_fails_the_run() {
    let mut run = start(pipeline(MANUAL_APPROVAL), RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Reject);
    let (outcome, events) = run.finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::Failed, 1));
    assert_eq!(
        finished(&events, "approval"),
        (
            Status::Failed,
            Some(Verdict::Fail),
            "declined by tester".into()
        )
    );
    assert_eq!(finished(&events, "after").0, Status::Skipped);
}

#[tokio::test(start_paused = true)]
async fn auto_approve_passes_manual_approvals() {
    let run = start(
        pipeline(MANUAL_APPROVAL),
        RunOptions {
            auto_approve: true,
            ..Default::default()
        },
    );
    let (outcome, events) = run.finish().await;
    assert_eq!(outcome.status, Status::Passed);
    assert!(
        finished(&events, "approval")
            .2
            .starts_with("approved by --auto-approve")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_previous_result_is_declined_without_asking() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: check\n          command: { run: [\"false\"] }\n          onFailure: continue\n        - approval: { pass: automatic, warning: automatic }\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    let (status, verdict, summary) = finished(&events, "approval");
    assert_eq!((status, verdict), (Status::Failed, Some(Verdict::Fail)));
    assert_eq!(
        summary,
        "declined automatically: the previous result (prod/check) is fail"
    );
    assert_eq!((outcome.status, outcome.exit_code), (Status::Failed, 1));
}

#[tokio::test(start_paused = true)]
async fn a_passed_previous_result_follows_the_pass_mode() {
    // No earlier step in the stage counts as a pass.
    let p = pipeline(
        "    - name: prod\n      steps:\n        - approval: { pass: automatic, warning: manual }\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!(outcome.status, Status::Passed);
    assert_eq!(
        finished(&events, "approval").2,
        "approved automatically (previous result: pass)"
    );
}

#[tokio::test(start_paused = true)]
async fn pause_during_a_timed_pause_freezes_the_countdown() {
    let p =
        pipeline("    - name: prod\n      steps:\n        - name: soak\n          pause: 10m\n");
    let mut run = start(p, RunOptions::default());
    run.state("soak", Status::Paused).await;
    let begun = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    run.send(CommandKind::Pause);
    assert_eq!(run.operator(CommandKind::Pause).await, (true, None));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    run.send(CommandKind::Resume);
    run.operator(CommandKind::Resume).await;
    let (outcome, events) = run.finish().await;
    assert_eq!(outcome.status, Status::Passed);
    assert_eq!(finished(&events, "soak").2, "paused 10m");
    // 1 minute before the hold, the hold itself (1 hour), then the 9 minutes left.
    let took = begun.elapsed();
    assert!(
        took >= Duration::from_secs(70 * 60) && took < Duration::from_secs(70 * 60 + 5),
        "took {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn promote_skips_the_current_pause() {
    let p = pipeline("    - name: prod\n      steps:\n        - name: soak\n          pause: 2h\n");
    let mut run = start(p, RunOptions::default());
    run.state("soak", Status::Paused).await;
    let begun = Instant::now();
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    run.send(CommandKind::Promote);
    let (_, events) = run.finish().await;
    assert_eq!(
        finished(&events, "soak").2,
        "pause skipped by tester with 1h30m left"
    );
    assert!(begun.elapsed() < Duration::from_secs(31 * 60));
}

#[tokio::test(start_paused = true)]
async fn resume_or_promote_ends_an_open_pause() {
    for kind in [CommandKind::Resume, CommandKind::Promote] {
        let p =
            pipeline("    - name: prod\n      steps:\n        - name: hold\n          pause: {}\n");
        let mut run = start(p, RunOptions::default());
        run.state("hold", Status::Paused).await;
        tokio::time::sleep(Duration::from_secs(24 * 3600 - 60)).await;
        run.send(kind);
        let (outcome, events) = run.finish().await;
        assert_eq!(outcome.status, Status::Passed);
        assert_eq!(finished(&events, "hold").2, "resumed by tester");
    }
}

#[tokio::test(start_paused = true)]
async fn commands_that_do_not_apply_are_refused_with_a_reason() {
    let p = pipeline("    - name: prod\n      steps:\n        - name: soak\n          pause: 5m\n");
    let mut run = start(p, RunOptions::default());
    run.state("soak", Status::Paused).await;
    run.send(CommandKind::Approve);
    assert_eq!(
        run.operator(CommandKind::Approve).await,
        (
            false,
            Some("nothing is waiting for approval; step `soak` is running".into())
        )
    );
    run.send(CommandKind::Pause);
    assert!(run.operator(CommandKind::Pause).await.0);
    run.send(CommandKind::Pause);
    assert_eq!(
        run.operator(CommandKind::Pause).await,
        (false, Some("the run is already paused".into()))
    );
    run.send(CommandKind::Resume);
    assert!(run.operator(CommandKind::Resume).await.0);
    let (outcome, _) = run.finish().await;
    assert_eq!(
        outcome.status,
        Status::Passed,
        "refused commands leave the run intact"
    );
}

#[tokio::test(start_paused = true)]
async fn promote_and_resume_are_refused_when_nothing_is_paused() {
    let p = pipeline(MANUAL_APPROVAL);
    let mut run = start(p, RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Promote);
    assert_eq!(
        run.operator(CommandKind::Promote).await,
        (
            false,
            Some("there is no pause to skip; step `approval` is running".into())
        )
    );
    run.send(CommandKind::Resume);
    assert_eq!(
        run.operator(CommandKind::Resume).await,
        (
            false,
            Some("the run is not paused; step `approval` is running".into())
        )
    );
    run.send(CommandKind::Approve);
    assert_eq!(run.finish().await.0.status, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_the_next_step_until_resume() {
    let p = pipeline(MANUAL_APPROVAL);
    let mut run = start(p, RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Pause);
    run.operator(CommandKind::Pause).await;
    run.send(CommandKind::Approve);
    run.operator(CommandKind::Approve).await;
    run.ended("approval").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        !run.seen
            .iter()
            .any(|e| matches!(&e.event, Event::StepStarted { step, .. } if step == "after")),
        "a paused run must not start its next step"
    );
    let held = Instant::now();
    run.send(CommandKind::Resume);
    run.started("after").await;
    assert!(held.elapsed() < Duration::from_millis(10));
    assert_eq!(run.finish().await.0.status, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn abort_mid_step_stops_the_run() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: slow\n          command: { run: [sleep, \"30\"] }\n        - name: later\n          pause: 1s\n",
    );
    let mut run = start(p, RunOptions::default());
    run.started("slow").await;
    run.send(CommandKind::Abort);
    let (outcome, events) = run.finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::Aborted, 3));
    assert_eq!(outcome.reason, "aborted by tester");
    assert_eq!(finished(&events, "slow").0, Status::Aborted);
    assert_eq!(finished(&events, "later").0, Status::Skipped);
}

#[tokio::test(start_paused = true)]
async fn abort_while_paused_between_steps() {
    let p = pipeline(MANUAL_APPROVAL);
    let mut run = start(p, RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Pause);
    run.send(CommandKind::Approve);
    run.ended("approval").await;
    run.send(CommandKind::Abort);
    let (outcome, events) = run.finish().await;
    assert_eq!(outcome.status, Status::Aborted);
    assert_eq!(finished(&events, "after").0, Status::Aborted);
}

#[tokio::test(start_paused = true)]
async fn rollback_request_undoes_the_stage() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: publish\n          command: { run: [echo, published], rollback: [echo, unpublished] }\n        - name: hold\n          pause: {}\n        - name: announce\n          command: { run: [echo, hi] }\n    - name: next\n      steps:\n        - pause: 1s\n",
    );
    let mut run = start(p, RunOptions::default());
    run.state("hold", Status::Paused).await;
    run.send(CommandKind::Rollback);
    let (outcome, events) = run.finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::RolledBack, 1));
    assert_eq!(outcome.reason, "rollback requested by tester at prod/hold");
    assert_eq!(finished(&events, "hold").0, Status::RolledBack);
    assert_eq!(finished(&events, "announce").0, Status::Skipped);
    assert_eq!(finished(&events, "pause").0, Status::Skipped);
    let logs: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Log { line, .. } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        logs.contains(&"unpublished"),
        "the rollback command ran: {logs:?}"
    );
    assert!(events.iter().any(|e| matches!(&e.event, Event::StageFinished { stage, status: Status::RolledBack } if stage == "prod")));
}

#[tokio::test(start_paused = true)]
async fn rollback_while_waiting_for_approval_cancels_it() {
    let p = pipeline(MANUAL_APPROVAL);
    let mut run = start(p, RunOptions::default());
    run.state("approval", Status::WaitingForApproval).await;
    run.send(CommandKind::Pause);
    run.operator(CommandKind::Pause).await;
    run.send(CommandKind::Rollback);
    // Mid-step (approval is waiting), rollback applies: the approval is cancelled.
    assert!(run.operator(CommandKind::Rollback).await.0);
    let (outcome, _) = run.finish().await;
    assert_eq!(outcome.status, Status::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn a_step_that_outlives_its_timeout_fails() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: soak\n          pause: 10m\n          timeout: 1m\n",
    );
    let begun = Instant::now();
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!(
        finished(&events, "soak"),
        (
            Status::Failed,
            None,
            "timed out after 1m; the step was stopped".into()
        )
    );
    assert_eq!((outcome.status, outcome.exit_code), (Status::Failed, 1));
    assert!(begun.elapsed() < Duration::from_secs(61));
}

#[tokio::test(start_paused = true)]
async fn on_failure_stop_skips_the_rest() {
    let p = pipeline(
        "    - name: dev\n      steps:\n        - name: broken\n          command: { run: [\"false\"] }\n        - name: never\n          command: { run: [\"true\"] }\n    - name: prod\n      steps:\n        - pause: 1s\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::Failed, 1));
    assert_eq!(
        outcome.reason,
        "dev/broken failed: `false` exited with code 1"
    );
    assert_eq!(finished(&events, "never").0, Status::Skipped);
    assert_eq!(finished(&events, "pause").0, Status::Skipped);
}

#[tokio::test(start_paused = true)]
async fn on_failure_continue_goes_on_with_a_warning() {
    let p = pipeline(
        "    - name: dev\n      steps:\n        - name: flaky\n          command: { run: [\"false\"] }\n          onFailure: continue\n        - name: next\n          command: { run: [\"true\"] }\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::Warning, 0));
    assert_eq!(finished(&events, "flaky").0, Status::Failed);
    assert_eq!(finished(&events, "next").0, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn on_failure_rollback_undoes_earlier_steps() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: migrate\n          command: { run: [echo, migrated], rollback: [echo, reverted] }\n        - name: verify\n          command: { run: [\"false\"] }\n          onFailure: rollback\n        - name: after\n          pause: 1s\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!((outcome.status, outcome.exit_code), (Status::RolledBack, 1));
    assert_eq!(
        outcome.reason,
        "rolled back: prod/verify failed: `false` exited with code 1"
    );
    assert_eq!(finished(&events, "verify").0, Status::Failed);
    assert_eq!(finished(&events, "after").0, Status::Skipped);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::Log { line, .. } if line == "reverted"))
    );
}

#[tokio::test(start_paused = true)]
async fn gate_fails_on_a_failed_earlier_step_with_its_evidence() {
    let p = pipeline(
        "    - name: dev\n      steps:\n        - name: ok\n          command: { run: [\"true\"] }\n        - name: bad\n          command: { run: [\"false\"] }\n          onFailure: continue\n        - gate: { steps: [ok, bad] }\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    let evidence = events
        .iter()
        .find_map(|e| match &e.event {
            Event::StepFinished { step, evidence, .. } if step == "gate" => Some(evidence.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        finished(&events, "gate"),
        (
            Status::Failed,
            Some(Verdict::Fail),
            "1 below pass: dev/bad".into()
        )
    );
    assert_eq!(evidence.len(), 2);
    assert_eq!(
        (
            evidence[1].check.as_str(),
            evidence[1].verdict,
            evidence[1].value.as_deref()
        ),
        ("dev/bad", Verdict::Fail, Some("failed"))
    );
    assert_eq!(outcome.exit_code, 1);
}

#[tokio::test(start_paused = true)]
async fn a_gate_on_a_step_that_did_not_run_is_an_error_never_a_pass() {
    let p = pipeline(
        "    - name: dev\n      steps:\n        - name: smoke\n          command: { run: [\"true\"] }\n    - name: prod\n      steps:\n        - gate: { steps: [dev/smoke], atLeast: warning }\n",
    );
    let (outcome, events) = start(
        p,
        RunOptions {
            stage: Some("prod".into()),
            ..Default::default()
        },
    )
    .finish()
    .await;
    assert_eq!(
        finished(&events, "gate"),
        (
            Status::Failed,
            Some(Verdict::Error),
            "1 below pass or warning: dev/smoke".into()
        )
    );
    assert_eq!(outcome.exit_code, 1);
}

#[tokio::test(start_paused = true)]
async fn resumed_runs_skip_finished_steps() {
    let p = pipeline(
        "    - name: dev\n      steps:\n        - name: one\n          command: { run: [echo, one] }\n        - name: two\n          command: { run: [echo, two] }\n",
    );
    let (_, first) = start(p.clone(), RunOptions::default()).finish().await;
    // Keep what happened up to the end of step one, as a crash would leave it.
    let cut = first
        .iter()
        .position(|e| matches!(&e.event, Event::StepFinished { step, .. } if step == "one"))
        .unwrap();
    let resumed = engine::Resumed::from_events(&first[..=cut]);
    assert_eq!(resumed.finished.len(), 1);
    let (outcome, second) = start(
        p,
        RunOptions {
            resumed: Some(resumed),
            ..Default::default()
        },
    )
    .finish()
    .await;
    assert_eq!(outcome.status, Status::Passed);
    assert!(
        !second
            .iter()
            .any(|e| matches!(&e.event, Event::StepStarted { step, .. } if step == "one"))
    );
    assert!(
        second
            .iter()
            .any(|e| matches!(&e.event, Event::StepStarted { step, .. } if step == "two"))
    );
}

#[tokio::test(start_paused = true)]
async fn rollback_before_anything_ran_is_refused() {
    // A run resumed in the paused state, before any step ran.
    let resumed = engine::Resumed {
        paused: true,
        ..Default::default()
    };
    let mut run = start(
        pipeline(MANUAL_APPROVAL),
        RunOptions {
            resumed: Some(resumed),
            auto_approve: true,
            ..Default::default()
        },
    );
    run.send(CommandKind::Rollback);
    assert_eq!(
        run.operator(CommandKind::Rollback).await,
        (
            false,
            Some("nothing has run yet, so there is nothing to roll back".into())
        )
    );
    run.send(CommandKind::Resume);
    assert_eq!(run.finish().await.0.status, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn a_parallel_group_runs_its_steps_at_the_same_time() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - name: under-fire\n          parallel:\n            - { name: short, pause: 10s }\n            - { name: long, pause: 20s }\n        - name: after\n          pause: 1s\n",
    );
    assert_eq!(p.stages[0].steps[0].group.as_deref(), Some("under-fire"));
    assert_eq!(p.stages[0].steps[2].group, None);
    let begun = Instant::now();
    let run = start(p, RunOptions::default());
    let (outcome, events) = run.finish().await;
    assert_eq!(outcome.status, Status::Passed);
    // Side by side: 20 s and the 1 s after, not 31 s.
    assert_eq!(begun.elapsed().as_secs(), 21);
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepStarted { step, .. } => Some(format!("start {step}")),
            Event::StepFinished { step, .. } => Some(format!("end {step}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "start short",
            "start long",
            "end short",
            "end long",
            "start after",
            "end after"
        ]
    );
    // The plan says which steps share a group.
    let groups: Vec<Option<String>> = events
        .iter()
        .find_map(|e| match &e.event {
            Event::RunStarted { stages, .. } => {
                Some(stages[0].steps.iter().map(|s| s.group.clone()).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        groups,
        [Some("under-fire".into()), Some("under-fire".into()), None]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_a_group_stops_its_partners_and_the_stage() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - parallel:\n            - { name: slow, pause: 1h }\n            - { name: broken, timeout: 1s, pause: 10s }\n        - name: after\n          pause: 1s\n",
    );
    let begun = Instant::now();
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.starts_with("prod/broken failed: timed out"),
        "{}",
        outcome.reason
    );
    let (status, _, summary) = finished(&events, "slow");
    assert_eq!(status, Status::Aborted);
    assert_eq!(summary, "stopped: `broken` failed beside it");
    assert_eq!(finished(&events, "after").0, Status::Skipped);
    assert_eq!(begun.elapsed().as_secs(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_continue_on_failure_step_in_a_group_leaves_its_partner_running() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - parallel:\n            - { name: slow, pause: 5s }\n            - { name: flaky, onFailure: continue, command: { run: [\"false\"] } }\n",
    );
    let (outcome, events) = start(p, RunOptions::default()).finish().await;
    assert_eq!(outcome.status, Status::Warning);
    assert_eq!(finished(&events, "slow").0, Status::Passed);
    assert_eq!(finished(&events, "flaky").0, Status::Failed);
}

#[tokio::test(start_paused = true)]
async fn commands_reach_the_step_of_a_group_that_waits_for_them() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - parallel:\n            - { name: ticking, pause: 30s }\n            - { name: sign-off, approval: { pass: manual } }\n",
    );
    let mut run = start(p, RunOptions::default());
    run.state("sign-off", Status::WaitingForApproval).await;
    run.send(CommandKind::Approve);
    assert_eq!(run.operator(CommandKind::Approve).await, (true, None));
    run.ended("sign-off").await;
    run.send(CommandKind::Approve);
    let (accepted, reason) = run.operator(CommandKind::Approve).await;
    assert!(!accepted);
    assert_eq!(
        reason.as_deref(),
        Some("nothing is waiting for approval; step `ticking` is running")
    );
    // Resume ends the pause of the group's other step.
    let begun = Instant::now();
    run.send(CommandKind::Resume);
    assert!(run.operator(CommandKind::Resume).await.0);
    let (outcome, events) = run.finish().await;
    assert!(begun.elapsed().as_secs() < 30);
    assert_eq!(outcome.status, Status::Passed);
    assert_eq!(finished(&events, "sign-off").0, Status::Passed);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_group_runs_only_its_unfinished_steps() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - parallel:\n            - { name: done-before, pause: 1h }\n            - { name: again, pause: 2s }\n",
    );
    let resumed = engine::Resumed {
        finished: vec![glidepath::steps::PriorOutcome {
            stage: "prod".into(),
            step: "done-before".into(),
            kind: "pause".into(),
            status: Status::Passed,
            verdict: None,
        }],
        ..Default::default()
    };
    let begun = Instant::now();
    let (outcome, events) = start(
        p,
        RunOptions {
            resumed: Some(resumed),
            ..Default::default()
        },
    )
    .finish()
    .await;
    assert_eq!(outcome.status, Status::Passed);
    assert_eq!(begun.elapsed().as_secs(), 2);
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.event, Event::StepStarted { step, .. } if step == "done-before"))
    );
}

#[test]
fn parallel_groups_are_checked_when_loaded() {
    let load = |steps: &str| {
        let text = format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: prod\n      steps:\n{steps}"
        );
        let vars = Variables {
            sets: Default::default(),
            use_env: false,
        };
        pipeline::load_str(&text, Path::new("test.yaml"), &vars)
            .map(|_| ())
            .map_err(|e| e.message)
    };
    assert!(
        load("        - parallel:\n            - { pause: 1s }\n")
            .unwrap_err()
            .contains("two or more steps")
    );
    assert!(
        load("        - timeout: 1m\n          parallel:\n            - { name: a, pause: 1s }\n            - { name: b, pause: 1s }\n")
            .unwrap_err()
            .contains("a `name` and its steps only")
    );
    assert!(
        load("        - parallel:\n            - { name: a, pause: 1s }\n            - parallel: [ { name: c, pause: 1s }, { name: d, pause: 1s } ]\n")
            .unwrap_err()
            .contains("do not nest")
    );
    assert!(
        load("        - parallel:\n            - { name: a, pause: 1s }\n            - { name: a, pause: 2s }\n")
            .unwrap_err()
            .contains("duplicate step name `a`")
    );
    // A gate cannot judge a partner that is still running beside it.
    assert!(
        load("        - parallel:\n            - { name: a, pause: 1s }\n            - { name: judge, gate: { steps: [a] } }\n")
            .is_err()
    );
    load("        - parallel:\n            - { name: a, pause: 1s }\n            - { name: b, pause: 1s }\n        - { name: judge, gate: { steps: [a, b] } }\n").unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_killed_during_a_rollback_finishes_it_on_resume() {
    let p = pipeline(
        "    - name: prod\n      steps:\n        - { name: marker, command: { run: [\"true\"], rollback: [\"true\"] } }\n        - { name: broken, command: { run: [\"false\"] }, onFailure: rollback }\n        - { name: after, command: { run: [\"true\"] } }\n",
    );
    let outcome = |step: &str, status| glidepath::steps::PriorOutcome {
        stage: "prod".into(),
        step: step.into(),
        kind: "command".into(),
        status,
        verdict: None,
    };
    // The driver died after `broken` failed, while its stage was being rolled back.
    let resumed = engine::Resumed {
        finished: vec![
            outcome("marker", Status::Passed),
            outcome("broken", Status::Failed),
        ],
        ..Default::default()
    };
    let (outcome, events) = start(
        p,
        RunOptions {
            resumed: Some(resumed),
            ..Default::default()
        },
    )
    .finish()
    .await;
    assert_eq!(outcome.status, Status::RolledBack, "{}", outcome.reason);
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { line, .. } if line.contains("rollback of marker"))));
    // What came after the failure never runs.
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.event, Event::StepStarted { step, .. } if step == "after"))
    );
    assert_eq!(finished(&events, "after").0, Status::Skipped);
}
