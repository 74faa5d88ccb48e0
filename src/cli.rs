//! The command line: `serve`, the admin commands (people, groups, service accounts, roles,
//! `search --as`) that talk to a running server, and the offline `db` commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ldap3_proto::proto::{LdapResultCode, LdapSearchScope};
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
    about = "LDAP directory server with API-token service accounts",
    long_about = "Tessera: an LDAP directory server for SSSD and nslcd hosts, NAS devices and sync \
                  tools. `tessera serve` runs the server; the other commands manage a running \
                  server (over its LDAPI socket as the local administrator, or over LDAPS) or its \
                  files.",
    after_help = "Examples:\n  tessera serve --config /etc/tessera/config.toml\n  tessera person create alice 'Alice Example' --posix\n  tessera tls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded defaults unless --config is given).
    #[command(
        after_help = "Example:\n  tessera serve --config /etc/tessera/config.toml\n\nSIGHUP re-reads tls.hostnames and reloads the certificate; SIGTERM stops gracefully."
    )]
    Serve {
        /// The configuration file (TOML), e.g. /etc/tessera/config.toml; default: the
        /// embedded defaults (data in ./tessera-data).
        #[arg(long, short, value_name = "FILE", env = "TESSERA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// People: create, update, get, list, delete, set-password, app-password.
    #[command(after_help = "Example:\n  tessera person create alice 'Alice Example' --posix")]
    Person {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// Groups: create, add-members, remove-members, get, list, delete.
    #[command(after_help = "Example:\n  tessera group create nas-users --posix")]
    Group {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Service accounts (machines that bind with API tokens) and their tokens.
    #[command(after_help = "Example:\n  tessera service-account create nas01 'The NAS' admins")]
    ServiceAccount {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: ServiceAccountCommand,
    },
    /// Roles: who may see and do what, over which entries.
    #[command(after_help = "Example:\n  tessera role add-members directory-readers nas01")]
    Role {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Search as another identity (a person, a service account or a DN), with exactly its
    /// rights: see what a token will see before handing it out.
    #[command(
        after_help = "Example:\n  tessera search --as nas01 '(objectClass=posixAccount)' uid uidNumber"
    )]
    Search {
        #[command(flatten)]
        conn: ConnOpts,
        /// Whose view: a person's or service account's name, or a DN, e.g. nas01.
        #[arg(long = "as", value_name = "IDENTITY")]
        identity: String,
        /// Search base, e.g. ou=people,dc=example,dc=com; default: the suffix.
        #[arg(long, short)]
        base: Option<String>,
        /// How deep: base, one or sub, e.g. one.
        #[arg(long, short, default_value = "sub")]
        scope: String,
        /// An LDAP filter (RFC 4515), e.g. '(objectClass=posixAccount)'.
        filter: String,
        /// Attributes to return, e.g. uid cn; default: all user attributes.
        attrs: Vec<String>,
    },
    /// What bind throttling is slowing down now (failed binds per account and source).
    #[command(after_help = "Example:\n  tessera throttled")]
    Throttled {
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// The web console: a one-time sign-in link for the local administrator.
    #[command(after_help = "Example:\n  tessera console sign-in-link")]
    Console {
        #[command(flatten)]
        conn: ConnOpts,
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// The server certificate: show it, renew it, export the generated CA.
    #[command(
        after_help = "Examples:\n  tessera tls --config /etc/tessera/config.toml\n  tessera tls renew\n  tessera tls export-ca > tessera-ca.pem"
    )]
    Tls {
        /// The server's configuration file, e.g. /etc/tessera/config.toml; default: the
        /// embedded defaults.
        #[arg(
            long,
            short,
            global = true,
            value_name = "FILE",
            env = "TESSERA_CONFIG"
        )]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<TlsCommand>,
    },
    /// Data commands on the database file: import, export and verify need the server
    /// stopped; backup works while it runs.
    #[command(after_help = "Example:\n  tessera db backup /var/backups/tessera.redb")]
    Db {
        /// The server's configuration file, e.g. /etc/tessera/config.toml; default: the
        /// embedded defaults.
        #[arg(
            long,
            short,
            global = true,
            value_name = "FILE",
            env = "TESSERA_CONFIG"
        )]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: DbCommand,
    },
    /// The cluster this server is a member of (a `[cluster]` table in its config): form
    /// one, add and remove nodes, see its state. Talks to the running server on its
    /// LDAPI socket, as the local administrator; `bundle` and `join` work on files.
    #[command(
        after_help = "Examples:\n  tessera cluster init\n  tessera cluster bundle /root/join.json\n  tessera cluster join /root/join.json   # on the new node, before its first start\n  tessera cluster add-replica 2 ldap2.example.com:7389\n  tessera cluster promote 2\n  tessera cluster status"
    )]
    Cluster {
        /// The server's configuration file, e.g. /etc/tessera/config.toml; default: the
        /// embedded defaults.
        #[arg(
            long,
            short,
            global = true,
            value_name = "FILE",
            env = "TESSERA_CONFIG"
        )]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  tessera completions bash > /etc/bash_completion.d/tessera")]
    Completions {
        /// The shell, e.g. bash (also zsh, fish, elvish, powershell).
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (tessera.1, tessera-person.1, ...).
    #[command(after_help = "Example:\n  tessera man --dir /usr/local/share/man/man1")]
    Man {
        /// Directory to write every page into, e.g. ./man; without it, tessera(1) goes to
        /// standard output.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// How the admin commands reach the server.
#[derive(clap::Args, Debug)]
pub struct ConnOpts {
    /// The server's config (for the socket path, suffix and CA), e.g.
    /// /etc/tessera/config.toml; default: embedded defaults.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FILE",
        env = "TESSERA_CONFIG"
    )]
    config: Option<PathBuf>,
    /// Where the server is, e.g. ldaps://ldap.example.com:636 or
    /// ldapi://%2Fvar%2Flib%2Ftessera%2Fldapi.sock; default: the local socket, as the local
    /// administrator.
    #[arg(short = 'H', long = "url", global = true)]
    url: Option<String>,
    /// Over ldaps://: who to act as (a person id or a DN), e.g. alice. Password from
    /// TESSERA_PASSWORD or a prompt; with TESSERA_TOKEN set, a token binds instead.
    #[arg(long, global = true)]
    name: Option<String>,
    /// CA certificate to verify the server with, e.g. ./tessera-ca.pem; default
    /// <data_dir>/tls/ca.pem.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Print a link that signs the local administrator (who has no password) into the web
    /// console once, within console.sign_in_link_lifetime (5 minutes by default). Run as
    /// root (or the server's user) on the server: it asks over the LDAPI socket. The
    /// secret rides in the link's fragment, which browsers never send to a server; the
    /// page takes it from there, clears it from the address bar and signs in.
    #[command(after_help = "Example:\n  tessera console sign-in-link")]
    SignInLink,
}

/// POSIX attributes given on the command line.
#[derive(clap::Args, Debug, Default)]
pub struct PosixOpts {
    /// A fixed uidNumber instead of an allocated one, e.g. 20001 (implies --posix).
    #[arg(long, value_name = "N")]
    uid_number: Option<u32>,
    /// A fixed gidNumber, e.g. 20001 (implies --posix; default: the uidNumber, a user
    /// private group).
    #[arg(long, value_name = "N")]
    gid_number: Option<u32>,
    /// Home directory, e.g. /home/alice (implies --posix; default /home/<id>).
    #[arg(long, value_name = "PATH")]
    home_directory: Option<String>,
    /// Login shell, e.g. /bin/bash (implies --posix).
    #[arg(long, value_name = "PATH")]
    login_shell: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    /// Create a person under ou=people.
    #[command(
        after_help = "Examples:\n  tessera person create alice 'Alice Example' --mail alice@example.com --posix\n  tessera person create bob 'Bob Smith' --uid-number 20002"
    )]
    Create {
        /// Login name: 1-32 of a-z 0-9 _ . -, starting with a letter or _, e.g. alice.
        id: String,
        /// Full name (cn and displayName; sn is its last word), e.g. 'Alice Example'.
        display_name: String,
        /// E-mail address, e.g. alice@example.com.
        #[arg(long)]
        mail: Option<String>,
        /// Add posixAccount (uidNumber, gidNumber and homeDirectory are allocated).
        #[arg(long)]
        posix: bool,
        #[command(flatten)]
        numbers: PosixOpts,
    },
    /// Change a person's name, mail or POSIX attributes.
    #[command(
        after_help = "Examples:\n  tessera person update alice --display-name 'Alice Liddell'\n  tessera person update alice --posix --uid-number 20001 --login-shell /bin/zsh"
    )]
    Update {
        /// The person's id, e.g. alice.
        id: String,
        /// New full name (cn, displayName and sn), e.g. 'Alice Liddell'.
        #[arg(long)]
        display_name: Option<String>,
        /// New e-mail address, e.g. alice@example.org ("" removes it).
        #[arg(long)]
        mail: Option<String>,
        /// Make the person a POSIX account (numbers allocated unless given).
        #[arg(long)]
        posix: bool,
        #[command(flatten)]
        numbers: PosixOpts,
    },
    /// Show a person's entry.
    #[command(after_help = "Example:\n  tessera person get alice")]
    Get {
        /// The person's id, e.g. alice.
        id: String,
    },
    /// List every person's id.
    #[command(after_help = "Example:\n  tessera person list")]
    List,
    /// Delete a person and their app passwords.
    #[command(after_help = "Example:\n  tessera person delete alice")]
    Delete {
        /// The person's id, e.g. alice.
        id: String,
    },
    /// Set a password (prompted, or TESSERA_NEW_PASSWORD); --generate prints a new one once.
    #[command(after_help = "Example:\n  tessera person set-password alice --generate")]
    SetPassword {
        /// The person's id, e.g. alice.
        id: String,
        /// Let the server generate the password and print it once.
        #[arg(long)]
        generate: bool,
    },
    /// Per-device app passwords: generate, status, destroy.
    #[command(after_help = "Example:\n  tessera person app-password generate alice phone 90d")]
    AppPassword {
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppPasswordCommand {
    /// Make an app password; it is printed once.
    #[command(after_help = "Example:\n  tessera person app-password generate alice phone 90d")]
    Generate {
        /// The person's id, e.g. alice.
        id: String,
        /// What it is for, e.g. phone.
        label: String,
        /// When it stops working: an RFC 3339 time, a duration or never, e.g. 90d;
        /// default: tokens.default_lifetime.
        expiry: Option<String>,
    },
    /// List a person's app passwords, with expired and exposed ones marked.
    #[command(after_help = "Example:\n  tessera person app-password status alice")]
    Status {
        /// The person's id, e.g. alice.
        id: String,
    },
    /// Revoke an app password.
    #[command(after_help = "Example:\n  tessera person app-password destroy alice 0K5J2ZP6M1QX")]
    Destroy {
        /// The person's id, e.g. alice.
        id: String,
        /// The app password's id (first column of status), e.g. 0K5J2ZP6M1QX.
        token_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group (groupOfNames) under ou=groups.
    #[command(after_help = "Example:\n  tessera group create nas-users --posix")]
    Create {
        /// The group's name, e.g. nas-users.
        name: String,
        /// Add posixGroup (gidNumber is allocated).
        #[arg(long)]
        posix: bool,
    },
    /// Add members: people (by id), groups or service accounts (by DN).
    #[command(after_help = "Example:\n  tessera group add-members nas-users alice bob")]
    AddMembers {
        /// The group's name, e.g. nas-users.
        name: String,
        /// Person ids or DNs, e.g. alice uid=nas01,ou=services,dc=example,dc=com.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove members.
    #[command(after_help = "Example:\n  tessera group remove-members nas-users bob")]
    RemoveMembers {
        /// The group's name, e.g. nas-users.
        name: String,
        /// Person ids or DNs, e.g. bob.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Show a group's entry.
    #[command(after_help = "Example:\n  tessera group get nas-users")]
    Get {
        /// The group's name, e.g. nas-users.
        name: String,
    },
    /// List every group's name.
    #[command(after_help = "Example:\n  tessera group list")]
    List,
    /// Delete a group.
    #[command(after_help = "Example:\n  tessera group delete nas-users")]
    Delete {
        /// The group's name, e.g. nas-users.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceAccountCommand {
    /// Create a service account under ou=services.
    #[command(
        after_help = "Example:\n  tessera service-account create nas01 'The NAS' admins --group nas-hosts --expires 365d"
    )]
    Create {
        /// Name: 1-63 of a-z 0-9 - _, starting and ending with a letter or digit, e.g. nas01.
        account_id: String,
        /// What it is, e.g. 'The NAS in rack 2'.
        display_name: String,
        /// Who manages it and its tokens: a group, a person or a DN, e.g. admins.
        entry_managed_by: String,
        /// A longer description, e.g. 'QNAP TS-453, rack 2'.
        #[arg(long)]
        description: Option<String>,
        /// When it can no longer bind: an RFC 3339 time or a duration, e.g. 365d.
        #[arg(long)]
        expires: Option<String>,
        /// A group to add it to (repeatable), e.g. nas-hosts.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Show a service account's entry.
    #[command(after_help = "Example:\n  tessera service-account get nas01")]
    Get {
        /// The account's name, e.g. nas01.
        account_id: String,
    },
    /// List every service account's name.
    #[command(after_help = "Example:\n  tessera service-account list")]
    List,
    /// Delete a service account and its tokens.
    #[command(after_help = "Example:\n  tessera service-account delete nas01")]
    Delete {
        /// The account's name, e.g. nas01.
        account_id: String,
    },
    /// Change a service account's name, description, manager or expiry.
    #[command(after_help = "Example:\n  tessera service-account update nas01 --expires 180d")]
    Update {
        /// The account's name, e.g. nas01.
        account_id: String,
        /// New display name, e.g. 'The new NAS'.
        #[arg(long)]
        display_name: Option<String>,
        /// New description, e.g. 'moved to rack 3'.
        #[arg(long)]
        description: Option<String>,
        /// New manager: a group, a person or a DN, e.g. storage-admins.
        #[arg(long)]
        entry_managed_by: Option<String>,
        /// New expiry: an RFC 3339 time or a duration, e.g. 90d.
        #[arg(long)]
        expires: Option<String>,
    },
    /// API tokens: generate, status, rotate, destroy.
    #[command(
        after_help = "Example:\n  tessera service-account api-token generate nas01 'nas sssd' 365d"
    )]
    ApiToken {
        #[command(subcommand)]
        command: ApiTokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiTokenCommand {
    /// Mint a token; it is printed once.
    #[command(
        after_help = "Examples:\n  tessera service-account api-token generate nas01 'nas sssd' 365d\n  tessera service-account api-token generate sync01 keycloak 90d --rw"
    )]
    Generate {
        /// The account's name, e.g. nas01.
        account_id: String,
        /// What the token is for, e.g. 'nas sssd'.
        label: String,
        /// When it stops working: an RFC 3339 time, a duration (30m, 12h, 90d) or never,
        /// e.g. 365d; default: tokens.default_lifetime.
        expiry: Option<String>,
        /// Read-write (default: read-only, which may read but not change anything).
        #[arg(long)]
        rw: bool,
        /// For the HTTP API (`Authorization: Bearer`) instead of LDAP binds: an http-api
        /// token, which LDAP refuses (and the API refuses every other token).
        #[arg(long)]
        http: bool,
        /// Sliding expiry: each use pushes it to now + MAX_AGE, e.g. 30d.
        #[arg(long, value_name = "MAX_AGE")]
        extend_on_use: Option<String>,
    },
    /// List an account's tokens, with expired and exposed ones marked.
    #[command(after_help = "Example:\n  tessera service-account api-token status nas01")]
    Status {
        /// The account's name, e.g. nas01.
        account_id: String,
    },
    /// Mint a replacement; the old token lives on for the overlap.
    #[command(
        after_help = "Example:\n  tessera service-account api-token rotate nas01 0K5J2ZP6M1QX --overlap 1h"
    )]
    Rotate {
        /// The account's name, e.g. nas01.
        account_id: String,
        /// The token's id (first column of status), e.g. 0K5J2ZP6M1QX.
        token_id: String,
        /// How long the old token keeps working, e.g. 1h (default 24h).
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Revoke a token at once.
    #[command(
        after_help = "Example:\n  tessera service-account api-token destroy nas01 0K5J2ZP6M1QX"
    )]
    Destroy {
        /// The account's name, e.g. nas01.
        account_id: String,
        /// The token's id (first column of status), e.g. 0K5J2ZP6M1QX.
        token_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Define a role. Rights: read, compare, write, add, delete, rename, manage-tokens,
    /// reset-password, impersonate, all.
    #[command(
        after_help = "Example:\n  tessera role create nas-readers --base people --base groups \\\n      --filter '(memberOf=cn=nas-users,ou=groups,dc=example,dc=com)' --right read"
    )]
    Create {
        /// The role's name, e.g. nas-readers.
        name: String,
        /// Entries the role reaches: a DN or people, groups, services, roles (repeatable),
        /// e.g. people.
        #[arg(long = "base")]
        bases: Vec<String>,
        /// How far below each base: base, one, sub or children (default sub), e.g. one.
        #[arg(long)]
        level: Option<String>,
        /// Only entries matching this LDAP filter, e.g. '(memberOf=cn=nas-users,ou=groups,dc=example,dc=com)'.
        #[arg(long)]
        filter: Option<String>,
        /// A right to grant (repeatable): read, compare, write, add, delete, rename,
        /// manage-tokens, reset-password, impersonate or all, e.g. read.
        #[arg(long = "right")]
        rights: Vec<String>,
        /// Attributes it may read (repeatable; default all; `*` user, `+` operational),
        /// e.g. uid.
        #[arg(long = "read-allow")]
        read_allow: Vec<String>,
        /// Attributes it may not read (repeatable), e.g. mail.
        #[arg(long = "read-deny")]
        read_deny: Vec<String>,
        /// Attributes it may write (repeatable; default all), e.g. telephoneNumber.
        #[arg(long = "write-allow")]
        write_allow: Vec<String>,
        /// Attributes it may not write (repeatable), e.g. uidNumber.
        #[arg(long = "write-deny")]
        write_deny: Vec<String>,
        /// What the role is for, e.g. 'what the NAS may see'.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show a role's entry.
    #[command(after_help = "Example:\n  tessera role get directory-readers")]
    Get {
        /// The role's name, e.g. directory-readers.
        name: String,
    },
    /// List every role's name.
    #[command(after_help = "Example:\n  tessera role list")]
    List,
    /// Delete a role.
    #[command(after_help = "Example:\n  tessera role delete nas-readers")]
    Delete {
        /// The role's name, e.g. nas-readers.
        name: String,
    },
    /// Add holders: people, service accounts or groups (names or DNs).
    #[command(after_help = "Example:\n  tessera role add-members directory-readers nas01 web01")]
    AddMembers {
        /// The role's name, e.g. directory-readers.
        name: String,
        /// Person, service account or group names, or DNs, e.g. nas01.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove holders.
    #[command(after_help = "Example:\n  tessera role remove-members directory-readers nas01")]
    RemoveMembers {
        /// The role's name, e.g. directory-readers.
        name: String,
        /// Person, service account or group names, or DNs, e.g. nas01.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Grant rights.
    #[command(after_help = "Example:\n  tessera role grant nas-readers compare")]
    Grant {
        /// The role's name, e.g. nas-readers.
        name: String,
        /// Rights, e.g. compare write.
        #[arg(required = true)]
        rights: Vec<String>,
    },
    /// Revoke rights.
    #[command(after_help = "Example:\n  tessera role revoke nas-readers compare")]
    Revoke {
        /// The role's name, e.g. nas-readers.
        name: String,
        /// Rights, e.g. compare.
        #[arg(required = true)]
        rights: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Make this running server a cluster of one, its only voter, with the directory it
    /// holds; other nodes then join it.
    #[command(after_help = "Example:\n  tessera cluster init")]
    Init,
    /// Write the join bundle (the cluster's CA certificate and key) to a new owner-only
    /// FILE, for `tessera cluster join` on a new node. Keep it as safe as the CA key.
    #[command(after_help = "Example:\n  tessera cluster bundle /root/join.json")]
    Bundle {
        /// The file to write, e.g. /root/join.json.
        file: PathBuf,
    },
    /// On a new node, before its first start: take the cluster's CA from the bundle
    /// FILE into the data directory, so the node can prove it belongs.
    #[command(after_help = "Example:\n  tessera cluster join /root/join.json")]
    Join {
        /// The bundle `tessera cluster bundle` wrote, e.g. /root/join.json.
        file: PathBuf,
    },
    /// This node's view of the cluster: its role, the leader, the members, replication.
    #[command(after_help = "Example:\n  tessera cluster status")]
    Status,
    /// Add node ID, listening at ADDRESS (its cluster.advertise), as a replica: it gets
    /// every write and votes on none. Waits until it has caught up.
    #[command(after_help = "Example:\n  tessera cluster add-replica 2 ldap2.example.com:7389")]
    AddReplica {
        /// The new node's cluster.node_id, e.g. 2.
        id: u64,
        /// Its cluster address (host:port), e.g. ldap2.example.com:7389.
        address: String,
    },
    /// Make replica ID a voter.
    #[command(after_help = "Example:\n  tessera cluster promote 2")]
    Promote {
        /// The node id, e.g. 2.
        id: u64,
    },
    /// Take node ID out of the cluster (a dead node, or one to retire).
    #[command(after_help = "Example:\n  tessera cluster remove 3")]
    Remove {
        /// The node id, e.g. 3.
        id: u64,
    },
    /// Snapshot the store now and drop the log it covers.
    #[command(after_help = "Example:\n  tessera cluster compact")]
    Compact,
}

#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Show the certificate in service: names, issuer, expiry, how it is renewed (the default).
    #[command(after_help = "Example:\n  tessera tls show --config /etc/tessera/config.toml")]
    Show,
    /// Re-issue the generated server certificate now, signed by the same CA (a running
    /// server loads it within tls.watch_interval, or at once on SIGHUP).
    #[command(
        after_help = "Examples:\n  tessera tls renew\n  tessera tls renew --new-ca    # a data directory whose CA key was not kept"
    )]
    Renew {
        /// Make a new CA as well. Every client must then be given the new ca.pem.
        #[arg(long)]
        new_ca: bool,
    },
    /// Write the generated CA certificate (what clients trust) to FILE or standard output.
    #[command(after_help = "Example:\n  tessera tls export-ca /tmp/tessera-ca.pem")]
    ExportCa {
        /// Where to write it, e.g. /tmp/tessera-ca.pem; default: standard output.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Bulk-load entries from an LDIF file (server stopped): a Tessera export, or an
    /// OpenLDAP `slapcat` dump.
    #[command(
        after_help = "Examples:\n  tessera db import people.ldif\n  tessera db import slapcat.ldif --continue"
    )]
    Import {
        /// The LDIF file, e.g. people.ldif.
        file: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Import what can be imported: skip each entry (or reference) that breaks a rule,
        /// and report it, instead of stopping at the first (as `slapadd -c`).
        #[arg(long = "continue")]
        keep_going: bool,
    },
    /// Write every entry as LDIF to standard output (re-importable, hashes included;
    /// server stopped).
    #[command(after_help = "Example:\n  tessera db export > backup.ldif")]
    Export,
    /// Check the file's integrity and that its tables agree (server stopped), or those of
    /// another database file, such as a backup, with --file.
    #[command(
        after_help = "Examples:\n  tessera db verify\n  tessera db verify --file /var/backups/tessera-20261207.redb"
    )]
    Verify {
        /// Check this database file as it is instead of the configured one, e.g. a backup
        /// such as /var/backups/tessera-20261207.redb; no configuration is read, and the file
        /// is only read.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Write a consistent copy of the database to FILE, which `tessera serve` can start
    /// from (as <data_dir>/tessera.redb). Works while the server runs (through its LDAPI
    /// socket, as the local administrator) and while it does not.
    #[command(after_help = "Example:\n  tessera db backup /var/backups/tessera-$(date +%F).redb")]
    Backup {
        /// Where to write the copy, e.g. /var/backups/tessera.redb.
        file: PathBuf,
    },
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
    #[error("{0}")]
    Tls(#[from] crate::server::tls::TlsError),
    #[error("{0}")]
    Usage(String),
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
        Command::Serve { config: path } => {
            let config = load(path.clone())?;
            init_tracing(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(config, path))
        }
        Command::Tls { config, command } => {
            let config = load(config)?;
            init_tracing(&config);
            tls(&config, command.unwrap_or(TlsCommand::Show))
        }
        Command::Cluster { config, command } => {
            let config = load(config)?;
            cluster(&config, command)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "tessera", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { dir } => {
            let command = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => {
                    let named =
                        |e: std::io::Error| CliError::Usage(format!("{}: {e}", dir.display()));
                    std::fs::create_dir_all(&dir).map_err(named)?;
                    clap_mangen::generate_to(command, &dir).map_err(named)?;
                    eprintln!("manual pages written to {}", dir.display());
                }
                None => clap_mangen::Man::new(command).render(&mut std::io::stdout())?,
            }
            Ok(())
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
                let found = crate::admin::role::search_as(
                    c, suffix, &identity, &base, scope, &filter, &attrs,
                )
                .await?;
                print!("{}", render(&found));
                eprintln!(
                    "{} visible to {identity}",
                    count(found.len(), "entry", "entries")
                );
                Ok(())
            })
        }),
        Command::Console {
            conn,
            command: ConsoleCommand::SignInLink,
        } => {
            let config = load(conn.config.clone())?;
            let url = crate::admin::console::console_url(&config)?;
            admin(conn, |c, _| {
                Box::pin(async move {
                    let link = crate::admin::console::sign_in_link(c).await?;
                    let page = format!("{url}{}", crate::admin::console::SIGN_IN_PATH);
                    println!(
                        "Open this link in a browser before {}; it signs in once, as the local administrator:\n\n  {page}#{}\n\nOr open {page} and enter this one-time code:\n\n  {}",
                        link.expires, link.secret, link.secret
                    );
                    Ok(())
                })
            })
        }
        Command::Throttled { conn } => admin(conn, |c, _| {
            Box::pin(async move {
                let rows = crate::admin::throttle::status(c).await?;
                println!(
                    "{:<48} {:<24} {:>8}  held until",
                    "account", "source", "failures"
                );
                use crate::admin::time_text;
                for r in &rows {
                    let account = if r.account.is_empty() {
                        "(any)"
                    } else {
                        &r.account
                    };
                    println!(
                        "{account:<48} {:<24} {:>8}  {}",
                        r.source,
                        r.failures,
                        time_text(&r.until)
                    );
                }
                Ok(())
            })
        }),
        Command::Db {
            command: DbCommand::Verify { file: Some(file) },
            ..
        } => {
            init_tracing(&Config::defaults()?);
            crate::db::verify_file(&file)?;
            Ok(())
        }
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
                // With --file, handled above without the configuration.
                DbCommand::Verify { file: _ } => crate::db::verify(&config)?,
                DbCommand::Backup { file } => backup(&config, &file)?,
            }
            Ok(())
        }
    }
}

/// "1 entry", "2 entries".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    if report.nis_groups > 0 {
        eprintln!(
            "{} {} of RFC 2307's nis.schema (posixGroup alone) became groupOfNames + posixGroup, as groups are here; their memberUid values are member DNs under ou=people",
            report.nis_groups,
            if report.nis_groups == 1 {
                "group"
            } else {
                "groups"
            }
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
        if s.dn.is_empty() {
            eprintln!(
                "skipped: an unreadable record (line {}): {}",
                s.line, s.reason
            );
        } else {
            eprintln!(
                "skipped: {} (ending at line {}): {}",
                s.dn, s.line, s.reason
            );
        }
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

/// `tessera cluster`.
fn cluster(config: &Config, command: ClusterCommand) -> Result<(), CliError> {
    let request = match command {
        ClusterCommand::Bundle { file } => {
            return crate::cluster::bundle::write(config, &file)
                .map_err(CliError::Usage)
                .map(|()| {
                    println!(
                        "{}: the join bundle (keep it secret; delete it once used)",
                        file.display()
                    )
                });
        }
        ClusterCommand::Join { file } => {
            let text = crate::cluster::bundle::join(config, &file).map_err(CliError::Usage)?;
            println!("{text}");
            return Ok(());
        }
        ClusterCommand::Init => serde_json::json!({"op": "init"}),
        ClusterCommand::Status => serde_json::json!({"op": "status"}),
        ClusterCommand::Compact => serde_json::json!({"op": "compact"}),
        ClusterCommand::AddReplica { id, address } => {
            serde_json::json!({"op": "add-replica", "id": id, "address": address})
        }
        ClusterCommand::Promote { id } => serde_json::json!({"op": "promote", "id": id}),
        ClusterCommand::Remove { id } => serde_json::json!({"op": "remove", "id": id}),
    };
    let Some(socket) = config.ldapi_path() else {
        return Err(CliError::Usage(
            "the cluster commands talk to the server's LDAPI socket, and listen.ldapi is off"
                .into(),
        ));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async {
        let target = crate::admin::client::Target::Local { socket };
        let mut client = Client::connect(&target).await?;
        let value = request.to_string().into_bytes();
        client
            .extended(crate::ldap::oid::CLUSTER, Some(value))
            .await
    })?;
    let text = String::from_utf8_lossy(&answer.unwrap_or_default()).into_owned();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) if value.is_object() => {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or(text));
        }
        _ => println!("{text}"),
    }
    Ok(())
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
    let copied = copied
        .parse::<usize>()
        .map_or(format!("{copied} entries"), |n| {
            count(n, "entry", "entries")
        });
    println!("{written}: {copied}");
    Ok(())
}

/// `tessera tls`: the certificate in service, renewal, the CA.
fn tls(config: &Config, command: TlsCommand) -> Result<(), CliError> {
    use crate::server::ca::{self, Generated};
    let now = time::OffsetDateTime::now_utc();
    let generated = Generated::new(&config.data_dir.join("tls"));
    let configured = config.tls.cert.clone();
    match command {
        TlsCommand::Show => {
            let cert = configured.clone().unwrap_or_else(|| generated.cert());
            if configured.is_none() && !cert.exists() {
                return Err(CliError::Usage(format!(
                    "no certificate yet: {} is made at the server's first start (or run `tessera tls renew --new-ca`)",
                    cert.display()
                )));
            }
            let info = ca::inspect(&cert)?;
            let left = (info.not_after - now).whole_days();
            println!("certificate  {}", cert.display());
            println!("subject      {}", info.subject);
            println!("names        {}", info.names.join(", "));
            println!("issuer       {}", info.issuer);
            println!("serial       {}", info.serial);
            println!("not before   {}", ca::rfc3339(info.not_before));
            let state = if left < 0 {
                "EXPIRED".to_string()
            } else {
                format!("{left} days left")
            };
            println!("not after    {} ({state})", ca::rfc3339(info.not_after));
            if configured.is_some() {
                println!(
                    "source       configured (tls.cert): renew it with its CA; the server loads the new file when it changes"
                );
                if info.not_after - now < ca::RENEW_BEFORE {
                    println!(
                        "warning      it expires within {} days",
                        ca::RENEW_BEFORE.whole_days()
                    );
                }
                return Ok(());
            }
            println!(
                "source       generated by Tessera; clients trust {}",
                generated.ca().display()
            );
            if generated.ca_key().exists() {
                println!(
                    "renewal      automatic: re-issued by the same CA when tls.hostnames changes and {} days before expiry",
                    ca::RENEW_BEFORE.whole_days()
                );
            } else {
                println!(
                    "renewal      impossible with this CA: its key was not kept; `tessera tls renew --new-ca` makes a new one"
                );
            }
            if let Ok(ca_info) = ca::inspect(&generated.ca()) {
                println!("CA expires   {}", ca::rfc3339(ca_info.not_after));
            }
            if let Some(why) = ca::due(&generated, &config.tls.hostnames, now)? {
                println!(
                    "due          {why}: the server re-issues it at its next start, on SIGHUP, or now with `tessera tls renew`"
                );
            }
            Ok(())
        }
        TlsCommand::Renew { new_ca } => {
            if let Some(cert) = &configured {
                return Err(CliError::Usage(format!(
                    "tls.cert is configured ({}): Tessera did not issue it, so renew it with its CA; the server loads the new file when it changes",
                    cert.display()
                )));
            }
            let info = if new_ca {
                let info = ca::create_ca(&generated, &config.tls.hostnames, now)?;
                eprintln!(
                    "A new CA was made: give every client the new {} (the old one no longer verifies this server).",
                    generated.ca().display()
                );
                info
            } else {
                ca::reissue(&generated, &config.tls.hostnames, now)?
            };
            println!(
                "re-issued {}: {} (until {})",
                generated.cert().display(),
                info.names.join(", "),
                ca::rfc3339(info.not_after)
            );
            eprintln!(
                "A running server serves it within tls.watch_interval ({}s), or at once on SIGHUP.",
                config.tls.watch_interval.as_secs()
            );
            Ok(())
        }
        TlsCommand::ExportCa { file } => {
            if let Some(cert) = &configured {
                return Err(CliError::Usage(format!(
                    "tls.cert is configured ({}): clients trust the CA that issued it, which Tessera does not hold",
                    cert.display()
                )));
            }
            let pem = std::fs::read(generated.ca()).map_err(|source| {
                crate::server::tls::TlsError::Read {
                    path: generated.ca().display().to_string(),
                    source,
                }
            })?;
            match file {
                Some(file) => {
                    std::fs::write(&file, &pem)
                        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
                    eprintln!("wrote {}", file.display());
                }
                None => std::io::Write::write_all(&mut std::io::stdout(), &pem)?,
            }
            Ok(())
        }
    }
}

async fn serve(config: Config, path: Option<PathBuf>) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers first: whoever sees the lines below may send a signal at once.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
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
    if let Some(a) = running.https {
        println!("HTTPS API        https://{a}/api/v1");
    }
    if let Some(a) = running.metrics {
        println!("Metrics          http://{a}/metrics");
    }
    if let Some(ca) = &running.ca {
        println!("CA certificate   {}", ca.display());
    }
    println!("Suffix           {}", running.state.config.suffix);
    server::notify::ready(&format!("serving {}", running.state.config.suffix));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                // The outcome is logged; a refused pair leaves the old one serving.
                let _ = match path.as_deref().map(Config::load) {
                    Some(Ok(fresh)) => running.reload_tls_with(&fresh.tls.hostnames),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "SIGHUP: the configuration does not load; certificate files reloaded only");
                        running.reload_tls()
                    }
                    None => running.reload_tls(),
                };
            }
        }
    }
    tracing::info!("shutting down");
    server::notify::stopping();
    running.shutdown().await;
    Ok(())
}

fn init_tracing(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colour only for a person at a terminal: files, pipes and journald get plain text.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
        match command(&mut client, &config.suffix).await {
            Err(CliError::Admin(e))
                if e.code() == Some(LdapResultCode::InsufficentAccessRights) =>
            {
                Err(refusal(&mut client, &config.suffix, &target, e)
                    .await
                    .into())
            }
            outcome => outcome,
        }
    })
}

/// 50 says only "insufficient access rights": say as whom, and when the caller is a
/// read-only token, that this is why.
async fn refusal(
    client: &mut Client,
    suffix: &Dn,
    target: &crate::admin::client::Target,
    e: crate::admin::AdminError,
) -> crate::admin::AdminError {
    use crate::admin::client::Target;
    let (bind_dn, secret) = match target {
        Target::Remote {
            bind_dn, secret, ..
        } => (bind_dn.clone(), secret.0.as_str()),
        Target::Local { .. } => return e,
    };
    let token_id = secret
        .strip_prefix("tsr_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id.to_string());
    let Some(id) = token_id else {
        return e.explain(LdapResultCode::InsufficentAccessRights, || {
            format!("refused: {bind_dn} holds no role that allows this")
        });
    };
    let filter = ldap3_proto::proto::LdapFilter::Equality("tokenId".into(), id.clone());
    let scope = client
        .search(
            &suffix.to_string(),
            LdapSearchScope::Subtree,
            filter,
            &["tokenScope"],
        )
        .await
        .ok()
        .and_then(|found| {
            found
                .first()?
                .attributes
                .iter()
                .find(|a| a.atype.eq_ignore_ascii_case("tokenScope"))?
                .vals
                .first()
                .map(|v| String::from_utf8_lossy(v).into_owned())
        });
    e.explain(LdapResultCode::InsufficentAccessRights, || match scope.as_deref() {
        Some("read-only") => format!(
            "refused: the token {id} is read-only: it may read but not change anything \
             (a token generated with --rw may write, as far as its account's roles allow)"
        ),
        _ => format!(
            "refused: the token {id} ({bind_dn}) may not do this: its account holds no role that allows it, \
             or the token is read-only (tokens are, unless generated with --rw)"
        ),
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
            numbers,
        } => {
            let new = person::NewPerson {
                id: &id,
                display_name: &display_name,
                mail: mail.as_deref(),
                posix,
                posix_attrs: numbers.into(),
            };
            println!("created {}", person::create(c, suffix, &new).await?);
        }
        PersonCommand::Update {
            id,
            display_name,
            mail,
            posix,
            numbers,
        } => {
            let changes = person::Changes {
                display_name,
                mail,
                posix,
                posix_attrs: numbers.into(),
            };
            person::update(c, suffix, &id, &changes).await?;
            println!("updated {}", person::dn(suffix, &id));
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
                "added {} to {}",
                count(members.len(), "member", "members"),
                group::dn(suffix, &name)
            );
        }
        GroupCommand::RemoveMembers { name, members } => {
            group::members(c, suffix, &name, &members, false).await?;
            println!(
                "removed {} from {}",
                count(members.len(), "member", "members"),
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
            println!(
                "{} added to {name}",
                count(members.len(), "holder", "holders")
            );
        }
        RoleCommand::RemoveMembers { name, members } => {
            role::members(c, suffix, &name, &members, false).await?;
            println!(
                "{} removed from {name}",
                count(members.len(), "holder", "holders")
            );
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
        http: bool,
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
                http,
                extend_on_use,
            } => TokenCommand::Generate {
                account: account(&account_id),
                label,
                expiry,
                rw,
                app_password: false,
                http,
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
                http: false,
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
            http,
            extend_on_use,
        } => {
            let req = sa::TokenRequest {
                account: &account,
                label: &label,
                expires: expiry.as_deref(),
                read_write: rw,
                app_password,
                http,
                extend_on_use: extend_on_use.as_deref(),
            };
            let minted = sa::generate(c, &req).await?;
            print_minted(&minted);
        }
        TokenCommand::Status { account } => {
            println!(
                "{:<14} {:<20} {:<11} {:<13} {:<21} {:<21} {:<21} state",
                "id", "label", "scope", "intent", "created", "expires", "last used"
            );
            for t in sa::status(c, &account).await? {
                let state = if t.marks.is_empty() {
                    "ok".to_string()
                } else {
                    t.marks.join(", ")
                };
                println!(
                    "{:<14} {:<20} {:<11} {:<13} {:<21} {:<21} {:<21} {state}",
                    t.id, t.label, t.scope, t.intent, t.created, t.expires, t.last_used
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
    let expires = minted
        .expires
        .as_deref()
        .map_or("never".into(), crate::admin::time_text);
    eprintln!(
        "Token id {} (expires {expires}). Copy the token now: it will not be shown again.",
        minted.id
    );
}

impl From<PosixOpts> for crate::admin::person::Posix {
    fn from(o: PosixOpts) -> Self {
        crate::admin::person::Posix {
            uid_number: o.uid_number,
            gid_number: o.gid_number,
            home_directory: o.home_directory,
            login_shell: o.login_shell,
        }
    }
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
