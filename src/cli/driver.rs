//! Whether a run's driver is still there: a run the journal holds as unfinished whose
//! process is gone (killed, crashed, the machine restarted) is `interrupted`, and
//! `glidepath resume RUN` continues it.

use super::{Exit, bad_input, infra};
use crate::events::Status;
use crate::store::{RunRecord, Store};

/// Whether the run has not finished and no live process drives it.
pub(super) fn driver_gone(r: &RunRecord) -> bool {
    r.finished_ms.is_none() && r.exit_code.is_none() && !r.driver_alive()
}

/// The run's state as it is now: the journal's, or `interrupted` when its driver is gone.
pub(super) fn state(r: &RunRecord) -> Status {
    if driver_gone(r) {
        Status::Interrupted
    } else {
        r.status
    }
}

/// The command that continues an interrupted run.
pub(super) fn resume_command(run: i64) -> String {
    format!("glidepath resume {run}")
}

/// `resume` without a run: the newest interrupted run (of `pipeline`, when named), or why
/// there is none.
pub(super) fn newest_interrupted(store: &Store, pipeline: Option<&str>) -> Result<RunRecord, Exit> {
    let unfinished: Vec<RunRecord> = store
        .unfinished()
        .map_err(infra)?
        .into_iter()
        .filter(|r| pipeline.is_none_or(|p| r.pipeline == p))
        .collect();
    if let Some(r) = unfinished.iter().find(|r| driver_gone(r)) {
        return Ok(r.clone());
    }
    let of = pipeline.map(|p| format!(" of {p}")).unwrap_or_default();
    match unfinished.first() {
        Some(live) => Err(bad_input(format!(
            "no interrupted run{of} to resume: run {} of {} is still being driven ({}); `glidepath attach {}` follows it",
            live.id,
            live.pipeline,
            live.driver(),
            live.id
        ))),
        None => Err(bad_input(format!(
            "no interrupted run{of} to resume; `glidepath history` lists the runs"
        ))),
    }
}

/// One line saying which run `resume` continues, and why it can.
pub(super) fn resuming_line(r: &RunRecord) -> String {
    let driver = match r.pid {
        Some(_) => format!("its driver ({})", r.driver()),
        None => "its driver".into(),
    };
    format!(
        "resuming run {} of {} ({}): interrupted, {driver} is gone",
        r.id, r.pipeline, r.path
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::process_alive;

    fn record(pid: Option<u32>, finished: bool) -> RunRecord {
        RunRecord {
            id: 7,
            pipeline: "checkout".into(),
            service: "checkout".into(),
            path: "/p.yaml".into(),
            source: String::new(),
            sets: Default::default(),
            stage: None,
            started_ms: 0,
            finished_ms: finished.then_some(1),
            status: if finished {
                Status::Passed
            } else {
                Status::Running
            },
            exit_code: finished.then_some(0),
            pid,
            host: None,
            user: None,
            heartbeat_ms: None,
        }
    }

    #[test]
    fn a_run_whose_process_ended_is_interrupted() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not yet reaped: a zombie, whose driver is gone all the same.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(pid) {
            assert!(std::time::Instant::now() < deadline, "`true` never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(state(&record(Some(pid), false)), Status::Interrupted);
        child.wait().unwrap();
        assert_eq!(state(&record(Some(pid), false)), Status::Interrupted);
        assert_eq!(state(&record(None, false)), Status::Interrupted);
    }

    #[test]
    fn a_live_driver_or_a_finished_run_keeps_its_state() {
        assert_eq!(
            state(&record(Some(std::process::id()), false)),
            Status::Running
        );
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert_eq!(state(&record(Some(child.id()), false)), Status::Running);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(state(&record(Some(child.id()), true)), Status::Passed);
    }

    #[test]
    fn a_driver_on_another_host_lives_while_its_heartbeat_is_fresh() {
        let mut r = record(Some(1), false);
        r.host = Some("another-machine.example".into());
        r.user = Some("ci".into());
        r.heartbeat_ms = Some(crate::store::now_ms());
        assert_eq!(state(&r), Status::Running);
        assert_eq!(r.driver(), "process 1 of ci@another-machine.example");
        r.heartbeat_ms =
            Some(crate::store::now_ms() - crate::store::STALE_AFTER.as_millis() as i64 - 1);
        assert_eq!(state(&r), Status::Interrupted);
        r.heartbeat_ms = None;
        assert_eq!(state(&r), Status::Interrupted);
    }
}
