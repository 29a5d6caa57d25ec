//! Reading a password: from the terminal without echo, or from stdin for scripts.

use super::error::{CliError, CliResult};
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;

/// The first line of stdin, without its line end.
pub fn from_stdin() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Failed(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::Usage("--password-stdin: stdin gave no password (pipe it in: `echo \"$PASSWORD\" | vcd-faas fn login … --password-stdin`)".into()));
    }
    Ok(password)
}

/// Asks on the terminal (`/dev/tty`), with echo off while the password is typed.
pub fn prompt(question: &str) -> CliResult<String> {
    let no_terminal = |e: std::io::Error| {
        CliError::Usage(format!("cannot ask for the password ({e}): no terminal; pass it with --password-stdin"))
    };
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(no_terminal)?;
    let mut writer = &tty;
    // Echo off before the prompt shows: keys typed as soon as it appears stay unseen.
    let echo = EchoOff::on(&tty);
    write!(writer, "{question}").and_then(|()| writer.flush()).map_err(no_terminal)?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    drop(echo);
    let _ = writeln!(writer);
    read.map_err(no_terminal)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The terminal's echo turned off until dropped, however the read ends.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn on(tty: &std::fs::File) -> EchoOff {
        let fd = tty.as_raw_fd();
        // SAFETY: `fd` is an open terminal for the life of `tty`; termios is plain data.
        let saved = unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(fd, &mut settings) == 0).then_some(settings)
        };
        if let Some(saved) = saved {
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        }
        EchoOff { fd, saved }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, saved) };
        }
    }
}
