//! Why a CLI command did not succeed, and the exit code a script sees for it.

use std::process::ExitCode;

#[derive(Debug)]
pub enum CliError {
    /// The server refused the request, a build failed, a call answered ≥ 400, a local file
    /// could not be read or written: exit 1.
    Failed(String),
    /// The command cannot be carried out as given (arguments, folder, manifest): exit 2.
    Usage(String),
    /// No saved login, or the server refused its token: exit 3.
    NotSignedIn(String),
    /// No answer from the server: exit 4.
    Unreachable(String),
    /// Already reported on stderr (a call's status, say); only the exit code is left: exit 1.
    Reported,
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Failed(_) | CliError::Reported => 1,
            CliError::Usage(_) => 2,
            CliError::NotSignedIn(_) => 3,
            CliError::Unreachable(_) => 4,
        })
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            CliError::Failed(m) | CliError::Usage(m) | CliError::NotSignedIn(m) | CliError::Unreachable(m) => Some(m),
            CliError::Reported => None,
        }
    }

    /// A local file operation that failed, naming the file.
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> CliError {
        CliError::Failed(format!("cannot {what} {}: {e}", path.display()))
    }
}
