//! `diff PIPELINE`: what applying each stage would change on its target, object by object
//! (server-side dry run against the live objects). `diff TRAIN`: each member's, under its
//! name.

use crate::store::Location;

use super::args::DiffArgs;
use super::sandbox::{embed_sandbox, embed_shared_sandbox};
use super::{Exit, bad_input, infra, load_pipeline};
use crate::events::exit;
use crate::kube::objects::{Cluster, Comparison, describe, unified_diff};
use crate::pipeline::{Pipeline, Stage};

/// How many objects would change, be created, or stay as they are.
#[derive(Default)]
struct Tally {
    changed: usize,
    new: usize,
    same: usize,
}

/// `diff`: a unified diff per object that would change; exit 1 when any would.
pub(super) async fn diff(journal_path: &Location, args: DiffArgs) -> Result<i32, Exit> {
    let DiffArgs {
        pipeline,
        stage: only,
        sets,
    } = args;
    if std::fs::read_to_string(&pipeline).is_ok_and(|t| crate::train::is_train(&t)) {
        let sets = sets.into_iter().collect();
        return diff_train(journal_path, &pipeline, only.as_deref(), sets).await;
    }
    let p = load_pipeline(&pipeline, sets)?;
    if let Some(stage) = &only
        && !p.stages.iter().any(|s| &s.name == stage)
    {
        return Err(bad_input(format!("--stage {stage}: no such stage")));
    }
    let (p, _sandbox) = embed_sandbox(p, "happy", journal_path).await?;
    let mut tally = Tally::default();
    for stage in p
        .stages
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| &s.name == o))
    {
        diff_stage(&p, stage, &mut tally).await?;
    }
    Ok(tally.report(""))
}

impl Tally {
    /// Prints the counts (for `whose` objects); exit 1 when anything would change.
    fn report(&self, whose: &str) -> i32 {
        let Tally { changed, new, same } = self;
        eprintln!(
            "{whose}{changed} objects would change, {new} would be created, {same} are unchanged"
        );
        if changed + new > 0 {
            exit::FAILED
        } else {
            exit::OK
        }
    }
}

/// `diff TRAIN`: each member's diff under its name, every train stage (or `--stage`).
async fn diff_train(
    journal_path: &Location,
    path: &std::path::Path,
    only: Option<&str>,
    sets: std::collections::BTreeMap<String, String>,
) -> Result<i32, Exit> {
    let vars = crate::pipeline::Variables::from_sets(sets);
    let mut train = crate::train::load_file(path, &vars).map_err(|e| bad_input(e.to_string()))?;
    if let Some(stage) = only
        && !train.stages.iter().any(|s| s == stage)
    {
        return Err(bad_input(format!(
            "--stage {stage}: train {} has no such stage; it has {}",
            train.name,
            train.stages.join(", ")
        )));
    }
    let pipelines = train.members.iter_mut().map(|m| &mut m.pipeline).collect();
    let _sandbox = embed_shared_sandbox(pipelines, "happy", journal_path).await?;
    let mut all = Tally::default();
    for member in &train.members {
        let p = &member.pipeline;
        println!("=== member {} ({}) ===", member.name, p.path.display());
        let mut tally = Tally::default();
        for stage in p.stages.iter().filter(|s| only.is_none_or(|o| s.name == o)) {
            diff_stage(p, stage, &mut tally).await?;
        }
        tally.report(&format!("{}: ", member.name));
        all.changed += tally.changed;
        all.new += tally.new;
        all.same += tally.same;
    }
    Ok(all.report(&format!("train {}: ", train.name)))
}

/// Compares every object a stage's steps would apply with its target's live one.
async fn diff_stage(p: &Pipeline, stage: &Stage, tally: &mut Tally) -> Result<(), Exit> {
    let cluster = Cluster::connect(stage.target.as_ref())
        .await
        .map_err(infra)?;
    let vars = p.query_vars(stage);
    for step in &stage.steps {
        let objs =
            crate::steps::preflight::step_manifests(step, &p.base_dir, &vars).map_err(bad_input)?;
        for mut o in objs {
            cluster.place(&mut o).await.map_err(infra)?;
            let what = describe(&o);
            let planned = format!("{what} ({}/{})", stage.name, step.name);
            match cluster.compare(&o).await.map_err(infra)? {
                Comparison::Same => tally.same += 1,
                Comparison::New(yaml) => {
                    tally.new += 1;
                    let absent = format!("{what} (absent)");
                    print!("{}", unified_diff("", &yaml, &absent, &planned));
                }
                Comparison::Differs(live, yaml) => {
                    tally.changed += 1;
                    let live_name = format!("{what} (live)");
                    print!("{}", unified_diff(&live, &yaml, &live_name, &planned));
                }
            }
        }
    }
    Ok(())
}
