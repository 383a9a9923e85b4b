//! A replay in words: the table of decisions and each step's ending, as `glidepath
//! replay` prints them and the cockpit's replay overlay shows them.

use super::{Decision, Ending, Replay, StepReplay};
use crate::events::{Verdict, clock};

/// The decision table's header.
pub fn header() -> String {
    format!(
        "{:<8}  {:<22}  {:<20}  {:>6}  {:<8}  {:<8}",
        "time", "step", "decision", "weight", "recorded", "replayed"
    )
}

/// The replay's last line: how many decisions change, and whether the run would have gone
/// otherwise.
pub fn summary(r: &Replay) -> String {
    let n = r.decisions.len();
    match (r.changed(), r.outcome_changed()) {
        (0, _) => format!("no decision changes ({n} decided again)"),
        (c, false) => format!("{c} of {n} decisions change; every step ends as it did"),
        (c, true) => format!("{c} of {n} decisions change, and the run would have gone otherwise"),
    }
}

/// A decision as a row of the table under [`header`], with what changed and why when it
/// changed.
pub fn row(d: &Decision) -> String {
    let what = match d.part {
        Some(part) => format!("{} ({})", d.what, part.word()),
        None => d.what.clone(),
    };
    let weight = d.weight.map(|w| format!("{w}%")).unwrap_or_default();
    let mark = if d.changed() {
        format!("  ← {}", reason(d))
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

/// Why a decision changed: what it turned on, then the new decision's reason.
pub fn reason(d: &Decision) -> String {
    let on = because(d);
    if on.is_empty() {
        d.why.clone()
    } else {
        format!("{}: {}", on.join(", "), d.why)
    }
}

/// What a changed decision turned on: the metrics the judge now classifies otherwise
/// (with the effect size and the threshold) and those it left out, or the values the SLO
/// decided.
fn because(d: &Decision) -> Vec<String> {
    if d.metrics.is_empty() {
        return d
            .values
            .iter()
            .map(|(sli, v)| format!("{sli} {}", short(*v)))
            .collect();
    }
    let mut out: Vec<String> = d
        .metrics
        .iter()
        .filter(|m| m.changed())
        .map(|m| {
            let effect = m.effect_size.map(|e| format!("{} vs ", short(Some(e))));
            format!(
                "{} {} → {} ({}{})",
                m.metric,
                m.recorded,
                m.replayed,
                effect.unwrap_or_default(),
                m.threshold
            )
        })
        .collect();
    if !d.left_out.is_empty() {
        out.push(format!("without {}", d.left_out.join(", ")));
    }
    out
}

/// The journaled metrics a judge file left out of its judgements, once each.
pub fn left_out(r: &Replay) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in r.decisions.iter().flat_map(|d| &d.left_out) {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// How one step ended, and how it would have.
pub fn ending_lines(s: &StepReplay) -> Vec<String> {
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
pub fn said(e: &Ending) -> String {
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
pub fn short(v: Option<f64>) -> String {
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
