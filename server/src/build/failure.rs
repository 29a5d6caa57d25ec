//! Why a build failed, as the version keeps it and the build log ends with it.

/// The reason kept with the version, and whether the build's output (the log above the
/// verdict) has the tool's whole message (the interpreter's or the package manager's).
pub struct BuildFailure {
    pub reason: String,
    pub in_output: bool,
}

impl BuildFailure {
    /// A failure whose tool printed its whole message into the build log.
    pub fn with_output(reason: String) -> BuildFailure {
        BuildFailure { reason, in_output: true }
    }

    pub fn log_line(&self) -> String {
        match self.in_output {
            true => format!("{} (the whole message is above)", self.reason),
            false => self.reason.clone(),
        }
    }
}

impl From<String> for BuildFailure {
    fn from(reason: String) -> BuildFailure {
        BuildFailure { reason, in_output: false }
    }
}
