//! Operator commands about security: reading the audit log and resetting a user's second
//! factors.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;

use crate::storage::Conn;
use crate::storage::audit::{Event, EventRow, Kind, Outcome};
use crate::storage::audit_query::{self, Filter, MAX_PAGE, PageSize};

/// Events printed by `audit list` at most.
const MAX_LIST: u32 = 100_000;

/// Which events `provider audit list` prints, newest first.
#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// A user's id or username.
    #[arg(long)]
    pub user: Option<String>,
    /// An event kind, e.g. sign_in, factors_reset, client_created.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<Kind>,
    /// succeeded, failed or throttled.
    #[arg(long, value_parser = parse_outcome)]
    pub outcome: Option<Outcome>,
    /// An application's client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Events at or after this time (unix seconds).
    #[arg(long, conflicts_with = "days", value_parser = clap::value_parser!(i64).range(0..))]
    pub since: Option<i64>,
    /// Events of the last N days.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: Option<u32>,
    /// Print at most N events.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIST)))]
    pub limit: u32,
    /// Print JSON Lines: one JSON object per event and line, newest first, with the fields
    /// id, at (unix seconds), kind, outcome, user_id, username, client_id, client_addr,
    /// actor and detail. Without it, a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_kind(name: &str) -> Result<Kind, String> {
    Kind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind (one of: {})", known.join(", "))
    })
}

fn parse_outcome(name: &str) -> Result<Outcome, String> {
    Outcome::parse(name).ok_or_else(|| "one of: succeeded, failed, throttled".to_owned())
}

/// `provider audit list`.
pub fn audit_list(
    conn: &mut Conn,
    args: AuditListArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let since = match (args.since, args.days) {
        (Some(since), _) => Some(since),
        (None, Some(days)) => Some(oidc_core::unix_now() - i64::from(days) * 86_400),
        (None, None) => None,
    };
    let mut filter = Filter {
        user: args.user,
        kind: args.kind,
        outcome: args.outcome,
        client_id: args.client,
        since,
        ..Filter::default()
    };
    let mut events: Vec<EventRow> = Vec::new();
    let mut left = args.limit;
    while left > 0 {
        filter.limit = PageSize::new(left.min(MAX_PAGE)).context("page size")?;
        let page = audit_query::list(conn, &filter).context("reading the audit log")?;
        left -= page.events.len() as u32;
        events.extend(page.events);
        match page.next_before_id {
            Some(id) => filter.before_id = Some(id),
            None => break,
        }
    }
    if args.json {
        for event in &events {
            writeln!(out, "{}", serde_json::to_string(event)?)?;
        }
    } else {
        print_table(&events, out)?;
    }
    Ok(())
}

fn print_table(events: &[EventRow], out: &mut impl Write) -> anyhow::Result<()> {
    let header = [
        "ID",
        "TIME (UTC)",
        "KIND",
        "OUTCOME",
        "USER",
        "CLIENT",
        "ADDRESS",
        "ACTOR",
        "DETAIL",
    ];
    let rows: Vec<[String; 9]> = events
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                crate::admin::format_time(e.at)
                    .trim_end_matches(" UTC")
                    .to_owned(),
                e.kind.clone(),
                e.outcome.clone(),
                e.username.clone(),
                e.client_id.clone().unwrap_or_default(),
                e.client_addr.clone(),
                e.actor.clone().unwrap_or_default(),
                e.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(())
}

/// `provider user reset-factors`: removes the user's second factors and ends every session,
/// grant and token of the user, recording `factors_reset` by the operator.
pub fn reset_factors(conn: &mut Conn, username: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let user = super::existing_user(conn, username)?;
    let event = Event::new(Kind::FactorsReset, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_actor(super::CLI_ACTOR);
    let removed = crate::storage::write_transaction(conn, |conn| {
        crate::storage::factors::reset_and_end_sessions(
            conn,
            &user.id,
            event,
            oidc_core::unix_now(),
        )
    })?;
    writeln!(
        out,
        "Second factors of {} removed (authenticator apps: {}, recovery codes: {}, passkeys: {}); every session and token of the user ended.",
        user.username, removed.totp, removed.recovery_codes, removed.passkeys
    )?;
    Ok(())
}
