//! Which files of a function's folder stay home: the usual tool and dependency folders, the
//! CLI's own files, and the lines of `.vcdfaasignore` (a small subset of `.gitignore`).

/// The file with the folder's own ignore lines.
pub const IGNORE_FILE: &str = ".vcdfaasignore";

/// Never sent: version control, installed dependencies (the platform installs them), caches
/// and virtual environments.
const ALWAYS_IGNORED: &[&str] = &[".git/", ".hg/", ".svn/", "node_modules/", "__pycache__/", "__pypackages__/", ".venv/", "venv/", "*.pyc", ".DS_Store"];

#[derive(Debug)]
struct Rule {
    pattern: String,
    /// Matches folders only (the line ended with `/`).
    folders_only: bool,
    /// Matched against the whole relative path (the line had a `/` before its end); else
    /// against the name in any folder.
    anchored: bool,
}

#[derive(Debug)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// The built-in rules, the files at the folder's root that only the CLI reads, and the
    /// lines of `.vcdfaasignore` (`ignore_file`, when the folder has one).
    pub fn new(root_only: &[&str], ignore_file: Option<&str>) -> Result<IgnoreRules, String> {
        let mut rules: Vec<Rule> = ALWAYS_IGNORED.iter().map(|line| rule(line)).collect();
        rules.extend(root_only.iter().map(|name| rule(&format!("/{name}"))));
        for (number, line) in ignore_file.unwrap_or_default().lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('!') {
                return Err(format!("{IGNORE_FILE} line {}: `!` (taking a file back) is not supported; list only what to leave out", number + 1));
            }
            rules.push(rule(line));
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether `path` (relative, `/` between folders) is left out.
    pub fn ignores(&self, path: &str, is_folder: bool) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.rules.iter().any(|rule| {
            (is_folder || !rule.folders_only) && if rule.anchored { glob(&rule.pattern, path) } else { glob(&rule.pattern, name) }
        })
    }
}

fn rule(line: &str) -> Rule {
    let folders_only = line.ends_with('/');
    let line = line.trim_end_matches('/');
    let anchored = line.contains('/');
    Rule { pattern: line.trim_start_matches('/').to_string(), folders_only, anchored }
}

/// `*` is any run of characters within one name, `**` any run across folders, `?` one
/// character; anything else stands for itself.
fn glob(pattern: &str, text: &str) -> bool {
    fn matches(p: &[char], t: &[char]) -> bool {
        match p {
            [] => t.is_empty(),
            ['*', '*', rest @ ..] => (0..=t.len()).any(|i| matches(rest, &t[i..])),
            ['*', rest @ ..] => (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != '/').any(|i| matches(rest, &t[i..])),
            ['?', rest @ ..] => t.first().is_some_and(|&c| c != '/') && matches(rest, &t[1..]),
            [c, rest @ ..] => t.first() == Some(c) && matches(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_lines_work_like_gitignore_for_the_common_cases() {
        let rules = IgnoreRules::new(&["vcd-faas.json"], Some("# comment\n*.log\nbuild/\ndocs/draft.md\n/secret.txt\nlib/**/*.tmp\n")).unwrap();
        assert!(rules.ignores("node_modules", true));
        assert!(rules.ignores("lib/__pycache__", true));
        assert!(rules.ignores("a/b.pyc", false));
        assert!(rules.ignores("vcd-faas.json", false));
        assert!(!rules.ignores("lib/vcd-faas.json", false));
        assert!(rules.ignores("x/y/debug.log", false));
        assert!(rules.ignores("build", true));
        assert!(!rules.ignores("build", false));
        assert!(rules.ignores("docs/draft.md", false));
        assert!(!rules.ignores("other/docs/draft.md", false));
        assert!(rules.ignores("secret.txt", false));
        assert!(!rules.ignores("lib/secret.txt", false));
        assert!(rules.ignores("lib/a/b/c.tmp", false));
        assert!(!rules.ignores("handler.js", false));
        assert!(!rules.ignores("lib/util.js", false));
        assert!(IgnoreRules::new(&[], Some("!keep.txt")).unwrap_err().contains("line 1"));
    }
}
