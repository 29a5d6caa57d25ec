//! A function's configuration: its plain variables, kept with each version, and its secrets,
//! sealed on the function (a version keeps only their names). A change of either is a new
//! version that serves from the same image (see the builder), at once.

use super::{Result, Service};
use crate::store::FunctionRow;
use app::env::clashes;
use app::model::{EnvVars, FunctionSpec};
use app::platform::PlatformError;

/// What a function will have once a spec is applied.
pub(super) struct Configuration {
    pub env: EnvVars,
    pub secret_names: Vec<String>,
    pub sealed_secrets: Option<String>,
}

impl Service {
    /// The function's secrets in the clear, to apply a change to them.
    fn secrets_of(&self, f: &FunctionRow) -> Result<EnvVars> {
        let Some(sealed) = &f.sealed_secrets else { return Ok(EnvVars::new()) };
        let opened = self.secret_key.open(sealed, &f.secrets_context()).map_err(PlatformError::internal)?;
        serde_json::from_slice(&opened).map_err(PlatformError::internal)
    }

    /// The configuration after `spec`: variables replaced when given, kept otherwise; secrets set
    /// (a value), removed (`null`) or kept (left out). `stored` is the function being updated
    /// with the variables of its latest version.
    pub(super) fn configuration(&self, context: &str, spec: &FunctionSpec, stored: Option<(&FunctionRow, EnvVars)>) -> Result<Configuration> {
        let (mut secrets, kept_env) = match stored {
            Some((f, env)) => (self.secrets_of(f)?, env),
            None => (EnvVars::new(), EnvVars::new()),
        };
        for (name, value) in spec.secrets.iter().flatten() {
            match value {
                Some(value) => secrets.insert(name.clone(), value.clone()),
                None => secrets.remove(name),
            };
        }
        let env = spec.env.clone().unwrap_or(kept_env);
        let secret_names: Vec<String> = secrets.keys().cloned().collect();
        let clashing = clashes(env.keys(), &secret_names);
        if !clashing.is_empty() {
            return Err(PlatformError::Invalid(clashing));
        }
        let sealed_secrets = (!secrets.is_empty())
            .then(|| self.secret_key.seal(&serde_json::to_vec(&secrets).expect("a map of strings serializes"), context));
        Ok(Configuration { env, secret_names, sealed_secrets })
    }
}
