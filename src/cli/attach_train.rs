//! `attach` on a release train's run: the cockpit's train view, fed the train's events
//! and every member sub-run's, as the driving process's own cockpit is.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use super::{Exit, infra};
use crate::events::{Envelope, Event};
use crate::pipeline::Variables;
use crate::store::{RunRecord, Store};
use crate::ui::train::TrainOptions;

/// How the cockpit shows the train run `record`: its members' versions and failure rule
/// from the train file the run recorded; if that no longer loads, the grid still comes
/// from the run's events, without versions.
pub(super) fn options(record: &RunRecord) -> TrainOptions {
    let vars = Variables::from_sets(record.sets.clone());
    match crate::train::load_str(&record.source, Path::new(&record.path), &vars) {
        Ok(train) => super::train_cockpit::train_options(&train, record.id),
        Err(e) => {
            tracing::warn!(
                "train run {}: its train file no longer loads: {e}",
                record.id
            );
            TrainOptions {
                run: record.id,
                ..TrainOptions::default()
            }
        }
    }
}

/// The member sub-runs a train's `events` name, each once, in the order named.
pub(super) fn member_runs(events: &[Envelope]) -> Vec<i64> {
    let mut runs = Vec::new();
    for env in events {
        if let Event::Member { run, .. } = &env.event
            && !runs.contains(run)
        {
            runs.push(*run);
        }
    }
    runs
}

/// The train run `run`'s events and its members' journaled so far, as one stream.
pub(super) fn earlier(store: &Store, run: i64) -> Result<Vec<Envelope>, Exit> {
    let train = store.events(run).map_err(infra)?;
    let mut members = BTreeMap::new();
    for sub in member_runs(&train) {
        members.insert(sub, store.events(sub).map_err(infra)?);
    }
    Ok(merge(train, members))
}

/// The train's events and its members', by time (the train's first on a tie), each run's
/// in its own order, and a member's none before the train's event that names its run (so
/// the view knows whose they are).
fn merge(train: Vec<Envelope>, members: BTreeMap<i64, Vec<Envelope>>) -> Vec<Envelope> {
    let mut train = VecDeque::from(train);
    let mut members: BTreeMap<i64, VecDeque<Envelope>> = members
        .into_iter()
        .map(|(run, events)| (run, VecDeque::from(events)))
        .collect();
    let mut named: Vec<i64> = Vec::new();
    let mut out = Vec::new();
    loop {
        let mut next: Option<(i64, Option<i64>)> = train.front().map(|e| (e.at_ms, None));
        for run in &named {
            if let Some(e) = members.get(run).and_then(|q| q.front())
                && next.is_none_or(|(at, _)| e.at_ms < at)
            {
                next = Some((e.at_ms, Some(*run)));
            }
        }
        let env = match next {
            None => break,
            Some((_, None)) => train.pop_front(),
            Some((_, Some(run))) => members.get_mut(&run).and_then(|q| q.pop_front()),
        };
        let Some(env) = env else { break };
        if let Event::Member { run, .. } = &env.event
            && !named.contains(run)
        {
            named.push(*run);
        }
        out.push(env);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(run: i64, seq: u64, at_ms: i64, event: Event) -> Envelope {
        Envelope {
            run,
            seq,
            at_ms,
            event,
        }
    }

    fn member(run: i64, name: &str) -> Event {
        Event::Member {
            stage: "staging".into(),
            member: name.into(),
            run,
            wave: 1,
        }
    }

    fn stage(name: &str) -> Event {
        Event::StageStarted { stage: name.into() }
    }

    #[test]
    fn members_follow_the_event_naming_them_and_interleave_by_time() {
        let train = vec![
            env(1, 1, 100, stage("staging")),
            env(1, 2, 110, member(2, "payments")),
            env(1, 3, 120, member(3, "inventory")),
            env(1, 4, 300, stage("prod")),
        ];
        let members = BTreeMap::from([
            // Stamped before the train named it (a clock step): still after it.
            (
                2,
                vec![env(2, 1, 105, stage("a")), env(2, 2, 200, stage("b"))],
            ),
            (
                3,
                vec![env(3, 1, 150, stage("c")), env(3, 2, 400, stage("d"))],
            ),
        ]);
        let order: Vec<(i64, u64)> = merge(train, members)
            .iter()
            .map(|e| (e.run, e.seq))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, 1),
                (1, 2),
                (2, 1),
                (1, 3),
                (3, 1),
                (2, 2),
                (1, 4),
                (3, 2)
            ]
        );
    }

    #[test]
    fn a_run_named_twice_is_listed_once() {
        let train = vec![
            env(1, 1, 100, member(2, "payments")),
            env(1, 2, 200, member(2, "payments")),
            env(1, 3, 300, member(4, "checkout")),
        ];
        assert_eq!(member_runs(&train), vec![2, 4]);
    }
}
