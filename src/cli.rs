//! The command line: `serve`, the admin commands (people, groups, service accounts, roles,
//! `search --as`) that talk to a running server, and the offline `db` commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ldap3_proto::proto::LdapSearchScope;
use thiserror::Error;

use crate::admin::client::Client;
use crate::admin::render;
use crate::config::{Config, ConfigError, LogFormat};
use crate::directory::dn::Dn;
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
    /// People: create, get, list, delete, set-password, app-password.
    Person {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// Groups: create, add-members, remove-members, get, list, delete.
    Group {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Service accounts and their API tokens.
    ServiceAccount {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: ServiceAccountCommand,
    },
    /// Roles: who may see and do what, over which entries.
    Role {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Search as another identity (a person, a service account or a DN), with exactly its
    /// rights: see what a token will see before handing it out.
    Search {
        #[command(flatten)]
        conn: ConnOpts,
        /// Whose view: a person's or service account's name, or a DN.
        #[arg(long = "as", value_name = "IDENTITY")]
        identity: String,
        /// Search base; default: the suffix.
        #[arg(long, short)]
        base: Option<String>,
        /// base, one or sub.
        #[arg(long, short, default_value = "sub")]
        scope: String,
        /// An LDAP filter (RFC 4515), e.g. '(objectClass=posixAccount)'.
        filter: String,
        /// Attributes to return; default: all user attributes.
        attrs: Vec<String>,
    },
    /// What bind throttling is slowing down now (failed binds per account and source).
    Throttled {
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Offline data commands on the database file (no server may be running on it).
    Db {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: DbCommand,
    },
}

/// How the admin commands reach the server.
#[derive(clap::Args, Debug)]
pub struct ConnOpts {
    /// The server's config (for the socket path, suffix and CA); default: embedded defaults.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// ldapi://%2Fpath%2Fto.sock or ldaps://host:port; default: the local socket, as the
    /// local administrator.
    #[arg(short = 'H', long = "url", global = true)]
    url: Option<String>,
    /// Over ldaps://: who to act as (a person id or a DN). Password from TESSERA_PASSWORD
    /// or a prompt; with TESSERA_TOKEN set, a token binds instead.
    #[arg(long, global = true)]
    name: Option<String>,
    /// CA certificate to verify the server with; default <data_dir>/tls/ca.pem.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    Create {
        id: String,
        display_name: String,
        #[arg(long)]
        mail: Option<String>,
        /// Add posixAccount (uidNumber, gidNumber and homeDirectory are allocated).
        #[arg(long)]
        posix: bool,
    },
    Get {
        id: String,
    },
    List,
    Delete {
        id: String,
    },
    /// Set a password (prompted, or TESSERA_NEW_PASSWORD); --generate prints a new one once.
    SetPassword {
        id: String,
        #[arg(long)]
        generate: bool,
    },
    /// Per-device app passwords: generate, status, destroy.
    AppPassword {
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppPasswordCommand {
    Generate {
        id: String,
        label: String,
        /// RFC 3339 time, duration (30m, 12h, 90d) or never; default: the server's.
        expiry: Option<String>,
    },
    Status {
        id: String,
    },
    Destroy {
        id: String,
        token_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    Create {
        name: String,
        /// Add posixGroup (gidNumber is allocated).
        #[arg(long)]
        posix: bool,
    },
    AddMembers {
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    RemoveMembers {
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    Get {
        name: String,
    },
    List,
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceAccountCommand {
    Create {
        account_id: String,
        display_name: String,
        /// The group (or person) that manages it and its tokens.
        entry_managed_by: String,
        #[arg(long)]
        description: Option<String>,
        /// RFC 3339 time or duration after which it can no longer bind.
        #[arg(long)]
        expires: Option<String>,
        /// Groups to add it to.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    Get {
        account_id: String,
    },
    List,
    Delete {
        account_id: String,
    },
    Update {
        account_id: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        entry_managed_by: Option<String>,
        #[arg(long)]
        expires: Option<String>,
    },
    /// API tokens: generate, status, rotate, destroy.
    ApiToken {
        #[command(subcommand)]
        command: ApiTokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiTokenCommand {
    Generate {
        account_id: String,
        label: String,
        /// RFC 3339 time, duration (30m, 12h, 90d) or never; default 365 days.
        expiry: Option<String>,
        /// Read-write (default: read-only).
        #[arg(long)]
        rw: bool,
        /// Each use pushes the expiry to now + MAX_AGE.
        #[arg(long, value_name = "MAX_AGE")]
        extend_on_use: Option<String>,
    },
    Status {
        account_id: String,
    },
    Rotate {
        account_id: String,
        token_id: String,
        /// How long the old token keeps working (default 24h).
        #[arg(long)]
        overlap: Option<String>,
    },
    Destroy {
        account_id: String,
        token_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Define a role. Rights: read, compare, write, add, delete, rename, manage-tokens,
    /// reset-password, impersonate, all.
    Create {
        name: String,
        /// Entries the role reaches: a DN or people, groups, services, roles (repeatable).
        #[arg(long = "base")]
        bases: Vec<String>,
        /// How far below each base: base, one or sub (default sub).
        #[arg(long)]
        level: Option<String>,
        /// Only entries matching this LDAP filter.
        #[arg(long)]
        filter: Option<String>,
        #[arg(long = "right")]
        rights: Vec<String>,
        /// Attributes it may read (default all; `*` user, `+` operational).
        #[arg(long = "read-allow")]
        read_allow: Vec<String>,
        #[arg(long = "read-deny")]
        read_deny: Vec<String>,
        #[arg(long = "write-allow")]
        write_allow: Vec<String>,
        #[arg(long = "write-deny")]
        write_deny: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Get {
        name: String,
    },
    List,
    Delete {
        name: String,
    },
    /// Holders: people, service accounts or groups (names or DNs).
    AddMembers {
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    RemoveMembers {
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    Grant {
        name: String,
        #[arg(required = true)]
        rights: Vec<String>,
    },
    Revoke {
        name: String,
        #[arg(required = true)]
        rights: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Bulk-load entries from an LDIF file: a Tessera export, or an OpenLDAP `slapcat`
    /// dump (e.g. `tessera db import directory.ldif --continue`).
    Import {
        /// The LDIF file to load.
        file: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Import what can be imported: skip each entry (or reference) that breaks a rule,
        /// and report it, instead of stopping at the first (as `slapadd -c`).
        #[arg(long = "continue")]
        keep_going: bool,
    },
    /// Write every entry as LDIF to standard output (re-importable, hashes included).
    Export,
    /// Check the file's integrity and that its tables agree.
    Verify,
    /// Write a consistent copy of the database to FILE, which `tessera serve` can start
    /// from (as <data_dir>/tessera.redb). Works while the server runs (through its LDAPI
    /// socket, as the local administrator) and while it does not.
    Backup { file: PathBuf },
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
    #[error("{0}")]
    Admin(#[from] crate::admin::AdminError),
}

impl CliError {
    /// The process exit status: an LDAP result code as OpenLDAP's tools exit with it,
    /// so scripts can tell 50 from 68; 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Admin(crate::admin::AdminError::Ldap { code, .. }) => {
                u8::try_from(code.clone() as i64).unwrap_or(1).max(1)
            }
            _ => 1,
        }
    }
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
        Command::Person { conn, command } => {
            admin(conn, |c, suffix| Box::pin(person(c, suffix, command)))
        }
        Command::Group { conn, command } => {
            admin(conn, |c, suffix| Box::pin(group(c, suffix, command)))
        }
        Command::ServiceAccount { conn, command } => admin(conn, |c, suffix| {
            Box::pin(service_account(c, suffix, command))
        }),
        Command::Role { conn, command } => {
            admin(conn, |c, suffix| Box::pin(role(c, suffix, command)))
        }
        Command::Search {
            conn,
            identity,
            base,
            scope,
            filter,
            attrs,
        } => admin(conn, move |c, suffix| {
            Box::pin(async move {
                let scope = match scope.as_str() {
                    "base" => LdapSearchScope::Base,
                    "one" => LdapSearchScope::OneLevel,
                    "sub" => LdapSearchScope::Subtree,
                    other => {
                        let msg = format!("--scope {other}: use base, one or sub");
                        return Err(crate::admin::AdminError::Usage(msg).into());
                    }
                };
                let base = base.unwrap_or_else(|| suffix.to_string());
                let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
                let found =
                    crate::admin::role::search_as(c, &identity, &base, scope, &filter, &attrs)
                        .await?;
                print!("{}", render(&found));
                eprintln!("{} entries visible to {identity}", found.len());
                Ok(())
            })
        }),
        Command::Throttled { conn } => admin(conn, |c, _| {
            Box::pin(async move {
                let rows = crate::admin::throttle::status(c).await?;
                println!(
                    "{:<48} {:<24} {:>8}  held until",
                    "account", "source", "failures"
                );
                for r in &rows {
                    let account = if r.account.is_empty() {
                        "(any)"
                    } else {
                        &r.account
                    };
                    println!(
                        "{account:<48} {:<24} {:>8}  {}",
                        r.source, r.failures, r.until
                    );
                }
                Ok(())
            })
        }),
        Command::Db { config, command } => {
            let config = load(config)?;
            init_tracing(&config);
            match command {
                DbCommand::Import {
                    file,
                    quiet,
                    keep_going,
                } => {
                    let options = crate::db::ImportOptions {
                        progress: !quiet,
                        keep_going,
                    };
                    let report = crate::db::import(&config, &file, &options)?;
                    print_import_report(&config, &report);
                }
                DbCommand::Export => {
                    crate::db::export(&config, &mut std::io::stdout().lock())?;
                }
                DbCommand::Verify => crate::db::verify(&config)?,
                DbCommand::Backup { file } => backup(&config, &file)?,
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

/// What an import did, for the admin who ran it: on standard error, as progress is.
fn print_import_report(config: &Config, report: &crate::db::ImportReport) {
    let entries = |n: u64| if n == 1 { "entry" } else { "entries" };
    eprintln!(
        "imported {} {} into {}",
        report.imported,
        entries(report.imported),
        config.db_path().display()
    );
    if report.merged > 0 {
        eprintln!(
            "merged {} {} into the ones every directory starts with (suffix, containers, built-in roles)",
            report.merged,
            entries(report.merged)
        );
    }
    if !report.dropped.is_empty() {
        let list: Vec<String> = report
            .dropped
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        eprintln!(
            "dropped operational attributes this server keeps itself or does not use: {}",
            list.join(", ")
        );
    }
    for s in &report.skipped {
        eprintln!(
            "skipped: {} (ending at line {}): {}",
            s.dn, s.line, s.reason
        );
    }
    if !report.skipped.is_empty() {
        eprintln!("{} skipped; the rest was imported", report.skipped.len());
    }
    if !report.unverifiable.is_empty() {
        eprintln!(
            "warning: {} {} a password hash in a scheme this server cannot verify; they cannot bind until their password is set again (tessera person set-password):",
            report.unverifiable.len(),
            if report.unverifiable.len() == 1 {
                "account has"
            } else {
                "accounts have"
            }
        );
        for dn in &report.unverifiable {
            eprintln!("  {dn}");
        }
    }
}

/// Through the running server when there is one, else straight from the file.
fn backup(config: &Config, file: &std::path::Path) -> Result<(), CliError> {
    let file = std::path::absolute(file)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let online = config.ldapi_path().map(|socket| {
        runtime.block_on(async {
            let target = crate::admin::client::Target::Local { socket };
            let mut client = Client::connect(&target).await?;
            let path = file.display().to_string().into_bytes();
            client.extended(crate::ldap::oid::BACKUP, Some(path)).await
        })
    });
    let (written, copied) = match online {
        Some(Ok(value)) => {
            let text = String::from_utf8_lossy(&value.unwrap_or_default()).into_owned();
            match text.split_once('\t') {
                Some((n, path)) => (path.to_string(), n.to_string()),
                None => (file.display().to_string(), text),
            }
        }
        // No server on the socket: the file is free to read directly.
        Some(Err(crate::admin::AdminError::Connect { .. })) | None => {
            let (path, n) = crate::db::backup(config, &file)?;
            (path.display().to_string(), n.to_string())
        }
        Some(Err(e)) => return Err(e.into()),
    };
    println!("{written}: {copied} entries");
    Ok(())
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
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                // The outcome is logged; a refused pair leaves the old one serving.
                let _ = running.reload_tls();
            }
        }
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

type AdminFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CliError>> + 'a>>;

/// Connect as the options say, then run one admin command.
fn admin(
    conn: ConnOpts,
    command: impl for<'a> FnOnce(&'a mut Client, &'a Dn) -> AdminFuture<'a>,
) -> Result<(), CliError> {
    let config = load(conn.config.clone())?;
    let args = crate::admin::ConnectArgs {
        url: conn.url,
        name: conn.name,
        ca: conn.ca,
    };
    let target = crate::admin::target(&config, &args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = Client::connect(&target).await?;
        command(&mut client, &config.suffix).await
    })
}

async fn person(c: &mut Client, suffix: &Dn, command: PersonCommand) -> Result<(), CliError> {
    use crate::admin::person;
    match command {
        PersonCommand::Create {
            id,
            display_name,
            mail,
            posix,
        } => {
            let dn = person::create(c, suffix, &id, &display_name, mail.as_deref(), posix).await?;
            println!("created {dn}");
        }
        PersonCommand::Get { id } => print!("{}", render(&person::get(c, suffix, &id).await?)),
        PersonCommand::List => person::list(c, suffix)
            .await?
            .iter()
            .for_each(|p| println!("{p}")),
        PersonCommand::Delete { id } => {
            person::delete(c, suffix, &id).await?;
            println!("deleted {}", person::dn(suffix, &id));
        }
        PersonCommand::SetPassword { id, generate } => {
            let chosen = if generate { None } else { new_password()? };
            match person::set_password(c, suffix, &id, chosen.as_deref()).await? {
                Some(generated) => {
                    println!("{generated}");
                    eprintln!("This password will not be shown again.");
                }
                None => println!("password set for {}", person::dn(suffix, &id)),
            }
        }
        PersonCommand::AppPassword { command } => {
            let account = |id: &str| person::dn(suffix, id);
            token_command(c, command.into_token(account)).await?;
        }
    }
    Ok(())
}

async fn group(c: &mut Client, suffix: &Dn, command: GroupCommand) -> Result<(), CliError> {
    use crate::admin::group;
    match command {
        GroupCommand::Create { name, posix } => {
            println!("created {}", group::create(c, suffix, &name, posix).await?)
        }
        GroupCommand::AddMembers { name, members } => {
            group::members(c, suffix, &name, &members, true).await?;
            println!(
                "added {} member(s) to {}",
                members.len(),
                group::dn(suffix, &name)
            );
        }
        GroupCommand::RemoveMembers { name, members } => {
            group::members(c, suffix, &name, &members, false).await?;
            println!(
                "removed {} member(s) from {}",
                members.len(),
                group::dn(suffix, &name)
            );
        }
        GroupCommand::Get { name } => print!("{}", render(&group::get(c, suffix, &name).await?)),
        GroupCommand::List => group::list(c, suffix)
            .await?
            .iter()
            .for_each(|g| println!("{g}")),
        GroupCommand::Delete { name } => {
            group::delete(c, suffix, &name).await?;
            println!("deleted {}", group::dn(suffix, &name));
        }
    }
    Ok(())
}

async fn service_account(
    c: &mut Client,
    suffix: &Dn,
    command: ServiceAccountCommand,
) -> Result<(), CliError> {
    use crate::admin::service_account as sa;
    match command {
        ServiceAccountCommand::Create {
            account_id,
            display_name,
            entry_managed_by,
            description,
            expires,
            groups,
        } => {
            let new = sa::NewAccount {
                id: &account_id,
                display_name: &display_name,
                managed_by: &entry_managed_by,
                description: description.as_deref(),
                expires: expires.as_deref(),
                groups: &groups,
            };
            println!("created {}", sa::create(c, suffix, &new).await?);
        }
        ServiceAccountCommand::Get { account_id } => {
            print!("{}", render(&sa::get(c, suffix, &account_id).await?))
        }
        ServiceAccountCommand::List => sa::list(c, suffix)
            .await?
            .iter()
            .for_each(|a| println!("{a}")),
        ServiceAccountCommand::Delete { account_id } => {
            sa::delete(c, suffix, &account_id).await?;
            println!("deleted {} and its tokens", sa::dn(suffix, &account_id));
        }
        ServiceAccountCommand::Update {
            account_id,
            display_name,
            description,
            entry_managed_by,
            expires,
        } => {
            let changes: Vec<(&str, String)> = [
                ("displayName", display_name),
                ("description", description),
                ("entryManagedBy", entry_managed_by),
                ("accountExpires", expires),
            ]
            .into_iter()
            .filter_map(|(a, v)| v.map(|v| (a, v)))
            .collect();
            sa::update(c, suffix, &account_id, changes).await?;
            println!("updated {}", sa::dn(suffix, &account_id));
        }
        ServiceAccountCommand::ApiToken { command } => {
            let account = |id: &str| sa::dn(suffix, id);
            token_command(c, command.into_token(account)).await?;
        }
    }
    Ok(())
}

async fn role(c: &mut Client, suffix: &Dn, command: RoleCommand) -> Result<(), CliError> {
    use crate::admin::role;
    match command {
        RoleCommand::Create {
            name,
            bases,
            level,
            filter,
            rights,
            read_allow,
            read_deny,
            write_allow,
            write_deny,
            description,
        } => {
            let def = role::Definition {
                description,
                bases,
                level,
                filter,
                rights,
                read_allow,
                read_deny,
                write_allow,
                write_deny,
            };
            println!("created {}", role::create(c, suffix, &name, &def).await?);
        }
        RoleCommand::Get { name } => print!("{}", render(&role::get(c, suffix, &name).await?)),
        RoleCommand::List => role::list(c, suffix)
            .await?
            .iter()
            .for_each(|r| println!("{r}")),
        RoleCommand::Delete { name } => {
            role::delete(c, suffix, &name).await?;
            println!("deleted {}", role::dn(suffix, &name));
        }
        RoleCommand::AddMembers { name, members } => {
            role::members(c, suffix, &name, &members, true).await?;
            println!("{} holder(s) added to {name}", members.len());
        }
        RoleCommand::RemoveMembers { name, members } => {
            role::members(c, suffix, &name, &members, false).await?;
            println!("{} holder(s) removed from {name}", members.len());
        }
        RoleCommand::Grant { name, rights } => {
            role::rights(c, suffix, &name, &rights, true).await?;
            println!("granted {} to {name}", rights.join(", "));
        }
        RoleCommand::Revoke { name, rights } => {
            role::rights(c, suffix, &name, &rights, false).await?;
            println!("revoked {} from {name}", rights.join(", "));
        }
    }
    Ok(())
}

/// The token commands shared by `api-token` and `app-password`.
enum TokenCommand {
    Generate {
        account: Dn,
        label: String,
        expiry: Option<String>,
        rw: bool,
        app_password: bool,
        extend_on_use: Option<String>,
    },
    Status {
        account: Dn,
    },
    Rotate {
        account: Dn,
        token_id: String,
        overlap: Option<String>,
    },
    Destroy {
        account: Dn,
        token_id: String,
    },
}

impl ApiTokenCommand {
    fn into_token(self, account: impl Fn(&str) -> Dn) -> TokenCommand {
        match self {
            ApiTokenCommand::Generate {
                account_id,
                label,
                expiry,
                rw,
                extend_on_use,
            } => TokenCommand::Generate {
                account: account(&account_id),
                label,
                expiry,
                rw,
                app_password: false,
                extend_on_use,
            },
            ApiTokenCommand::Status { account_id } => TokenCommand::Status {
                account: account(&account_id),
            },
            ApiTokenCommand::Rotate {
                account_id,
                token_id,
                overlap,
            } => TokenCommand::Rotate {
                account: account(&account_id),
                token_id,
                overlap,
            },
            ApiTokenCommand::Destroy {
                account_id,
                token_id,
            } => TokenCommand::Destroy {
                account: account(&account_id),
                token_id,
            },
        }
    }
}

impl AppPasswordCommand {
    fn into_token(self, account: impl Fn(&str) -> Dn) -> TokenCommand {
        match self {
            AppPasswordCommand::Generate { id, label, expiry } => TokenCommand::Generate {
                account: account(&id),
                label,
                expiry,
                rw: true,
                app_password: true,
                extend_on_use: None,
            },
            AppPasswordCommand::Status { id } => TokenCommand::Status {
                account: account(&id),
            },
            AppPasswordCommand::Destroy { id, token_id } => TokenCommand::Destroy {
                account: account(&id),
                token_id,
            },
        }
    }
}

async fn token_command(c: &mut Client, command: TokenCommand) -> Result<(), CliError> {
    use crate::admin::service_account as sa;
    match command {
        TokenCommand::Generate {
            account,
            label,
            expiry,
            rw,
            app_password,
            extend_on_use,
        } => {
            let req = sa::TokenRequest {
                account: &account,
                label: &label,
                expires: expiry.as_deref(),
                read_write: rw,
                app_password,
                extend_on_use: extend_on_use.as_deref(),
            };
            let minted = sa::generate(c, &req).await?;
            print_minted(&minted);
        }
        TokenCommand::Status { account } => {
            println!(
                "{:<14} {:<20} {:<11} {:<13} {:<23} {:<23} last used",
                "id", "label", "scope", "intent", "created", "expires"
            );
            for t in sa::status(c, &account).await? {
                let v: Vec<&str> = t.iter().map(|(_, v)| v.as_str()).collect();
                println!(
                    "{:<14} {:<20} {:<11} {:<13} {:<23} {:<23} {}",
                    v[0], v[1], v[2], v[3], v[4], v[5], v[6]
                );
            }
        }
        TokenCommand::Rotate {
            account,
            token_id,
            overlap,
        } => {
            let minted = sa::rotate(c, &account, &token_id, overlap.as_deref()).await?;
            print_minted(&minted);
            eprintln!("The old token {token_id} keeps working until the overlap ends.");
        }
        TokenCommand::Destroy { account, token_id } => {
            sa::destroy(c, &account, &token_id).await?;
            println!("destroyed token {token_id}");
        }
    }
    Ok(())
}

fn print_minted(minted: &crate::admin::service_account::Minted) {
    println!("{}", minted.token);
    eprintln!(
        "Token id {} (expires {}). Copy the token now: it will not be shown again.",
        minted.id,
        minted.expires.as_deref().unwrap_or("never")
    );
}

/// A new password from TESSERA_NEW_PASSWORD or typed twice; None (empty) means generate.
fn new_password() -> Result<Option<String>, CliError> {
    if let Ok(p) = std::env::var("TESSERA_NEW_PASSWORD") {
        return Ok((!p.is_empty()).then_some(p));
    }
    let first = rpassword::prompt_password("New password (empty to generate): ")?;
    if first.is_empty() {
        return Ok(None);
    }
    let second = rpassword::prompt_password("Again: ")?;
    if first != second {
        return Err(crate::admin::AdminError::Usage("the passwords do not match".into()).into());
    }
    Ok(Some(first))
}
