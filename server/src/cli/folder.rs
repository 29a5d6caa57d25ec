//! A function's folder as `fn deploy` sends it: its manifest (`vcd-faas.json`, optional) and
//! its files, minus what is ignored.

use super::error::{CliError, CliResult};
use super::ignore::{IgnoreRules, IGNORE_FILE};
use app::model::{FileTree, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST_FILE: &str = "vcd-faas.json";

/// Deeper than this is taken for a symbolic link that loops.
const MAX_DEPTH: usize = 32;

/// `vcd-faas.json`: the function's settings, each optional. Field names and meanings are the
/// REST API's (`POST /api/v1/functions`).
#[derive(Deserialize, Serialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// `{"type": "http"}`, `{"type": "schedule", "cron": …, "timezone": …}`,
    /// `{"type": "vcd-event", "event": …}`: checked by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i64>,
}

/// What one deploy sends.
pub struct Deployment {
    pub name: String,
    pub language: Language,
    pub files: FileTree,
    /// The manifest's settings (name and language resolved above).
    pub settings: Manifest,
}

/// Reads `folder`: the manifest, the files, and the name (`name_flag`, else the manifest's,
/// else the folder's own) and language (the manifest's, else the entry file's).
pub fn read(folder: &Path, name_flag: Option<&str>) -> CliResult<Deployment> {
    let meta = std::fs::metadata(folder).map_err(|e| CliError::Usage(format!("cannot open the folder {}: {e}", folder.display())))?;
    if !meta.is_dir() {
        return Err(CliError::Usage(format!("{} is not a folder: give the function's folder", folder.display())));
    }
    let settings = read_manifest(folder)?;
    let ignore_lines = read_optional(&folder.join(IGNORE_FILE))?;
    let rules = IgnoreRules::new(&[MANIFEST_FILE, IGNORE_FILE], ignore_lines.as_deref()).map_err(CliError::Usage)?;
    let mut files = FileTree::new();
    collect(folder, "", &rules, &mut files, 0)?;
    let language = language_of(&settings, &files)?;
    let name = match name_flag.or(settings.name.as_deref()) {
        Some(name) => name.to_string(),
        None => folder_name(folder)?,
    };
    app::model::validate_name("function name", &name).map_err(|why| {
        CliError::Usage(format!("{why} (got {name:?}): set \"name\" in {MANIFEST_FILE} or pass --name"))
    })?;
    if !files.contains_key(language.entry_file()) {
        return Err(CliError::Usage(format!(
            "{} has no {}: a {} function's entry file must be at the folder's root",
            folder.display(),
            language.entry_file(),
            language.label()
        )));
    }
    Ok(Deployment { name, language, files, settings: Manifest { name: None, language: None, ..settings } })
}

fn read_manifest(folder: &Path) -> CliResult<Manifest> {
    let path = folder.join(MANIFEST_FILE);
    let Some(text) = read_optional(&path)? else { return Ok(Manifest::default()) };
    serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{}: {e}; the fields are name, language, memory_mb, timeout_ms, env, public, trigger, mode, max_instances, min_instances, concurrency",
            path.display()
        ))
    })
}

fn read_optional(path: &Path) -> CliResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

fn language_of(settings: &Manifest, files: &FileTree) -> CliResult<Language> {
    if let Some(given) = &settings.language {
        return Language::parse(given).ok_or_else(|| {
            CliError::Usage(format!("{MANIFEST_FILE}: language {given:?} is not one of \"nodejs\", \"python\""))
        });
    }
    let present: Vec<Language> = Language::ALL.iter().copied().filter(|l| files.contains_key(l.entry_file())).collect();
    match present.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::Usage("no handler.js or handler.py in the folder: is it a function's folder? (`vcd-faas fn init` makes one)".into())),
        _ => Err(CliError::Usage(format!("the folder has both handler.js and handler.py: set \"language\" in {MANIFEST_FILE}"))),
    }
}

fn folder_name(folder: &Path) -> CliResult<String> {
    let absolute = std::fs::canonicalize(folder).map_err(|e| CliError::Usage(format!("cannot resolve {}: {e}", folder.display())))?;
    absolute
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| CliError::Usage(format!("{} has no name to use: set \"name\" in {MANIFEST_FILE} or pass --name", folder.display())))
}

/// Adds the files under `dir` (at `prefix` in the tree), in name order.
fn collect(dir: &Path, prefix: &str, rules: &IgnoreRules, files: &mut FileTree, depth: usize) -> CliResult {
    if depth > MAX_DEPTH {
        return Err(CliError::Usage(format!("{} is nested more than {MAX_DEPTH} folders deep (a symbolic link to a folder above it?)", dir.display())));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read the folder", dir, e))?;
    let mut entries: Vec<_> = entries.collect::<Result<_, _>>().map_err(|e| CliError::io("read the folder", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(CliError::Usage(format!("{} has a name that is not UTF-8: rename it or add it to {IGNORE_FILE}", path.display())));
        };
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        // Follows links: a link to a file sends the file's contents.
        let meta = std::fs::metadata(&path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        if rules.ignores(&relative, meta.is_dir()) {
            continue;
        }
        if meta.is_dir() {
            collect(&path, &relative, rules, files, depth + 1)?;
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).map_err(|e| CliError::io("read", &path, e))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                CliError::Usage(format!("{relative} is not UTF-8 text: a function's files are text; add it to {IGNORE_FILE} to leave it out"))
            })?;
            files.insert(relative, text);
        }
    }
    Ok(())
}
