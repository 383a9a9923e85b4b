//! `replay RUN [--slo FILE] [--json]`: a past run's gates and release analyses decided
//! again from its journal with other SLOs (README, "Replay").

use std::path::{Path, PathBuf};

use super::args::ReplayArgs;
use super::{Exit, bad_input, infra};
use crate::events::{Verdict, clock, exit};
use crate::pipeline::{self, Variables};
use crate::replay::{Decision, Ending, Replay, SloSource, StepReplay};
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
    let store = Store::open(journal).map_err(infra)?;
    let record = store.run(args.run).map_err(|e| bad_input(e.to_string()))?;
    if crate::train::is_train(&record.source) {
        return Err(bad_input(format!(
            "run {} is a release train: replay each member's own run instead (`glidepath history` lists them)",
            args.run
        )));
    }
    let events = store.events(args.run).map_err(infra)?;
    let path = Path::new(&record.path);
    let file = pipeline::load_model(
        &record.source,
        path,
        &Variables::from_sets(record.sets.clone()),
    )
    .map_err(|e| bad_input(format!("run {}'s journaled pipeline: {e}", args.run)))?;
    let mut slos = Slos {
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        over,
        store: &store,
        run: args.run,
        used: Vec::new(),
    };
    let r = crate::replay::replay(&file, &record.service, &events, &mut slos).map_err(bad_input)?;
    if r.decisions.is_empty() {
        return Err(bad_input(format!(
            "run {} journaled no SLO gate or release analysis: nothing to decide again",
            args.run
        )));
    }
    if args.json {
        let doc = serde_json::json!({
            "run": args.run,
            "slo": slos.used,
            "changed": r.changed(),
            "outcome_changed": r.outcome_changed(),
            "decisions": r.decisions,
            "steps": r.steps,
        });
        println!("{}", serde_json::to_string_pretty(&doc).map_err(infra)?);
    } else {
        print(args.run, &record.status.to_string(), &slos.used, &r);
    }
    Ok(if r.outcome_changed() {
        exit::FAILED
    } else {
        exit::OK
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
fn print(run: i64, status: &str, used: &[String], r: &Replay) {
    println!(
        "run {run} ({status}) decided again with {}",
        used.join(", ")
    );
    println!();
    println!(
        "{:<8}  {:<22}  {:<20}  {:>6}  {:<8}  {:<8}",
        "time", "step", "decision", "weight", "recorded", "replayed"
    );
    for d in &r.decisions {
        println!("{}", row(d));
    }
    println!();
    for s in &r.steps {
        for line in ending_lines(s) {
            println!("{line}");
        }
    }
    let n = r.decisions.len();
    println!();
    match (r.changed(), r.outcome_changed()) {
        (0, _) => println!("no decision changes ({n} decided again)"),
        (c, false) => println!("{c} of {n} decisions change; every step ends as it did"),
        (c, true) => println!("{c} of {n} decisions change, and the run would have gone otherwise"),
    }
}

fn row(d: &Decision) -> String {
    let what = match d.part {
        Some(part) => format!("{} ({})", d.what, part.word()),
        None => d.what.clone(),
    };
    let weight = d.weight.map(|w| format!("{w}%")).unwrap_or_default();
    let mark = if d.changed() {
        let values: Vec<String> = d
            .values
            .iter()
            .map(|(sli, v)| format!("{sli} {}", short(*v)))
            .collect();
        format!("  ← {}: {}", values.join(", "), d.why)
    } else {
        String::new()
    };
    format!(
        "{:<8}  {:<22}  {:<20}  {:>6}  {:<8}  {:<8}{mark}",
        clock(d.at_ms),
        d.step,
        what,
        weight,
        d.recorded.word(),
        d.replayed.word()
    )
}

/// How one step ended, and how it would have.
fn ending_lines(s: &StepReplay) -> Vec<String> {
    let mut out = vec![format!(
        "{} ({}): {}",
        s.step,
        s.kind,
        s.recorded_outcome.as_deref().unwrap_or("never finished")
    )];
    if let (Some(recorded), Some(replayed)) = (&s.recorded, &s.replayed) {
        out.push(format!("  recorded: {}", said(recorded)));
        if recorded == replayed {
            out.push("  replayed: the same".into());
        } else {
            out.push(format!("  replayed: {}", said(replayed)));
            if let (Ending::Stopped { n, .. }, Ending::Open { .. }) = (recorded, replayed) {
                out.push(format!("            (the run stopped at analysis {n}; what it would have measured after is not in the journal)"));
            }
        }
    }
    out
}

/// An ending in words.
fn said(e: &Ending) -> String {
    let weight = |w: &Option<u8>| w.map(|w| format!(" at {w}%")).unwrap_or_default();
    match e {
        Ending::Stopped {
            n,
            at_ms,
            weight: w,
            why,
            in_bake,
        } => format!(
            "rolled back at analysis {n}{}{} ({}): {why}",
            weight(w),
            if *in_bake { " in the bake" } else { "" },
            clock(*at_ms)
        ),
        Ending::Promoted {
            n,
            at_ms,
            on,
            baked,
        } => format!(
            "promoted at analysis {n} ({}){}{}",
            clock(*at_ms),
            if *on == Verdict::Warning {
                " on a warning (promoteOn lists it)"
            } else {
                ""
            },
            match baked {
                0 => String::new(),
                b => format!(", then {b} analyses in its bake raised no limit"),
            }
        ),
        Ending::Held { n, at_ms } => format!(
            "held for the operator by a warning at analysis {n} ({}), with no later pass",
            clock(*at_ms)
        ),
        Ending::Open {
            analyses,
            weight: w,
        } => format!(
            "no limit passed and no judgement cleared it in {analyses} analyses: it would have gone on{}",
            w.map(|w| format!(" past {w}%")).unwrap_or_default()
        ),
    }
}

/// A measured value in four significant digits or so (`0.01778`, `137.5`), `no data`
/// when there was none.
fn short(v: Option<f64>) -> String {
    match v {
        None => "no data".into(),
        Some(x) if x == 0.0 || !x.is_finite() => x.to_string(),
        Some(x) => {
            let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
            let s = format!("{x:.digits$}");
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_shown_in_four_significant_digits() {
        assert_eq!(super::short(Some(0.017777777777777778)), "0.01778");
        assert_eq!(super::short(Some(137.50000000000023)), "137.5");
        assert_eq!(super::short(Some(130.41666666666654)), "130.4");
        assert_eq!(super::short(Some(12345.6)), "12346");
        assert_eq!(super::short(Some(0.0)), "0");
        assert_eq!(super::short(None), "no data");
    }
}
