//! A function version's files: a tree of text files by relative path, with the entry file
//! (`handler.js` or `handler.py`) at its root, and the rules every tree must meet. The portal
//! and the server check a tree with the same code.

use crate::model::{FieldError, Language};

/// Relative path → content. Ordered, so a tree reads and compares the same everywhere.
pub use crate::model::FileTree;

/// Most files in one version.
pub const MAX_FILES: usize = 500;
/// Longest relative path.
pub const MAX_PATH_LEN: usize = 255;
/// A tree's unpacked size when the provider does not set one (`VCD_FAAS_MAX_FILES_MB`).
pub const DEFAULT_MAX_TREE_BYTES: usize = 10 * 1024 * 1024;

/// Where the platform installs dependencies: a function's own files may not be there.
const INSTALLED_FOLDERS: [&str; 2] = ["node_modules", "__pypackages__"];

impl Language {
    /// The file the runtime loads: it exports the handler.
    pub fn entry_file(self) -> &'static str {
        match self {
            Language::Nodejs => "handler.js",
            Language::Python => "handler.py",
        }
    }

    /// The dependency manifest the build installs from, and its lock file if the language has one.
    pub fn manifest_files(self) -> &'static [&'static str] {
        match self {
            Language::Nodejs => &["package.json", "package-lock.json"],
            Language::Python => &["requirements.txt"],
        }
    }

    /// A manifest that works as it is, for "add package.json" / "add requirements.txt".
    pub fn manifest_example(self) -> (&'static str, &'static str) {
        match self {
            Language::Nodejs => (
                "package.json",
                "{\n  \"name\": \"my-function\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \"dependencies\": {}\n}\n",
            ),
            Language::Python => ("requirements.txt", "# One package per line, e.g.\n# requests==2.31.0\n"),
        }
    }
}

/// The field an error about one file is shown at: `files/lib/util.js`.
pub fn file_field(path: &str) -> String {
    format!("files/{path}")
}

/// Checks one relative path: what is wrong with it, said so it can be fixed.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a file has an empty path: give every file a name".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("path is {} characters; the maximum is {MAX_PATH_LEN}", path.len()));
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!("path {path:?} has a control character ({:?}): use printable characters", c));
    }
    if path.contains('\\') {
        return Err(format!("path {path:?} has a backslash: separate folders with '/'"));
    }
    if path.starts_with('/') {
        return Err(format!("path {path:?} is absolute: give it relative to the function's root, e.g. lib/util.js"));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(format!("path {path:?} has an empty folder name (a doubled or trailing '/')")),
            "." | ".." => return Err(format!("path {path:?} has a {part:?} segment: paths stay inside the function")),
            _ => {}
        }
    }
    let top = path.split('/').next().unwrap_or_default();
    if INSTALLED_FOLDERS.contains(&top) {
        return Err(format!("{top}/ is where the build installs dependencies: list them in the manifest instead"));
    }
    Ok(())
}

/// Everything wrong with a tree: per file at `files/<path>`, about the whole tree at `files`.
pub fn validate_tree(language: Language, files: &FileTree, max_bytes: usize) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if files.len() > MAX_FILES {
        errors.push(FieldError::new("files", format!("{} files; the most a function may have is {MAX_FILES}", files.len())));
    }
    let total: usize = files.iter().map(|(path, content)| path.len() + content.len()).sum();
    if total > max_bytes {
        errors.push(FieldError::new(
            "files",
            format!("the files are {} in all; the most the provider allows is {}", human_bytes(total), human_bytes(max_bytes)),
        ));
    }
    for path in files.keys() {
        if let Err(e) = check_path(path) {
            errors.push(FieldError::new(file_field(path), e));
        }
    }
    // A file and a folder of the same name cannot both exist on disk.
    for path in files.keys() {
        let mut prefix = String::new();
        for part in path.split('/').take(path.matches('/').count()) {
            prefix.push_str(part);
            if files.contains_key(&prefix) {
                errors.push(FieldError::new(file_field(path), format!("{prefix:?} is a file, so it cannot also be a folder of {path:?}")));
                break;
            }
            prefix.push('/');
        }
    }
    let entry = language.entry_file();
    match files.get(entry) {
        None => errors.push(FieldError::new(
            "files",
            format!("the entry file {entry} is missing: a {} function is loaded from {entry} at its root", language.label()),
        )),
        Some(code) if code.trim().is_empty() => {
            errors.push(FieldError::new(file_field(entry), format!("{entry} is empty: write the function's handler")))
        }
        Some(_) => {}
    }
    if language == Language::Nodejs {
        if let Some(manifest) = files.get("package.json") {
            if let Err(e) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(manifest) {
                errors.push(FieldError::new(file_field("package.json"), format!("package.json is not a JSON object: {e}")));
            }
        }
    }
    errors
}

/// A size as people read it: `812 bytes`, `3.2 KB`, `10.0 MB`.
pub fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1024 * 1024 => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
        n if n >= 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// Where a failed build's error is, read from its message: `(lib/util.js, line 2)`.
pub fn error_place(build_error: &str) -> Option<(String, u32)> {
    let start = build_error.rfind(" (")? + 2;
    let inner = build_error[start..].strip_suffix(')')?;
    let (path, line) = inner.split_once(", line ")?;
    Some((path.to_string(), line.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, &str)]) -> FileTree {
        entries.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_tree_with_its_entry_file_and_folders_is_valid() {
        let files = tree(&[("handler.js", "module.exports = () => 1"), ("lib/util.js", "x"), ("data/t.json", "{}")]);
        assert!(validate_tree(Language::Nodejs, &files, DEFAULT_MAX_TREE_BYTES).is_empty());
    }

    #[test]
    fn bad_paths_are_refused_at_the_file() {
        for bad in ["/etc/passwd", "../up.js", "a/../b.js", "a\\b.js", "a//b.js", "dir/", "tab\there.js", "./x.js", "node_modules/left-pad/index.js"] {
            let files = tree(&[("handler.py", "def handle(e, c): pass"), (bad, "x")]);
            let errors = validate_tree(Language::Python, &files, DEFAULT_MAX_TREE_BYTES);
            assert_eq!(fields(&errors), [file_field(bad).as_str()], "{bad}: {errors:?}");
        }
    }

    #[test]
    fn a_missing_entry_too_many_files_and_too_many_bytes_are_refused() {
        let errors = validate_tree(Language::Nodejs, &tree(&[("index.js", "x")]), DEFAULT_MAX_TREE_BYTES);
        assert!(errors[0].message.contains("handler.js is missing"), "{errors:?}");
        let many: FileTree = (0..=MAX_FILES).map(|i| (format!("f{i}.js"), "x".into())).chain([("handler.js".into(), "x".into())]).collect();
        assert!(validate_tree(Language::Nodejs, &many, DEFAULT_MAX_TREE_BYTES)[0].message.contains("the most a function may have is 500"));
        let big = tree(&[("handler.js", &"x".repeat(2000))]);
        assert!(validate_tree(Language::Nodejs, &big, 1000)[0].message.contains("the most the provider allows is 1000 bytes"));
    }

    #[test]
    fn a_file_cannot_also_be_a_folder_and_package_json_must_parse() {
        let files = tree(&[("handler.js", "x"), ("lib", "x"), ("lib/a.js", "y"), ("package.json", "{oops")]);
        let errors = validate_tree(Language::Nodejs, &files, DEFAULT_MAX_TREE_BYTES);
        assert_eq!(fields(&errors), ["files/lib/a.js", "files/package.json"], "{errors:?}");
    }

    #[test]
    fn the_place_of_a_build_error_is_read_back() {
        assert_eq!(error_place("SyntaxError: Unexpected token ';' (lib/util.js, line 2)"), Some(("lib/util.js".into(), 2)));
        assert_eq!(error_place("npm ERR! 404 Not Found"), None);
    }
}
