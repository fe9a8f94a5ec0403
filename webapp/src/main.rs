//! The web app binary: parse the command line, set up logging, run.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Malformed requests of clients are counted, not logged as errors; no colours off a terminal.
    servicekit::logging::init(&std::env::var("WEBAPP_LOG").unwrap_or_else(|_| "info".into()));
    let cli = webapp::cli::Cli::parse();
    match webapp::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webapp: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
