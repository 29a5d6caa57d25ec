use clap::Parser;
use server::config::{Command, Config, CpuPriority, VcdAction};

// A call allocates and frees many small buffers across threads; glibc's malloc took 12 % of
// the server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> std::process::ExitCode {
    // The developer CLI parses its own arguments: the server's settings (and the environment
    // variables they read) play no part in it.
    if std::env::args_os().nth(1).is_some_and(|first| first == "fn") {
        return server::cli::main(std::env::args_os().skip(2));
    }
    let config = Config::parse();
    if let Some(Command::Fn { command }) = config.command {
        return server::cli::run(command);
    }
    let serving = matches!(config.command, Some(Command::Serve) | Some(Command::Node) | None);
    if serving && config.cpu_priority == CpuPriority::Batch {
        // Before any other thread starts: they all take the calling thread's priority.
        if let Err(e) = server::ops::cpu_priority::yield_to_functions() {
            eprintln!("vcd-faas: keeping the normal CPU priority: {e}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.request_threads())
        // Server-side rendering of the function page recurses through its nested views; in a
        // debug build that outgrew tokio's default 2 MiB and aborted the server.
        .thread_stack_size(WORKER_STACK_BYTES)
        .enable_all()
        .build()
        .expect("the async runtime starts");
    runtime.block_on(run(config))
}

async fn run(config: Config) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn,bollard=warn".into()),
        )
        .init();
    let result = match config.command {
        Some(Command::PrepareImages) => server::startup::prepare_images(&config).await,
        Some(Command::Vcd { action: VcdAction::Unregister }) => server::startup::unregister_from_vcd(&config).await,
        Some(Command::Serve) | None => server::startup::serve(config).await,
        Some(Command::Node) => server::cluster::node::run(config).await,
        Some(Command::Fn { .. }) => unreachable!("the CLI runs before the server's runtime starts"),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vcd-faas: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
