//! A function's configuration: plain environment variables, shown everywhere, and secrets,
//! whose values are write-only. Both reach the function as `process.env.NAME` /
//! `os.environ["NAME"]`. The portal and the server check them with the same rules.

use crate::model::FieldError;

pub use crate::model::{EnvVars, SecretsChange};

/// Most variables, and most secrets, a function may have.
pub const MAX_VARS: usize = 100;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Names the platform keeps for itself.
const RESERVED_PREFIX: &str = "VCD_FAAS_";

/// `[A-Z_][A-Z0-9_]*`, not starting with `VCD_FAAS_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("{name:?} is not a variable name: use capital letters, digits and _, not starting with a digit (e.g. API_URL)"));
    }
    if name.len() > 128 {
        return Err(format!("{name:?} is longer than 128 characters"));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(format!("{name:?}: names starting with {RESERVED_PREFIX} are the platform's"));
    }
    Ok(())
}

/// The errors of a set of names and values, at `<field>/<NAME>`; `what` is "variable" or "secret".
pub fn validate_vars<'a>(field: &str, what: &str, vars: impl ExactSizeIterator<Item = (&'a String, Option<&'a String>)>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if vars.len() > MAX_VARS {
        errors.push(FieldError::new(field, format!("{} {what}s; a function may have at most {MAX_VARS}", vars.len())));
    }
    for (name, value) in vars {
        let at = format!("{field}/{name}");
        if let Err(e) = check_name(name) {
            errors.push(FieldError::new(at, e));
        } else if let Some(value) = value {
            if value.len() > MAX_VALUE_BYTES {
                errors.push(FieldError::new(at, format!("the {what} {name} is {} bytes; the most is {MAX_VALUE_BYTES}", value.len())));
            } else if value.contains('\0') {
                errors.push(FieldError::new(at, format!("the {what} {name} has a NUL character, which an environment cannot hold")));
            }
        }
    }
    errors
}

/// A name that is both a variable and a secret would make one of them silently lost.
pub fn clashes<'a>(env: impl Iterator<Item = &'a String>, secrets: &[String]) -> Vec<FieldError> {
    env.filter(|name| secrets.contains(name))
        .map(|name| FieldError::new(format!("env/{name}"), format!("{name} is also a secret: a name is either a variable or a secret")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_environment_rules() {
        for good in ["API_URL", "_X", "A1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "api_url", "1A", "A-B", "VCD_FAAS_TOKEN", "A B"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn too_many_too_long_and_nul_are_refused_at_the_name() {
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let vars: EnvVars = [("OK".to_string(), "1".to_string()), ("LONG".to_string(), long), ("NUL".to_string(), "a\0b".to_string())].into();
        let errors = validate_vars("env", "variable", vars.iter().map(|(k, v)| (k, Some(v))));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["env/LONG", "env/NUL"]);
        let many: EnvVars = (0..=MAX_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        assert_eq!(validate_vars("env", "variable", many.iter().map(|(k, v)| (k, Some(v))))[0].field, "env");
    }
}
