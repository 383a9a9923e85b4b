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
        Tmux::sized(args, dir, name, 120, 40)
    }

    /// `glidepath ARGS` in a `width` x `height` terminal, with the journal in `dir`.
    fn sized(args: &str, dir: &Path, name: &str, width: u16, height: u16) -> Tmux {
        Tmux::with_env("", args, dir, name, width, height)
    }

    /// `ENV glidepath ARGS` (`ENV` as `NAME=value ...`) in a `width` x `height` terminal.
    fn with_env(env: &str, args: &str, dir: &Path, name: &str, width: u16, height: u16) -> Tmux {
        let socket = format!("glidepath-test-{}-{name}", std::process::id());
        let t = Tmux {
            socket,
            session: "cockpit",
        };
        let cmd = format!(
            "GLIDEPATH_HOME={home} {env} {bin} {args}; echo EXIT=$?; sleep 60",
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
                &width.to_string(),
                "-y",
                &height.to_string(),
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

    /// Waits for `text` on screen at most `secs` seconds, then for the frame to settle: a
    /// capture can catch the terminal mid-frame (the new view's title drawn, its body not
    /// yet), so the screen is returned once two captures 100 ms apart agree (or after a
    /// second of redraws, the text still there).
    fn wait_up_to(&self, text: &str, secs: u64) -> String {
        let begun = Instant::now();
        loop {
            let mut screen = self.screen();
            if screen.contains(text) {
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    let again = self.screen();
                    if again == screen {
                        break;
                    }
                    screen = again;
                }
                if screen.contains(text) {
                    return screen;
                }
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
    wait_for_a_run(dir.path());
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

/// At 80x24 (many terminals' default, a common tmux split) during the demo's production
/// canary, every pane an operator watches is one key away, and the status strip keeps the
/// weight, the verdict and the budget in view whichever is shown.
#[test]
fn at_80x24_every_pane_of_the_demos_canary_is_one_key_away() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::sized(
        // The SLO's thresholds judge this canary: their first analysis passes (the
        // statistical judge's first ones are inconclusive while its samples fill).
        "demo --set pause=2m --set soak=2s --set judge=thresholds",
        dir.path(),
        "small",
        80,
        24,
    );
    t.wait_up_to("next: promote-to-prod waits for approval", 90);
    t.keys(&["a"]);
    // The canary starts: a small terminal opens on its traffic.
    let traffic = t.wait_up_to("new  10%", 60);
    assert!(
        traffic.contains("Traffic") && traffic.contains("desired"),
        "{traffic}"
    );
    assert!(
        !traffic.contains("Stages"),
        "one view at a time:\n{traffic}"
    );
    // The analysis judges every 3 s: the strip shows its verdict once it has one.
    let strip = t.wait_up_to("analysis ✓ pass", 30);
    assert!(
        strip.contains("new 10%") && strip.contains("budget ✓"),
        "{strip}"
    );
    t.keys(&["4"]);
    let budget = t.wait_for("Error budget");
    assert!(
        budget.contains("remaining") && budget.contains("burn"),
        "{budget}"
    );
    t.keys(&["5"]);
    let charts = t.wait_up_to("latency_p95_ms", 30);
    assert!(
        charts.contains("error_ratio") && charts.contains("pass <"),
        "{charts}"
    );
    t.keys(&["6"]);
    let preflight = t.wait_for("Pre-flight");
    assert!(preflight.contains("checks, 0 failing"), "{preflight}");
    t.keys(&["2"]);
    t.wait_for("Test output");
    t.keys(&["3"]);
    t.wait_for("desired");
    t.keys(&["1"]);
    let stages = t.wait_for("Stages");
    assert!(stages.contains("release"), "{stages}");
    assert!(stages.contains("new 10%"), "the strip stays:\n{stages}");
    // Help fits: no description is cut at the border.
    t.keys(&["?"]);
    let help = t.wait_for("j k scroll");
    assert!(help.contains("approve what waits for approval"), "{help}");
    assert!(help.contains("j k scroll"), "{help}");
    t.keys(&["q"]);
    t.wait_for("Stages");
    t.keys(&["x"]);
    t.wait_for("type checkout");
    t.keys(&["-l", "checkout"]);
    t.keys(&["Enter"]);
    t.wait_up_to("run ended", 60);
    t.keys(&["q"]);
    t.wait_for("EXIT=");
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
    assert!(screen.contains("✗ release"), "{screen}");
    t.keys(&["q"]);
    let after = t.wait_for("EXIT=1");
    // The statistical judge catches the errors against the baseline's; a canary promoted
    // before they show is caught by the bake's thresholds on error_ratio.
    assert!(after.contains("analysis failed"), "{after}");
    assert!(
        after.contains("statistical judge: fail") || after.contains("key SLI failed: error_ratio"),
        "{after}"
    );
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

/// A settings file and a theme with several mistakes each: the cockpit still opens (with
/// the default theme and keys), says that there are problems, lists every one of them
/// with its file:line:col in its own log (`L`), and says them again on stderr after it
/// closes, where they last.
#[test]
fn every_problem_of_the_settings_and_theme_is_in_the_log_and_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("away.yaml"), PIPELINE).unwrap();
    let themes = dir.path().join("xdg/glidepath/themes");
    std::fs::create_dir_all(&themes).unwrap();
    std::fs::write(
        themes.join("loud.yaml"),
        "inherits: default\ncolors:\n  fial: red\n  ok: chartreuse\n",
    )
    .unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "theme: loud\nlayout: { hide: [output] }\nkeys: { approve: r }\n",
    )
    .unwrap();
    let env = format!(
        "XDG_CONFIG_HOME={} GLIDEPATH_CONFIG={}",
        dir.path().join("xdg").display(),
        settings.display()
    );
    let run = format!("run {}/away.yaml", dir.path().display());
    let t = Tmux::with_env(&env, &run, dir.path(), "problems", 200, 40);
    t.wait_for("more problems: L lists them");
    t.wait_for("next: sign-off waits for approval");
    t.keys(&["L"]);
    let log = t.wait_for("chartreuse");
    for expected in [
        "loud.yaml:3:3: no colour slot `fial` (did you mean `fail`?)",
        "loud.yaml:4:7: ok: `chartreuse` is not a colour",
        "settings.yaml:2:18: layout.hide: unknown value `output`",
        "settings.yaml:3:18: keys.approve: `r` is already rollback's key",
        "theme `loud` not loaded; using the default theme",
    ] {
        assert!(
            log.contains(expected),
            "{expected} is not in the log:\n{log}"
        );
    }
    // q closes the log (Escape then q could arrive as Alt-q), then q twice leaves.
    t.keys(&["q"]);
    t.wait_for("Test output");
    t.keys(&["q"]);
    t.keys(&["q"]);
    let after = t.wait_for("left the cockpit");
    assert!(!t.alternate_screen(), "{after}");
    for expected in [
        "glidepath: ",
        "no colour slot `fial`",
        "`chartreuse` is not a colour",
        "layout.hide: unknown value `output`",
        "keys.approve: `r` is already rollback's key",
    ] {
        assert!(
            after.contains(expected),
            "{expected} is not on stderr:\n{after}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["reject", "1"])
        .env("GLIDEPATH_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    t.wait_for("EXIT=1");
}

/// The train demo in the cockpit at 80x24: the members x stages grid, a member opened
/// from it (its own stages) and Esc back, then `a` approves the whole train into prod,
/// where every member is promoted.
#[test]
fn the_train_demo_opens_a_member_returns_and_approves_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::sized(
        "demo --scenario train --set pause=1s --set bake=2s",
        dir.path(),
        "train",
        80,
        24,
    );
    let grid = t.wait_up_to("? waits · a approves", 120);
    assert!(grid.contains("members × stages"), "{grid}");
    assert!(grid.contains("wave 2"), "{grid}");
    t.keys(&["Enter"]);
    let member = t.wait_for("train shop-2 › payments in staging");
    assert!(
        member.contains("Stages") && member.contains("deploy"),
        "{member}"
    );
    t.keys(&["Escape"]);
    t.wait_for("members × stages");
    t.keys(&["a"]);
    t.wait_for("✓ approved");
    let end = t.wait_up_to("every member promoted through staging, prod", 180);
    assert!(!end.contains("○ pending"), "{end}");
    t.keys(&["q"]);
    let after = t.wait_up_to("EXIT=0", 30);
    for m in ["payments", "inventory", "checkout"] {
        assert!(after.contains(&format!("{m}: promoted")), "{after}");
    }
}

/// `r` while the train's first wave runs its canaries in prod names the members it rolls
/// back, and `y` rolls them back: the driver takes the cockpit's command, checkout never
/// starts, and the train exits 1 with each member's final state.
#[test]
fn r_during_a_wave_rolls_back_the_trains_running_members() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::command(
        "demo --scenario train --set pause=5m --set bake=2s",
        dir.path(),
        "train-r",
    );
    t.wait_up_to("? waits · a approves", 120);
    t.keys(&["a"]);
    let canaries = t.wait_up_to("canary 50%", 120);
    assert!(canaries.contains("▶ prod"), "{canaries}");
    // Pause all, then resume all: the train's driver answers the cockpit's `p`.
    t.keys(&["p"]);
    t.wait_for("the train is paused · p resumes every member");
    t.keys(&["p"]);
    t.wait_for("Enter opens payments");
    t.keys(&["r"]);
    let confirm = t.wait_for("Roll back train shop-2 in prod?");
    assert!(
        confirm.contains("1. payments 2.0.0: rolls its own prod back"),
        "{confirm}"
    );
    assert!(
        confirm.contains("2. inventory 2.0.0: rolls its own prod back"),
        "{confirm}"
    );
    assert!(!confirm.contains("checkout 2.0.0:"), "{confirm}");
    t.keys(&["y"]);
    let end = t.wait_up_to("run ended", 120);
    assert!(end.contains("rolled back by"), "{end}");
    let checkout = end.lines().find(|l| l.contains("checkout 2.0.0"));
    assert!(
        checkout.is_some_and(|l| l.contains("✓ promoted") && l.contains("- skipped")),
        "checkout stays in staging and never starts in prod:\n{end}"
    );
    t.keys(&["q"]);
    let after = t.wait_up_to("EXIT=1", 30);
    for line in ["payments: rolled back", "inventory: rolled back"] {
        assert!(after.contains(line), "{after}");
    }
}

/// `attach` on a release train's run that another process drives headless: the train's
/// grid with its members, waiting at the approval between stages; `approve` of a member's
/// sub-run names the train to approve instead, and attaching to that sub-run says whose it
/// is; `a` in the attached grid approves the train, and the driver moves every member to
/// prod, whose member runs (started after the attach) show in the attached cockpit.
#[test]
fn attach_to_a_train_run_shows_its_grid_and_approves_the_train() {
    let dir = tempfile::tempdir().unwrap();
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/train/train.yaml");
    let mut driver = Driver::headless(dir.path(), &train, &["--set", "bake=2s"]);
    // Attach once the driver has journaled the train's run (run 1, its first).
    wait_for_a_run(dir.path());
    let journal = dir.path().join("journal.db");
    let t = Tmux::command("attach 1", dir.path(), "train-attach");
    let grid = t.wait_up_to("? waits · a approves", 120);
    assert!(grid.contains("members × stages"), "{grid}");
    for m in ["payments 2.0.0", "inventory 2.0.0", "checkout 2.0.0"] {
        assert!(grid.contains(m), "{m} in the grid:\n{grid}");
    }
    // payments's staging run: its own inbox has no reader, so no command goes there.
    let sub = payments_staging_run(&journal);
    let approve = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["approve", &sub.to_string()])
        .env("GLIDEPATH_HOME", dir.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&approve.stderr);
    assert_eq!(approve.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "run {sub} is member payments's run in train run 1"
        )),
        "{said}"
    );
    assert!(said.contains("`glidepath approve 1`"), "{said}");
    let member = Tmux::command(&format!("attach {sub}"), dir.path(), "train-member");
    member.wait_for(&format!(
        "run {sub} is member payments's run in train run 1: watching only"
    ));
    t.keys(&["a"]);
    t.wait_for("✓ approved");
    // Prod's member runs start after the attach: their lines reach the attached cockpit.
    t.wait_up_to("Deployment shop/checkout", 180);
    t.wait_up_to("every member promoted through staging, prod", 180);
    let out = driver.0.take().unwrap().wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("run 1 passed"), "{printed}");
    t.keys(&["q"]);
    t.wait_up_to("EXIT=0", 30);
}

/// Two members that each hold at a five-minute pause in every stage.
const HOLDING_TRAIN: &str = "apiVersion: glidepath/v1
kind: Train
metadata: { name: holding }
spec:
  stages: [staging, prod]
  members:
    - { name: alpha, pipeline: alpha.yaml }
    - { name: beta, pipeline: beta.yaml }
";

/// A member pipeline `NAME` whose stages hold at a five-minute pause.
const HOLDING_MEMBER: &str = "apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: NAME }
spec:
  stages:
    - name: staging
      steps: [{ name: hold, pause: 5m }]
    - name: prod
      steps: [{ name: hold, pause: 5m }]
";

/// A key pressed in a member opened from an attached train's grid reaches that member
/// alone, through the train's journal inbox: `P` promotes alpha's pause, and alpha's run
/// passes while beta's still holds.
#[test]
fn an_attached_trains_member_command_reaches_that_member_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.yaml"), HOLDING_TRAIN).unwrap();
    for name in ["alpha", "beta"] {
        let text = HOLDING_MEMBER.replace("NAME", name);
        std::fs::write(dir.path().join(format!("{name}.yaml")), text).unwrap();
    }
    let _driver = Driver::headless(dir.path(), &dir.path().join("train.yaml"), &[]);
    wait_for_a_run(dir.path());
    // Without RUN, attach opens the train, not the newest member run.
    let t = Tmux::command("attach", dir.path(), "train-member-key");
    t.wait_up_to("Enter opens alpha", 60);
    t.wait_for("▶ hold");
    t.keys(&["Enter"]);
    t.wait_for("train holding › alpha in staging");
    t.keys(&["P"]);
    let journal = glidepath::store::Store::open(&dir.path().join("journal.db")).unwrap();
    let run_of = |member: &str| {
        journal
            .events(1)
            .unwrap()
            .into_iter()
            .find_map(|e| match e.event {
                glidepath::events::Event::Member { member: m, run, .. } if m == member => Some(run),
                _ => None,
            })
            .unwrap()
    };
    let (alpha, beta) = (run_of("alpha"), run_of("beta"));
    let begun = Instant::now();
    while journal.run(alpha).unwrap().exit_code.is_none() {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "alpha's run {alpha} never ended after P"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(journal.run(alpha).unwrap().exit_code, Some(0));
    let beta = journal.run(beta).unwrap();
    assert_eq!(beta.exit_code, None, "beta still holds: {beta:?}");
    t.wait_for("✓ every stage passed");
}

/// Waits (up to a minute) for a driver to journal an unfinished run in `home`'s journal.
fn wait_for_a_run(home: &Path) {
    let journal = home.join("journal.db");
    let begun = Instant::now();
    while !journal.exists()
        || glidepath::store::Store::open(&journal)
            .and_then(|s| s.last_unfinished())
            .ok()
            .flatten()
            .is_none()
    {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the driver never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A driving process, killed if the test ends before it does.
struct Driver(Option<std::process::Child>);

impl Driver {
    /// `glidepath run FILE --headless ARGS` with the journal in `home`, its stdout piped.
    fn headless(home: &Path, file: &Path, args: &[&str]) -> Driver {
        let child = Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .arg("run")
            .arg(file)
            .arg("--headless")
            .args(args)
            .env("GLIDEPATH_HOME", home)
            .env_remove("GLIDEPATH_JOURNAL")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Driver(Some(child))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The run the train (run 1) started for payments in staging, from the journal.
fn payments_staging_run(journal: &Path) -> i64 {
    let store = glidepath::store::Store::open(journal).unwrap();
    store
        .events(1)
        .unwrap()
        .into_iter()
        .find_map(|e| match e.event {
            glidepath::events::Event::Member {
                stage, member, run, ..
            } if stage == "staging" && member == "payments" => Some(run),
            _ => None,
        })
        .expect("the train started payments in staging before its approval")
}
