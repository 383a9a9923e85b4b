//! `schema`, `completions` and `man`: text generated from glidepath's own definitions.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, Exit, infra};
use crate::events::exit;

/// `schema`: the JSON Schema of pipeline files, or of train files.
pub(super) fn schema(train: bool) -> Result<i32, Exit> {
    let value = if train {
        crate::train::json_schema()
    } else {
        crate::pipeline::json_schema()
    };
    let schema = serde_json::to_string_pretty(&value).map_err(infra)?;
    println!("{schema}");
    Ok(exit::OK)
}

/// `completions SHELL`.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<i32, Exit> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "glidepath", &mut out);
    print_bytes(&out)
}

/// `man`: glidepath.1 on stdout, or every page into `--dir`.
pub(super) fn man(dir: Option<PathBuf>) -> Result<i32, Exit> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(infra)?;
            clap_mangen::generate_to(cmd, &dir).map_err(infra)?;
            eprintln!("man pages in {}", dir.display());
            Ok(exit::OK)
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(infra)?;
            print_bytes(&out)
        }
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`) is no error.
fn print_bytes(bytes: &[u8]) -> Result<i32, Exit> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(infra(e)),
    }
}
