use clap::Parser;
use server::config::{Command, Config, VcdAction};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn,bollard=warn".into()),
        )
        .init();
    let config = Config::parse();
    let result = match config.command {
        Some(Command::PrepareImages) => server::startup::prepare_images(&config).await,
        Some(Command::Vcd { action: VcdAction::Unregister }) => server::startup::unregister_from_vcd(&config).await,
        Some(Command::Serve) | None => server::startup::serve(config).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vcd-faas: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
