//! What the Environment section's rows send, and what its secret rows become after a save.
//! Plain data, no signals, so the rules are tested without a browser.

use crate::model::{EnvVars, SecretsChange};

/// One secret row. `stored`: the platform has it (the portal knows its name only).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretEntry {
    pub name: String,
    pub stored: bool,
    /// A new value typed in; empty keeps a stored secret as it is.
    pub value: String,
    /// A stored secret marked for removal.
    pub removed: bool,
}

/// True when a new row has nothing in it: such a row is not sent.
fn blank(name: &str, value: &str) -> bool {
    name.trim().is_empty() && value.is_empty()
}

/// All variables, by trimmed name (the server answers at `env/<that name>`); blank rows left out.
pub fn env_of(rows: impl IntoIterator<Item = (String, String)>) -> EnvVars {
    rows.into_iter().filter(|(n, v)| !blank(n, v)).map(|(n, v)| (n.trim().to_string(), v)).collect()
}

/// The change the rows ask for: a typed value sets, a removed stored secret is null, and a
/// stored secret left alone is not mentioned (so it stays).
pub fn secrets_change(rows: &[SecretEntry]) -> SecretsChange {
    rows.iter()
        .filter_map(|r| {
            let name = r.name.trim().to_string();
            match (r.stored, r.removed) {
                (true, true) => Some((name, None)),
                (true, false) => (!r.value.is_empty()).then(|| (name, Some(r.value.clone()))),
                (false, _) => (!blank(&r.name, &r.value)).then(|| (name, Some(r.value.clone()))),
            }
        })
        .collect()
}

/// A row once the platform took `secrets_change`: a removed or blank one is gone, a new one
/// is stored, and a typed value is cleared (the portal keeps no secret longer than it must).
pub fn after_save(row: &SecretEntry) -> Option<SecretEntry> {
    let gone = if row.stored { row.removed } else { blank(&row.name, &row.value) };
    (!gone).then(|| SecretEntry { name: row.name.trim().to_string(), stored: true, value: String::new(), removed: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, stored: bool, value: &str, removed: bool) -> SecretEntry {
        SecretEntry { name: name.into(), stored, value: value.into(), removed }
    }

    #[test]
    fn variables_skip_blank_rows_and_trim_names() {
        let env = env_of([(" A ".to_string(), "1".to_string()), (String::new(), String::new()), ("B".into(), String::new())]);
        assert_eq!(env, EnvVars::from([("A".into(), "1".into()), ("B".into(), String::new())]));
    }

    #[test]
    fn secrets_set_remove_and_leave_alone() {
        let rows = [row("KEEP", true, "", false), row("NEW_VAL", true, "v2", false), row("GONE", true, "", true), row("ADDED", false, "x", false), row("", false, "", false)];
        let change = secrets_change(&rows);
        assert_eq!(change, SecretsChange::from([("NEW_VAL".into(), Some("v2".into())), ("GONE".into(), None), ("ADDED".into(), Some("x".into()))]));
        let after: Vec<SecretEntry> = rows.iter().filter_map(after_save).collect();
        assert_eq!(after.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["KEEP", "NEW_VAL", "ADDED"]);
        assert!(after.iter().all(|r| r.stored && r.value.is_empty() && !r.removed));
    }
}
