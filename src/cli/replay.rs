//! `replay RUN [--slo FILE] [--json]`: a past run's gates and release analyses decided
//! again from its journal with other SLOs (README, "Replay").

use std::path::{Path, PathBuf};

use super::args::ReplayArgs;
use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::pipeline::{self, Variables};
use crate::replay::judge::JudgeFile;
use crate::replay::words::{ending_lines, header, left_out, row, summary};
use crate::replay::{Replay, SloSource};
use crate::slo::{HistoryEntry, Slo};
use crate::store::{Location, Store};

/// `replay`: exit 0 when every release and gate would have ended as it did, 1 when one
/// would not.
pub(super) fn replay(journal: &Location, args: ReplayArgs) -> Result<i32, Exit> {
    let over = args
        .slo
        .as_deref()
        .map(|f| Slo::load(f, None).map(|slo| (f.to_path_buf(), slo)))
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    let judge = args
        .judge
        .as_deref()
        .map(JudgeFile::load)
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    let r = replayed(journal, args.run, over, judge.as_ref())?;
    if args.json {
        let doc = serde_json::json!({
            "run": args.run,
            "slo": r.used,
            "judge": judge.as_ref().map(|j| j.path.display().to_string()),
            "left_out": left_out(&r.replay),
            "changed": r.replay.changed(),
            "outcome_changed": r.replay.outcome_changed(),
            "decisions": r.replay.decisions,
            "steps": r.replay.steps,
        });
        println!("{}", serde_json::to_string_pretty(&doc).map_err(infra)?);
    } else {
        for line in lines(args.run, &r, judge.as_ref()) {
            println!("{line}");
        }
    }
    Ok(if r.replay.outcome_changed() {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// A run decided again.
pub struct Replayed {
    /// The run's status as it ended (or stands).
    pub status: String,
    /// The SLO files read.
    pub used: Vec<String>,
    /// The decisions and endings.
    pub replay: Replay,
}

/// Run `run` of `journal` decided again from its journal: with `over` (an SLO for every
/// step) or each step's own SLO file, and with `judge` for the statistical judge's
/// analyses.
pub fn replayed(
    journal: &Location,
    run: i64,
    over: Option<(PathBuf, Slo)>,
    judge: Option<&JudgeFile>,
) -> Result<Replayed, Exit> {
    let store = Store::open(journal).map_err(infra)?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    if crate::train::is_train(&record.source) {
        return Err(bad_input(format!(
            "run {run} is a release train: replay each member's own run instead (`glidepath history` lists them)"
        )));
    }
    let events = store.events(run).map_err(infra)?;
    if let Some(file) = judge {
        if crate::replay::judgements(&events).next().is_none() {
            return Err(bad_input(format!(
                "{}: run {run}'s analyses were judged by the SLO's thresholds: it journaled no baseline samples for a statistical judge to judge again; `--slo FILE` replays thresholds",
                file.path.display()
            )));
        }
        file.fits(run, crate::replay::judgements(&events))
            .map_err(bad_input)?;
    }
    let path = Path::new(&record.path);
    let file = pipeline::load_model(
        &record.source,
        path,
        &Variables::from_sets(record.sets.clone()),
    )
    .map_err(|e| bad_input(format!("run {run}'s journaled pipeline: {e}")))?;
    let mut slos = Slos {
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        over,
        store: &store,
        run,
        used: Vec::new(),
    };
    let r = crate::replay::replay(&file, &record.service, &events, &mut slos, judge)
        .map_err(bad_input)?;
    if r.decisions.is_empty() {
        return Err(bad_input(format!(
            "run {run} journaled no SLO gate or release analysis: nothing to decide again"
        )));
    }
    Ok(Replayed {
        status: record.status.to_string(),
        used: slos.used,
        replay: r,
    })
}

/// What the cockpit's history view shows of run `run`: decided again with its own SLOs.
pub fn for_cockpit(journal: &Location, run: i64) -> Result<crate::ui::app::ReplayView, String> {
    let r = replayed(journal, run, None, None).map_err(|e| e.message)?;
    Ok(crate::ui::app::ReplayView {
        run,
        status: r.status,
        slos: r.used,
        replay: r.replay,
    })
}

/// The SLOs a replay decides with: `--slo` for every step, else each step's own file read
/// again beside the run's pipeline.
struct Slos<'a> {
    base: PathBuf,
    over: Option<(PathBuf, Slo)>,
    store: &'a Store,
    run: i64,
    /// The files read, for the report.
    used: Vec<String>,
}

impl SloSource for Slos<'_> {
    fn slo(&mut self, path: &str, sli: Option<&str>) -> Result<Slo, String> {
        if let Some((file, slo)) = &self.over {
            let (file, slo) = (file.display().to_string(), slo.clone());
            self.note(file);
            return Ok(slo);
        }
        let full = self.base.join(path);
        let sli = sli.map(|s| self.base.join(s));
        let slo = Slo::load(&full, sli.as_deref()).map_err(|e| {
            format!("{e}\n  the run's SLO file is read again from where the run read it; give --slo FILE to decide with another")
        })?;
        self.note(full.display().to_string());
        Ok(slo)
    }

    fn history(&mut self, service: &str, stage: &str) -> Vec<HistoryEntry> {
        let limit = crate::steps::evaluate::HISTORY;
        self.store
            .evaluations_before(service, stage, self.run, limit)
            .unwrap_or_default()
    }
}

impl Slos<'_> {
    fn note(&mut self, file: String) {
        if !self.used.contains(&file) {
            self.used.push(file);
        }
    }
}

/// The replay for a person: every decision with both verdicts, then each release's ending.
fn lines(run: i64, r: &Replayed, judge: Option<&JudgeFile>) -> Vec<String> {
    let mut by = r.used.join(", ");
    if let Some(j) = judge {
        by = format!(
            "{by}; the statistical judge's judgements with {}",
            j.path.display()
        );
    }
    let mut out = vec![format!("run {run} ({}) decided again with {by}", r.status)];
    let left = left_out(&r.replay);
    if !left.is_empty() {
        out.push(format!(
            "left out of the judgements (the judge file lists other metrics): {}",
            left.join(", ")
        ));
    }
    out.push(String::new());
    out.push(header());
    out.extend(r.replay.decisions.iter().map(row));
    out.push(String::new());
    out.extend(r.replay.steps.iter().flat_map(ending_lines));
    out.push(String::new());
    out.push(summary(&r.replay));
    out
}
