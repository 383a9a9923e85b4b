//! The `glidepath` binary; everything lives in the library (see `lib.rs` for the module map).

fn main() {
    std::process::exit(glidepath::cli::main());
}
