//! Builds function versions into images in the background. The database is the queue: a
//! version is `queued` until built, so a build cut off by a crash is found and resumed.

use crate::run::engine::Engine;
use crate::metrics::Metrics;
use crate::run::pool::Pool;
use crate::run::runner::image_tag;
use crate::build::deps::{Installer, Manifest};
use crate::build::failure::BuildFailure;
use crate::build::runtimes::{build_context, recipe, Runtimes, LABEL_RECIPE};
use crate::store::{FunctionRow, Store, StoreError, Target, VersionRow};
use app::model::BuildStatus;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};

/// Builds at once; each uses a core for a few seconds.
const PARALLEL_BUILDS: usize = 2;
/// Most bytes of build output kept.
const MAX_BUILD_LOG: usize = 64 * 1024;

/// Builds the versions this process claims. Every process with a worker (a front's local one,
/// a node) runs one; whichever claims a queued version first builds it, and a build whose
/// builder died is claimed again by another (`Store::claim_build`).
#[derive(Clone)]
pub struct Builder {
    queue: mpsc::UnboundedSender<i64>,
    in_progress: Arc<Mutex<HashSet<i64>>>,
    installer: Arc<Installer>,
    /// Free build places; `None` in a front without a worker, which builds nothing.
    slots: Option<Arc<Semaphore>>,
}

/// What happens when a version finished building (route registration hooks in here).
pub type OnReady = Arc<dyn Fn(&VersionRow) + Send + Sync>;

impl Builder {
    /// `place` says in the build log where it ran ("node node-1", "the front").
    pub fn start(store: Store, engine: Engine, runtimes: Arc<Runtimes>, installer: Arc<Installer>, metrics: Arc<Metrics>, pool: Arc<Pool>, place: String, on_ready: OnReady) -> Builder {
        let (queue, mut jobs) = mpsc::unbounded_channel::<i64>();
        let in_progress: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let slots = Arc::new(Semaphore::new(PARALLEL_BUILDS));
        let builder = Builder { queue, in_progress: in_progress.clone(), installer: installer.clone(), slots: Some(slots.clone()) };
        let place: Arc<str> = place.into();
        tokio::spawn(async move {
            while let Some(version_id) = jobs.recv().await {
                if !in_progress.lock().unwrap().insert(version_id) {
                    continue; // already being built
                }
                let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                let (store, engine, runtimes, installer, in_progress, on_ready, metrics, pool, place) = (
                    store.clone(),
                    engine.clone(),
                    runtimes.clone(),
                    installer.clone(),
                    in_progress.clone(),
                    on_ready.clone(),
                    metrics.clone(),
                    pool.clone(),
                    place.clone(),
                );
                tokio::spawn(async move {
                    let tools = Tools { store: &store, engine: &engine, runtimes: &runtimes, installer: &installer, metrics: &metrics, pool: &pool, place: &place };
                    if let Err(e) = build_version(tools, version_id, &on_ready).await {
                        tracing::error!(version_id, error = %e, "build bookkeeping failed; the reconciler will retry");
                    }
                    in_progress.lock().unwrap().remove(&version_id);
                    drop(permit);
                });
            }
        });
        builder
    }

    /// The builder of a front without a worker: it builds nothing (the nodes claim the builds).
    pub fn elsewhere(installer: Arc<Installer>) -> Builder {
        let (queue, _) = mpsc::unbounded_channel();
        Builder { queue, in_progress: Arc::default(), installer, slots: None }
    }

    /// Whether this process builds versions at all.
    pub fn builds_here(&self) -> bool {
        self.slots.is_some()
    }

    pub fn enqueue(&self, version_id: i64) {
        if self.builds_here() {
            let _ = self.queue.send(version_id);
        }
    }

    /// Looks for unfinished builds every `every` while a build place is free, so a version
    /// stored by any front, or left by a builder that died, is built here if no other builder
    /// claims it first.
    pub fn spawn_poller(&self, store: Store, process: String, every: std::time::Duration) {
        let Some(slots) = self.slots.clone() else { return };
        let builder = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if slots.available_permits() > 0 {
                    if let Err(e) = builder.enqueue_claimable(&store, &process).await {
                        tracing::warn!(error = %e, "cannot look for unfinished builds");
                    }
                }
            }
        });
    }

    /// Enqueues the unfinished builds no live builder has.
    async fn enqueue_claimable(&self, store: &Store, process: &str) -> Result<(), String> {
        let unfinished = store.unfinished_build_owners().await.map_err(|e| e.to_string())?;
        if unfinished.iter().all(|(id, status, _)| status == "building" && self.is_building(*id)) {
            return Ok(());
        }
        let live = crate::ops::processes::live_others(store, process).await?;
        for (id, status, owner) in unfinished {
            if crate::store::build_claimable(&status, &owner, process, &live) && !self.is_building(id) {
                self.enqueue(id);
            }
        }
        Ok(())
    }

    /// Dependency installs, which name their images (the reconciler keeps the ones in use).
    pub fn installer(&self) -> &Installer {
        &self.installer
    }

    pub fn is_building(&self, version_id: i64) -> bool {
        self.in_progress.lock().unwrap().contains(&version_id)
    }
}

/// What a build works with.
#[derive(Clone, Copy)]
struct Tools<'a> {
    store: &'a Store,
    engine: &'a Engine,
    runtimes: &'a Runtimes,
    installer: &'a Installer,
    metrics: &'a Metrics,
    pool: &'a Arc<Pool>,
    place: &'a str,
}

#[tracing::instrument(skip(tools, on_ready))]
async fn build_version(tools: Tools<'_>, version_id: i64, on_ready: &OnReady) -> Result<(), StoreError> {
    let Tools { store, engine, runtimes, installer, metrics, pool, place } = tools;
    let Some(v) = store.version_by_id(version_id).await? else { return Ok(()) };
    let Some(function) = store.function_by_id(v.function_id).await? else { return Ok(()) };
    if function.is_deleting() || !v.build_status.is_pending() {
        return Ok(());
    }
    let live = match crate::ops::processes::live_others(store, engine.process()).await {
        Ok(live) => live,
        Err(e) => return Err(StoreError::Database(sqlx::Error::Protocol(e))), // retried by the poller
    };
    if !store.claim_build(v.id, v.function_id, engine.process(), &live).await? {
        return Ok(()); // another builder has it
    }
    let started = std::time::Instant::now();
    let language = v.language;
    let tag = image_tag(&function.org, &function.name, v.version);
    let files = v.files();

    // Log lines are collected here and written to the database as they come.
    let log = Arc::new(Mutex::new(String::new()));
    let written = std::sync::atomic::AtomicUsize::new(0);
    let append = |text: &str| {
        let total = written.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
        if total < MAX_BUILD_LOG {
            log.lock().unwrap().push_str(text);
        }
    };
    let flusher = spawn_log_flusher(store.clone(), v.id, log.clone());

    append(&format!("building {} v{} ({}, {} file(s)) on {place}\n", function.name, v.version, language.label(), files.len()));
    let result: Result<(), BuildFailure> = async {
        if let Some(earlier) = unchanged_since(store, engine, runtimes, &v, &files).await {
            // Only settings changed: the image of a version with the same files serves as it is.
            let image = earlier.image.as_deref().unwrap_or_default();
            engine.tag_image(image, &tag).await.map_err(|e| e.to_string())?;
            append(&format!("files unchanged since v{}: its image serves this version too (no rebuild)\n", earlier.version));
            return Ok(());
        }
        make_image(ImageTools { engine, runtimes, installer }, &function, &v, &tag, &append).await
    }
    .await;
    flusher.abort();
    metrics.record_build(language.as_str(), result.is_ok(), started.elapsed());
    match result {
        Ok(()) => {
            append(&format!("image {tag} ready\n"));
            flush(store, v.id, &log).await?;
            prepare_switch(store, pool, &v, &tag, &append).await?;
            flush(store, v.id, &log).await?;
            store.finish_build_ok(&v, &tag).await?;
            on_ready(&v);
        }
        Err(failure) => {
            append(&format!("BUILD FAILED: {}\n", failure.log_line()));
            flush(store, v.id, &log).await?;
            store.finish_build_failed(&v, &failure.reason).await?;
        }
    }
    Ok(())
}

/// What making an image takes.
#[derive(Clone, Copy)]
pub struct ImageTools<'a> {
    pub engine: &'a Engine,
    pub runtimes: &'a Runtimes,
    pub installer: &'a Installer,
}

/// Makes version `v`'s image `tag` from its stored files on this engine: the base image, the
/// dependency install (reused when the manifest's image is there), the files and the check.
/// A node that lacks a version's image makes it the same way the first build did.
pub async fn make_image(tools: ImageTools<'_>, function: &FunctionRow, v: &VersionRow, tag: &str, append: &(dyn Fn(&str) + Sync)) -> Result<(), BuildFailure> {
    let ImageTools { engine, runtimes, installer } = tools;
    let language = v.language;
    let files = v.files();
    runtimes.ensure_base(engine, language, append).await.map_err(|e| format!("base image unavailable: {e}"))?;
    let from = match Manifest::of(language, &files) {
        None => runtimes.base_image(language).to_string(),
        Some(manifest) => {
            let installing = std::time::Instant::now();
            let image = installer.image_for(engine, &manifest, append).await?;
            append(&format!("dependencies ready in {} ms\n", installing.elapsed().as_millis()));
            image
        }
    };
    let mut labels = engine.labels(&function.org, &function.name, v.version);
    labels.insert(LABEL_RECIPE.to_string(), recipe(language, runtimes.base_image(language)));
    let context = build_context(language, &from, &files, &labels).map_err(|e| format!("cannot make build context: {e}"))?;
    // The build's own output, kept to name the interpreter's error at the end.
    let mut output = String::new();
    let mut sink = |text: &str| {
        if output.len() < MAX_BUILD_LOG {
            output.push_str(text);
        }
        append(text)
    };
    match engine.build(context, tag, &mut sink).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(explain_build_error(&message, &output)),
        Err(e) => Err(format!("container engine failed: {e}").into()),
    }
}

/// The newest earlier version with the same language and files whose image is still there and
/// was made the way this platform makes images now (its recipe).
async fn unchanged_since(store: &Store, engine: &Engine, runtimes: &Runtimes, v: &VersionRow, files: &app::model::FileTree) -> Option<VersionRow> {
    let versions = store.versions(v.function_id).await.ok()?;
    let earlier = versions.into_iter().find(|e| {
        e.version < v.version && e.build_status == BuildStatus::Ready && e.language == v.language && e.image.is_some()
    })?;
    if &earlier.files() != files {
        return None;
    }
    let labels = engine.image_labels(earlier.image.as_deref()?).await.ok()??;
    // The recipe is that of the base image: a dependency image starts from it too.
    let current = recipe(v.language, runtimes.base_image(v.language));
    (labels.get(LABEL_RECIPE) == Some(&current)).then_some(earlier)
}

/// Starts the new version's containers before calls switch to it, as many as serve the old
/// one now, so an update under load makes no call wait for a container start.
async fn prepare_switch(store: &Store, pool: &Arc<Pool>, v: &VersionRow, tag: &str, append: &impl Fn(&str)) -> Result<(), StoreError> {
    // Read again: its instance settings may have changed, or it may be deleted, during the build.
    let Some(function) = store.function_by_id(v.function_id).await? else { return Ok(()) };
    if function.is_deleting() {
        return Ok(());
    }
    let version = VersionRow { image: Some(tag.to_string()), build_status: BuildStatus::Ready, ..v.clone() };
    let started = std::time::Instant::now();
    let serving = pool.prepare(&Target { function, version }).await;
    if serving > 0 {
        let ms = started.elapsed().as_millis();
        append(&format!("{serving} container(s) of v{} started ahead of the switch in {ms} ms\n", v.version));
    }
    Ok(())
}

fn explain_build_error(message: &str, output: &str) -> BuildFailure {
    if !message.contains("returned a non-zero code") {
        return message.to_string().into();
    }
    let reason = interpreter_error(output).unwrap_or_else(|| "the code has an error (see the interpreter's message)".to_string());
    BuildFailure::with_output(reason)
}

/// The interpreter's error in a failed check of the handler, with where it is:
/// `SyntaxError: Unexpected token ';' (lib/util.js, line 2)`.
fn interpreter_error(output: &str) -> Option<String> {
    let error = regex::Regex::new(r"^\s*([A-Z][A-Za-z]*(?:Error|Exception)(?::.*)?)$").expect("valid pattern");
    // Node.js names the file by its path in the image, the Python check by its path in the tree.
    let place = regex::Regex::new(r#"(?:^|/app/|File ")([\w.-][\w./-]*\.(?:js|cjs|mjs|py))(?::|", line )(\d+)"#).expect("valid pattern");
    // Docker colours the build step's error output.
    let plain = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("valid pattern").replace_all(output, "");
    let lines: Vec<&str> = plain.lines().collect();
    let at = lines.iter().rposition(|l| error.is_match(l))?;
    let what = lines[at].trim();
    let line = lines[..at].iter().rev().find_map(|l| place.captures(l));
    Some(match line {
        Some(c) => format!("{what} ({}, line {})", &c[1], &c[2]),
        None => what.to_string(),
    })
}

/// Writes new log text to the database every half second, so the portal can show progress.
fn spawn_log_flusher(store: Store, version_id: i64, log: Arc<Mutex<String>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if let Err(e) = flush(&store, version_id, &log).await {
                tracing::warn!(error = %e, "cannot store build log");
            }
        }
    })
}

async fn flush(store: &Store, version_id: i64, log: &Mutex<String>) -> Result<(), StoreError> {
    let text = std::mem::take(&mut *log.lock().unwrap());
    if !text.is_empty() {
        store.append_build_log(version_id, &text).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::interpreter_error;

    #[test]
    fn the_interpreters_error_is_named_with_its_line() {
        let node = "Step 4/6 : RUN [\"node\", \"--check\", \"/app/handler.js\"]\n\
                    /app/handler.js:2\n  return { message: 'oops' ;\n                           ^\n\n\
                    SyntaxError: Unexpected token ';'\n    at internalCompileFunction (node:internal/vm:76:18)\n";
        assert_eq!(interpreter_error(node).as_deref(), Some("SyntaxError: Unexpected token ';' (handler.js, line 2)"));
        let python = "\x1b[0m\x1b[91m  File \"handler.py\", line 3\n\x1b[0m\x1b[91m    return (\n           ^\n\
                      \x1b[0m\x1b[91mSyntaxError: '(' was never closed\n\x1b[0mRemoving intermediate container d569f98ead5c\n";
        assert_eq!(interpreter_error(python).as_deref(), Some("SyntaxError: '(' was never closed (handler.py, line 3)"));
        assert_eq!(interpreter_error("Step 1/6 : FROM base\nall fine\n"), None);
    }
}
