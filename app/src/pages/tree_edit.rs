//! What the file tabs do to a function's tree, as plain functions: which file comes first, what
//! a new or renamed path must meet, what a language switch keeps, and how two versions differ.

use crate::files::FileTree;
use crate::model::Language;

/// The editor's syntax for a file, by its extension: `javascript`, `python`, `json` or `text`.
pub fn editor_language(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("js" | "mjs" | "cjs" | "jsx" | "ts") => "javascript",
        Some("py" | "pyi") => "python",
        Some("json") => "json",
        _ => "text",
    }
}

/// The tabs in the order people look for them: the entry file, the manifest, then the rest.
pub fn tab_order(files: &FileTree, language: Language) -> Vec<String> {
    let entry = language.entry_file();
    let manifest = language.manifest_example().0;
    let rank = |path: &str| if path == entry { 0 } else if path == manifest { 1 } else { 2 };
    let mut paths: Vec<String> = files.keys().cloned().collect();
    // BTreeMap order within each rank keeps folders together.
    paths.sort_by_key(|p| rank(p));
    paths
}

/// A new function's files: the language's hello template as its entry file.
pub fn template_tree(language: Language) -> FileTree {
    FileTree::from([(language.entry_file().to_string(), language.hello_template().to_string())])
}

/// The tree after the language select changed: an untouched template becomes the other
/// language's template; otherwise the files stay and the new entry file is added if missing.
pub fn switch_language(files: &FileTree, from: Language, to: Language) -> FileTree {
    let untouched = files.len() == 1
        && files.get(from.entry_file()).is_some_and(|code| code.trim().is_empty() || code == from.hello_template());
    if untouched {
        return template_tree(to);
    }
    let mut files = files.clone();
    files.entry(to.entry_file().to_string()).or_insert_with(|| to.hello_template().to_string());
    files
}

/// A path typed for a new or renamed file, trimmed, or why it cannot be used. Whether it is a
/// valid path is shown at its tab (the same check the server makes), so it is not refused here.
pub fn new_path(files: &FileTree, typed: &str, renaming: Option<&str>) -> Result<String, String> {
    let path = typed.trim().to_string();
    if path.is_empty() {
        return Err("type the file's path, e.g. lib/util.js".into());
    }
    if Some(path.as_str()) == renaming {
        return Err("that is its name already".into());
    }
    if files.contains_key(&path) {
        return Err(format!("there is a file {path} already"));
    }
    Ok(path)
}

/// Whether a tab may be renamed or deleted: the entry file stays, as the runtime loads it.
pub fn is_entry(path: &str, language: Language) -> bool {
    path == language.entry_file()
}

/// Moves one file's content to another path.
pub fn rename(files: &mut FileTree, from: &str, to: &str) {
    if let Some(content) = files.remove(from) {
        files.insert(to.to_string(), content);
    }
}

/// Bytes counted against the provider's limit: paths and contents, as the server counts them.
pub fn tree_bytes(files: &FileTree) -> usize {
    files.iter().map(|(path, content)| path.len() + content.len()).sum()
}

/// "1 file", "3 files".
pub fn files_count(n: usize) -> String {
    if n == 1 { "1 file".into() } else { format!("{n} files") }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One file of a comparison: its text before and after (empty where it did not exist).
#[derive(Clone, Debug, PartialEq)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub before: String,
    pub after: String,
}

/// Every path of either tree, with what happened to it from `before` to `after`.
pub fn compare_trees(before: &FileTree, after: &FileTree) -> Vec<FileChange> {
    let mut paths: Vec<&String> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let (old, new) = (before.get(path), after.get(path));
            let change = match (old, new) {
                (None, _) => Change::Added,
                (_, None) => Change::Removed,
                (Some(a), Some(b)) if a == b => Change::Unchanged,
                _ => Change::Changed,
            };
            FileChange { path: path.clone(), change, before: old.cloned().unwrap_or_default(), after: new.cloned().unwrap_or_default() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, &str)]) -> FileTree {
        entries.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()
    }

    #[test]
    fn the_editor_language_follows_the_extension() {
        assert_eq!(editor_language("handler.js"), "javascript");
        assert_eq!(editor_language("lib/util.MJS"), "javascript");
        assert_eq!(editor_language("handler.py"), "python");
        assert_eq!(editor_language("package-lock.json"), "json");
        assert_eq!(editor_language("requirements.txt"), "text");
        assert_eq!(editor_language("v1.2/README"), "text");
    }

    #[test]
    fn the_entry_file_and_manifest_come_first() {
        let files = tree(&[("a.js", ""), ("handler.js", ""), ("lib/z.js", ""), ("package.json", "{}")]);
        assert_eq!(tab_order(&files, Language::Nodejs), ["handler.js", "package.json", "a.js", "lib/z.js"]);
    }

    #[test]
    fn switching_language_swaps_an_untouched_template_and_keeps_written_code() {
        let js = template_tree(Language::Nodejs);
        assert_eq!(switch_language(&js, Language::Nodejs, Language::Python), template_tree(Language::Python));
        let written = tree(&[("handler.js", "module.exports = () => 'mine'"), ("lib/a.js", "x")]);
        let switched = switch_language(&written, Language::Nodejs, Language::Python);
        assert_eq!(switched.get("handler.js").map(String::as_str), Some("module.exports = () => 'mine'"));
        assert_eq!(switched.get("handler.py").map(String::as_str), Some(Language::Python.hello_template()));
        assert_eq!(switched.len(), 3);
    }

    #[test]
    fn a_new_path_must_be_typed_and_free() {
        let files = tree(&[("handler.js", ""), ("lib/a.js", "")]);
        assert_eq!(new_path(&files, "  lib/b.js ", None), Ok("lib/b.js".into()));
        assert!(new_path(&files, " ", None).unwrap_err().contains("type the file's path"));
        assert!(new_path(&files, "lib/a.js", None).unwrap_err().contains("there is a file lib/a.js already"));
        assert!(new_path(&files, "lib/a.js", Some("lib/a.js")).unwrap_err().contains("its name already"));
        // Bad paths are shown at their tab, by the server's own check, rather than refused here.
        assert_eq!(new_path(&files, "../x.js", None), Ok("../x.js".into()));
    }

    #[test]
    fn renaming_moves_the_content() {
        let mut files = tree(&[("handler.js", "h"), ("a.js", "content")]);
        rename(&mut files, "a.js", "lib/b.js");
        assert_eq!(files, tree(&[("handler.js", "h"), ("lib/b.js", "content")]));
        assert!(is_entry("handler.js", Language::Nodejs) && !is_entry("handler.js", Language::Python));
        assert_eq!(tree_bytes(&files), "handler.js".len() + 1 + "lib/b.js".len() + 7);
        assert_eq!((files_count(1).as_str(), files_count(2).as_str()), ("1 file", "2 files"));
    }

    #[test]
    fn a_comparison_names_added_removed_changed_and_unchanged_files() {
        let before = tree(&[("handler.js", "v1"), ("gone.js", "old"), ("same.js", "s")]);
        let after = tree(&[("handler.js", "v2"), ("new.js", "fresh"), ("same.js", "s")]);
        let changes = compare_trees(&before, &after);
        let summary: Vec<(&str, Change)> = changes.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(
            summary,
            [("gone.js", Change::Removed), ("handler.js", Change::Changed), ("new.js", Change::Added), ("same.js", Change::Unchanged)]
        );
        let added = compare_trees(&before, &after).into_iter().find(|c| c.path == "new.js").unwrap();
        assert_eq!((added.before.as_str(), added.after.as_str()), ("", "fresh"));
    }
}
