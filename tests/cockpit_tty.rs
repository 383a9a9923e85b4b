//! The cockpit in a real terminal (tmux), driven by key presses as an operator would:
//! approve, promote past a pause, roll back with confirmation, quit with the terminal
//! restored. `.ci/run` installs tmux.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn start(dir: &Path, pipeline: &str) -> Tmux {
        Tmux::command(
            &format!("run {}/{pipeline}.yaml", dir.display()),
            dir,
            pipeline,
        )
    }

    /// `glidepath ARGS` in a 120x40 terminal, with the journal in `dir`.
    fn command(args: &str, dir: &Path, name: &str) -> Tmux {
        let socket = format!("glidepath-test-{}-{name}", std::process::id());
        let t = Tmux {
            socket,
            session: "cockpit",
        };
        let cmd = format!(
            "GLIDEPATH_HOME={home} {bin} {args}; echo EXIT=$?; sleep 60",
            home = dir.display(),
            bin = env!("CARGO_BIN_EXE_glidepath"),
        );
        let ok = Command::new("tmux")
            .args([
                "-L",
                &t.socket,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
            ])
            .args(["-s", t.session, "sh", "-c", &cmd])
            .status()
            .expect("tmux is installed (.ci/run installs it)")
            .success();
        assert!(ok, "tmux did not start");
        t
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_up_to(text, 20)
    }

    /// Waits for `text` on screen at most `secs` seconds.
    fn wait_up_to(&self, text: &str, secs: u64) -> String {
        let begun = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(secs),
                "never saw {text:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", self.session])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn alternate_screen(&self) -> bool {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "display", "-p", "-t", self.session])
            .arg("#{alternate_on}")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

const PIPELINE: &str = r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: shop }
spec:
  stages:
    - name: build
      steps:
        - name: compile
          command: { run: [sh, -c, 'echo compiled'] }
    - name: prod
      steps:
        - name: sign-off
          approval: { pass: manual }
        - name: hold
          pause: {}
        - name: publish
          command: { run: [sh, -c, 'echo published'], rollback: [sh, -c, 'echo unpublished'] }
"#;

#[test]
fn an_operator_approves_promotes_and_leaves_with_the_terminal_restored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ship.yaml"), PIPELINE).unwrap();
    let t = Tmux::start(dir.path(), "ship");
    t.wait_for("next: sign-off waits for approval");
    assert!(t.alternate_screen());
    t.keys(&["a"]);
    t.wait_for("next: hold paused");
    // The help overlay lists the keys; Esc closes it.
    t.keys(&["?"]);
    t.wait_for("promote: skip the current pause");
    t.keys(&["Escape"]);
    t.keys(&["P"]);
    let done = t.wait_for("✓ every stage passed");
    assert!(done.contains("✓ publish"), "{done}");
    t.keys(&["q"]);
    let after = t.wait_for("EXIT=0");
    assert!(after.contains("run 1 passed"), "{after}");
    assert!(
        !t.alternate_screen(),
        "the terminal is back on the main screen"
    );
}

#[test]
fn an_operator_rolls_back_after_confirming() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("undo.yaml"), PIPELINE).unwrap();
    let t = Tmux::start(dir.path(), "undo");
    t.wait_for("next: sign-off waits for approval");
    t.keys(&["a"]);
    t.wait_for("next: hold paused");
    // `r` asks first; `n` cancels, `r` `y` rolls back.
    t.keys(&["r"]);
    t.wait_for("Roll back stage prod of shop?");
    t.keys(&["n"]);
    t.keys(&["r"]);
    t.wait_for("Roll back stage prod of shop?");
    t.keys(&["y"]);
    let screen = t.wait_for("↺ rollback requested by");
    assert!(screen.contains("↺ hold"), "{screen}");
    t.keys(&["q"]);
    let after = t.wait_for("EXIT=1");
    assert!(after.contains("rolled-back"), "{after}");
}

#[test]
fn attach_steers_a_run_that_another_process_drives() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("far.yaml"), PIPELINE).unwrap();
    // The driver: headless, no terminal, waiting for an approval nobody gives it here.
    let driver = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .arg("run")
        .arg(dir.path().join("far.yaml"))
        .arg("--headless")
        .env("GLIDEPATH_HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Attach once the driver has journaled its run.
    let journal = dir.path().join("journal.db");
    let begun = Instant::now();
    while !journal.exists()
        || glidepath::store::Store::open(&journal)
            .and_then(|s| s.last_unfinished())
            .ok()
            .flatten()
            .is_none()
    {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the driver never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Tmux::command("attach", dir.path(), "far");
    t.wait_for("next: sign-off waits for approval");
    t.keys(&["a"]);
    t.wait_for("next: hold paused");
    t.keys(&["P"]);
    t.wait_for("✓ every stage passed");
    let out = driver.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("run 1 passed"));
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
}

/// `glidepath demo` as a newcomer runs it: staging, then the approval (`a`), then the
/// production canary waiting at its first pause, rolled back with `r` and the service's
/// name (production is a protected stage).
#[test]
fn the_demo_waits_for_approval_then_its_canary_rolls_back_on_r() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::command("demo --set pause=2m --set soak=2s", dir.path(), "demo");
    let staging = t.wait_up_to("next: promote-to-prod waits for approval", 90);
    assert!(
        staging.contains("demo · happy · press a when staging passes"),
        "{staging}"
    );
    assert!(staging.contains("✓ smoke"), "{staging}");
    t.keys(&["a"]);
    // The canary at 10%: the traffic pane, then the pause the operator can hold or skip.
    let canary = t.wait_up_to("next: release paused", 60);
    assert!(canary.contains("desired"), "{canary}");
    assert!(canary.contains("new  10%"), "{canary}");
    t.keys(&["r"]);
    t.wait_for("checkout");
    t.keys(&["-l", "checkout"]);
    t.keys(&["Enter"]);
    let screen = t.wait_up_to("run ended", 60);
    assert!(screen.contains("↺ rolled-back"), "{screen}");
    assert!(screen.contains("↺ release"), "{screen}");
    t.keys(&["q"]);
    let after = t.wait_for("EXIT=1");
    assert!(after.contains("rolled-back"), "{after}");
    assert!(
        !t.alternate_screen(),
        "the terminal is back on the main screen"
    );
}

/// `--scenario bad-canary`: after the approval, the analysis catches the new version's
/// errors and rolls the canary back without anyone pressing a key.
#[test]
fn the_bad_canary_demo_rolls_back_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::command(
        "demo --scenario bad-canary --set pause=40s --set soak=2s",
        dir.path(),
        "bad",
    );
    t.wait_up_to("next: promote-to-prod waits for approval", 90);
    t.keys(&["a"]);
    let screen = t.wait_up_to("run ended", 120);
    assert!(screen.contains("↺ rolled-back"), "{screen}");
    assert!(screen.contains("error_ratio"), "{screen}");
    assert!(screen.contains("✗ release"), "{screen}");
    t.keys(&["q"]);
    let after = t.wait_for("EXIT=1");
    assert!(after.contains("key SLI failed: error_ratio"), "{after}");
}

#[test]
fn leaving_the_cockpit_mid_run_says_what_it_waits_for_and_how_to_answer_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("away.yaml"), PIPELINE).unwrap();
    let t = Tmux::start(dir.path(), "away");
    t.wait_for("next: sign-off waits for approval");
    // Leaving mid-run takes a second q.
    t.keys(&["q"]);
    t.keys(&["q"]);
    let left = t.wait_for(
        "left the cockpit; run 1 goes on here: prod/sign-off waits for approval: `glidepath approve 1`",
    );
    assert!(!t.alternate_screen(), "{left}");
    // The command it named answers the run from another terminal.
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["reject", "1"])
        .env("GLIDEPATH_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "run 1: reject accepted"
    );
    t.wait_for("EXIT=1");
}
