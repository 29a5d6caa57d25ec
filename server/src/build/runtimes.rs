//! Language runtimes: their base images, the shim that serves user code inside a container,
//! and the build context (Dockerfile + shim + code) of a function version.

use crate::run::engine::{Engine, EngineError, LABEL_RUNTIME};
use app::files::FileTree;
use app::model::Language;
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::Mutex;

const NODE_SHIM: &str = include_str!("../../../runtime/nodejs/shim.js");
const PYTHON_SHIM: &str = include_str!("../../../runtime/python/shim.py");

/// The uid functions run as; never root.
pub const FUNCTION_UID: u32 = 10001;

pub struct Runtimes {
    pub nodejs_base: String,
    pub python_base: String,
    /// One base image build at a time, so two builds never race to create it.
    ensure_lock: Mutex<()>,
}

impl Runtimes {
    pub fn new(nodejs_base: String, python_base: String) -> Runtimes {
        Runtimes { nodejs_base, python_base, ensure_lock: Mutex::new(()) }
    }

    pub fn base_image(&self, language: Language) -> &str {
        match language {
            Language::Nodejs => &self.nodejs_base,
            Language::Python => &self.python_base,
        }
    }

    /// The image dependency installs run in: the base image's Debian with the package manager.
    pub fn builder_image(&self, language: Language) -> &'static str {
        match language {
            Language::Nodejs => "vcd-faas/builder-nodejs:bookworm",
            Language::Python => "vcd-faas/builder-python:bookworm",
        }
    }

    /// Makes sure the base image of a language exists: built locally from Debian packages
    /// when it is one of ours (`vcd-faas/…`), pulled otherwise.
    pub async fn ensure_base(&self, engine: &Engine, language: Language, progress: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        self.ensure(engine, self.base_image(language), language, ImageRole::Runtime, progress).await
    }

    /// Makes sure the image dependency installs run in exists (built once, about two minutes).
    pub async fn ensure_builder(&self, engine: &Engine, language: Language, progress: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        self.ensure(engine, self.builder_image(language), language, ImageRole::Builder, progress).await
    }

    async fn ensure(&self, engine: &Engine, image: &str, language: Language, role: ImageRole, progress: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        let _guard = self.ensure_lock.lock().await;
        if engine.image_exists(image).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        if image.starts_with("vcd-faas/") {
            progress(&format!("building image {image} from Debian packages (first time only, a minute or two)\n"));
            build_debian_image(engine, image, language, role, progress).await
        } else {
            progress(&format!("pulling base image {image}\n"));
            engine.pull(image, progress).await.map_err(|e| e.to_string())
        }
    }
}

/// What a locally built image is for.
#[derive(Clone, Copy)]
enum ImageRole {
    /// Function images start from it: the interpreter only.
    Runtime,
    /// Dependency installs run in it: the interpreter and its package manager.
    Builder,
}

fn debian_packages(language: Language, role: ImageRole) -> &'static str {
    match (language, role) {
        (Language::Nodejs, ImageRole::Runtime) => "nodejs",
        (Language::Python, ImageRole::Runtime) => "python3",
        (Language::Nodejs, ImageRole::Builder) => "nodejs,npm",
        (Language::Python, ImageRole::Builder) => "python3,python3-pip",
    }
}

/// `mmdebstrap` of Debian bookworm with the language's interpreter, then `docker import` of it.
/// The tarball goes to a file first: streamed straight into the import, a slow bootstrap (a
/// busy machine, the builder images' larger package sets) outlasted the engine client's request
/// timeout, which cut the import off.
async fn build_debian_image(
    engine: &Engine,
    image: &str,
    language: Language,
    role: ImageRole,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let tarball = std::env::temp_dir().join(format!("vcd-faas-{}-{}.tar", image.replace(['/', ':'], "-"), std::process::id()));
    let result = bootstrap(&tarball, language, role, progress).await;
    let result = match result {
        Ok(()) => import(engine, image, language, role, &tarball).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tarball);
    result?;
    progress(&format!("base image {image} ready\n"));
    Ok(())
}

async fn bootstrap(tarball: &std::path::Path, language: Language, role: ImageRole, progress: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
    let mut child = tokio::process::Command::new("mmdebstrap")
        .args([
            "--variant=essential",
            &format!("--include={}", debian_packages(language, role)),
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "bookworm",
            tarball.to_str().ok_or("the temporary folder's path is not UTF-8")?,
            // The host's own package sources: no registry is named here.
            "/etc/apt/sources.list.d/debian.sources",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run mmdebstrap ({e}); install it with: apt-get install -y mmdebstrap"))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut tail = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        progress(&format!("{line}\n"));
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("mmdebstrap failed ({status}):\n{}", tail.join("\n")));
    }
    Ok(())
}

async fn import(engine: &Engine, image: &str, language: Language, role: ImageRole, tarball: &std::path::Path) -> Result<(), String> {
    let file = tokio::fs::File::open(tarball).await.map_err(|e| format!("{}: {e}", tarball.display()))?;
    let body = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut changes = vec!["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    // Only runtime images carry the runtime label (see `LABEL_RUNTIME`); both are kept.
    if let ImageRole::Runtime = role {
        changes.push(format!("LABEL {LABEL_RUNTIME}={}", language.as_str()));
    }
    engine.import_rootfs(image, body, changes).await.map_err(|e: EngineError| e.to_string())
}

/// The Dockerfile of a function version, built on `from` (the base image, or the image of its
/// installed dependencies). The syntax check of every source file runs at build time, so a
/// mistake fails the build with the interpreter's own message and the file and line.
pub fn dockerfile(language: Language, from: &str, labels: &BTreeMap<String, String>) -> String {
    let (shim, check, _) = shim_check_cmd(language);
    // One LABEL line: every instruction is a build step, and steps are what a build waits on.
    // It comes first: the labels name the version, so no step after it is shared with another
    // version's image. Shared cached steps made builds fail at random: removing one function's
    // image also removes its untagged parent steps, which another build was reusing that moment
    // ("failed to get digest … no such file or directory").
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
    format!(
        "FROM {from}\n\
         LABEL {}\n\
         COPY {shim} /opt/faas/\n\
         COPY app/ /app/\n\
         RUN {check}\n\
         {}",
        labels.join(" "),
        runtime_settings(language)
    )
}

/// How a function's runtime runs, in its image and in a stem cell's alike.
fn runtime_settings(language: Language) -> String {
    let (_, _, cmd) = shim_check_cmd(language);
    format!(
        "ENV FAAS_SOCKET=/run/faas/sock PYTHONDONTWRITEBYTECODE=1 NODE_ENV=production HOME=/tmp\n\
         WORKDIR /app\n\
         USER {FUNCTION_UID}:{FUNCTION_UID}\n\
         CMD {cmd}\n"
    )
}

/// The image of a language's stem cells (see `runner::Stem`): the base image, the shim and the
/// runtime's settings, no function. Its tag and build context; the tag changes with the shim.
pub fn stem_image(language: Language, base: &str) -> std::io::Result<(String, Vec<u8>)> {
    use sha2::{Digest, Sha256};
    let (shim_name, _, _) = shim_check_cmd(language);
    let dockerfile = format!("FROM {base}\nLABEL {LABEL_RUNTIME}=stem-{}\nCOPY {shim_name} /opt/faas/\n{}", language.as_str(), runtime_settings(language));
    let shim = shim_source(language);
    let digest = Sha256::new().chain_update(shim).chain_update(&dockerfile).finalize();
    let tag = format!("vcd-faas/stem-{}:{}", language.as_str(), hex::encode(&digest[..6]));
    Ok((tag, tar_of(&[("Dockerfile", dockerfile.as_str()), (shim_name, shim)])?))
}

fn shim_source(language: Language) -> &'static str {
    match language {
        Language::Nodejs => NODE_SHIM,
        Language::Python => PYTHON_SHIM,
    }
}

/// A tar archive, made in memory, of text files.
fn tar_of(files: &[(&str, &str)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, content.as_bytes())?;
    }
    tar.into_inner()
}

/// The shim's file name, the syntax check of every source file and the runtime's command.
fn shim_check_cmd(language: Language) -> (&'static str, &'static str, &'static str) {
    match language {
        Language::Nodejs => (
            "shim.js",
            r#"["sh", "-c", "find /app -path /app/node_modules -prune -o -type f \\( -name '*.js' -o -name '*.cjs' -o -name '*.mjs' \\) -print0 | xargs -0 -r -n 1 node --check"]"#,
            r#"["node", "/opt/faas/shim.js"]"#,
        ),
        Language::Python => (
            "shim.py",
            r#"["python3", "-c", "import ast, pathlib; [ast.parse(p.read_bytes(), str(p.relative_to('/app'))) for p in sorted(pathlib.Path('/app').rglob('*.py'))]"]"#,
            r#"["python3", "-u", "/opt/faas/shim.py"]"#,
        ),
    }
}

/// Marks what a function image was made with besides its files: the runtime's shim, the
/// Dockerfile and the image it starts from. An image is reused for a new version only when
/// this is the same, so a platform upgrade reaches every function's next version.
pub const LABEL_RECIPE: &str = "vcd-faas.recipe";

/// The recipe of a function image built on `from`.
pub fn recipe(language: Language, from: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(shim_source(language)).chain_update(dockerfile(language, from, &BTreeMap::new())).finalize();
    hex::encode(&digest[..8])
}

/// The build context as a tar archive made in memory: Dockerfile, shim, and the function's
/// files under `app/`.
pub fn build_context(language: Language, from: &str, files: &FileTree, labels: &BTreeMap<String, String>) -> std::io::Result<Vec<u8>> {
    let (shim_name, _, _) = shim_check_cmd(language);
    let dockerfile = dockerfile(language, from, labels);
    let own: Vec<(String, &str)> = files.iter().map(|(path, content)| (format!("app/{path}"), content.as_str())).collect();
    let mut entries = vec![("Dockerfile", dockerfile.as_str()), (shim_name, shim_source(language))];
    entries.extend(own.iter().map(|(path, content)| (path.as_str(), *content)));
    tar_of(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_dockerfile_shim_and_code() {
        let files = FileTree::from([("handler.py".to_string(), "def handle(e, c): return 1\n".to_string()), ("lib/util.py".to_string(), "X = 1\n".to_string())]);
        let tar = build_context(Language::Python, "base:1", &files, &BTreeMap::new()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["Dockerfile", "shim.py", "app/handler.py", "app/lib/util.py"]);
    }

    #[test]
    fn dockerfile_runs_as_non_root_and_checks_syntax() {
        let labels = BTreeMap::from([("vcd-faas.tenant".to_string(), "acme".to_string())]);
        let text = dockerfile(Language::Nodejs, "base:1", &labels);
        assert!(text.starts_with("FROM base:1\n"));
        assert!(text.contains("LABEL \"vcd-faas.tenant\"=\"acme\"\n"));
        assert!(text.contains("node --check"));
        assert!(text.contains("USER 10001:10001"));
    }

    #[test]
    fn the_recipe_follows_the_base_image_and_the_runtime() {
        assert_eq!(recipe(Language::Nodejs, "base:1"), recipe(Language::Nodejs, "base:1"));
        assert_ne!(recipe(Language::Nodejs, "base:1"), recipe(Language::Nodejs, "base:2"));
        assert_ne!(recipe(Language::Nodejs, "base:1"), recipe(Language::Python, "base:1"));
    }

    #[test]
    fn two_versions_share_no_build_step_after_the_base() {
        let version = |v: &str| BTreeMap::from([("vcd-faas.version".to_string(), v.to_string())]);
        let (one, two) = (dockerfile(Language::Python, "base:1", &version("1")), dockerfile(Language::Python, "base:1", &version("2")));
        // Docker reuses a cached step only when every step before it is the same.
        let second_step = |text: &str| text.lines().nth(1).unwrap_or_default().to_string();
        assert_ne!(second_step(&one), second_step(&two), "{one}\n{two}");
    }
}
