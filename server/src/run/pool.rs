//! Hands out containers for calls, per function:
//! - `warm` (the default): a released container stays up for the idle time and takes the next
//!   call of the same version, so warm calls cost no Docker round trip. `min_instances` of them
//!   stay up while idle, and one more is kept created but not started (the spare), so a cold
//!   call costs a `start` and the runtime's start-up, not a `create` as well;
//! - `per-call`: the seed's gateway flow, a container started for one call and then removed.
//! At most `max_instances` containers serve a function at once, each up to `concurrency` calls;
//! a call beyond that waits for a free place until its deadline. The pool knows every container
//! it owns (spare, starting, serving or idle), so the reconciler removes only strangers.

use crate::run::engine::Engine;
use crate::run::runner::{self, CallError, Instance, Sandbox};
use crate::run::stems::{StemFigures, Stems};
use crate::store::{now_us, Store, Target};
pub use app::model::PoolMode;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Containers of one version, as a node's heartbeat lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WarmVersion {
    pub function_id: i64,
    pub version: i64,
    pub containers: usize,
}

/// What a pool holds (see `Pool::load`).
#[derive(Clone, Debug, Default)]
pub struct Load {
    pub containers: usize,
    pub memory_mb: i64,
    pub millicpus: i64,
    pub warm: Vec<WarmVersion>,
}

/// A pool's use and its containers of one function (see `Pool::load_for`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadFor {
    pub memory_mb: i64,
    pub millicpus: i64,
    /// Containers of the function, any version.
    pub of_function: usize,
    /// Containers of the asked version.
    pub of_version: usize,
}

/// Which path gave a call its container: how much of a cold start it paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServedBy {
    /// A container whose runtime had answered before.
    Warm,
    /// The pre-started spare: started ahead with its runtime listening, paused, and unpaused
    /// for the call.
    #[serde(rename = "pre-started")]
    Prestarted,
    /// The spare created ahead, started for the call.
    Started,
    /// A stem cell (a runtime started ahead with no function, paused) that took the
    /// function's files and was unpaused for the call (see `stems.rs`).
    Specialized,
    /// A container created and started for the call.
    Created,
}

impl ServedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ServedBy::Warm => "warm",
            ServedBy::Prestarted => "pre-started",
            ServedBy::Started => "started",
            ServedBy::Specialized => "specialized",
            ServedBy::Created => "created",
        }
    }
}

pub struct Lease {
    pub instance: Arc<Instance>,
    /// How its container came to serve it.
    pub served_by: ServedBy,
    function_id: i64,
    container: u64,
    mode: PoolMode,
}

impl Lease {
    /// True when the container's runtime has not answered a call yet (it was started for this
    /// call or just before): the call waits for the runtime to listen.
    pub fn is_cold(&self) -> bool {
        self.served_by != ServedBy::Warm
    }
}

/// One running (or starting) container of a function.
struct Container {
    key: u64,
    version: i64,
    /// `None` while it is being started.
    instance: Option<Arc<Instance>>,
    /// Calls it serves now, or that wait for its start.
    calls: usize,
    /// Its runtime has answered, so calls may connect at once.
    ready: bool,
    /// When its last call ended (or it got ready).
    idle_since: Instant,
    /// How it was started (a call that joins it before its runtime answers pays the same).
    started_by: ServedBy,
}

impl Container {
    fn reserved(key: u64, version: i64, calls: usize) -> Container {
        Container { key, version, instance: None, calls, ready: false, idle_since: Instant::now(), started_by: ServedBy::Created }
    }

    fn is_idle(&self) -> bool {
        self.calls == 0 && self.instance.is_some()
    }
}

/// A container of one version made ahead of the next cold start: created, never started; or,
/// when `paused`, started with its runtime listening and then paused (pre-started), so the
/// cold start costs an unpause.
struct Spare {
    version: i64,
    instance: Instance,
    paused: bool,
}

/// The containers of one function.
struct Slot {
    /// Tenant and function name, for metrics.
    name: (String, String),
    /// The newest version seen; idle containers of older versions are retired.
    version: i64,
    /// Memory one container of the newest version gets (MB).
    memory_mb: i64,
    containers: Vec<Container>,
    /// Containers of `version` kept up while idle.
    min: usize,
    spare: Option<Spare>,
    /// A spare is being created.
    spare_pending: bool,
    /// The spare being created is to be pre-started (its memory is counted already).
    spare_prestarting: bool,
    /// When a call last came (or the slot was made): a function called within the idle
    /// time keeps a pre-started spare, one idle for longer does not.
    last_call: Instant,
    /// Calls waiting for a place.
    waiting: usize,
    /// Bumped when a starting container runs or fails; calls that joined it watch it.
    changed: watch::Sender<u64>,
    /// Waiting calls with the version they run, first come first served; each is woken when a
    /// place it can use frees. Registered under the lock, so no wake-up is lost between
    /// deciding to wait and waiting.
    waiters: VecDeque<(i64, oneshot::Sender<()>)>,
    /// Calls that found no room in the line but wait for it rather than being refused (a
    /// source that bounds its own backlog: vCD's broker). Woken one at a time as the line
    /// shortens or a place frees, so they never crowd out callers who would be let in.
    overflow: VecDeque<oneshot::Sender<()>>,
    /// The newest share of the function's cluster-wide limit a front gave this pool (a node's).
    share: Option<ShareOfLimit>,
    /// The runtime its containers run under (its tenant's sandbox when they were made).
    sandbox: Option<app::model::Sandbox>,
}

/// How many containers of a function a node may run, as a front worked it out at a moment
/// (its clock, in µs): the function's `max_instances` less what the other places hold.
/// Calls carry one each; the pool goes by the newest it has seen, for every call of the
/// function from then on, so a call placed earlier (on an older view) cannot start a container
/// the front has since counted on elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareOfLimit {
    pub instances: i64,
    pub as_of_us: i64,
}

/// How a call comes to `Slot::decide`.
#[derive(Clone, Copy, Default)]
struct Arrival {
    /// It waited in the line and was woken.
    queued: bool,
    /// It waited for room in a full line and was woken.
    overflowed: bool,
    /// It waits for room when the line is full instead of being refused.
    waits_when_full: bool,
}

impl Slot {
    fn new(org: &str, name: &str) -> Slot {
        Slot {
            name: (org.to_string(), name.to_string()),
            version: 0,
            memory_mb: 0,
            containers: Vec::new(),
            min: 0,
            spare: None,
            spare_pending: false,
            spare_prestarting: false,
            last_call: Instant::now(),
            waiting: 0,
            changed: watch::channel(0).0,
            waiters: VecDeque::new(),
            overflow: VecDeque::new(),
            share: None,
            sandbox: None,
        }
    }

    /// The provider moved the tenant to another sandbox: no call may get a container of the
    /// old one. Idle containers and the spare are retired (returned for removal); busy ones
    /// are marked as of no version (0), so they take no new call and go when their calls end.
    fn switch_sandbox(&mut self, sandbox: app::model::Sandbox) -> Vec<Arc<Instance>> {
        let switched = self.sandbox.is_some_and(|had| had != sandbox);
        self.sandbox = Some(sandbox);
        if !switched {
            return Vec::new();
        }
        let (idle, busy): (Vec<Container>, Vec<Container>) = std::mem::take(&mut self.containers).into_iter().partition(Container::is_idle);
        self.containers = busy.into_iter().map(|c| Container { version: 0, ..c }).collect();
        let mut retired: Vec<Arc<Instance>> = idle.into_iter().filter_map(|c| c.instance).collect();
        retired.extend(self.spare.take().map(|s| Arc::new(s.instance)));
        retired
    }

    /// Keeps the newer of the share it has and the call's.
    fn take_share(&mut self, share: Option<ShareOfLimit>) {
        if let Some(share) = share {
            if self.share.is_none_or(|had| share.as_of_us >= had.as_of_us) {
                self.share = Some(share);
            }
        }
    }

    /// A starting container runs now, or failed to.
    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A call's place freed in a container of `version`, or, with `None`, room for another
    /// container: the longest waiting call that can use it is woken.
    fn place_freed(&mut self, version: Option<i64>) {
        let mut at = 0;
        while at < self.waiters.len() {
            if version.is_some_and(|v| v != self.waiters[at].0) {
                at += 1;
                continue;
            }
            let (_, waiter) = self.waiters.remove(at).expect("in range");
            if waiter.send(()).is_ok() {
                return;
            }
        }
        // Nobody in line could use it: the pool is less busy, which a call waiting for room
        // may need (see `place`).
        self.line_shortened();
    }

    /// Calls being served now, in all containers.
    fn busy(&self) -> usize {
        self.containers.iter().map(|c| c.calls).sum()
    }

    /// The line is shorter by one: the longest waiting call for room in it may try again.
    fn line_shortened(&mut self) {
        while let Some(waiter) = self.overflow.pop_front() {
            if waiter.send(()).is_ok() {
                return;
            }
        }
    }

    /// Whether a call of `version` still waits for a place.
    fn awaited(&self, version: i64) -> bool {
        self.waiters.iter().any(|(v, waiter)| *v == version && !waiter.is_closed())
    }

    fn find(&mut self, key: u64) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.key == key)
    }

    fn remove(&mut self, key: u64) -> Option<Container> {
        let at = self.containers.iter().position(|c| c.key == key)?;
        Some(self.containers.swap_remove(at))
    }

    /// Moves to a newer version: idle containers and the spare of older versions are retired
    /// (returned for removal); busy ones, and idle ones a waiting call of their version is
    /// about to take, go when they have served the calls of their version.
    fn advance(&mut self, version: i64) -> Vec<Arc<Instance>> {
        let mut retired = Vec::new();
        if version <= self.version {
            return retired;
        }
        self.version = version;
        let (old, keep): (Vec<Container>, Vec<Container>) = std::mem::take(&mut self.containers)
            .into_iter()
            .partition(|c| c.version < version && c.is_idle() && !self.awaited(c.version));
        self.containers = keep;
        retired.extend(old.into_iter().filter_map(|c| c.instance));
        if let Some(spare) = self.spare.take_if(|s| s.version < version) {
            retired.push(Arc::new(spare.instance));
        }
        retired
    }

    /// What a call of `version` gets now; reserves its place unless it must wait. A `queued`
    /// call was waiting already: it keeps its place in the queue, so calls that arrived while
    /// every waiter was woken cannot push it out.
    fn decide(&mut self, version: i64, mode: PoolMode, limits: Capacity, key: u64, arrival: Arrival) -> Decision {
        let decision = self.place(version, mode, limits, key, arrival);
        if arrival.queued && !matches!(decision, Decision::Wait(_)) {
            self.line_shortened();
        }
        decision
    }

    fn place(&mut self, version: i64, mode: PoolMode, limits: Capacity, key: u64, arrival: Arrival) -> Decision {
        let queued = arrival.queued;
        if queued {
            self.waiting -= 1;
        }
        // A call that resolved a version just before an update switched to a newer one: that
        // version's containers drain by serving it, so it needs no container start.
        let outdated = version < self.version;
        if mode == PoolMode::Warm {
            // Another container starts only when none has room. Among those with room the
            // least busy, as each has its own CPU share (filling one while others idle capped
            // 16 calls to half a core); among equals the most recently used, so the others can
            // expire.
            let best = self
                .containers
                .iter_mut()
                .filter(|c| c.version == version && c.calls < limits.per_container)
                .max_by_key(|c| (c.instance.is_some(), c.ready, std::cmp::Reverse(c.calls), c.idle_since));
            if let Some(c) = best {
                c.calls += 1;
                return match &c.instance {
                    Some(instance) => {
                        let served_by = if c.ready { ServedBy::Warm } else { c.started_by };
                        Decision::Reuse { key: c.key, instance: instance.clone(), served_by }
                    }
                    None => Decision::Join { key: c.key, changes: self.changed.subscribe() },
                };
            }
        }
        // An outdated call waits for a container of its version to free; only when none is
        // left does it get one of its own, beyond the cap (its version is going away).
        let may_start = if outdated {
            mode == PoolMode::PerCall || !self.containers.iter().any(|c| c.version == version)
        } else {
            self.containers.len() < limits.instances
        };
        if may_start {
            let here = self.containers.len();
            self.containers.push(Container::reserved(key, version, 1));
            let spare = self.spare.take_if(|s| s.version == version);
            return Decision::Start { key, spare, here };
        }
        let room_in_line = if arrival.waits_when_full && !queued {
            // A source that waits when the line is full leaves the line's last places to
            // callers who would be refused: it joins only while every call in the pool, serving
            // or waiting, would fit in the line.
            self.busy() + self.waiting < limits.queue
        } else {
            self.waiting < limits.queue
        };
        if queued || room_in_line {
            self.waiting += 1;
            let (wake, woken) = oneshot::channel();
            // A call woken but beaten to the place by a newcomer stays first in line.
            if queued {
                self.waiters.push_front((version, wake));
            } else {
                self.waiters.push_back((version, wake));
            }
            return Decision::Wait(woken);
        }
        if arrival.waits_when_full {
            let (wake, woken) = oneshot::channel();
            // Woken but beaten to the room by a newcomer: still the first to wait for it.
            if arrival.overflowed {
                self.overflow.push_front(wake);
            } else {
                self.overflow.push_back(wake);
            }
            return Decision::WaitForRoom(woken);
        }
        Decision::Full
    }
}

#[derive(Clone, Copy)]
struct Capacity {
    instances: usize,
    per_container: usize,
    queue: usize,
}

enum Decision {
    /// A started container with room (warm once its runtime has answered).
    Reuse { key: u64, instance: Arc<Instance>, served_by: ServedBy },
    /// A place in a container being started; wait until it runs.
    Join { key: u64, changes: watch::Receiver<u64> },
    /// A new container (reserved as `key`), from the spare when there is one; `here`: the
    /// function's other containers in this pool.
    Start { key: u64, spare: Option<Spare>, here: usize },
    Wait(oneshot::Receiver<()>),
    /// The line is full; wait until it has room (see `Slot::overflow`).
    WaitForRoom(oneshot::Receiver<()>),
    Full,
}

pub struct Pool {
    engine: Engine,
    sandbox: Sandbox,
    idle_timeout: Duration,
    /// Calls that may wait per place (instance × concurrency) before more are turned away.
    queue_per_instance: usize,
    owned: Arc<Mutex<HashSet<String>>>,
    slots: Mutex<HashMap<i64, Slot>>,
    next_key: AtomicU64,
    /// Set at shutdown: the maintainer makes no more containers.
    draining: AtomicBool,
    /// Bumped by `forget`: a maintainer pass that read the functions before a deletion skips,
    /// so it never brings a deleted function's containers back.
    forgotten: AtomicU64,
    /// The part of the warm minimum this pool keeps, when it is one of several (a node).
    warm_share: std::sync::OnceLock<Arc<dyn WarmShare>>,
    /// Asked before a call starts a container, when this pool is one of several (a node).
    cluster_limit: std::sync::OnceLock<Arc<dyn ClusterLimit>>,
    /// See `keep_prestarted_within`.
    prestarted_budget_mb: std::sync::atomic::AtomicI64,
    /// Stem cells for cold starts that have no spare of their own (set once, when kept).
    stems: std::sync::OnceLock<Arc<Stems>>,
}

/// Which part of the warm functions' `min_instances` a pool keeps: all of it on a single host
/// (no share given), a share of it on each node of a cluster.
pub trait WarmShare: Send + Sync {
    /// The targets with `min_instances` set to what this pool keeps of each.
    fn keep_here(&self, targets: Vec<Target>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Target>> + Send + '_>>;
}

/// The cluster-wide side of a function's `max_instances`: whether this pool, one of several,
/// may start another container of it, given the `here` it holds besides the one to start.
pub trait ClusterLimit: Send + Sync {
    /// `Err(CallError::HeldElsewhere(..))` when the other pools hold the rest of the limit.
    fn admit<'a>(&'a self, target: &'a Target, here: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CallError>> + Send + 'a>>;
}

impl Pool {
    pub fn new(engine: Engine, sandbox: Sandbox, idle_timeout: Duration, queue_per_instance: usize) -> Pool {
        Pool {
            engine,
            sandbox,
            idle_timeout,
            queue_per_instance,
            owned: Arc::default(),
            slots: Mutex::default(),
            next_key: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            forgotten: AtomicU64::new(0),
            warm_share: std::sync::OnceLock::new(),
            cluster_limit: std::sync::OnceLock::new(),
            prestarted_budget_mb: std::sync::atomic::AtomicI64::new(0),
            stems: std::sync::OnceLock::new(),
        }
    }

    /// Keeps stem cells for cold starts with no spare (set once, at start), within the budget
    /// of `keep_prestarted_within`: they have the first part of it, as much as all of them
    /// take, and the pre-started spares the rest.
    pub fn keep_stem_cells(&self, stems: Arc<Stems>) {
        if self.stems.set(stems).is_ok() {
            self.refill_stems();
        }
    }

    /// What the stem cells hold now (none when none are kept).
    pub fn stem_figures(&self) -> StemFigures {
        self.stems.get().map(|s| s.figures()).unwrap_or_default()
    }

    /// The part (MB) of the budget for paused containers set aside for the stem cells: all
    /// they take when every one is kept, at most the whole budget.
    fn stem_room_mb(&self) -> i64 {
        let wanted = self.stems.get().map_or(0, |s| s.full_mb());
        wanted.min(self.prestarted_budget_mb.load(Ordering::Relaxed))
    }

    fn refill_stems(&self) {
        if let Some(stems) = self.stems.get() {
            stems.refill(self.stem_room_mb());
        }
    }

    /// Makes this pool ask `limit` before a call starts a container (set once, by a node).
    pub fn limit_cluster_wide(&self, limit: Arc<dyn ClusterLimit>) {
        let _ = self.cluster_limit.set(limit);
    }

    /// Makes this pool keep only its share of each function's `min_instances` (set once, by
    /// a node, before its maintainer starts).
    pub fn keep_share_of_warm_minimum(&self, share: Arc<dyn WarmShare>) {
        let _ = self.warm_share.set(share);
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A container for one call of the target's version, waiting for a free place until
    /// `deadline` when the function is at its `max_instances` × `concurrency`.
    /// `waits_when_full`: a call that finds the function's line full waits in it all the same
    /// (a source that bounds what it hands over itself) instead of being refused.
    /// `share`: fewer containers than the function's `max_instances` this pool may run (a
    /// front's share of the cluster-wide limit for this node; see `ShareOfLimit`).
    pub async fn acquire(self: &Arc<Self>, target: &Target, deadline: Instant, waits_when_full: bool, share: Option<ShareOfLimit>) -> Result<Lease, CallError> {
        let f = &target.function;
        let mode = f.pool_mode;
        let version = target.version.version;
        let mut limits = capacity(target, self.queue_per_instance, share.map(|s| s.instances));
        let lease = |key, instance, served_by| Lease { instance, served_by, function_id: f.id, container: key, mode };
        let at_capacity = || CallError::AtCapacity(f.max_instances.max(1) as usize);
        let (mut queued, mut overflowed) = (false, false);
        loop {
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            let (decision, retired) = {
                let mut slots = self.slots.lock().unwrap();
                let slot = slots.entry(f.id).or_insert_with(|| Slot::new(&f.org, &f.name));
                slot.memory_mb = target.version.memory_mb;
                slot.last_call = Instant::now();
                // A slot made anew (the function was forgotten meanwhile) has no queue to leave.
                queued &= slot.waiting > 0;
                if share.is_some() {
                    slot.take_share(share);
                    limits = capacity(target, self.queue_per_instance, slot.share.map(|s| s.instances));
                }
                let mut retired = slot.switch_sandbox(f.sandbox);
                retired.extend(slot.advance(version));
                let arrival = Arrival { queued, overflowed, waits_when_full };
                let decision = slot.decide(version, mode, limits, key, arrival);
                if matches!(decision, Decision::Start { .. }) {
                    tracing::debug!(function = %f.name, containers = slot.containers.len(), limit = limits.instances, "starting a container");
                }
                (decision, retired)
            };
            for instance in retired {
                self.discard_shared(instance);
            }
            match decision {
                Decision::Reuse { key, instance, served_by } => return Ok(lease(key, instance, served_by)),
                Decision::Start { key, spare, here } => {
                    if let Err(refused) = self.admit_cluster_wide(target, here).await {
                        if let Some(spare) = spare {
                            self.keep_spare(target, spare);
                        }
                        let mut slots = self.slots.lock().unwrap();
                        let Some(slot) = slots.get_mut(&f.id) else { return Err(refused) };
                        slot.remove(key);
                        slot.notify();
                        if here == 0 {
                            // No container here to wait for: the call belongs to another node.
                            slot.place_freed(None);
                            return Err(refused);
                        }
                        // The other nodes hold the rest of the limit: what this pool has is its
                        // share until a front says otherwise, and the call waits in its line.
                        slot.share = Some(ShareOfLimit { instances: here as i64, as_of_us: now_us() });
                        continue;
                    }
                    let started = self.start_container(target, spare, true).await;
                    if mode == PoolMode::Warm {
                        self.refill_spare(target);
                    }
                    let mut slots = self.slots.lock().unwrap();
                    let slot = slots.get_mut(&f.id);
                    return match started {
                        Ok((instance, served_by)) => {
                            let instance = Arc::new(instance);
                            // No slot or no place: the function went away meanwhile; the
                            // release removes the container.
                            if let Some(slot) = slot {
                                if let Some(c) = slot.find(key) {
                                    c.instance = Some(instance.clone());
                                    c.started_by = served_by;
                                }
                                slot.notify();
                            }
                            Ok(lease(key, instance, served_by))
                        }
                        Err(e) => {
                            if let Some(slot) = slot {
                                slot.remove(key);
                                slot.notify();
                                slot.place_freed(None);
                            }
                            Err(e)
                        }
                    };
                }
                // The wait for a starting container is part of the cold start, not of the call.
                Decision::Join { key, changes } => match self.join(f.id, key, changes, Instant::now() + runner::START_LIMIT).await {
                    Joined::Running(instance, served_by) => return Ok(lease(key, instance, served_by)),
                    Joined::Failed => continue,
                    Joined::TimedOut => {
                        return Err(CallError::Io(format!("the function's container did not start within {} s", runner::START_LIMIT.as_secs())))
                    }
                },
                Decision::Full => return Err(at_capacity()),
                Decision::Wait(woken) => {
                    (queued, overflowed) = (true, false);
                    if tokio::time::timeout_at(deadline, woken).await.is_err() {
                        if let Some(slot) = self.slots.lock().unwrap().get_mut(&f.id) {
                            slot.waiting = slot.waiting.saturating_sub(1);
                            slot.line_shortened();
                        }
                        return Err(at_capacity());
                    }
                }
                Decision::WaitForRoom(woken) => {
                    overflowed = true;
                    if tokio::time::timeout_at(deadline, woken).await.is_err() {
                        return Err(at_capacity());
                    }
                }
            }
        }
    }

    /// Waits until the starting container `key`, where the call holds a place, runs.
    async fn join(&self, function_id: i64, key: u64, mut changes: watch::Receiver<u64>, deadline: Instant) -> Joined {
        loop {
            let woken = tokio::time::timeout_at(deadline, changes.changed()).await;
            let mut slots = self.slots.lock().unwrap();
            let Some(c) = slots.get_mut(&function_id).and_then(|s| s.find(key)) else { return Joined::Failed };
            if let Some(instance) = &c.instance {
                return Joined::Running(instance.clone(), c.started_by);
            }
            if !matches!(woken, Ok(Ok(()))) {
                c.calls -= 1;
                return Joined::TimedOut;
            }
        }
    }

    /// Whether the cluster lets this pool start another container of the function (always,
    /// when it is not one of several).
    async fn admit_cluster_wide(&self, target: &Target, here: usize) -> Result<(), CallError> {
        match self.cluster_limit.get() {
            Some(limit) => limit.admit(target, here).await,
            None => Ok(()),
        }
    }

    /// Puts back a spare a call took but could not start, unless another took its place.
    fn keep_spare(&self, target: &Target, spare: Spare) {
        let leftover = match self.slots.lock().unwrap().get_mut(&target.function.id) {
            Some(slot) if slot.spare.is_none() && slot.version == spare.version => {
                slot.spare = Some(spare);
                None
            }
            _ => Some(spare.instance),
        };
        if let Some(instance) = leftover {
            self.discard(instance);
        }
    }

    /// A container that runs: the spare, a stem cell (`for_a_call`: one waits for it) or a new
    /// one; says which.
    async fn start_container(&self, target: &Target, spare: Option<Spare>, for_a_call: bool) -> Result<(Instance, ServedBy), CallError> {
        // Fastest first: the function's own paused spare, a stem cell (an unpause each), then
        // the spare created ahead, then a new container (a start each).
        let spare = match spare {
            Some(Spare { instance, paused: true, .. }) => match runner::unpause(&self.engine, &instance).await {
                Ok(()) => return Ok((instance, ServedBy::Prestarted)),
                Err(e) => {
                    self.spare_gone(&instance, &e);
                    None
                }
            },
            other => other,
        };
        let stem = if for_a_call { self.specialize_stem(target).await } else { None };
        if let Some(instance) = stem {
            if let Some(spare) = spare {
                self.keep_spare(target, spare);
            }
            return Ok((instance, ServedBy::Specialized));
        }
        if let Some(Spare { instance, .. }) = spare {
            match runner::start_created(&self.engine, &instance).await {
                Ok(()) => return Ok((instance, ServedBy::Started)),
                Err(e) => self.spare_gone(&instance, &e),
            }
        }
        let instance = runner::create(&self.engine, &self.sandbox, target).await?;
        self.owned.lock().unwrap().insert(instance.id.clone());
        match runner::start_created(&self.engine, &instance).await {
            Ok(()) => Ok((instance, ServedBy::Created)),
            Err(e) => {
                self.owned.lock().unwrap().remove(&instance.id);
                Err(e)
            }
        }
    }

    /// A spare that did not wake (removed by `start_created` / `unpause`); a fresh container
    /// may still start.
    fn spare_gone(&self, instance: &Instance, e: &CallError) {
        tracing::warn!(container = %instance.name, error = %e, "spare container did not start");
        self.owned.lock().unwrap().remove(&instance.id);
    }

    /// A stem cell made the target version's container, when one fits and is ready.
    async fn specialize_stem(&self, target: &Target) -> Option<Instance> {
        let stems = self.stems.get()?;
        let stem = stems.take(target, self.stem_room_mb())?;
        let id = stem.id.clone();
        self.owned.lock().unwrap().insert(id.clone());
        match runner::specialize(&self.engine, &self.sandbox, stem, target).await {
            Ok(instance) => Some(instance),
            // Removed by specialize.
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "stem cell did not take the function");
                self.owned.lock().unwrap().remove(&id);
                None
            }
        }
    }

    /// Memory of a container limits that pre-started spares may hold at once, over all
    /// functions (0: none is pre-started; the spares are only created).
    pub fn keep_prestarted_within(&self, memory_mb: i64) {
        self.prestarted_budget_mb.store(memory_mb.max(0), Ordering::Relaxed);
    }

    /// Memory pre-started spares hold now, or are being started to hold.
    fn prestarted_mb(slots: &HashMap<i64, Slot>) -> i64 {
        slots.values().filter(|s| s.spare_prestarting || s.spare.as_ref().is_some_and(|sp| sp.paused)).map(|s| s.memory_mb).sum()
    }

    /// Creates a spare for the target's version in the background unless one exists or is
    /// on its way. Calls never wait for it. A function called within the idle time gets a
    /// pre-started one while the memory they hold stays within the provider's budget.
    fn refill_spare(self: &Arc<Self>, target: &Target) {
        let prestart = {
            let mut slots = self.slots.lock().unwrap();
            let held = Self::prestarted_mb(&slots) + self.stem_room_mb();
            let budget = self.prestarted_budget_mb.load(Ordering::Relaxed);
            let Some(slot) = slots.get_mut(&target.function.id) else { return };
            if slot.spare_pending || slot.spare.is_some() || slot.version != target.version.version {
                return;
            }
            slot.spare_pending = true;
            slot.memory_mb = target.version.memory_mb;
            let recent = slot.last_call.elapsed() < self.idle_timeout;
            slot.spare_prestarting = recent && target.function.pool_mode == PoolMode::Warm && held + target.version.memory_mb <= budget;
            slot.spare_prestarting
        };
        let pool = self.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let made = pool.make_spare(&target, prestart).await;
            let leftover = {
                let mut slots = pool.slots.lock().unwrap();
                let slot = slots.get_mut(&target.function.id).map(|slot| {
                    (slot.spare_pending, slot.spare_prestarting) = (false, false);
                    slot
                });
                match (made, slot) {
                    (Ok(spare), Some(slot)) => {
                        let current = slot.version == spare.version && slot.sandbox.is_none_or(|s| s == target.function.sandbox);
                        if slot.spare.is_none() && current && !pool.draining.load(Ordering::Relaxed) {
                            slot.spare = Some(spare);
                            None
                        } else {
                            Some(spare.instance)
                        }
                    }
                    // The function was deleted while the spare was made.
                    (Ok(spare), None) => Some(spare.instance),
                    (Err(e), _) => {
                        tracing::warn!(function = %target.function.name, error = %e, "cannot make a spare container");
                        None
                    }
                }
            };
            if let Some(instance) = leftover {
                pool.discard(instance);
            }
        });
    }

    /// Creates a spare of the target's version; with `prestart`, also starts it, waits for its
    /// runtime to listen (keeping that first connection) and pauses it.
    async fn make_spare(&self, target: &Target, prestart: bool) -> Result<Spare, CallError> {
        let instance = runner::create(&self.engine, &self.sandbox, target).await?;
        self.owned.lock().unwrap().insert(instance.id.clone());
        let version = target.version.version;
        if !prestart {
            return Ok(Spare { version, instance, paused: false });
        }
        match runner::prestart(&self.engine, &instance, Instant::now() + runner::START_LIMIT).await {
            Ok(()) => Ok(Spare { version, instance, paused: true }),
            // Removed by prestart.
            Err(e) => {
                self.owned.lock().unwrap().remove(&instance.id);
                Err(e)
            }
        }
    }

    /// Gives a container back after a call. `healthy` is false when the call broke it
    /// (deadline, crash, out of memory): such a container is removed at once, even when other
    /// calls still run in it (they share its fate: it may be stuck or out of memory).
    pub fn release(&self, lease: Lease, healthy: bool) {
        let remove = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get_mut(&lease.function_id) {
                // The function was deleted during the call.
                None => Some(lease.instance),
                Some(slot) => {
                    let (current, keeps) = (slot.version, lease.mode == PoolMode::Warm);
                    let freed = slot.find(lease.container).map(|c| {
                        c.calls = c.calls.saturating_sub(1);
                        if healthy {
                            c.ready = true;
                        }
                        if c.calls == 0 {
                            c.idle_since = Instant::now();
                        }
                        (c.version, c.calls)
                    });
                    match freed {
                        // Already removed: another call found it broken.
                        None => {
                            slot.place_freed(None);
                            None
                        }
                        Some((version, calls)) => {
                            // An outdated container serves the calls still waiting for its version.
                            let drained = version < current && !slot.awaited(version);
                            if !healthy || (calls == 0 && (!keeps || drained)) {
                                slot.place_freed(None);
                                slot.remove(lease.container).and_then(|c| c.instance)
                            } else {
                                slot.place_freed(Some(version));
                                None
                            }
                        }
                    }
                }
            }
        };
        if let Some(instance) = remove {
            self.discard_shared(instance);
        }
    }

    /// Replaces a warm container found dead: frees its place without keeping it.
    pub fn replace(&self, lease: Lease) {
        self.release(lease, false);
    }

    /// Removes a container in the background; the caller does not wait for Docker.
    fn discard(&self, instance: Instance) {
        self.discard_shared(Arc::new(instance));
    }

    fn discard_shared(&self, instance: Arc<Instance>) {
        let engine = self.engine.clone();
        let owned = self.owned.clone();
        tokio::spawn(async move {
            runner::destroy(&engine, &instance).await;
            owned.lock().unwrap().remove(&instance.id);
        });
    }

    /// The functions this pool holds containers or a place for.
    pub fn function_ids(&self) -> Vec<i64> {
        self.slots.lock().unwrap().keys().copied().collect()
    }

    /// Drops every idle container and the spare of a function (it is being deleted).
    pub fn forget(&self, function_id: i64) {
        let removed = {
            let mut slots = self.slots.lock().unwrap();
            self.forgotten.fetch_add(1, Ordering::SeqCst);
            slots.remove(&function_id)
        };
        let Some(slot) = removed else { return };
        for c in slot.containers.into_iter().filter(|c| c.calls == 0) {
            if let Some(instance) = c.instance {
                self.discard_shared(instance);
            }
        }
        if let Some(spare) = slot.spare {
            self.discard(spare.instance);
        }
    }

    /// Removes containers idle for longer than the idle time (scale to zero), keeping each
    /// function's `min_instances`, and the pre-started spare of a function not called for as
    /// long (the maintainer then creates one that holds no memory). How many containers went.
    pub fn reap_idle(&self) -> usize {
        let (expired, cooled): (Vec<Arc<Instance>>, Vec<Instance>) = {
            let mut slots = self.slots.lock().unwrap();
            let mut expired = Vec::new();
            let mut cooled = Vec::new();
            for slot in slots.values_mut() {
                if slot.last_call.elapsed() >= self.idle_timeout {
                    cooled.extend(slot.spare.take_if(|s| s.paused).map(|s| s.instance));
                }
                let (version, min) = (slot.version, slot.min);
                let mut current = slot.containers.iter().filter(|c| c.version == version).count();
                // Outdated and no call waits for them (a waiter gave up before taking one).
                let drained: HashSet<i64> =
                    slot.containers.iter().map(|c| c.version).filter(|&v| v < version && !slot.awaited(v)).collect();
                slot.containers.retain(|c| {
                    let stale = c.is_idle() && (c.idle_since.elapsed() >= self.idle_timeout || drained.contains(&c.version));
                    let needed = c.version == version && current <= min;
                    if !stale || needed {
                        return true;
                    }
                    if c.version == version {
                        current -= 1;
                    }
                    expired.extend(c.instance.clone());
                    false
                });
            }
            (expired, cooled)
        };
        let count = expired.len();
        for instance in expired {
            self.discard_shared(instance);
        }
        for instance in cooled {
            self.discard(instance);
        }
        count
    }

    /// Runs the idle reaper until the process ends.
    pub fn spawn_reaper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let every = (self.idle_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                pool.reap_idle();
            }
        });
    }

    /// Keeps the pool of every warm function that serves a version ready ahead of calls, every
    /// `every`, in the background: its `min_instances` running, and a spare created.
    pub fn spawn_maintainer(self: &Arc<Self>, store: Store, every: Duration) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(pool) = pool.upgrade() else { return };
                if pool.draining.load(Ordering::Relaxed) {
                    return;
                }
                let epoch = pool.forgotten.load(Ordering::SeqCst);
                let targets = match (store.warm_targets().await, pool.warm_share.get()) {
                    (Ok(targets), Some(share)) => Ok(share.keep_here(targets).await),
                    (read, _) => read,
                };
                match targets {
                    Ok(targets) => pool.maintain(&targets, epoch).await,
                    Err(e) => tracing::warn!(error = %e, "cannot read warm functions; retrying"),
                }
                drop(pool);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// One pass of the maintainer over the warm functions that serve a version, read when
    /// `forgotten` was `epoch`.
    pub async fn maintain(self: &Arc<Self>, targets: &[Target], epoch: u64) {
        let mut retired = Vec::new();
        let mut warm_ups = Vec::new();
        let mut probes = Vec::new();
        {
            let mut slots = self.slots.lock().unwrap();
            if self.forgotten.load(Ordering::SeqCst) != epoch {
                return;
            }
            let wanted: HashSet<i64> = targets.iter().map(|t| t.function.id).collect();
            // Functions no longer warm (or gone): nothing kept ahead of calls.
            for (_, slot) in slots.iter_mut().filter(|(id, _)| !wanted.contains(*id)) {
                slot.min = 0;
                retired.extend(slot.spare.take().map(|s| Arc::new(s.instance)));
            }
            for target in targets {
                let f = &target.function;
                let slot = slots.entry(f.id).or_insert_with(|| Slot::new(&f.org, &f.name));
                retired.extend(slot.switch_sandbox(f.sandbox));
                retired.extend(slot.advance(target.version.version));
                let version = slot.version;
                slot.min = f.min_instances.clamp(0, f.max_instances.max(1)) as usize;
                let live = slot.containers.iter().filter(|c| c.version == version).count();
                for _ in live..slot.min {
                    let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                    slot.containers.push(Container::reserved(key, version, 0));
                    warm_ups.push((target, key));
                }
                probes.extend(
                    slot.containers
                        .iter()
                        .filter(|c| c.version == version && c.ready && c.is_idle())
                        .filter_map(|c| c.instance.clone().map(|i| (f.id, c.key, i))),
                );
            }
        }
        for instance in retired {
            self.discard_shared(instance);
        }
        for (function_id, key, instance) in probes {
            if !runner::is_listening(&instance).await {
                self.drop_dead(function_id, key);
            }
        }
        for (target, key) in warm_ups {
            let pool = self.clone();
            let target = target.clone();
            tokio::spawn(async move { pool.warm_up(&target, key).await; });
        }
        for target in targets {
            self.refill_spare(target);
        }
        self.refill_stems();
    }

    /// Before an update switches calls to the target's version: starts as many containers of
    /// it as the function runs of the version it serves now (at least its `min_instances`, or
    /// this pool's share of it, at most its `max_instances`) and waits for their runtimes, so
    /// the calls after the switch find them warm while the old containers finish theirs.
    /// Returns how many serve.
    pub async fn prepare(self: &Arc<Self>, target: &Target) -> usize {
        let shared;
        let target = match self.warm_share.get() {
            Some(share) => {
                // None of the minimum here: still as many as serve the old version here.
                let mut none = target.clone();
                none.function.min_instances = 0;
                shared = share.keep_here(vec![target.clone()]).await.pop().unwrap_or(none);
                &shared
            }
            None => target,
        };
        let f = &target.function;
        if f.pool_mode != PoolMode::Warm {
            return 0;
        }
        let version = target.version.version;
        let keys: Vec<u64> = {
            let mut slots = self.slots.lock().unwrap();
            let slot = slots.entry(f.id).or_insert_with(|| Slot::new(&f.org, &f.name));
            let serving = slot.containers.iter().filter(|c| c.version == slot.version).count();
            let ready = slot.containers.iter().filter(|c| c.version == version).count();
            let wanted = serving.max(f.min_instances.max(0) as usize).min(f.max_instances.max(1) as usize);
            (ready..wanted)
                .map(|_| {
                    let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                    slot.containers.push(Container::reserved(key, version, 0));
                    key
                })
                .collect()
        };
        let started = keys.into_iter().map(|key| self.warm_up(target, key));
        futures_util::future::join_all(started).await.into_iter().filter(|&serves| serves).count()
    }

    /// Removes an idle container whose runtime no longer listens, so the next pass replaces it.
    fn drop_dead(&self, function_id: i64, key: u64) {
        let dead = {
            let mut slots = self.slots.lock().unwrap();
            let Some(slot) = slots.get_mut(&function_id) else { return };
            match slot.find(key) {
                Some(c) if c.calls == 0 => {
                    slot.place_freed(None);
                    slot.remove(key).and_then(|c| c.instance)
                }
                _ => None,
            }
        };
        if let Some(instance) = dead {
            tracing::info!(container = %instance.name, "idle container died; replacing it");
            self.discard_shared(instance);
        }
    }

    /// Starts the reserved container `key` and waits for its runtime, so it serves its first
    /// call warm. Calls that joined it meanwhile are served once it runs. True when it serves.
    async fn warm_up(&self, target: &Target, key: u64) -> bool {
        let started: Result<Instance, CallError> = async {
            // Not a stem cell: they are kept for calls that wait.
            let (instance, _) = self.start_container(target, None, false).await?;
            let deadline = Instant::now() + runner::START_LIMIT;
            if let Err(e) = runner::wait_ready(&self.engine, &instance, deadline).await {
                self.discard(instance);
                return Err(e);
            }
            Ok(instance)
        }
        .await;
        let instance = match started {
            Ok(instance) => instance,
            Err(e) => {
                tracing::warn!(function = %target.function.name, error = %e, "cannot start a container ahead of calls");
                if let Some(slot) = self.slots.lock().unwrap().get_mut(&target.function.id) {
                    slot.remove(key);
                    slot.notify();
                    slot.place_freed(None);
                }
                return false;
            }
        };
        let leftover = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get_mut(&target.function.id) {
                // Deleted meanwhile.
                None => Some(instance),
                Some(slot) => {
                    let current = slot.version;
                    // Still wanted: of the current version or one being prepared, or calls
                    // joined it before an update.
                    let kept = match slot.find(key) {
                        Some(c) if c.version >= current || c.calls > 0 => {
                            c.instance = Some(Arc::new(instance));
                            c.ready = true;
                            c.idle_since = Instant::now();
                            Ok(c.version)
                        }
                        _ => Err(instance),
                    };
                    slot.notify();
                    match kept {
                        Ok(version) => {
                            slot.place_freed(Some(version));
                            None
                        }
                        Err(instance) => {
                            slot.remove(key);
                            slot.place_freed(None);
                            Some(instance)
                        }
                    }
                }
            }
        };
        let serves = leftover.is_none();
        if let Some(instance) = leftover {
            self.discard(instance);
        }
        serves
    }

    /// Removes every idle container and spare now (at shutdown).
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        if let Some(stems) = self.stems.get() {
            stems.drain().await;
        }
        let (idle, spares): (Vec<Arc<Instance>>, Vec<Instance>) = {
            let mut slots = self.slots.lock().unwrap();
            let mut idle = Vec::new();
            let mut spares = Vec::new();
            for slot in slots.values_mut() {
                slot.min = 0;
                let (gone, busy): (Vec<Container>, Vec<Container>) =
                    std::mem::take(&mut slot.containers).into_iter().partition(Container::is_idle);
                slot.containers = busy;
                idle.extend(gone.into_iter().filter_map(|c| c.instance));
                spares.extend(slot.spare.take().map(|s| s.instance));
            }
            (idle, spares)
        };
        for instance in idle.iter().map(|i| &**i).chain(spares.iter()) {
            runner::destroy(&self.engine, instance).await;
            self.owned.lock().unwrap().remove(&instance.id);
        }
    }

    /// Containers and waiting calls of every function, for metrics.
    pub fn gauges(&self) -> Vec<crate::metrics::PoolGauge> {
        let slots = self.slots.lock().unwrap();
        slots
            .values()
            .map(|s| {
                let paused = s.spare.as_ref().map(|sp| sp.paused);
                crate::metrics::PoolGauge {
                    tenant: s.name.0.clone(),
                    function: s.name.1.clone(),
                    busy: s.containers.iter().filter(|c| !c.is_idle()).count(),
                    idle: s.containers.iter().filter(|c| c.is_idle()).count(),
                    spare: usize::from(paused == Some(false)),
                    prestarted: usize::from(paused == Some(true)),
                    prestarted_mb: if paused == Some(true) { s.memory_mb } else { 0 },
                    waiting: s.waiting,
                }
            })
            .collect()
    }

    /// What this pool holds: its containers, the memory and CPU they are given, and how many
    /// serve each version (for a node's heartbeat, and the local worker's place in a cluster).
    pub fn load(&self) -> Load {
        let slots = self.slots.lock().unwrap();
        let mut load = Load::default();
        for (&function_id, slot) in slots.iter() {
            let mut per_version: HashMap<i64, usize> = HashMap::new();
            for c in &slot.containers {
                *per_version.entry(c.version).or_default() += 1;
            }
            load.containers += slot.containers.len();
            load.memory_mb += slot.containers.len() as i64 * slot.memory_mb;
            load.warm.extend(per_version.into_iter().map(|(version, containers)| WarmVersion { function_id, version, containers }));
        }
        load.millicpus = load.containers as i64 * self.sandbox.nano_cpus / 1_000_000;
        load
    }

    /// What placing one call of `version` of function `function_id` needs to know of this pool.
    /// One pass, nothing allocated: it is on the call path.
    pub fn load_for(&self, function_id: i64, version: i64) -> LoadFor {
        let slots = self.slots.lock().unwrap();
        let (mut containers, mut memory_mb) = (0, 0);
        for slot in slots.values() {
            containers += slot.containers.len();
            memory_mb += slot.containers.len() as i64 * slot.memory_mb;
        }
        let (of_function, of_version) = slots.get(&function_id).map_or((0, 0), |slot| {
            (slot.containers.len(), slot.containers.iter().filter(|c| c.version == version).count())
        });
        LoadFor { memory_mb, millicpus: containers as i64 * self.sandbox.nano_cpus / 1_000_000, of_function, of_version }
    }

    /// Whether a container id belongs to this pool (spare, serving, starting or idle).
    pub fn owns(&self, container_id: &str) -> bool {
        self.owned.lock().unwrap().contains(container_id) || self.stems.get().is_some_and(|s| s.owns(container_id))
    }
}

enum Joined {
    /// Running, started the way it says.
    Running(Arc<Instance>, ServedBy),
    /// The container did not start; the call's place went with it.
    Failed,
    TimedOut,
}

/// Containers, calls per container and queue places of a function. A node's share of the
/// containers (`instances_here`) does not shorten its line: the fronts, each on its own, split
/// the waiting calls over the nodes that hold the function, so any one line may have to take
/// the function's whole queue.
fn capacity(target: &Target, queue_per_instance: usize, instances_here: Option<i64>) -> Capacity {
    let f = &target.function;
    let all = f.max_instances.max(1) as usize;
    let instances = instances_here.map_or(all, |here| (here.max(1) as usize).min(all));
    let per_container = f.concurrency.clamp(1, app::model::MAX_CONCURRENCY) as usize;
    Capacity { instances, per_container, queue: all * per_container * queue_per_instance }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PLACE_ONE_IN_LINE: Capacity = Capacity { instances: 1, per_container: 1, queue: 1 };

    fn arrive(slot: &mut Slot, key: u64, arrival: Arrival) -> Decision {
        slot.decide(1, PoolMode::Warm, ONE_PLACE_ONE_IN_LINE, key, arrival)
    }

    #[test]
    fn a_call_that_waits_when_full_leaves_the_line_to_callers_who_would_be_refused() {
        let mut slot = Slot::new("acme", "hello");
        assert!(matches!(arrive(&mut slot, 1, Arrival::default()), Decision::Start { .. }));
        let from_vcd = Arrival { waits_when_full: true, ..Default::default() };
        let Decision::WaitForRoom(mut room) = arrive(&mut slot, 2, from_vcd) else { panic!("a vCD call waits for room") };
        assert_eq!(slot.waiting, 0, "it is not in the line");
        let Decision::Wait(_in_line) = arrive(&mut slot, 3, Arrival::default()) else { panic!("an HTTP call still gets the place in line") };
        assert!(matches!(arrive(&mut slot, 4, Arrival::default()), Decision::Full), "the next one is refused (429)");

        // The first call ends: the one in line takes its place; the vCD call tries again and
        // waits on, since the pool is as busy as before.
        slot.containers[0].calls = 0;
        slot.place_freed(Some(1));
        assert!(room.try_recv().is_err(), "the call in line goes first");
        let woken = Arrival { queued: true, ..Default::default() };
        assert!(matches!(arrive(&mut slot, 5, woken), Decision::Join { .. }));
        assert!(room.try_recv().is_ok(), "the line shortened: the call waiting for room is told");
        let retry = Arrival { overflowed: true, waits_when_full: true, ..Default::default() };
        let Decision::WaitForRoom(mut room) = arrive(&mut slot, 6, retry) else { panic!("still no room") };

        // That call ends too, and nobody is in line: the vCD call gets the place.
        slot.containers[0].calls = 0;
        slot.place_freed(Some(1));
        assert!(room.try_recv().is_ok());
        assert!(matches!(arrive(&mut slot, 7, retry), Decision::Join { .. }));
    }
}
