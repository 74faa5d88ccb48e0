//! The command line: `serve`, and the offline `db` commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use thiserror::Error;

use crate::config::{Config, ConfigError, LogFormat};
use crate::server::{self, StartError};

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "LDAP directory server with API-token service accounts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded defaults unless --config is given).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Offline data commands on the database file (no server may be running on it).
    Db {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Bulk-load entries from an LDIF file.
    Import {
        file: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Write every entry as LDIF to standard output (re-importable, hashes included).
    Export,
    /// Check the file's integrity and that its tables agree.
    Verify,
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve { config } => {
            let config = load(config)?;
            init_tracing(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(config))
        }
        Command::Db { config, command } => {
            let config = load(config)?;
            init_tracing(&config);
            match command {
                DbCommand::Import { file, quiet } => {
                    crate::db::import(&config, &file, !quiet)?;
                }
                DbCommand::Export => {
                    crate::db::export(&config, &mut std::io::stdout().lock())?;
                }
                DbCommand::Verify => crate::db::verify(&config)?,
            }
            Ok(())
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(&p),
        None => Config::defaults(),
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    let running = server::start(config).await?;
    if let Some(a) = running.ldaps {
        println!("LDAPS            ldaps://{a}");
    }
    if let Some(a) = running.ldap {
        println!("LDAP + StartTLS  ldap://{a}");
    }
    if let Some(p) = &running.ldapi {
        println!("LDAPI            {}", p.display());
    }
    if let Some(ca) = &running.ca {
        println!("CA certificate   {}", ca.display());
    }
    println!("Suffix           {}", running.state.config.suffix);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
