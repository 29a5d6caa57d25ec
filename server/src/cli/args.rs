//! The command line of `vcd-faas fn …`: commands, flags and their help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done
  1  failed: the server refused the request (its message is printed), a build failed,
     a call answered 400 or more, or a local file could not be read or written
  2  usage error: a wrong flag or argument, a folder or manifest that cannot be deployed
  3  not signed in, or the server refused the saved token: run `vcd-faas fn login`
  4  cannot reach the server (address, network, TLS)

The login is kept in ~/.config/vcd-faas/cli.json (mode 0600); VCD_FAAS_CLI_CONFIG names another file.";

/// `vcd-faas fn …` on its own: parsed without the server's settings, so the CLI reads none of
/// the server's environment and needs no database, Docker engine or data folder.
#[derive(Parser, Debug)]
#[command(name = "vcd-faas fn", version, about = "Develop, deploy and call functions from a shell or a CI pipeline", after_help = EXIT_CODES_HELP)]
pub struct FnCli {
    #[command(subcommand)]
    pub command: FnCommand,
}

#[derive(Subcommand, Clone, Debug)]
#[command(after_help = EXIT_CODES_HELP)]
pub enum FnCommand {
    /// Sign in to a portal and keep a token for the other commands.
    #[command(after_help = EXIT_CODES_HELP)]
    Login(LoginArgs),
    /// Revoke the saved token and forget the login.
    #[command(after_help = EXIT_CODES_HELP)]
    Logout,
    /// Show who the saved login is, and check that the server still accepts its token.
    #[command(after_help = EXIT_CODES_HELP)]
    Whoami,
    /// Make a folder with a working function, ready for `fn deploy`.
    #[command(after_help = EXIT_CODES_HELP)]
    Init(InitArgs),
    /// Create or update a function from a folder, wait for its build and print its URL.
    #[command(after_help = DEPLOY_HELP)]
    Deploy(DeployArgs),
    /// Call a function: the answer's body goes to stdout, its status to stderr.
    #[command(after_help = EXIT_CODES_HELP)]
    Invoke(InvokeArgs),
    /// Show a function's recent calls with their logs; `--follow` keeps showing new ones.
    #[command(after_help = EXIT_CODES_HELP)]
    Logs(LogsArgs),
    /// List the functions of your org.
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListArgs),
    /// Delete a function: its route answers 404 at once, its containers and images go after.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

#[derive(Args, Clone, Debug)]
pub struct LoginArgs {
    /// The portal's address, e.g. https://faas.example.com or http://127.0.0.1:3000.
    #[arg(long)]
    pub url: String,
    /// Your organization (tenant) name; `provider` for the provider admin.
    #[arg(long)]
    pub org: String,
    /// Your username in that organization.
    #[arg(long = "user", value_name = "NAME")]
    pub user: String,
    /// Read the password from the first line of stdin (for scripts) instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
    /// Days the token lasts (default: the provider's default).
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<i64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanguageArg {
    Nodejs,
    Python,
}

impl LanguageArg {
    pub fn language(self) -> app::model::Language {
        match self {
            LanguageArg::Nodejs => app::model::Language::Nodejs,
            LanguageArg::Python => app::model::Language::Python,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct InitArgs {
    /// The function's name: lowercase letters, digits and '-'.
    pub name: String,
    #[arg(long, value_enum)]
    pub language: LanguageArg,
    /// Where to make the folder (default: ./<name>). It must not exist or be empty.
    #[arg(long, value_name = "FOLDER")]
    pub dir: Option<PathBuf>,
}

pub const DEPLOY_HELP: &str = "\
The folder holds the function's files: the entry file (handler.js or handler.py) and any
others (package.json or requirements.txt are installed by the platform at build time).
Every file is sent except vcd-faas.json, .vcdfaasignore and what is ignored: .git/,
node_modules/, __pycache__/, __pypackages__/, .venv/, venv/, *.pyc, .DS_Store and the
lines of .vcdfaasignore (gitignore-like: `dir/`, `*.log`, `docs/draft.md`, `#` comments).

An optional vcd-faas.json in the folder gives the function's settings, e.g.
  {\"name\": \"hello\", \"language\": \"python\", \"memory_mb\": 256, \"timeout_ms\": 5000,
   \"env\": {\"LEVEL\": \"debug\"}, \"public\": false, \"trigger\": {\"type\": \"http\"},
   \"mode\": \"warm\", \"max_instances\": 4, \"min_instances\": 0, \"concurrency\": 1}
All fields are optional: the name defaults to the folder's name, the language to the entry
file's. Settings left out keep their current value on an update (new function: the defaults).

Exit codes:
  0  ready: the URL is printed on stdout
  1  the server refused the function (each field's error printed), the build failed
     (the build's error printed), or it did not end within --wait
  2  usage error, or a folder/manifest that cannot be deployed (what to fix is printed)
  3  not signed in, or the saved token was refused: run `vcd-faas fn login`
  4  cannot reach the server";

#[derive(Args, Clone, Debug)]
pub struct DeployArgs {
    /// The function's folder (default: the current folder).
    #[arg(default_value = ".")]
    pub folder: PathBuf,
    /// The function's name, over the manifest's and the folder's.
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds to wait for the build before giving up (exit 1; the build goes on).
    #[arg(long = "wait", value_name = "SECONDS", default_value_t = 600)]
    pub wait_secs: u64,
    /// Return once the server took the version, without waiting for its build.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Clone, Debug)]
pub struct InvokeArgs {
    pub name: String,
    /// HTTP method (default: POST with data, GET without).
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// The path after the function's route, with a query if any: `/items/1?full=true`.
    #[arg(long, default_value = "")]
    pub path: String,
    /// A request header, `Name: value`; may be repeated.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body: text, `@file` for a file's contents, `@-` for stdin.
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Run the call later (`X-Invoke-Type: async`): prints the invocation's id at once.
    #[arg(long = "async")]
    pub run_async: bool,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Args, Clone, Debug)]
pub struct LogsArgs {
    pub name: String,
    /// Keep the connection open and print each call as it ends (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many recent calls to show first.
    #[arg(long, default_value_t = 10)]
    pub tail: u32,
    /// One JSON object per call, one per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone, Debug)]
pub struct ListArgs {
    /// A JSON array (name, language, status, version, latest_version, build_status, url, …).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone, Debug)]
pub struct DeleteArgs {
    pub name: String,
}
