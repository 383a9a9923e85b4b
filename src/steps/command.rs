//! `command`: runs a program (an argument list; `sh -c` only with `shell: true`), streams
//! its stdout and stderr as log events, and reports how it ended. The program runs in its
//! own process group, so a timeout or an abort kills it and everything it started.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::{StepCtx, StepIo, StepResult};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{CommandLine, CommandStep};

/// Runs the step's program.
pub async fn run(c: &CommandStep, ctx: &mut StepCtx) -> StepResult {
    execute(&c.run.value, c, ctx).await
}

/// Runs the step's `rollback` program, if it has one.
pub async fn rollback(c: &CommandStep, ctx: &mut StepCtx) -> Option<StepResult> {
    let line = &c.rollback.as_ref()?.value;
    Some(execute(line, c, ctx).await)
}

async fn execute(line: &CommandLine, c: &CommandStep, ctx: &mut StepCtx) -> StepResult {
    let (program, args): (String, Vec<String>) = match line {
        CommandLine::Args(argv) => match argv.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => return StepResult::failed("nothing to run"),
        },
        CommandLine::Line(l) => ("sh".into(), vec!["-c".into(), l.clone()]),
    };
    let shown = match line {
        CommandLine::Args(argv) => argv.join(" "),
        CommandLine::Line(l) => format!("sh -c {l:?}"),
    };
    let workdir = match &c.workdir {
        Some(w) => ctx.base_dir.join(&w.value),
        None => ctx.base_dir.clone(),
    };
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .envs(&c.env)
        .current_dir(if workdir.as_os_str().is_empty() {
            ".".into()
        } else {
            workdir
        })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return StepResult::judged(
                Verdict::Fail,
                format!("cannot start `{program}`: {e}"),
                vec![Evidence::new("start", Verdict::Fail, e.to_string())],
            );
        }
    };
    let group = child.id().map(GroupGuard);
    ctx.io.log("command", format!("$ {shown}"));
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(pump(s, ctx.io.clone(), "stdout")));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, ctx.io.clone(), "stderr")));
    let status = child.wait().await;
    // Whatever the program left running in its group goes too, so the pipes close and the
    // pumps below end.
    drop(group);
    for pump in [out, err].into_iter().flatten() {
        let _ = pump.await;
    }
    ended(&shown, status)
}

/// How the program ended: passed on exit code 0, failed on any other code or a signal.
fn ended(shown: &str, status: std::io::Result<std::process::ExitStatus>) -> StepResult {
    match status {
        Ok(s) if s.success() => StepResult::judged(
            Verdict::Pass,
            format!("`{shown}` exited 0"),
            vec![Evidence::new("exit code", Verdict::Pass, "0").expected("0")],
        ),
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            let (value, summary) = match (s.code(), s.signal()) {
                (Some(code), _) => (
                    code.to_string(),
                    format!("`{shown}` exited with code {code}"),
                ),
                (None, Some(sig)) => (
                    format!("signal {sig}"),
                    format!("`{shown}` was killed by signal {sig}"),
                ),
                _ => ("unknown".into(), format!("`{shown}` ended abnormally")),
            };
            StepResult::judged(
                Verdict::Fail,
                summary,
                vec![Evidence::new("exit code", Verdict::Fail, value).expected("0")],
            )
        }
        Err(e) => StepResult::judged(
            Verdict::Fail,
            format!("waiting for `{shown}` failed: {e}"),
            Vec::new(),
        ),
    }
}

async fn pump<R: AsyncRead + Unpin>(reader: R, io: StepIo, source: &'static str) {
    let mut lines = BufReader::new(reader).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => io.log(source, line),
            Ok(None) => break,
            Err(e) => {
                // Invalid UTF-8 or a read error: say so once and stop reading this stream.
                io.log(source, format!("(output not readable: {e})"));
                break;
            }
        }
    }
}

/// Kills the whole process group when the step ends for any reason (timeout, abort, done).
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.0) {
            // SAFETY: kill(2) with a negative pid signals the process group we created with
            // process_group(0); it has no memory-safety preconditions.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}
