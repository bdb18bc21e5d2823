//! `skein`: the Skein server. `skein` / `skein serve` runs it; `skein migrate` only migrates;
//! `skein openapi` prints the OpenAPI document.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use skein_infra::provision::provision;
use skein_server::StartOptions;
use skein_server::config::Config;

#[derive(Parser)]
#[command(name = "skein", version, about = "Threaded conversations for people and AI assistants")]
struct Cli {
    /// TOML configuration file (default: ./skein.toml when present).
    #[arg(long, env = "SKEIN_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("skein: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        let doc = skein_server::openapi_document().to_pretty_json().map_err(|e| e.to_string())?;
        #[allow(clippy::print_stdout)]
        {
            println!("{doc}");
        }
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    let db = &config.database;
    let mut database = provision(Some(&db.url), &db.name, &db.data_dir).await.map_err(|e| e.to_string())?;
    tracing::info!(source = %database.source, "using PostgreSQL");
    let result = match command {
        Command::Migrate => skein_infra::store::migrate(&database.url)
            .await
            .map(|applied| tracing::info!(applied, "migrations applied"))
            .map_err(|e| e.to_string()),
        _ => match skein_server::start(
            &config,
            &database.url,
            StartOptions { handle_signals: true, ..Default::default() },
        )
        .await
        {
            Ok(server) => server.wait().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    database.shutdown();
    result
}
