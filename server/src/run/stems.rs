//! Stem cells: containers of each language's runtime started ahead with no function in them,
//! their runtime listening, then paused (see `runner::Stem`). A cold start that has no spare
//! of its own takes one and specializes it: the version's files into its `/app`, its outbound
//! gate, an unpause. The engine starts containers one after another, so without them a burst
//! of first calls (to one function or to many) waits for each start in turn; with them each
//! costs an unpause. A cell becomes one function version's container for the rest of its life
//! and is never handed to another; the keeper makes a new cell in its place.
//!
//! Cells run under runc with the default memory: a version that asks for other memory, has
//! installed dependencies (they are in its image), or whose tenant is on gVisor starts its own
//! container as before.

use crate::build::deps::Manifest;
use crate::build::runtimes::{self, Runtimes};
use crate::run::engine::Engine;
use crate::run::runner::{self, Sandbox, Stem};
use crate::store::Target;
use app::model::{Language, Sandbox as SandboxKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The languages cells are kept for, in the order they get the budget.
const LANGUAGES: [Language; 2] = [Language::Nodejs, Language::Python];

pub struct Stems {
    engine: Engine,
    sandbox: Sandbox,
    runtimes: Arc<Runtimes>,
    /// Cells kept per language.
    keep: usize,
    /// The memory limit of every cell (MB).
    pub memory_mb: i64,
    cells: Mutex<HashMap<Language, Vec<Stem>>>,
    /// Languages whose cells are being made (one maker per language at a time).
    making: Mutex<HashMap<Language, usize>>,
    /// Each language's stem image, once built.
    images: tokio::sync::Mutex<HashMap<Language, String>>,
    stopped: AtomicBool,
}

/// What the cells hold now, for the dashboard and `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StemFigures {
    pub cells: usize,
    pub memory_mb: i64,
}

impl Stems {
    pub fn new(engine: Engine, sandbox: Sandbox, runtimes: Arc<Runtimes>, keep: usize, memory_mb: i64) -> Arc<Stems> {
        Arc::new(Stems {
            engine,
            sandbox,
            runtimes,
            keep,
            memory_mb,
            cells: Mutex::default(),
            making: Mutex::default(),
            images: tokio::sync::Mutex::default(),
            stopped: AtomicBool::new(false),
        })
    }

    /// Whether a cell can become the target version's container.
    pub fn fits(&self, target: &Target) -> bool {
        let v = &target.version;
        target.function.sandbox == SandboxKind::Runc && v.memory_mb == self.memory_mb && Manifest::of(v.language, &v.files()).is_none()
    }

    /// A cell for the target version, when one fits and is ready; the keeper then makes
    /// another within `room_mb`.
    pub fn take(self: &Arc<Self>, target: &Target, room_mb: i64) -> Option<Stem> {
        if !self.fits(target) {
            return None;
        }
        let cell = self.cells.lock().unwrap().get_mut(&target.version.language)?.pop();
        self.refill(room_mb);
        cell
    }

    /// Cells kept, and the memory limits they hold (counting those being made).
    pub fn figures(&self) -> StemFigures {
        let cells: usize = self.cells.lock().unwrap().values().map(Vec::len).sum();
        let making: usize = self.making.lock().unwrap().values().sum();
        StemFigures { cells, memory_mb: (cells + making) as i64 * self.memory_mb }
    }

    /// The memory limits of all the cells kept when none is missing.
    pub fn full_mb(&self) -> i64 {
        (self.keep * LANGUAGES.len()) as i64 * self.memory_mb
    }

    /// Whether a container is one of the cells not specialized yet.
    pub fn owns(&self, container_id: &str) -> bool {
        self.cells.lock().unwrap().values().flatten().any(|c| c.id == container_id)
    }

    /// Makes the cells missing in each language, one after another, while their memory stays
    /// within `room_mb` (what the provider's budget for paused containers leaves them).
    pub fn refill(self: &Arc<Self>, room_mb: i64) {
        if self.keep == 0 || self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let mut room = room_mb - self.figures().memory_mb;
        for language in LANGUAGES {
            let wanted = {
                let have = self.cells.lock().unwrap().get(&language).map_or(0, Vec::len);
                let mut making = self.making.lock().unwrap();
                let underway = making.entry(language).or_default();
                if *underway > 0 {
                    continue;
                }
                let fit = usize::try_from(room / self.memory_mb.max(1)).unwrap_or(0);
                let wanted = self.keep.saturating_sub(have).min(fit);
                *underway = wanted;
                wanted
            };
            room -= wanted as i64 * self.memory_mb;
            if wanted > 0 {
                let stems = self.clone();
                tokio::spawn(async move { stems.make(language, wanted).await });
            }
        }
    }

    /// Makes `count` cells of a language, one at a time.
    async fn make(&self, language: Language, count: usize) {
        for left in (0..count).rev() {
            let made = match self.image(language).await {
                Ok(image) => runner::create_stem(&self.engine, &self.sandbox, &image, language, self.memory_mb).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let leftover = {
                let mut making = self.making.lock().unwrap();
                making.insert(language, left);
                match made {
                    Ok(stem) if !self.stopped.load(Ordering::Relaxed) => {
                        self.cells.lock().unwrap().entry(language).or_default().push(stem);
                        None
                    }
                    Ok(stem) => Some(stem),
                    Err(e) => {
                        tracing::warn!(language = %language, error = %e, "cannot make a stem cell");
                        making.insert(language, 0);
                        return;
                    }
                }
            };
            if let Some(stem) = leftover {
                runner::destroy_stem(&self.engine, &stem).await;
                self.making.lock().unwrap().insert(language, 0);
                return;
            }
        }
    }

    /// The language's stem image, built on its base image the first time.
    async fn image(&self, language: Language) -> Result<String, String> {
        let mut images = self.images.lock().await;
        if let Some(image) = images.get(&language) {
            return Ok(image.clone());
        }
        self.runtimes.ensure_base(&self.engine, language, &|_| {}).await?;
        let (tag, context) = runtimes::stem_image(language, self.runtimes.base_image(language)).map_err(|e| e.to_string())?;
        if !self.engine.image_exists(&tag).await.map_err(|e| e.to_string())? {
            let mut log = String::new();
            self.engine.build(context, &tag, &mut |line| log.push_str(line)).await.map_err(|e| e.to_string())?.map_err(|e| format!("{e}\n{log}"))?;
        }
        images.insert(language, tag.clone());
        Ok(tag)
    }

    /// Removes every cell, and makes no more (at shutdown).
    pub async fn drain(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let cells: Vec<Stem> = self.cells.lock().unwrap().drain().flat_map(|(_, cells)| cells).collect();
        for cell in &cells {
            runner::destroy_stem(&self.engine, cell).await;
        }
    }
}
