//! The command line of the `provider` binary: serving, and what an operator scripts.

mod healthcheck;
mod security;

pub use healthcheck::healthcheck;

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use oidc_core::jose::Algorithm;

use crate::config::Settings;
use crate::identity::password::hash_blocking;
use crate::storage::Db;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::clients::{self, ClientInput, ClientType, GrantType};
use crate::storage::signing_keys::{self as stored_keys, RetireOutcome};
use crate::storage::users::{self, Profile, Username, validate_password};

/// An OpenID Connect provider.
#[derive(Debug, Parser)]
#[command(name = "provider", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create an administrator (asks for what is not given).
    Createsuperuser(AccountArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 when the server at PROVIDER_ADDR answers GET /healthz with 200.
    Healthcheck,
    /// Remove expired codes, tokens and grants, and audit events older than
    /// PROVIDER_AUDIT_RETENTION_DAYS, now (the server also does it every
    /// PROVIDER_SWEEP_INTERVAL_SECS) and print how many of each went.
    Cleanup,
}

/// Who to create.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// Login name (asked for when missing).
    #[arg(long)]
    pub username: Option<String>,
    /// E-mail address (asked for when missing and the username is asked for too).
    #[arg(long)]
    pub email: Option<String>,
    /// Given name.
    #[arg(long, default_value = "")]
    pub given_name: String,
    /// Family name.
    #[arg(long, default_value = "")]
    pub family_name: String,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

/// User subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Who.
        #[command(flatten)]
        account: AccountArgs,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (asked for twice, or read from standard input); ends every
    /// session, grant and token of the user.
    SetPassword {
        /// The user's username.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Deactivate a user: they can no longer sign in, and every session, grant and token ends.
    Deactivate {
        /// The user's username.
        username: String,
    },
    /// Delete a user with everything they hold.
    Delete {
        /// The user's username.
        username: String,
    },
    /// Remove a user's second factors (authenticator app, recovery codes, passkeys); ends
    /// every session, grant and token of the user.
    ResetFactors {
        /// The user's username.
        username: String,
    },
}

/// Audit log subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit events, newest first: a table, or JSON Lines with --json.
    List(security::AuditListArgs),
}

/// Client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an application; prints its client id and (once) its secret.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A post-logout redirect URI (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Use this client id instead of a generated one.
        #[arg(long)]
        client_id: Option<String>,
        /// A public client (no secret; PKCE only).
        #[arg(long)]
        public: bool,
        /// Do not ask users for consent.
        #[arg(long)]
        skip_authorization: bool,
        /// Do not allow refresh tokens.
        #[arg(long)]
        no_refresh_tokens: bool,
        /// A resource server: may introspect access tokens issued to other clients.
        #[arg(long)]
        introspect: bool,
        /// ID-token signing algorithm.
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
        algorithm: String,
        /// Where logout tokens are posted when a session with the application ends
        /// (OpenID Connect Back-Channel Logout).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Logout tokens must name the session (`sid`).
        #[arg(long, requires = "backchannel_logout_uri")]
        backchannel_logout_session_required: bool,
        /// Sign-ins for the application must use a second factor.
        #[arg(long)]
        requires_mfa: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List applications.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a new key active; the old one stays published until retired.
    Rotate {
        /// Algorithm of the key to rotate.
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
        algorithm: String,
    },
    /// Remove a rotated key from the JWKS.
    Retire {
        /// The key id.
        kid: String,
    },
}

/// Every bad setting on one line, as the command line reports its failures.
fn one_line(error: crate::config::ConfigError) -> anyhow::Error {
    let settings: Vec<String> = error.0.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("invalid settings: {}", settings.join("; "))
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env().map_err(one_line)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Healthcheck => healthcheck(&settings.addr),
        command => {
            // Operator commands are short and synchronous: run them off the async executor.
            tokio::task::spawn_blocking(move || admin_command(&settings, command))
                .await
                .context("command task failed")?
        }
    }
}

fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::open(&settings.database_url, 2).with_context(|| {
        format!(
            "cannot open the database PROVIDER_DATABASE_URL={}",
            settings.database_target().redacted()
        )
    })?;
    db.migrate()
        .context("cannot apply the database migrations")?;
    Ok(db)
}

fn admin_command(settings: &Settings, command: Command) -> anyhow::Result<()> {
    let db = open_db(settings)?;
    let mut conn = db.conn()?;
    let conn = &mut *conn;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Serve | Command::Healthcheck => anyhow::bail!("not an administration command"),
        Command::Cleanup => cleanup(conn, settings, &mut out)?,
        Command::Createsuperuser(account) => {
            let user = create_user(conn, settings, account, true)?;
            writeln!(out, "Created administrator {}.", user.username)?;
        }
        Command::User(UserCommand::Create { account, admin }) => {
            let user = create_user(conn, settings, account, admin)?;
            writeln!(
                out,
                "Created user {} (subject {}).",
                user.username, user.subject
            )?;
        }
        Command::User(UserCommand::SetPassword {
            username,
            password_stdin,
        }) => {
            let user = existing_user(conn, &username)?;
            let password = read_password(password_stdin)?;
            validate_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash = hash_blocking(&password, settings.bcrypt_cost)?;
            crate::storage::write_transaction(conn, |conn| -> anyhow::Result<()> {
                users::reset_password(conn, &user.id, &hash)?;
                record(
                    conn,
                    cli_event(Kind::PasswordReset).with_user(&user.id, &user.username),
                )
            })?;
            writeln!(
                out,
                "Password of {} changed; every session and token of the user ended.",
                user.username
            )?;
        }
        Command::User(UserCommand::Deactivate { username }) => {
            let user = existing_user(conn, &username)?;
            crate::storage::write_transaction(conn, |conn| -> anyhow::Result<()> {
                users::deactivate(conn, &user.id)?;
                let event = cli_event(Kind::UserUpdated).with_user(&user.id, &user.username);
                record(conn, event.with_detail("deactivated"))
            })?;
            writeln!(
                out,
                "Deactivated {}; every session and token of the user ended.",
                user.username
            )?;
        }
        Command::User(UserCommand::Delete { username }) => {
            let user = existing_user(conn, &username)?;
            crate::storage::write_transaction(conn, |conn| -> anyhow::Result<()> {
                users::delete(conn, &user.id)?;
                record(
                    conn,
                    cli_event(Kind::UserDeleted).with_user(&user.id, &user.username),
                )
            })?;
            writeln!(out, "Deleted {}.", user.username)?;
        }
        Command::User(UserCommand::ResetFactors { username }) => {
            security::reset_factors(conn, &username, &mut out)?;
        }
        Command::Audit(AuditCommand::List(args)) => security::audit_list(conn, args, &mut out)?,
        Command::User(UserCommand::List { json }) => {
            let list = users::list(conn)?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.id, "subject": u.subject, "username": u.username,
                            "email": u.email, "is_admin": u.is_admin, "is_active": u.is_active,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for u in list {
                    let roles = match (u.is_admin, u.is_active) {
                        (_, false) => " (deactivated)",
                        (true, true) => " (admin)",
                        (false, true) => "",
                    };
                    writeln!(out, "{}\t{}{roles}", u.username, u.email)?;
                }
            }
        }
        Command::Client(ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            client_id,
            public,
            skip_authorization,
            no_refresh_tokens,
            introspect,
            algorithm,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            requires_mfa,
            json,
        }) => {
            let mut grant_types = vec![GrantType::AuthorizationCode];
            if !no_refresh_tokens {
                grant_types.push(GrantType::RefreshToken);
            }
            let input = ClientInput {
                id: client_id,
                name,
                client_type: if public {
                    ClientType::Public
                } else {
                    ClientType::Confidential
                },
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                skip_authorization,
                id_token_signed_response_alg: Algorithm::parse(&algorithm)
                    .map_err(|_| clients::ClientInputError::Algorithm(algorithm.clone()))?,
                can_introspect: introspect,
                backchannel_logout_uri,
                backchannel_logout_session_required,
                requires_mfa,
            };
            let (client, secret) =
                crate::storage::write_transaction(conn, |conn| -> anyhow::Result<_> {
                    let created =
                        clients::create(conn, &input, &settings.allow_http_redirect_hosts)?;
                    record(
                        conn,
                        cli_event(Kind::ClientCreated).with_client(&created.0.id),
                    )?;
                    Ok(created)
                })?;
            if json {
                let value = serde_json::json!({
                    "client_id": client.id,
                    "client_secret": secret.as_ref().map(|s| s.secret()),
                    "name": client.name,
                    "client_type": client.client_type,
                    "redirect_uris": client.redirect_uris,
                    "post_logout_redirect_uris": client.post_logout_redirect_uris,
                    "can_introspect": client.can_introspect,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(out, "client_id: {}", client.id)?;
                match secret {
                    Some(secret) => {
                        writeln!(out, "client_secret: {}", secret.secret())?;
                        writeln!(
                            out,
                            "Store the secret now: it is kept only as a hash and cannot be shown again."
                        )?;
                    }
                    None => writeln!(out, "public client: no secret; use PKCE")?,
                }
            }
        }
        Command::Client(ClientCommand::List { json }) => {
            let list = clients::list(conn)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for c in list {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.name,
                        c.client_type.as_str(),
                        c.redirect_uris.join(" ")
                    )?;
                }
            }
        }
        Command::Keys(command) => {
            crate::key_ring::ensure_active_keys(conn)?;
            match command {
                KeysCommand::List { json } => {
                    let list = stored_keys::list(conn)?;
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                    } else {
                        for k in list {
                            writeln!(out, "{}\t{}\t{}", k.kid, k.alg, k.status)?;
                        }
                    }
                }
                KeysCommand::Rotate { algorithm } => {
                    let alg = Algorithm::parse(&algorithm)
                        .map_err(|e| anyhow::anyhow!("--algorithm: {e}"))?;
                    let kid = crate::key_ring::rotate_blocking(conn, alg, CLI_ACTOR)?;
                    writeln!(out, "New active {alg} key: {kid}")?;
                    writeln!(
                        out,
                        "Running servers pick it up within PROVIDER_KEYS_RELOAD_SECS ({} s).",
                        settings.keys_reload_secs
                    )?;
                }
                KeysCommand::Retire { kid } => match stored_keys::retire(conn, &kid)? {
                    RetireOutcome::Retired => writeln!(out, "Retired key {kid}.")?,
                    RetireOutcome::NotFound => anyhow::bail!("no signing key with id {kid}"),
                    RetireOutcome::Active => anyhow::bail!(
                        "key {kid} is active: rotate first (provider keys rotate --algorithm ...)"
                    ),
                    RetireOutcome::AlreadyRetired => anyhow::bail!("key {kid} is already retired"),
                },
            }
        }
    }
    Ok(())
}

/// `provider cleanup`: one full sweep, then the rows removed per kind.
fn cleanup(
    conn: &mut crate::storage::Conn,
    settings: &Settings,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let swept = crate::storage::sweep::sweep_blocking(
        conn,
        oidc_core::unix_now(),
        settings.audit_retention_days,
    )
    .context("removing expired codes and tokens")?;
    writeln!(out, "authorization codes: {}", swept.authorization_codes)?;
    writeln!(out, "access tokens: {}", swept.access_tokens)?;
    writeln!(out, "refresh tokens: {}", swept.refresh_tokens)?;
    writeln!(out, "grants: {}", swept.grants)?;
    writeln!(out, "audit events: {}", swept.audit_events)?;
    Ok(())
}

fn prompt(question: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}: ")?;
    stderr.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask for a password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    if first != second {
        anyhow::bail!("the passwords do not match");
    }
    Ok(first)
}

/// The user with `username`, or an error naming it.
fn existing_user(conn: &mut crate::storage::Conn, username: &str) -> anyhow::Result<users::User> {
    users::find_by_username(conn, username)?
        .ok_or_else(|| anyhow::anyhow!("no user named {username:?}"))
}

fn create_user(
    conn: &mut crate::storage::Conn,
    settings: &Settings,
    account: AccountArgs,
    admin: bool,
) -> anyhow::Result<users::User> {
    let asked = account.username.is_none();
    let username = match account.username {
        Some(username) => username,
        None => prompt("Username")?,
    };
    let username = Username::parse(&username).map_err(|e| anyhow::anyhow!("--username: {e}"))?;
    let email = match account.email {
        Some(email) => email,
        None if asked => prompt("E-mail address")?,
        None => String::new(),
    };
    let profile = Profile {
        email_verified: false,
        email,
        given_name: account.given_name,
        family_name: account.family_name,
        is_admin: admin,
    };
    profile.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = read_password(account.password_stdin)?;
    validate_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = hash_blocking(&password, settings.bcrypt_cost)?;
    crate::storage::write_transaction(conn, |conn| -> anyhow::Result<users::User> {
        let user = users::create(conn, &username, &hash, &profile)?;
        record(
            conn,
            cli_event(Kind::UserCreated).with_user(&user.id, &user.username),
        )?;
        Ok(user)
    })
}

/// The actor of the audit events of operator commands.
pub const CLI_ACTOR: &str = "cli";

/// An operator's successful action of `kind`.
fn cli_event(kind: Kind) -> Event {
    Event::new(kind, Outcome::Succeeded).with_actor(CLI_ACTOR)
}

/// Records `event` in the caller's transaction.
fn record(conn: &mut crate::storage::Conn, event: Event) -> anyhow::Result<()> {
    Ok(audit::record(conn, &event)?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings.log, settings.log_format);
    let issuer = settings.issuer.clone();
    let app = crate::startup::Application::build(settings).await?;
    tracing::info!(port = app.port(), issuer = %issuer, "provider listening");
    app.run_until_stopped().await?;
    Ok(())
}
