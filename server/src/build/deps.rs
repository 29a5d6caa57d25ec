//! Dependency installs: `package.json` with npm, `requirements.txt` with pip, each into an
//! image of its own that function images start from. The image is named by the manifest's
//! contents (and the package source), so a code-only change and another function with the same
//! manifest reuse it. The install runs in a job container as the unprivileged build user, with
//! no network but a relay to the package sources (see `relay.rs`), and the build's limits.

use super::failure::BuildFailure;
use super::relay::{Relay, Source};
use super::runtimes::{Runtimes, FUNCTION_UID};
use crate::run::engine::{Engine, LABEL_INSTALLATION};
use crate::run::job::{JobEnd, JobSpec};
use app::files::{human_bytes, FileTree};
use app::model::Language;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE_RELAY: &str = include_str!("../../../runtime/nodejs/relay.js");
const PYTHON_RELAY: &str = include_str!("../../../runtime/python/relay.py");

/// Changes whenever how an install is made changes, so older installs are not reused.
const RECIPE: &str = "deps-1";
/// Dependency images are named `vcd-faas/deps-<language>:<key>` and labelled with this.
const DEPS_IMAGE: &str = "vcd-faas/deps";
pub const LABEL_DEPS: &str = "vcd-faas.deps";
/// Where a language's installed packages go in the function image.
pub const PYTHON_DEPS_DIR: &str = "/opt/faas/deps";
/// The forwarder's port inside the install container.
const PROXY: &str = "http://127.0.0.1:3128";

/// What the provider set for installs.
#[derive(Clone, Debug)]
pub struct InstallSettings {
    pub npm_registry: Option<String>,
    pub pip_index_url: Option<String>,
    pub timeout: Duration,
    pub memory_mb: i64,
    pub output_bytes: u64,
    /// Where installs do their work, one folder each.
    pub work_root: PathBuf,
}

/// The manifest files of a version that declares dependencies.
pub struct Manifest<'a> {
    pub language: Language,
    files: Vec<(&'static str, &'a str)>,
}

impl<'a> Manifest<'a> {
    /// The manifest of a tree, when it declares any dependency.
    pub fn of(language: Language, files: &'a FileTree) -> Option<Manifest<'a>> {
        let present: Vec<(&'static str, &'a str)> =
            language.manifest_files().iter().filter_map(|name| files.get(*name).map(|c| (*name, c.as_str()))).collect();
        let declares = match language {
            Language::Nodejs => present.iter().any(|(name, content)| *name == "package.json" && declares_npm_dependencies(content)),
            Language::Python => present.iter().any(|(_, content)| content.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))),
        };
        declares.then_some(Manifest { language, files: present })
    }

    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|(n, _)| *n == name)
    }
}

fn declares_npm_dependencies(package_json: &str) -> bool {
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(package_json) else { return false };
    ["dependencies", "optionalDependencies"]
        .iter()
        .any(|field| manifest.get(field).and_then(|d| d.as_object()).is_some_and(|d| !d.is_empty()))
}

pub struct Installer {
    settings: InstallSettings,
    runtimes: Arc<Runtimes>,
    /// One install per key at a time: a second build with the same manifest waits and reuses it.
    in_progress: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The package manager's own default sources, asked once, when the provider set none.
    default_sources: tokio::sync::Mutex<HashMap<Language, BTreeSet<Source>>>,
}

impl Installer {
    pub fn new(settings: InstallSettings, runtimes: Arc<Runtimes>) -> Installer {
        Installer { settings, runtimes, in_progress: Mutex::default(), default_sources: tokio::sync::Mutex::default() }
    }

    /// The image a manifest's packages are, or will be, installed in.
    pub fn image_name(&self, manifest: &Manifest<'_>) -> String {
        let key = self.key(self.runtimes.base_image(manifest.language), manifest);
        format!("{DEPS_IMAGE}-{}:{}", manifest.language.as_str(), &key[..16])
    }

    fn source_url(&self, language: Language) -> Option<&str> {
        match language {
            Language::Nodejs => self.settings.npm_registry.as_deref(),
            Language::Python => self.settings.pip_index_url.as_deref(),
        }
    }

    /// The image with the manifest's dependencies installed on the language's base image:
    /// made now, or found from an earlier build with the same manifest.
    pub async fn image_for(&self, engine: &Engine, manifest: &Manifest<'_>, progress: &(dyn Fn(&str) + Sync)) -> Result<String, BuildFailure> {
        let (language, runtimes) = (manifest.language, &*self.runtimes);
        let key = self.key(runtimes.base_image(language), manifest);
        let tag = self.image_name(manifest);
        let lock = self.in_progress.lock().unwrap().entry(key.clone()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if engine.image_exists(&tag).await.map_err(|e| e.to_string())? {
            progress(&format!("dependencies: installed before with the same manifest, reusing {tag}\n"));
            return Ok(tag);
        }
        runtimes.ensure_builder(engine, language, progress).await.map_err(|e| format!("build image unavailable: {e}"))?;
        let sources = self.sources(engine, runtimes, language).await?;
        let listed: Vec<String> = sources.iter().map(Source::to_string).collect();
        progress(&format!("dependencies: installing with {} from {}\n", install_verb(manifest), listed.join(", ")));
        let work = self.settings.work_root.join(&key);
        let result = self.install(engine, runtimes, manifest, &work, sources, &tag, progress).await;
        let _ = std::fs::remove_dir_all(&work);
        self.in_progress.lock().unwrap().remove(&key);
        result.map(|()| tag)
    }

    fn key(&self, base: &str, manifest: &Manifest<'_>) -> String {
        let mut hash = Sha256::new();
        for part in [RECIPE, manifest.language.as_str(), base, self.source_url(manifest.language).unwrap_or("(default)")] {
            hash.update(part.len().to_le_bytes());
            hash.update(part);
        }
        for (name, content) in &manifest.files {
            hash.update(name.len().to_le_bytes());
            hash.update(name);
            hash.update(content.len().to_le_bytes());
            hash.update(content);
        }
        hex::encode(hash.finalize())
    }

    /// Where the install may connect: the configured source, or the package manager's default.
    async fn sources(&self, engine: &Engine, runtimes: &Runtimes, language: Language) -> Result<BTreeSet<Source>, BuildFailure> {
        if let Some(url) = self.source_url(language) {
            return Ok(BTreeSet::from([Source::of_url(url)?]));
        }
        let mut known = self.default_sources.lock().await;
        if let Some(sources) = known.get(&language) {
            return Ok(sources.clone());
        }
        let ask = match language {
            Language::Nodejs => "npm config get registry",
            Language::Python => {
                "python3 -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url); print(\"https://\" + PyPI.file_storage_domain)'"
            }
        };
        let mut answer = String::new();
        let command = vec!["sh".into(), "-c".into(), ask.into()];
        let spec = JobSpec { working_dir: "/", ..self.job_spec("package-sources", runtimes.builder_image(language), command, vec![]) };
        engine.run_job(&spec, &mut |text: &str| answer.push_str(text)).await.map_err(|e| e.to_string())?;
        let sources: BTreeSet<Source> = answer.lines().filter_map(|line| Source::of_url(line.trim()).ok()).collect();
        if sources.is_empty() {
            return Err(format!("cannot tell {}'s default package source (it said {answer:?}): set it in the provider settings", installer_name(language)).into());
        }
        known.insert(language, sources.clone());
        Ok(sources)
    }

    fn job_spec<'a>(&self, kind: &'a str, image: &'a str, command: Vec<String>, binds: Vec<String>) -> JobSpec<'a> {
        JobSpec {
            kind,
            image,
            command,
            env: vec![
                "HOME=/tmp".into(),
                "npm_config_update_notifier=false".into(),
                "PIP_DISABLE_PIP_VERSION_CHECK=1".into(),
                "PYTHONDONTWRITEBYTECODE=1".into(),
            ],
            binds,
            working_dir: "/build",
            memory_mb: self.settings.memory_mb,
            nano_cpus: 1_000_000_000,
            pids_limit: 512,
            tmp_mb: 512,
            deadline: self.settings.timeout,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn install(
        &self,
        engine: &Engine,
        runtimes: &Runtimes,
        manifest: &Manifest<'_>,
        work: &Path,
        sources: BTreeSet<Source>,
        tag: &str,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), BuildFailure> {
        let language = manifest.language;
        let (build_dir, relay_dir) = (work.join("build"), work.join("relay"));
        prepare_folders(&build_dir, &relay_dir, manifest).map_err(|e| format!("cannot prepare the install folder: {e}"))?;
        let refused = Arc::new(Mutex::new(Vec::<String>::new()));
        let noted = refused.clone();
        let _relay = Relay::open(&relay_dir.join("sock"), sources, move |why| noted.lock().unwrap().push(why))
            .map_err(|e| format!("cannot open the package relay: {e}"))?;
        let (relay_script, interpreter) = match language {
            Language::Nodejs => (NODE_RELAY, vec!["node".to_string(), "-e".into()]),
            Language::Python => (PYTHON_RELAY, vec!["python3".to_string(), "-c".into()]),
        };
        let command = [interpreter, vec![relay_script.to_string(), self.install_command(manifest)]].concat();
        let binds = vec![format!("{}:/build", build_dir.display()), format!("{}:/run/relay", relay_dir.display())];
        let spec = self.job_spec("dependency-install", runtimes.builder_image(language), command, binds);
        let mut output = String::new();
        let end = engine
            .run_job(&spec, &mut |text: &str| {
                if output.len() < 256 * 1024 {
                    output.push_str(text);
                }
                progress(text)
            })
            .await
            .map_err(|e| e.to_string())?;
        for why in refused.lock().unwrap().iter() {
            progress(&format!("package relay refused a connection: {why}\n"));
        }
        match end {
            JobEnd::Exited(0) => {}
            JobEnd::Exited(_) => return Err(BuildFailure::with_output(install_error(language, &output))),
            JobEnd::TimedOut => {
                return Err(format!(
                    "the dependency install took longer than {} s, the provider's limit (VCD_FAAS_BUILD_TIMEOUT_SECS)",
                    self.settings.timeout.as_secs()
                )
                .into())
            }
            JobEnd::OutOfMemory => {
                return Err(format!(
                    "the dependency install needed more than {} MB of memory, the provider's limit (VCD_FAAS_BUILD_MEMORY_MB)",
                    self.settings.memory_mb
                )
                .into())
            }
        }
        let installed = build_dir.join(installed_folder(language));
        let size = folder_size(&installed);
        if size > self.settings.output_bytes {
            return Err(format!(
                "the installed packages are {}; the provider allows {} (VCD_FAAS_BUILD_OUTPUT_MB)",
                human_bytes(size as usize),
                human_bytes(self.settings.output_bytes as usize)
            )
            .into());
        }
        progress(&format!("dependencies: {} installed, making {tag}\n", human_bytes(size as usize)));
        let context = deps_context(language, runtimes.base_image(language), &installed, &engine_labels(engine, tag))
            .map_err(|e| format!("cannot pack the installed packages: {e}"))?;
        let mut log = |text: &str| progress(text);
        match engine.build(context, tag, &mut log).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(format!("cannot make the dependency image: {message}").into()),
            Err(e) => Err(format!("container engine failed: {e}").into()),
        }
    }

    fn install_command(&self, manifest: &Manifest<'_>) -> String {
        match manifest.language {
            Language::Nodejs => {
                let how = install_verb(manifest).trim_start_matches("npm ");
                let registry = self.settings.npm_registry.as_deref().map(|r| format!(" --registry={}", shell_quote(r))).unwrap_or_default();
                format!(
                    "npm {how} --omit=dev --no-audit --no-fund --foreground-scripts --loglevel=warn --cache=/tmp/npm-cache \
                     --proxy={PROXY} --https-proxy={PROXY}{registry}"
                )
            }
            Language::Python => {
                let index = match self.settings.pip_index_url.as_deref() {
                    None => String::new(),
                    Some(url) => {
                        // The provider named this index: a plain-http one is trusted as given.
                        let trusted = match (url.starts_with("http://"), Source::of_url(url)) {
                            (true, Ok(source)) => format!(" --trusted-host {}", shell_quote(&source.host)),
                            _ => String::new(),
                        };
                        format!(" --index-url {}{trusted}", shell_quote(url))
                    }
                };
                format!(
                    "pip install --no-input --no-cache-dir --no-warn-script-location --progress-bar off --retries 1 \
                     --target /build/python -r /build/requirements.txt --proxy {PROXY}{index}"
                )
            }
        }
    }
}

/// How the manifest is installed: `npm ci` with a lock file (exactly what it pins), else an
/// install that writes no lock.
fn install_verb(manifest: &Manifest<'_>) -> &'static str {
    match manifest.language {
        Language::Nodejs if manifest.has("package-lock.json") => "npm ci",
        Language::Nodejs => "npm install --no-package-lock",
        Language::Python => "pip install",
    }
}

fn installer_name(language: Language) -> &'static str {
    match language {
        Language::Nodejs => "npm",
        Language::Python => "pip",
    }
}

fn installed_folder(language: Language) -> &'static str {
    match language {
        Language::Nodejs => "node_modules",
        Language::Python => "python",
    }
}

fn engine_labels(engine: &Engine, tag: &str) -> Vec<(String, String)> {
    vec![(LABEL_DEPS.to_string(), tag.to_string()), (LABEL_INSTALLATION.to_string(), engine.installation().to_string())]
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The install's folder, writable by the build user only, with the manifest files in it; and
/// the relay's folder.
fn prepare_folders(build_dir: &Path, relay_dir: &Path, manifest: &Manifest<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(work) = build_dir.parent() {
        let _ = std::fs::remove_dir_all(work);
    }
    std::fs::create_dir_all(build_dir)?;
    std::fs::create_dir_all(relay_dir)?;
    for (name, content) in &manifest.files {
        std::fs::write(build_dir.join(name), content)?;
    }
    std::os::unix::fs::chown(build_dir, Some(FUNCTION_UID), Some(FUNCTION_UID))?;
    std::fs::set_permissions(build_dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Bytes of the regular files under a folder; links are not followed.
fn folder_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => folder_size(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The dependency image's build context: its Dockerfile and the installed packages.
fn deps_context(language: Language, base: &str, installed: &Path, labels: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let target = match language {
        Language::Nodejs => "/app/node_modules",
        Language::Python => PYTHON_DEPS_DIR,
    };
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
    let dockerfile = format!("FROM {base}\nLABEL {}\nCOPY packages {target}\n", labels.join(" "));
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    if installed.is_dir() {
        tar.append_dir_all("packages", installed)?;
    } else {
        // An install that put nothing there (only empty dependency lists): an empty folder.
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_cksum();
        tar.append_data(&mut header, "packages/", std::io::empty())?;
    }
    tar.into_inner()
}

/// The package manager's own error, first: what the build status shows.
fn install_error(language: Language, output: &str) -> String {
    let plain = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("valid pattern").replace_all(output, "");
    if let Some(native) = needs_compiler(language, &plain) {
        return native;
    }
    let lines: Vec<&str> = match language {
        Language::Nodejs => plain
            .lines()
            .filter_map(|l| l.strip_prefix("npm ERR!").or_else(|| l.strip_prefix("npm error")))
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("code ") && !l.starts_with("A complete log") && !l.starts_with('/'))
            .filter(|l| *l != "404")
            .take(2)
            .collect(),
        Language::Python => plain.lines().filter_map(|l| l.strip_prefix("ERROR: ")).map(str::trim).take(2).collect(),
    };
    match lines.is_empty() {
        true => format!("{} failed (its whole output is in the build log)", installer_name(language)),
        false => format!("{}: {}", installer_name(language), lines.join(" — ")),
    }
}

/// A package that must be compiled: builds have no compiler, and the message says so.
fn needs_compiler(language: Language, output: &str) -> Option<String> {
    let compiler_missing = match language {
        Language::Nodejs => output.contains("gyp ERR!") && (output.contains("not found: make") || output.contains("not found: g++") || output.contains("find Python")),
        Language::Python => regex::Regex::new(r"command '[^']*(gcc|cc|g\+\+|clang)' failed|error: Microsoft Visual C\+\+|unable to execute '[^']*gcc'")
            .expect("valid pattern")
            .is_match(output),
    };
    if !compiler_missing {
        return None;
    }
    let package = match language {
        Language::Nodejs => regex::Regex::new(r"npm ERR! path /build/node_modules/(\S+)").expect("valid pattern").captures(output).map(|c| c[1].to_string()),
        Language::Python => regex::Regex::new(r"Building wheel for (\S+)").expect("valid pattern").captures(output).map(|c| c[1].to_string()),
    };
    let which = package.map(|p| format!("package {p:?} ")).unwrap_or_else(|| "a package ".to_string());
    Some(match language {
        Language::Nodejs => format!("{which}has a native addon that needs a C/C++ compiler, and builds have none: use a pure-JavaScript package"),
        Language::Python => format!("{which}must be compiled with a C compiler, and builds have none: use a version with a prebuilt wheel or a pure-Python package"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_manifest_that_declares_dependencies_makes_an_install() {
        let tree = |entries: &[(&str, &str)]| -> FileTree { entries.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect() };
        let empty = tree(&[("handler.js", "x"), ("package.json", r#"{"name": "f", "dependencies": {}}"#)]);
        assert!(Manifest::of(Language::Nodejs, &empty).is_none());
        let with = tree(&[("handler.js", "x"), ("package.json", r#"{"dependencies": {"left-pad": "1.3.0"}}"#), ("package-lock.json", "{}")]);
        let manifest = Manifest::of(Language::Nodejs, &with).unwrap();
        assert!(manifest.has("package-lock.json"));
        assert!(Manifest::of(Language::Python, &tree(&[("requirements.txt", "# none yet\n\n")])).is_none());
        assert!(Manifest::of(Language::Python, &tree(&[("requirements.txt", "six==1.16.0\n")])).is_some());
    }

    #[test]
    fn the_package_managers_error_comes_first() {
        let npm = "npm ERR! code E404\nnpm ERR! 404 Not Found - GET http://127.0.0.1:1/nosuch - no such package available\nnpm ERR! 404\n\
                   npm ERR! 404  'nosuch@^1.0.0' is not in this registry.\nnpm ERR! A complete log of this run can be found in:\n";
        assert_eq!(
            install_error(Language::Nodejs, npm),
            "npm: 404 Not Found - GET http://127.0.0.1:1/nosuch - no such package available — 404  'nosuch@^1.0.0' is not in this registry."
        );
        let pip = "Looking in indexes: http://127.0.0.1:1/simple\nERROR: Could not find a version that satisfies the requirement nosuch==1.0 (from versions: none)\nERROR: No matching distribution found for nosuch==1.0\n";
        assert!(install_error(Language::Python, pip).starts_with("pip: Could not find a version that satisfies the requirement nosuch==1.0"));
        let gyp = "gyp ERR! stack Error: not found: make\nnpm ERR! path /build/node_modules/native-thing\nnpm ERR! command failed\n";
        assert_eq!(
            install_error(Language::Nodejs, gyp),
            "package \"native-thing\" has a native addon that needs a C/C++ compiler, and builds have none: use a pure-JavaScript package"
        );
    }
}
