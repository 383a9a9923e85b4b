//! `diff PIPELINE`: what applying each stage would change on its target, object by object
//! (server-side dry run against the live objects).

use crate::store::Location;

use super::args::DiffArgs;
use super::sandbox::embed_sandbox;
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
    let Tally { changed, new, same } = tally;
    eprintln!("{changed} objects would change, {new} would be created, {same} are unchanged");
    Ok(if changed + new > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
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
