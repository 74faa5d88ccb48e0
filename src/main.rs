//! The `tessera` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = tessera::cli::Cli::parse();
    tessera::cli::run(cli)?;
    Ok(())
}
