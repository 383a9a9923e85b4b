//! Who decided, on a real PostgreSQL: approvals checked against the step's approvers
//! (names and groups), distinct approvers counted, the driver kept from approving its own
//! release, `--as` recorded, refusals journaled; and runs moved between PostgreSQL and
//! SQLite with `glidepath journal export|import`, both ways, without duplicates.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/wait.rs"]
mod wait;
use postgres::Server;
use wait::wait_until;

const GUARDED: &str = r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: guarded }
spec:
  groups:
    sre: [bob]
  stages:
    - name: prod
      protected: true
      steps:
        - approval: { pass: manual, approvers: [alice, "group:sre"], minApprovers: 2 }
        - name: ship
          command: { run: [echo, shipped] }
"#;

/// A `GLIDEPATH_HOME` of its own on a journal.
struct Home {
    dir: tempfile::TempDir,
    journal: String,
}

impl Home {
    fn new(journal: &str) -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
            journal: journal.to_owned(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_glidepath"));
        c.args(args)
            .env("GLIDEPATH_HOME", self.dir.path())
            .env("GLIDEPATH_JOURNAL", &self.journal)
            .env_remove("GLIDEPATH_AS")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn start(&self, as_name: &str) -> Child {
        let path = self.dir.path().join("guarded.yaml");
        std::fs::write(&path, GUARDED).unwrap();
        self.cmd(&["run", path.to_str().unwrap(), "--headless", "--as", as_name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn report(&self, run: i64) -> Option<Value> {
        let out = self.run(&["history", &run.to_string(), "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `approve 1` from `home`, as `who` (no `--as` when empty): its output and exit code.
fn approve(home: &Home, who: &str) -> (String, Option<i32>) {
    let mut args = vec!["approve", "1"];
    if !who.is_empty() {
        args.extend(["--as", who]);
    }
    let out = home.run(&args);
    (text(&out).trim().to_owned(), out.status.code())
}

#[test]
fn approvals_are_checked_against_approvers_counted_and_recorded_with_their_senders() {
    let server = Server::shared();
    let url = server.database("identities");
    let (driver, other) = (Home::new(&url), Home::new(&url));
    let child = driver.start("ci-bot");
    let waiting = wait_until(Duration::from_secs(60), || {
        other.report(1).is_some_and(|r| {
            r["stages"][0]["steps"][0]["status"].as_str() == Some("waiting-for-approval")
        })
    });
    assert!(waiting, "the run never waited: {:?}", other.report(1));
    // Nobody named: refused, and the refusal is journaled.
    let (out, code) = approve(&other, "mallory");
    assert!(
        out.contains("mallory is not among the approvers of this step (alice, group:sre)"),
        "{out}"
    );
    assert_eq!(code, Some(1), "{out}");
    // The driver may not approve its own release (the default once approvers are named):
    // not under its `--as` name, nor as the same OS user on the same machine.
    let (out, code) = approve(&other, "");
    assert!(
        out.contains("drives this run and may not approve it"),
        "{out}"
    );
    assert_eq!(code, Some(1), "{out}");
    let (out, code) = approve(&other, "ci-bot");
    assert!(
        out.contains("ci-bot drives this run and may not approve it"),
        "{out}"
    );
    assert_eq!(code, Some(1), "{out}");
    // One approver is not enough, and the same one twice is still one.
    let (out, code) = approve(&other, "alice");
    assert_eq!(
        out,
        "run 1: approve accepted: approval 1 of 2 (by alice); waiting for 1 more distinct approver(s)"
    );
    assert_eq!(code, Some(0));
    let (out, _) = approve(&other, "alice");
    assert!(
        out.contains("alice has approved already; 1 more distinct approver(s) needed"),
        "{out}"
    );
    // bob is in the pipeline's group `sre`: the second distinct approver.
    let (out, code) = approve(&other, "bob");
    assert_eq!((out.as_str(), code), ("run 1: approve accepted", Some(0)));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("approved by alice, bob"),
        "{}",
        text(&out)
    );
    // The report says who did what, and when: OS user and host beside the `--as` name.
    let report = other.report(1).unwrap();
    let actions = report["operator_actions"].as_array().unwrap();
    let summary: Vec<(bool, Option<&str>)> = actions
        .iter()
        .map(|a| (a["accepted"].as_bool().unwrap(), a["sender"]["as"].as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (false, Some("mallory")),
            (false, None),
            (false, Some("ci-bot")),
            (true, Some("alice")),
            (false, Some("alice")),
            (true, Some("bob")),
        ]
    );
    let me = glidepath::store::this_user();
    assert_eq!(actions[3]["sender"]["user"], me.as_str(), "{actions:?}");
    assert!(actions[3]["at_ms"].as_i64().unwrap() > 0);
    // Refusals sit in the actions table too, with who was refused.
    let refused = Server::psql(&url, "SELECT count(*) FROM actions WHERE NOT accepted");
    assert_eq!(refused.trim(), "4");
    // The steps's summary names both approvers in the Markdown report.
    let dir = tempfile::tempdir().unwrap();
    let out = other.run(&["history", "1", "--report-dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap_or_default();
    assert!(md.contains("approve by alice ("), "{md}");
    assert!(md.contains("refused: ci-bot drives this run"), "{md}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap_or_default();
    assert!(junit.contains("approve by bob ("), "{junit}");

    export_and_import_both_ways(&server, &url, &other);
}

/// Runs in the PostgreSQL journal `url` to SQLite and back to another database: the same
/// events, senders kept, and a second import adds nothing.
fn export_and_import_both_ways(server: &Server, url: &str, home: &Home) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runs.jsonl");
    let out = home.run(&["journal", "export", "-o", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(
        exported.starts_with(r#"{"format":"glidepath-journal","version":1"#),
        "{exported}"
    );
    assert!(
        !exported.contains("postgres://"),
        "the export names no server"
    );
    let sqlite = Home::new(dir.path().join("copy.db").to_str().unwrap());
    for round in ["added with", "already here; nothing added"] {
        let out = sqlite.run(&["journal", "import", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("run 1 -> run 1: {round}")),
            "{}",
            text(&out)
        );
    }
    let events = |h: &Home| {
        let out = h.run(&["history", "1", "--json"]);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        (r["operator_actions"].clone(), r["stages"].clone())
    };
    assert_eq!(events(&sqlite), events(home));
    // Back the other way, straight from SQLite into a fresh PostgreSQL database.
    let fresh = server.database("imported");
    let out = sqlite.run(&["journal", "copy", "--to", &fresh]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("1 run(s) added, 0 already here"),
        "{}",
        text(&out)
    );
    assert_eq!(events(&Home::new(&fresh)), events(home));
    let count = |u: &str| Server::psql(u, "SELECT count(*) FROM events");
    assert_eq!(count(&fresh), count(url));
    // A file that is not an export says where it went wrong.
    std::fs::write(
        &file,
        "{\"format\":\"other\",\"version\":1,\"exported_ms\":0,\"runs\":0}\n",
    )
    .unwrap();
    let out = sqlite.run(&["journal", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("runs.jsonl line 1: format other version 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn approval_rules_are_checked_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GUARDED.replace(
        r#"[alice, "group:sre"], minApprovers: 2"#,
        "[alice], minApprovers: 2",
    );
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["check", path.to_str().unwrap(), "--no-preflight"])
        .env("GLIDEPATH_HOME", dir.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("bad.yaml:11:"), "{t}");
    assert!(
        t.contains("minApprovers is 2 but only 1 approver(s) are listed"),
        "{t}"
    );
}

/// `history | head -1`: the reader hangs up before glidepath writes; no panic, exit 0.
#[test]
fn history_to_a_reader_that_is_gone_is_no_error() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let store = glidepath::store::Store::open(&journal).unwrap();
    store
        .create_run(&glidepath::store::NewRun {
            pipeline: "p",
            service: "p",
            path: "p.yaml",
            source: "",
            sets: &Default::default(),
            stage: None,
        })
        .unwrap();
    let home = Home::new(journal.to_str().unwrap());
    for args in [&["history"][..], &["history", "1"], &["history", "--json"]] {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors it is given.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are open and owned here alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read);
        let out = home
            .cmd(args)
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
