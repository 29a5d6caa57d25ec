//! `vcd-faas fn …`: the developer CLI. A client of the REST API only: it starts no server and
//! needs no database, Docker engine or server setting.
//! - `args`: the commands and their help; `error`: failures and their exit codes;
//! - `config`: the saved login (mode 0600); `password`: reading the password;
//! - `http`: API requests and the server's errors; `sse`: the log stream's events;
//! - `session` (login, logout, whoami), `init`, `folder` + `ignore` (what a deploy sends),
//!   `functions` (deploy, list, delete), `invoke`, `logs`.

pub mod args;
mod config;
mod error;
mod folder;
mod functions;
mod http;
mod ignore;
mod init;
mod invoke;
mod logs;
mod password;
mod session;
mod sse;

use args::{FnCli, FnCommand};
use clap::Parser;
use std::process::ExitCode;

/// `vcd-faas fn <args…>`: `args` are the process's arguments after `fn`.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = FnCli::parse_from(std::iter::once("vcd-faas fn".into()).chain(args));
    run(cli.command)
}

pub fn run(command: FnCommand) -> ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away
    // (`vcd-faas fn list | head -1`) instead of failing on the write.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("the async runtime starts");
    match runtime.block_on(dispatch(&command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = e.message() {
                eprintln!("vcd-faas: {message}");
            }
            e.exit_code()
        }
    }
}

async fn dispatch(command: &FnCommand) -> error::CliResult {
    match command {
        FnCommand::Login(args) => session::login(args).await,
        FnCommand::Logout => session::logout().await,
        FnCommand::Whoami => session::whoami().await,
        FnCommand::Init(args) => init::init(args),
        FnCommand::Deploy(args) => functions::deploy(args).await,
        FnCommand::Invoke(args) => invoke::invoke(args).await,
        FnCommand::Logs(args) => logs::logs(args).await,
        FnCommand::List(args) => functions::list(args).await,
        FnCommand::Delete(args) => functions::delete(args).await,
    }
}
