//! The `tessera` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

// Every operation allocates and frees many small buffers, on any worker thread: with
// glibc's malloc a search took 1.8x the CPU at 8 connections (tests/bench/README.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = tessera::cli::Cli::parse();
    match tessera::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
