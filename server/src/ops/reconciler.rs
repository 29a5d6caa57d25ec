//! Converges Docker (the actual state) on the database (the desired state): resumes builds
//! that were cut off, finishes deletions, fails calls a crash interrupted, and removes
//! labelled containers and images that nothing owns. Also prunes old call records.

use crate::build::deps::{Manifest, LABEL_DEPS};
use crate::build::builder::Builder;
use crate::calls::gateway::Gateway;
use crate::config::Config;
use crate::run::engine::{LABEL_FUNCTION, LABEL_PROCESS, LABEL_TENANT, LABEL_VERSION};
use crate::store::{now_ms, Store};
use app::model::FunctionStatus;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a pass works on.
#[derive(Clone)]
pub struct Reconciler {
    pub store: Store,
    pub builder: Builder,
    /// The pool's containers and the call records.
    pub gateway: Gateway,
    pub config: Arc<Config>,
}

/// Things younger than this may belong to work that has just begun.
const GRACE_SECS: i64 = 120;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub builds_resumed: usize,
    pub deletions_finished: usize,
    pub calls_failed: u64,
    pub containers_removed: usize,
    pub images_removed: usize,
    pub records_pruned: u64,
}

/// One pass. `at_start` is true on the first pass after the server starts: then every labelled
/// container made before `started_at_ms` is an orphan, unless a live other process made it
/// (several processes may share the database and the engine).
pub async fn reconcile(parts: &Reconciler, started_at_ms: i64, at_start: bool) -> Result<Report, String> {
    let engine = parts.gateway.pool().engine();
    let store = &parts.store;
    let mut report = Report::default();
    // Other live processes on this database: their containers and running calls are theirs.
    let others = super::processes::live_others(store, engine.process()).await?;
    if at_start && others.is_empty() {
        report.calls_failed = store.fail_interrupted_invocations(started_at_ms).await.map_err(|e| e.to_string())?;
    }
    for v in store.unfinished_builds().await.map_err(|e| e.to_string())? {
        if parts.builder.builds_here() && !parts.builder.is_building(v.id) {
            parts.builder.enqueue(v.id);
            report.builds_resumed += 1;
        }
    }
    for f in store.functions_with_status(FunctionStatus::Deleting).await.map_err(|e| e.to_string())? {
        if super::purge::purge_function(store, &parts.gateway, &f, parts.config.cluster.local_worker).await {
            report.deletions_finished += 1;
        }
    }

    let records_before = now_ms() - parts.config.record_days as i64 * 86_400_000;
    for f in store.list_functions(None).await.map_err(|e| e.to_string())? {
        if !f.is_deleting() {
            report.records_pruned +=
                store.prune_invocations(f.id, records_before, parts.config.records_per_function).await.map_err(|e| e.to_string())?;
        }
    }
    // A front without a worker has no engine of its own: each node cleans its own.
    if parts.config.cluster.local_worker {
        let engine_side = Leftovers { store, pool: parts.gateway.pool(), installer: parts.builder.installer(), socket_dir: parts.config.socket_dir() };
        let (containers, images) = engine_side.remove(&others, started_at_ms, at_start).await?;
        report.containers_removed = containers;
        report.images_removed = images;
    }
    Ok(report)
}

/// What one engine holds that nothing owns any more: containers of processes that are gone,
/// images of versions no longer served. A node cleans its own engine with this too.
pub struct Leftovers<'a> {
    pub store: &'a Store,
    pub pool: &'a Arc<crate::run::pool::Pool>,
    pub installer: &'a crate::build::deps::Installer,
    pub socket_dir: std::path::PathBuf,
}

impl Leftovers<'_> {
    /// Removes them; how many containers and images went. `others`: the live processes
    /// besides this one, whose containers are theirs.
    pub async fn remove(&self, others: &HashSet<String>, started_at_ms: i64, at_start: bool) -> Result<(usize, usize), String> {
        let containers = self.remove_containers(others, started_at_ms, at_start).await?;
        let images = self.remove_images(at_start).await?;
        Ok((containers, images))
    }

    async fn remove_containers(&self, others: &HashSet<String>, started_at_ms: i64, at_start: bool) -> Result<usize, String> {
        let (engine, pool) = (self.pool.engine(), self.pool);
        let now_secs = now_ms() / 1000;
        let mut removed = 0;
        for c in engine.list_function_containers().await.map_err(|e| e.to_string())? {
            if c.labels.get(LABEL_PROCESS).is_some_and(|p| others.contains(p)) {
                continue;
            }
            // At start, containers from before this process are orphans; the pool may already be
            // creating its own, which it records as owned only once Docker has answered.
            let stale = (at_start && c.created < started_at_ms / 1000) || now_secs - c.created > GRACE_SECS;
            if stale && !pool.owns(&c.id) {
                tracing::info!(container = %c.name, "removing orphan container");
                if engine.remove_container(&c.id).await.is_ok() {
                    removed += 1;
                }
                let _ = std::fs::remove_dir_all(self.socket_dir.join(&c.name));
                // A stem cell's files (see `runner::Stem`).
                let _ = std::fs::remove_dir_all(self.socket_dir.join(format!("{}.app", c.name)));
            }
        }
        Ok(removed)
    }

    /// Only each function's serving version and versions still building keep their images,
    /// with the dependency images they start from.
    async fn remove_images(&self, at_start: bool) -> Result<usize, String> {
        let (engine, store) = (self.pool.engine(), self.store);
        let now_secs = now_ms() / 1000;
        let mut removed = 0;
        let mut keep: HashSet<(String, String, String)> = HashSet::new();
        // A version whose files did not change serves from an earlier version's image, by its own tag.
        let mut keep_tags: HashSet<String> = HashSet::new();
        let mut keep_deps: HashSet<String> = HashSet::new();
        for f in store.list_functions(None).await.map_err(|e| e.to_string())? {
            if f.is_deleting() {
                continue;
            }
            for v in store.versions(f.id).await.map_err(|e| e.to_string())? {
                if Some(v.version) == f.current_version || v.build_status.is_pending() {
                    keep.insert((f.org.clone(), f.name.clone(), v.version.to_string()));
                    keep_tags.extend(v.image.clone());
                    if let Some(manifest) = Manifest::of(v.language, &v.files()) {
                        keep_deps.insert(self.installer.image_name(&manifest));
                    }
                }
            }
        }
        for image in engine.list_function_images().await.map_err(|e| e.to_string())? {
            let key = |l: &str| image.labels.get(l).cloned().unwrap_or_default();
            let owner = (key(LABEL_TENANT), key(LABEL_FUNCTION), key(LABEL_VERSION));
            let tagged = image.tags.iter().any(|tag| keep_tags.contains(tag));
            if !keep.contains(&owner) && !tagged && (at_start || now_secs - image.created > GRACE_SECS) {
                tracing::info!(image = %image.id, tags = ?image.tags, "removing image no version owns");
                if engine.remove_image(&image.id).await.is_ok() {
                    removed += 1;
                }
            }
        }
        for image in engine.list_images_labelled(LABEL_DEPS).await.map_err(|e| e.to_string())? {
            let in_use = image.tags.iter().any(|tag| keep_deps.contains(tag));
            if !in_use && (at_start || now_secs - image.created > GRACE_SECS) {
                tracing::info!(image = %image.id, tags = ?image.tags, "removing dependency image no version uses");
                // The engine refuses while any image still starts from it.
                if engine.remove_image(&image.id).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Runs a pass at start-up and then every `interval`.
pub fn spawn(parts: Reconciler, interval: Duration) {
    let started_at = now_ms();
    tokio::spawn(async move {
        let mut at_start = true;
        loop {
            match reconcile(&parts, started_at, at_start).await {
                Ok(report) if report != Report::default() => tracing::info!(?report, "reconciled"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconcile pass failed; retrying later"),
            }
            at_start = false;
            tokio::time::sleep(interval).await;
        }
    });
}
