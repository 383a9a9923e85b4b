//! The journal on a real PostgreSQL: the same contract as SQLite (events in order, durable
//! commits, the command inbox, history, migrations), followers woken by LISTEN/NOTIFY, one
//! live driver per run; and the binary from several `GLIDEPATH_HOME`s on one database:
//! driven from one, listed and approved from another, SIGKILLed and resumed elsewhere, and
//! the server restarted under a waiting run.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use glidepath::events::{Command as Cmd, CommandKind, Envelope, Event, Status};
use glidepath::store::{Journal, Location, NewRun, Store, StoreError, Topic};
use serde_json::Value;

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/sandbox_env.rs"]
mod sandbox_env;
#[path = "support/wait.rs"]
mod wait;
use postgres::Server;
use wait::wait_until;

fn env(run: i64, seq: u64, event: Event) -> Envelope {
    Envelope {
        run,
        seq,
        at_ms: glidepath::store::now_ms(),
        event,
    }
}

fn new_run(store: &Store) -> i64 {
    let sets = Default::default();
    store
        .create_run(&NewRun {
            pipeline: "p",
            service: "checkout",
            path: "p.yaml",
            source: "x",
            sets: &sets,
            stage: None,
        })
        .unwrap()
}

fn pg(url: &str) -> Location {
    Location::parse(std::path::Path::new(url)).unwrap()
}

/// Events in order, a durable commit visible to another connection, the run's status.
fn events_are_committed_in_order(location: &Location) {
    let store = Store::open(location).unwrap();
    let run = new_run(&store);
    let journal = Journal::open(location).unwrap();
    for seq in 1..=50 {
        journal
            .append(env(
                run,
                seq,
                Event::Log {
                    stage: "prod".into(),
                    step: "ship".into(),
                    source: "stdout".into(),
                    line: format!("line {seq}"),
                },
            ))
            .unwrap();
    }
    journal
        .append_durable(env(
            run,
            51,
            Event::RunFinished {
                status: Status::Passed,
                exit_code: 0,
                reason: "ok".into(),
            },
        ))
        .unwrap();
    // Another connection sees everything the durable append waited for.
    let other = Store::open(location).unwrap();
    let events = other.events(run).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
    assert_eq!(
        events[9].event,
        Event::Log {
            stage: "prod".into(),
            step: "ship".into(),
            source: "stdout".into(),
            line: "line 10".into()
        }
    );
    let record = other.run(run).unwrap();
    assert_eq!((record.status, record.exit_code), (Status::Passed, Some(0)));
    assert!(record.host.is_some() && record.user.is_some(), "{record:?}");
    assert_eq!(other.events_after(run, 49).unwrap().len(), 2);
    assert!(matches!(other.run(run + 100), Err(StoreError::NoRun(_))));
}

/// Commands are taken once, oldest first; history lists newest first; invalidate counts.
fn commands_and_history(location: &Location) {
    let store = Store::open(location).unwrap();
    let first = new_run(&store);
    let second = new_run(&store);
    store
        .send_command(second, CommandKind::Approve, "ann@a")
        .unwrap();
    store
        .send_command(second, CommandKind::Reject, "bob@b")
        .unwrap();
    assert_eq!(
        store.take_commands(second).unwrap(),
        vec![
            Cmd::new(CommandKind::Approve, "ann@a"),
            Cmd::new(CommandKind::Reject, "bob@b")
        ]
    );
    assert!(store.take_commands(second).unwrap().is_empty());
    // A release train member's command keeps the member it is for.
    let member = Cmd::new(CommandKind::Rollback, "cy@c").for_member(Some("payments".into()));
    store.send(second, &member).unwrap();
    assert_eq!(store.take_commands(second).unwrap(), vec![member]);
    assert!(store.take_commands(first).unwrap().is_empty());
    let ids: Vec<i64> = store.runs(2).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![second, first]);
    assert_eq!(store.last_unfinished().unwrap(), Some(second));
    assert_eq!(store.unfinished().unwrap().len(), 2);
    assert_eq!(store.invalidate(first).unwrap(), 0);
}

#[test]
fn the_journal_contract_holds_on_sqlite_and_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::shared();
    let sqlite: Location = dir.path().join("journal.db").into();
    let shared = pg(&server.database("contract"));
    for location in [&sqlite, &shared] {
        events_are_committed_in_order(location);
        commands_and_history(location);
    }
}

#[test]
fn both_backends_record_their_schema_version_and_refuse_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::shared();
    let file = dir.path().join("journal.db");
    let url = server.database("schema");
    drop(Store::open(&file).unwrap());
    drop(Store::open(&pg(&url)).unwrap());
    assert_eq!(
        Server::psql(&url, "SELECT max(version) FROM schema_version"),
        glidepath::store::SCHEMA_VERSION.to_string()
    );
    Server::psql(
        &url,
        "INSERT INTO schema_version (version, applied_ms) VALUES (99, 0)",
    );
    let e = Store::open(&pg(&url)).err().unwrap().to_string();
    assert!(
        e.contains("has schema version 99, newer than this glidepath knows")
            && !e.contains("password"),
        "{e}"
    );
    let e = newer_sqlite_journal(&file);
    assert!(
        e.contains("schema version 99, newer than this glidepath knows"),
        "{e}"
    );
}

/// Marks the SQLite journal as written by a newer glidepath (version 99); what opening it says.
fn newer_sqlite_journal(file: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.execute("INSERT INTO schema_version VALUES (99, 0)", [])
        .unwrap();
    drop(conn);
    Store::open(file).err().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_wakes_on_the_commit_by_notify() {
    let server = Server::shared();
    let location = pg(&server.database("notify"));
    let store = Store::open(&location).unwrap();
    let run = new_run(&store);
    let mut events = store.watch(run, Topic::Events).unwrap();
    let mut inbox = store.watch(run, Topic::Commands).unwrap();
    let writer = location.clone();
    std::thread::spawn(move || {
        let journal = Journal::open(&writer).unwrap();
        journal
            .append_durable(env(run, 1, Event::StageStarted { stage: "a".into() }))
            .unwrap();
        Store::open(&writer)
            .unwrap()
            .send_command(run, CommandKind::Approve, "ann@a")
            .unwrap();
    });
    // No interval on PostgreSQL: only the NOTIFY of the commit wakes these.
    tokio::time::timeout(Duration::from_secs(30), events.changed())
        .await
        .expect("woken by the events' NOTIFY");
    assert_eq!(store.events(run).unwrap().len(), 1);
    tokio::time::timeout(Duration::from_secs(30), inbox.changed())
        .await
        .expect("woken by the inbox's NOTIFY");
    assert_eq!(store.take_commands(run).unwrap().len(), 1);
}

#[test]
fn one_live_driver_per_run() {
    let server = Server::shared();
    let url = server.database("drivers");
    let store = Store::open(&pg(&url)).unwrap();
    let run = new_run(&store);
    // A live process of this machine drives the run: nobody else takes it.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    Server::psql(
        &url,
        &format!("UPDATE runs SET pid = {} WHERE id = {run}", other.id()),
    );
    let e = store.claim_run(run).unwrap_err().to_string();
    assert!(e.contains(&format!("process {} of ", other.id())), "{e}");
    other.kill().unwrap();
    other.wait().unwrap();
    store.claim_run(run).unwrap();
    assert_eq!(store.run(run).unwrap().pid, Some(std::process::id()));
    // A driver on another machine lives while its heartbeat is fresh.
    Server::psql(
        &url,
        &format!(
            "UPDATE runs SET pid = 4242, driver_host = 'ci-7.example', driver_user = 'ci', heartbeat_ms = {} WHERE id = {run}",
            glidepath::store::now_ms()
        ),
    );
    let e = store.claim_run(run).unwrap_err().to_string();
    assert!(e.contains("process 4242 of ci@ci-7.example"), "{e}");
    // This process is not the driver now: the journal takes no event of it from here.
    let journal = Journal::open(&pg(&url)).unwrap();
    let e = journal
        .append_durable(env(run, 1, Event::StageStarted { stage: "a".into() }))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "run {run} is now driven by process 4242 of ci@ci-7.example"
        )),
        "{e}"
    );
    assert!(store.events(run).unwrap().is_empty());
    Server::psql(
        &url,
        &format!("UPDATE runs SET heartbeat_ms = heartbeat_ms - 31000 WHERE id = {run}"),
    );
    store.claim_run(run).unwrap();
}

const APPROVAL: &str = r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: gatekeeper }
spec:
  stages:
    - name: prod
      steps:
        - approval: { pass: manual, message: "release to prod?" }
        - name: ship
          command: { run: [echo, shipped] }
"#;

/// A `GLIDEPATH_HOME` of its own, on the shared journal.
struct Home {
    dir: tempfile::TempDir,
    url: String,
}

impl Home {
    fn new(url: &str) -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
            url: url.to_owned(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_glidepath"));
        c.args(args)
            .env("GLIDEPATH_HOME", self.dir.path())
            .env("GLIDEPATH_JOURNAL", &self.url)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn start(&self) -> Child {
        let path = self.dir.path().join("gate.yaml");
        std::fs::write(&path, APPROVAL).unwrap();
        self.cmd(&["run", path.to_str().unwrap(), "--headless"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn listed(&self) -> Vec<Value> {
        let out = self.run(&["history", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn report(&self, run: i64) -> Option<Value> {
        let out = self.run(&["history", &run.to_string(), "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until run `run`'s approval waits, as this home reads the journal.
    fn until_waiting(&self, run: i64) {
        let waiting = wait_until(Duration::from_secs(60), || {
            self.report(run).is_some_and(|r| {
                r["stages"][0]["steps"][0]["status"].as_str() == Some("waiting-for-approval")
            })
        });
        assert!(waiting, "run {run} never waited: {:?}", self.report(run));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_run_driven_in_one_home_is_listed_and_approved_from_another() {
    let server = Server::shared();
    let url = server.database("homes");
    let (driver, approver) = (Home::new(&url), Home::new(&url));
    let child = driver.start();
    approver.until_waiting(1);
    let listed = approver.listed();
    assert_eq!(listed[0]["id"], 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "running", "{listed:?}");
    assert_eq!(listed[0]["pid"], child.id(), "{listed:?}");
    assert!(listed[0]["host"].is_string(), "{listed:?}");
    // A waiting driver still says it is alive: its heartbeat moves on.
    let beat = || Server::psql(&url, "SELECT heartbeat_ms FROM runs WHERE id = 1");
    let first_beat: i64 = beat().parse().unwrap();
    let beats = wait_until(Duration::from_secs(30), || {
        beat().parse::<i64>().unwrap() > first_beat
    });
    assert!(beats, "the driver's heartbeat never moved");
    let out = approver.run(&["approve", "1"]);
    assert_eq!(
        text(&out).trim(),
        "run 1: approve accepted",
        "{}",
        text(&out)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("run 1 passed"), "{}", text(&out));
    let table = text(&approver.run(&["history"]));
    assert!(
        table.contains("passed") && table.contains("DRIVER"),
        "{table}"
    );
    // The password never shows, whatever prints the journal's name.
    assert!(!table.contains("postgres://"), "{table}");
}

#[test]
fn a_driver_killed_in_one_home_is_resumed_from_another_and_approved_from_a_third() {
    let server = Server::shared();
    let url = server.database("resume");
    let (first, second, third) = (Home::new(&url), Home::new(&url), Home::new(&url));
    let mut child = first.start();
    third.until_waiting(1);
    // While it lives, nobody else takes the run over.
    let out = second.run(&["resume", "1", "--headless"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is still being driven"),
        "{}",
        text(&out)
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let listed = third.listed();
    assert_eq!(listed[0]["status"], "interrupted", "{listed:?}");
    let resumed = second
        .cmd(&["resume", "1", "--headless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let taken = wait_until(Duration::from_secs(60), || {
        third.listed()[0]["pid"] == resumed.id()
    });
    assert!(taken, "the resumed driver never claimed run 1");
    third.until_waiting(1);
    let out = third.run(&["approve", "1"]);
    assert_eq!(
        text(&out).trim(),
        "run 1: approve accepted",
        "{}",
        text(&out)
    );
    let out = resumed.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = third.report(1).unwrap();
    assert_eq!(report["status"], "passed", "{report}");
}

#[test]
fn a_database_restarted_under_a_waiting_run_loses_nothing_and_the_run_finishes() {
    // A server of this test's own: it is stopped and started again.
    let server = Server::throwaway();
    let url = server.database("restart");
    let (driver, approver) = (Home::new(&url), Home::new(&url));
    let child = driver.start();
    approver.until_waiting(1);
    let before = Server::psql(&url, "SELECT count(*) FROM events WHERE run_id = 1");
    server.stop();
    server.start();
    assert_eq!(
        Server::psql(&url, "SELECT count(*) FROM events WHERE run_id = 1"),
        before,
        "every committed event is still there"
    );
    let out = approver.run(&["approve", "1"]);
    assert_eq!(
        text(&out).trim(),
        "run 1: approve accepted",
        "{}",
        text(&out)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let seqs = Server::psql(
        &url,
        "SELECT count(*) = max(seq) AND min(seq) = 1 FROM events WHERE run_id = 1",
    );
    assert_eq!(seqs, "t", "events numbered 1..n with none lost");
}

#[test]
fn a_role_with_only_the_rights_the_readme_names_drives_and_approves() {
    let server = Server::shared();
    let url = server.database("rights");
    drop(Store::open(&pg(&url)).unwrap()); // the first user creates the tables
    let role = format!("releaser_{}", std::process::id());
    Server::psql(
        &url,
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             GRANT SELECT, INSERT, UPDATE ON runs, events, actions, gate_results, evaluations, inbox, schema_version TO {role}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"
        ),
    );
    let (base, db) = url.rsplit_once('/').unwrap();
    let (scheme, host) = base.split_once("://").unwrap();
    let host = host.split_once('@').map_or(host, |(_, h)| h);
    let limited = pg(&format!("{scheme}://{role}@{host}/{db}"));
    let store = Store::open(&limited).unwrap();
    let run = new_run(&store);
    let journal = Journal::open(&limited).unwrap();
    journal
        .append_durable(env(
            run,
            1,
            Event::StageStarted {
                stage: "prod".into(),
            },
        ))
        .unwrap();
    store
        .send_command(run, CommandKind::Approve, "ann@a")
        .unwrap();
    assert_eq!(store.take_commands(run).unwrap().len(), 1);
    assert_eq!(store.events(run).unwrap().len(), 1);
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, rcgen::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert)
}

#[test]
fn tls_verify_full_and_passwords_from_files_never_from_the_command_line() {
    let (ca_params, ca_key, ca_cert) = ca("glidepath journal CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(
            &server_key,
            &rcgen::Issuer::from_params(&ca_params, &ca_key),
        )
        .unwrap();
    let server = Server::throwaway_tls(&server_cert.pem(), &server_key.serialize_pem());
    let admin = server.database("tls");
    let db = admin.rsplit_once('/').unwrap().1.to_owned();
    Server::psql(
        &admin,
        &format!("CREATE ROLE app LOGIN PASSWORD 'pw-s3cret'; ALTER DATABASE {db} OWNER TO app"),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, ca("another CA").2.pem()).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw-s3cret\n").unwrap();
    let base = format!("postgres://app@localhost:{}/{db}", server.port());
    let tls = format!("sslmode=verify-full&sslrootcert={}", ca_file.display());

    // TLS checked against the CA file, the password from password_file.
    let good = pg(&format!("{base}?{tls}&password_file={}", pw.display()));
    let store = Store::open(&good).unwrap();
    new_run(&store);
    // The same role without TLS is turned away by the server: the first one used TLS.
    let plain = Store::open(&pg(&format!(
        "{base}?sslmode=disable&password_file={}",
        pw.display()
    )));
    let e = plain.err().unwrap().to_string();
    assert!(
        e.contains("pg_hba.conf") || e.contains("no encryption"),
        "{e}"
    );
    // A certificate from another CA is refused.
    let wrong = format!(
        "{base}?sslmode=verify-full&sslrootcert={}&password_file={}",
        other_ca.display(),
        pw.display()
    );
    let e = Store::open(&pg(&wrong)).err().unwrap().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // A wrong password in the URL is refused, and never printed.
    let url = format!(
        "postgres://app:not-the-pw@localhost:{}/{db}?{tls}",
        server.port()
    );
    let e = Store::open(&pg(&url)).err().unwrap().to_string();
    assert!(
        e.contains("password authentication failed") && !e.contains("not-the-pw"),
        "{e}"
    );

    // The binary, with the password in a passfile and the URL in the environment.
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("localhost:{}:{db}:app:pw-s3cret\n", server.port()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["history", "--json"])
        .env("GLIDEPATH_HOME", dir.path())
        .env("GLIDEPATH_JOURNAL", format!("{base}?{tls}"))
        .env("PGPASSFILE", &passfile)
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], 1, "{listed}");
    // Without any password the error names the journal, not a secret.
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["history"])
        .env("GLIDEPATH_HOME", dir.path())
        .env("GLIDEPATH_JOURNAL", format!("{base}?{tls}"))
        .env("PGPASSFILE", dir.path().join("none"))
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("journal {base}")),
        "{}",
        text(&out)
    );
}

/// `glidepath attach` in a real terminal (tmux), stopped when dropped.
struct Attached {
    socket: String,
}

impl Attached {
    fn start(home: &Home, run: i64) -> Attached {
        let socket = format!("glidepath-pg-{}", std::process::id());
        let cmd = format!(
            "{bin} attach {run}; echo EXIT=$?; sleep 60",
            bin = env!("CARGO_BIN_EXE_glidepath")
        );
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "160", "-y", "40"])
            .args([
                "-e",
                &format!("GLIDEPATH_HOME={}", home.dir.path().display()),
            ])
            .args(["-e", &format!("GLIDEPATH_JOURNAL={}", home.url)])
            .args(["-s", "attach", "sh", "-c", &cmd])
            .status()
            .expect("tmux is installed (.ci/run installs it)")
            .success();
        assert!(ok, "tmux did not start");
        Attached { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "attach"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let mut screen = String::new();
        let seen = wait_until(Duration::from_secs(60), || {
            screen = self.screen();
            screen.contains(text)
        });
        assert!(seen, "never saw {text:?}; the screen:\n{screen}");
        screen
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "attach"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn attach_from_a_third_home_follows_the_run_and_its_approval_reaches_the_driver() {
    let server = Server::shared();
    let url = server.database("attach");
    let (driver, watcher) = (Home::new(&url), Home::new(&url));
    let child = driver.start();
    watcher.until_waiting(1);
    let attached = Attached::start(&watcher, 1);
    let screen = attached.wait_for("waits for approval");
    // The header names who drives the run, and from where.
    assert!(
        screen.contains(&format!("process {} of ", child.id())),
        "{screen}"
    );
    attached.keys(&["a"]);
    // The approval travels through the inbox (NOTIFY), the driver finishes, and the
    // attached cockpit sees the commits that follow.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    attached.wait_for("every stage passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_release_killed_in_one_home_is_resumed_from_another_with_its_lease() {
    let server = Server::shared();
    let url = server.database("sandbox");
    let e = sandbox_env::env("happy").await;
    let path = e.dir.path().join("pipeline.yaml");
    let hold = "    - name: prod\n      steps:\n        - pause: ${hold}\n";
    std::fs::write(&path, e.pipeline(hold, "1h")).unwrap();
    let (first, second) = (Home::new(&url), Home::new(&url));
    let mut child = first
        .cmd(&[
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--set",
            "hold=5s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Blocking waits on this runtime's second worker; the sandbox serves on the other.
    let paused = tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(60), || {
            second
                .report(1)
                .is_some_and(|r| r["stages"][0]["steps"][0]["status"].as_str() == Some("paused"))
                && e.get("coordination.k8s.io", "leases", "glidepath-checkout-prod")
                    .is_some()
        })
    });
    assert!(
        paused,
        "run 1 never paused holding its lease: {:?}",
        second.report(1)
    );
    child.kill().unwrap(); // SIGKILL: the lease stays, fresh for its 30 s.
    child.wait().unwrap();
    // The same run on the same journal is the same driver: it takes its lease back.
    let out = tokio::task::spawn_blocking(move || second.run(&["resume", "1", "--headless"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("run 1 passed"), "{}", text(&out));
}
