//! A release train's report: the train's run and each member's runs, one section (and one
//! JUnit suite) per member, each member's final state named (`promoted`, `rolled back`...).
//! Built from the journal alone: the train's run holds the plan, each member's state per
//! stage and its sub-run ids ([`Event::Member`]); each sub-run holds the member's steps.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Report;
use super::junit::escape;
use crate::events::{Envelope, Event, Status};

/// A train's run, as the JSON report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The train's run id.
    pub run: i64,
    /// `metadata.name` of the train.
    pub train: String,
    /// The train's final (or current) status.
    pub status: Status,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
    /// Why it ended so.
    pub reason: Option<String>,
    /// The stages, in order.
    pub stages: Vec<String>,
    /// Each member, in the train file's order.
    pub members: Vec<MemberReport>,
}

/// One member across the train's stages.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// Its name in the train.
    pub name: String,
    /// Where it ended: `promoted`, `rolled back`, `failed`, `stopped` or `not started`.
    pub state: String,
    /// Each stage it was in, in order.
    pub stages: Vec<MemberStage>,
}

/// One member in one stage.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStage {
    /// The stage.
    pub stage: String,
    /// The member's state there, as the train journaled it.
    pub status: Status,
    /// One line.
    pub summary: Option<String>,
    /// The member's own run for the stage, when it started.
    pub run: Option<i64>,
    /// That run's report.
    pub report: Option<Report>,
}

/// The word for where a member ended: its state in `reached`, the last stage the train
/// reached (a member the train never started there did not start, whatever it did before).
pub fn final_state(stages: &[MemberStage], reached: Option<&str>) -> &'static str {
    let last = stages.iter().find(|s| Some(s.stage.as_str()) == reached);
    match last.map(|s| s.status) {
        None | Some(Status::Skipped) => "not started",
        Some(Status::Passed | Status::Warning) => "promoted",
        Some(Status::RolledBack) => "rolled back",
        Some(Status::Failed) => "failed",
        Some(Status::Aborted) => "stopped",
        Some(_) => "running",
    }
}

impl TrainReport {
    /// The report of train run `run` from its events; `member_events` reads a sub-run's.
    pub fn from_events(
        run: i64,
        events: &[Envelope],
        member_events: impl Fn(i64) -> Vec<Envelope>,
    ) -> TrainReport {
        let train = Report::from_events(run, events);
        let mut runs: Vec<(String, String, i64)> = Vec::new();
        for env in events {
            if let Event::Member {
                stage, member, run, ..
            } = &env.event
            {
                runs.push((stage.clone(), member.clone(), *run));
            }
        }
        let mut names: Vec<String> = Vec::new();
        for (_, step) in train.steps().filter(|(_, s)| s.kind == "member") {
            if !names.contains(&step.name) {
                names.push(step.name.clone());
            }
        }
        // The last stage where any member did anything.
        let reached = train
            .stages
            .iter()
            .rev()
            .find(|stage| {
                train.steps().any(|(st, s)| {
                    st.name == stage.name
                        && s.kind == "member"
                        && !matches!(s.status, Status::Skipped | Status::Pending)
                })
            })
            .map(|stage| stage.name.clone());
        let members = names
            .into_iter()
            .map(|name| {
                let stages: Vec<MemberStage> = train
                    .steps()
                    .filter(|(_, s)| s.kind == "member" && s.name == name)
                    .map(|(stage, s)| {
                        let sub = runs
                            .iter()
                            .find(|(st, m, _)| *st == stage.name && *m == name)
                            .map(|r| r.2);
                        MemberStage {
                            stage: stage.name.clone(),
                            status: s.status,
                            summary: s.summary.clone(),
                            run: sub,
                            report: sub.map(|r| Report::from_events(r, &member_events(r))),
                        }
                    })
                    .collect();
                MemberReport {
                    state: final_state(&stages, reached.as_deref()).to_owned(),
                    name,
                    stages,
                }
            })
            .collect();
        TrainReport {
            run,
            stages: train.stages.iter().map(|s| s.name.clone()).collect(),
            train: train.pipeline,
            status: train.status,
            exit_code: train.exit_code,
            reason: train.reason,
            members,
        }
    }

    /// Writes `report.json`, `junit.xml` (a suite per member) and `summary.md` into `dir`.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join("report.json");
        self.write_json(&json)?;
        let junit = dir.join("junit.xml");
        std::fs::write(&junit, self.junit())?;
        let md = dir.join("summary.md");
        std::fs::write(&md, self.markdown())?;
        Ok(vec![json, junit, md])
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// JUnit XML: a `<testsuite>` per member; a `<testcase>` per member step of each stage,
    /// then one for the member's state in the train at that stage (a member the train
    /// rolled back is a failure there, though its own steps passed).
    pub fn junit(&self) -> String {
        let mut suites = String::new();
        let (mut total, mut failed) = (0, 0);
        for m in &self.members {
            let mut cases = String::new();
            let (mut n, mut f, mut skipped) = (0, 0, 0);
            for st in &m.stages {
                let steps = st.report.iter().flat_map(|r| r.steps());
                let own = steps.map(|(_, s)| (s.name.clone(), s.status, s.summary.clone()));
                let train =
                    std::iter::once(("in the train".to_owned(), st.status, st.summary.clone()));
                for (name, status, summary) in own.chain(train) {
                    n += 1;
                    let _ = write!(
                        cases,
                        "    <testcase name=\"{}\" classname=\"{}.{}\">",
                        escape(&format!("{}: {name}", st.stage)),
                        escape(&self.train),
                        escape(&m.name)
                    );
                    let text = escape(summary.as_deref().unwrap_or_default());
                    match status {
                        Status::Failed | Status::RolledBack | Status::Aborted => {
                            f += 1;
                            let _ =
                                write!(cases, "<failure message=\"{text}\" type=\"{status}\"/>");
                        }
                        Status::Passed | Status::Warning => {}
                        _ => {
                            skipped += 1;
                            let _ = write!(cases, "<skipped message=\"{text}\"/>");
                        }
                    }
                    cases.push_str("</testcase>\n");
                }
            }
            total += n;
            failed += f;
            let _ = writeln!(
                suites,
                "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"0\" skipped=\"{skipped}\">\n    <properties><property name=\"final-state\" value=\"{}\"/></properties>",
                escape(&m.name),
                escape(&m.state)
            );
            suites.push_str(&cases);
            suites.push_str("  </testsuite>\n");
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\">\n{suites}</testsuites>\n",
            escape(&format!("train {} run {}", self.train, self.run))
        )
    }

    /// A Markdown summary: a members x stages table with each member's final state, then
    /// each member's steps per stage.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Train {} — run {}: {}\n\n",
            self.train, self.run, self.status
        );
        if let Some(r) = &self.reason {
            let _ = writeln!(out, "{r}\n");
        }
        let _ = writeln!(
            out,
            "| member | final state | {} |",
            self.stages.join(" | ")
        );
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(self.stages.len()));
        for m in &self.members {
            let cells: Vec<String> = m
                .stages
                .iter()
                .map(|s| match s.run {
                    Some(r) => format!("{} {} (run {r})", s.status.glyph(), s.status),
                    None => format!("{} {}", s.status.glyph(), s.status),
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | **{}** | {} |",
                m.name,
                m.state,
                cells.join(" | ")
            );
        }
        for m in &self.members {
            let _ = write!(out, "\n## {}: {}\n", m.name, m.state);
            for st in &m.stages {
                let summary = st.summary.as_deref().unwrap_or_default();
                let _ = write!(out, "\n### {}: {} — {summary}\n\n", st.stage, st.status);
                for (_, s) in st.report.iter().flat_map(|r| r.steps()) {
                    let _ = writeln!(out, "- {} {}: {}", s.status.glyph(), s.name, s.text());
                }
            }
        }
        out
    }
}
