//! The web app binary: parse the command line and run it (`serve` sets up logging from the
//! settings).

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = webapp::cli::Cli::parse();
    match webapp::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webapp: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
