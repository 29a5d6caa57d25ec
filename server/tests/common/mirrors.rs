//! Package sources of a test's own, on 127.0.0.1, holding packages the test makes: a real npm
//! registry (verdaccio, installed by `scripts/setup.sh --for-tests`) and a PEP 503 index (a
//! folder of wheels and link pages, served by Python's HTTP server).

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A package folder: path → content (`package.json` among them).
pub struct NpmPackage<'a> {
    pub files: &'a [(&'a str, &'a str)],
}

pub struct NpmRegistry {
    pub url: String,
    dir: tempfile::TempDir,
}

impl NpmRegistry {
    /// Starts verdaccio and publishes the packages to it.
    pub fn start(packages: &[NpmPackage<'_>]) -> NpmRegistry {
        let dir = tempfile::tempdir().unwrap();
        let script = repo_root().join("tools/verdaccio/serve.sh");
        let output = Command::new(&script)
            .arg(dir.path().join("registry"))
            .arg(free_port().to_string())
            .output()
            .expect("tools/verdaccio/serve.sh runs (scripts/setup.sh --for-tests installs verdaccio)");
        assert!(output.status.success(), "verdaccio did not start: {}", String::from_utf8_lossy(&output.stderr));
        let url = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let registry = NpmRegistry { url, dir };
        for package in packages {
            publish(&registry, package);
        }
        registry
    }
}

/// Publishes a package folder made of `package.files` with npm, as a package author does.
pub fn publish(registry: &NpmRegistry, package: &NpmPackage<'_>) {
    let folder = tempfile::tempdir_in(registry.dir.path()).unwrap();
    for (path, content) in package.files {
        let file = folder.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let authority = registry.url.trim_start_matches("http:");
    // Anonymous publishing is allowed; npm wants some token to send.
    let output = Command::new("npm")
        .args(["publish", "--loglevel=warn", "--registry", &registry.url, &format!("--{authority}:_authToken=test")])
        .current_dir(folder.path())
        .output()
        .expect("npm runs");
    assert!(output.status.success(), "npm publish failed: {}", String::from_utf8_lossy(&output.stderr));
}

impl Drop for NpmRegistry {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("registry/pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// The `package-lock.json` npm writes for `manifest` against the registry, as a developer's
/// machine makes it.
pub fn lock_file(registry: &NpmRegistry, manifest: &str) -> String {
    let folder = tempfile::tempdir_in(registry.dir.path()).unwrap();
    std::fs::write(folder.path().join("package.json"), manifest).unwrap();
    let output = Command::new("npm")
        .args(["install", "--package-lock-only", "--loglevel=warn", "--no-audit", "--no-fund", "--registry", &registry.url])
        .current_dir(folder.path())
        .output()
        .expect("npm runs");
    assert!(output.status.success(), "npm could not lock: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_to_string(folder.path().join("package-lock.json")).unwrap()
}

/// A pure-Python wheel: its import name's files (`greetpy/__init__.py`, …).
pub struct Wheel<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub files: &'a [(&'a str, &'a str)],
}

pub struct PythonIndex {
    /// The PEP 503 "simple" URL.
    pub url: String,
    server: Child,
    _dir: tempfile::TempDir,
}

impl PythonIndex {
    pub fn start(wheels: &[Wheel<'_>]) -> PythonIndex {
        Self::serving(wheels.iter().map(make_wheel).collect())
    }

    /// An index of the real wheels `scripts/setup.sh` downloads from PyPI into `tools/wheels`.
    pub fn of_downloaded_wheels() -> PythonIndex {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/wheels");
        let files = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh --for-tests", folder.display()))
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".whl"))
            .map(|name| {
                let bytes = std::fs::read(folder.join(&name)).unwrap();
                (name, bytes)
            })
            .collect();
        Self::serving(files)
    }

    /// Serves wheel files (name, bytes) under their projects' pages.
    fn serving(wheels: Vec<(String, Vec<u8>)>) -> PythonIndex {
        let dir = tempfile::tempdir().unwrap();
        let files_dir = dir.path().join("files");
        std::fs::create_dir_all(&files_dir).unwrap();
        let mut projects: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (file_name, bytes) in wheels {
            std::fs::write(files_dir.join(&file_name), &bytes).unwrap();
            let digest = hex::encode(Sha256::digest(&bytes));
            // A wheel's file name starts with its project's name, `_` for `-` (PEP 427).
            let project = file_name.split('-').next().unwrap_or_default().to_lowercase().replace('_', "-");
            projects.entry(project).or_default().push(format!("<a href=\"../../files/{file_name}#sha256={digest}\">{file_name}</a>"));
        }
        let simple = dir.path().join("simple");
        let mut root = String::from("<!DOCTYPE html><html><body>\n");
        for (project, links) in &projects {
            std::fs::create_dir_all(simple.join(project)).unwrap();
            let page = format!("<!DOCTYPE html><html><body>\n{}\n</body></html>\n", links.join("<br>\n"));
            std::fs::write(simple.join(project).join("index.html"), page).unwrap();
            root.push_str(&format!("<a href=\"{project}/\">{project}</a>\n"));
        }
        std::fs::create_dir_all(&simple).unwrap();
        std::fs::write(simple.join("index.html"), root + "</body></html>\n").unwrap();
        let port = free_port();
        let server = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves the index");
        let url = format!("http://127.0.0.1:{port}/simple/");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        PythonIndex { url, server, _dir: dir }
    }
}

impl Drop for PythonIndex {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A wheel as pip expects one: the files, METADATA, WHEEL and a RECORD of their hashes.
fn make_wheel(wheel: &Wheel<'_>) -> (String, Vec<u8>) {
    let dist = format!("{}-{}", wheel.name.replace('-', "_"), wheel.version);
    let info = format!("{dist}.dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {}\nVersion: {}\n", wheel.name, wheel.version);
    let wheel_file = "Wheel-Version: 1.0\nGenerator: vcd-faas-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let mut entries: Vec<(String, String)> = wheel.files.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect();
    entries.push((format!("{info}/METADATA"), metadata));
    entries.push((format!("{info}/WHEEL"), wheel_file.to_string()));
    let mut record: String = entries
        .iter()
        .map(|(path, content)| {
            let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(content.as_bytes()));
            format!("{path},sha256={hash},{}\n", content.len())
        })
        .collect();
    record.push_str(&format!("{info}/RECORD,,\n"));
    entries.push((format!("{info}/RECORD"), record));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in &entries {
        writer.start_file(path.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    (format!("{dist}-py3-none-any.whl"), writer.finish().unwrap().into_inner())
}
