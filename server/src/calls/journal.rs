//! The record of synchronous calls, written off the call path. A call hands its start and its
//! end to one writer task and does not wait for the database; the writer commits what has
//! gathered in one transaction (group commit), every `LINGER` at most. A call that ends within
//! `SHOW_RUNNING_AFTER` becomes one inserted row; a longer one is inserted as running, then
//! updated. A busy server so writes one row per call in about a hundred commits a second,
//! instead of two statements per call.
//!
//! Readers of the record call `flush` first: it returns once everything handed over before it
//! is committed, so a client that reads a call it just made always finds it.
//!
//! While it holds entries, the writer sleeps until the next commit is due (or a reader flushes)
//! and takes what gathered meanwhile at once: woken for every entry, it cost each call two task
//! switches on the server's busiest thread.

pub use crate::store::{CallEnd, CallStart};
use crate::store::{now_ms, DbResult, Dialect, Store, StoreError};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// How long ended calls wait for others to share their commit.
const LINGER: Duration = Duration::from_millis(50);
/// A call still running after this long is written as `running` (so a crash leaves a record
/// of it, failed as interrupted at the next start); a quicker one is written once, ended.
const SHOW_RUNNING_AFTER: Duration = Duration::from_millis(500);
/// Entries taken from the channel at once.
const MAX_BATCH: usize = 1024;
/// Entries waiting for the writer before calls wait for it (back-pressure, bounded memory).
const BACKLOG: usize = 16 * 1024;

/// A new invocation id: a UUID that grows with time (version 7), so the records of a busy
/// server go to the end of the id index instead of a random page each. Its random part comes
/// from the thread's generator: `Uuid::now_v7` asks the kernel on every call, which showed in
/// the call path's profile.
pub fn new_call_id() -> String {
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(now_ms() as u64, &random).into_uuid().to_string()
}

enum Entry {
    Started(CallStart),
    Ended(CallEnd),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Journal {
    entries: mpsc::Sender<Entry>,
    /// Wakes a writer sleeping until its next commit.
    flush_requested: Arc<Notify>,
}

impl Journal {
    /// Starts the writer task. `owner` names this process on the records it writes as
    /// running, so that another process can tell they are orphans once it is gone.
    pub fn start(store: Store, owner: String) -> Journal {
        let (entries, receiver) = mpsc::channel(BACKLOG);
        let flush_requested = Arc::new(Notify::new());
        tokio::spawn(write_loop(store, owner, receiver, flush_requested.clone()));
        Journal { entries, flush_requested }
    }

    pub async fn started(&self, start: CallStart) {
        self.send(Entry::Started(start)).await;
    }

    pub async fn ended(&self, end: CallEnd) {
        self.send(Entry::Ended(end)).await;
    }

    /// Returns once everything handed over before is committed (or failed to be).
    pub async fn flush(&self) {
        let (done, committed) = oneshot::channel();
        self.send(Entry::Flush(done)).await;
        self.flush_requested.notify_one();
        let _ = committed.await;
    }

    async fn send(&self, entry: Entry) {
        if self.entries.send(entry).await.is_err() {
            tracing::error!("the call record writer stopped; a call goes unrecorded");
        }
    }
}

async fn write_loop(store: Store, owner: String, mut receiver: mpsc::Receiver<Entry>, flush_requested: Arc<Notify>) {
    let mut pending = Pending::default();
    let mut inbox = Vec::with_capacity(MAX_BATCH);
    loop {
        // When what is taken now arrived, at the earliest.
        let (open, arrived) = match pending.next_write() {
            // Nothing held: the first entry wakes the writer.
            None => (receiver.recv_many(&mut inbox, MAX_BATCH).await > 0, Instant::now()),
            Some(due) => {
                let asleep = Instant::now();
                tokio::select! {
                    _ = tokio::time::sleep_until(due.min(asleep + LINGER)) => {}
                    _ = flush_requested.notified() => {}
                }
                (take_waiting(&mut receiver, &mut inbox), asleep)
            }
        };
        let now = Instant::now();
        for entry in inbox.drain(..) {
            pending.absorb(entry, arrived);
        }
        if !open {
            // Every sender is gone: the server stops. Write what is left, running or not.
            commit(&store, &owner, pending.take(now, true)).await;
            return;
        }
        if pending.next_write().is_some_and(|due| due <= Instant::now()) {
            commit(&store, &owner, pending.take(now, false)).await;
        }
    }
}

/// Writes what `Pending::take` gave and tells the readers waiting for it.
async fn commit(store: &Store, owner: &str, (rows, ends, flushes): Taken) {
    write(store, owner, rows, ends).await;
    for done in flushes {
        let _ = done.send(());
    }
}

/// Moves the entries waiting in the channel (at most a full channel's worth, so senders that
/// keep filling it cannot keep the writer here) to `inbox`, without waiting; false once every
/// sender is gone.
fn take_waiting(receiver: &mut mpsc::Receiver<Entry>, inbox: &mut Vec<Entry>) -> bool {
    while inbox.len() < BACKLOG {
        match receiver.try_recv() {
            Ok(entry) => inbox.push(entry),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
    true
}

/// Records to insert (ended or still running), ends of records written earlier, and the
/// readers waiting for both.
type Taken = (Vec<(CallStart, Option<CallEnd>)>, Vec<CallEnd>, Vec<oneshot::Sender<()>>);

/// What the writer holds between commits.
#[derive(Default)]
struct Pending {
    /// Calls that started and have not ended, not written yet.
    running: HashMap<String, CallStart>,
    /// When each of `running` arrived, oldest first (ids that ended since are skipped).
    arrivals: VecDeque<(Instant, String)>,
    /// Calls that started and ended before either was written: one row each.
    finished: Vec<(CallStart, CallEnd)>,
    /// Ends of calls written as running earlier.
    ends: Vec<CallEnd>,
    /// When the oldest of `finished` and `ends` arrived.
    since: Option<Instant>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Pending {
    fn absorb(&mut self, entry: Entry, now: Instant) {
        match entry {
            Entry::Started(start) => {
                self.arrivals.push_back((now, start.id.clone()));
                self.running.insert(start.id.clone(), start);
            }
            Entry::Ended(end) => {
                self.since.get_or_insert(now);
                match self.running.remove(&end.id) {
                    Some(start) => self.finished.push((start, end)),
                    None => self.ends.push(end),
                }
                self.forget_ended_arrivals();
            }
            Entry::Flush(done) => self.flushes.push(done),
        }
    }

    /// When the next commit is due: at once for a flush, after `LINGER` for ended calls, and
    /// after `SHOW_RUNNING_AFTER` for a call still running.
    fn next_write(&self) -> Option<Instant> {
        if !self.flushes.is_empty() {
            return Some(Instant::now());
        }
        let linger = self.since.map(|since| since + LINGER);
        let running = self.arrivals.front().map(|(at, _)| *at + SHOW_RUNNING_AFTER);
        linger.into_iter().chain(running).min()
    }

    /// Keeps the oldest arrival one of a call still running.
    fn forget_ended_arrivals(&mut self) {
        while self.arrivals.front().is_some_and(|(_, id)| !self.running.contains_key(id)) {
            self.arrivals.pop_front();
        }
    }

    /// What to write now: every ended call, and the calls running for long enough (all of
    /// them when a reader waits, or at the end), as running.
    fn take(&mut self, now: Instant, everything: bool) -> Taken {
        let show_all = everything || !self.flushes.is_empty();
        let mut rows: Vec<(CallStart, Option<CallEnd>)> = self.finished.drain(..).map(|(s, e)| (s, Some(e))).collect();
        while let Some((at, id)) = self.arrivals.front() {
            if !show_all && now < *at + SHOW_RUNNING_AFTER {
                break;
            }
            if let Some(start) = self.running.remove(id) {
                rows.push((start, None));
            }
            self.arrivals.pop_front();
        }
        self.forget_ended_arrivals();
        self.since = None;
        (rows, std::mem::take(&mut self.ends), std::mem::take(&mut self.flushes))
    }
}

async fn write(store: &Store, owner: &str, starts: Vec<(CallStart, Option<CallEnd>)>, ends: Vec<CallEnd>) {
    if starts.is_empty() && ends.is_empty() {
        return;
    }
    let rows: Vec<Row> = starts.iter().map(|(s, e)| Row::of(s, e.as_ref(), owner)).collect();
    let results: Vec<Outcome> = ends.iter().map(Outcome::of).collect();
    if let Err(e) = write_batch(store, &rows, &results).await {
        // One bad row (a function deleted meanwhile, say) must not cost the others theirs.
        tracing::warn!(error = %e, rows = rows.len() + results.len(), "call record batch failed; writing row by row");
        for row in &rows {
            if let Err(e) = write_batch(store, std::slice::from_ref(row), &[]).await {
                tracing::warn!(id = row.id, error = %e, "call record not written");
            }
        }
        for result in &results {
            if let Err(e) = write_batch(store, &[], std::slice::from_ref(result)).await {
                tracing::warn!(id = result.id, error = %e, "call result not written");
            }
        }
    }
}

/// A call record as the database gets it: bound values on SQLite, one JSON array per
/// statement on PostgreSQL (one parameter, one cached statement whatever the batch size).
#[derive(serde::Serialize)]
struct Row<'a> {
    id: &'a str,
    function_id: i64,
    tenant_id: i64,
    version: i64,
    trigger_kind: &'a str,
    method: &'a str,
    path: Cow<'a, str>,
    started_at: i64,
    state: &'a str,
    status_code: Option<i64>,
    duration_us: Option<i64>,
    cold: i64,
    logs: Cow<'a, str>,
    error: Option<Cow<'a, str>>,
    connections: Option<&'a str>,
    node: Option<&'a str>,
    /// The process that took the call, on a row written while it runs.
    owner: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn of(s: &'a CallStart, end: Option<&'a CallEnd>, owner: &'a str) -> Row<'a> {
        // A finished call's fields come from its outcome, moved, not copied again.
        let (state, status_code, duration_us, cold, logs, error, connections, node) = match end.map(Outcome::of) {
            Some(o) => (o.state, Some(o.status_code), Some(o.duration_us), o.cold, o.logs, o.error, o.connections, o.node),
            None => ("running", None, None, 0, Cow::Borrowed(""), None, None, None),
        };
        Row {
            id: &s.id,
            function_id: s.function_id,
            tenant_id: s.tenant_id,
            version: s.version,
            trigger_kind: s.trigger,
            method: &s.method,
            path: text_column(&s.path),
            started_at: s.started_at,
            state,
            status_code,
            duration_us,
            cold,
            logs,
            error,
            connections,
            node,
            owner: end.is_none().then_some(owner),
        }
    }
}

/// How a call ended, for a record written earlier.
#[derive(serde::Serialize)]
struct Outcome<'a> {
    id: &'a str,
    state: &'static str,
    status_code: i64,
    duration_us: i64,
    cold: i64,
    logs: Cow<'a, str>,
    error: Option<Cow<'a, str>>,
    connections: Option<&'a str>,
    node: Option<&'a str>,
}

impl<'a> Outcome<'a> {
    fn of(e: &'a CallEnd) -> Outcome<'a> {
        Outcome {
            id: &e.id,
            state: e.state(),
            status_code: e.status_code as i64,
            duration_us: e.duration_us,
            cold: e.cold as i64,
            logs: text_column(&e.logs),
            error: e.error.as_deref().map(text_column),
            connections: e.connections.as_deref(),
            node: e.node.as_deref(),
        }
    }
}

/// PostgreSQL text holds no NUL character; a log line may. Copied only when it has one.
fn text_column(text: &str) -> Cow<'_, str> {
    if text.contains('\0') { Cow::Owned(text.replace('\0', "\u{FFFD}")) } else { Cow::Borrowed(text) }
}

/// Rows per SQLite insert statement (17 bound values each). A batch goes in statements of
/// this many rows, prepared once and kept, and one statement for the rest. Binding the values
/// costs SQLite less than reading them out of a JSON array (which was about a tenth of the
/// server's CPU at 64 clients), and thousands of values in one statement cost more than both.
const SQLITE_ROWS_PER_INSERT: usize = 64;

/// The statement for a full chunk, made once.
static SQLITE_FULL_INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sqlite_insert(SQLITE_ROWS_PER_INSERT));

/// `INSERT INTO invocations … VALUES (…), (…)` for SQLite, with `rows` rows of parameters.
fn sqlite_insert(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO invocations (id, function_id, tenant_id, version, trigger_kind, method, path, \
         started_at, state, status_code, duration_us, cold, logs, error, connections, node, owner) VALUES {}",
        vec![row; rows].join(", ")
    )
}

const INSERT_POSTGRES: &str = "INSERT INTO invocations (id, function_id, tenant_id, version, trigger_kind, method, path, \
     started_at, state, status_code, duration_us, cold, logs, error, connections, node, owner) \
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id text, function_id bigint, tenant_id bigint, version bigint, \
     trigger_kind text, method text, path text, started_at bigint, state text, status_code bigint, duration_us bigint, \
     cold bigint, logs text, error text, connections text, node text, owner text)";
// Ends of calls written as running (the rare long ones): each row of the array is made into
// text once (the materialized `r`), its fields then read from one parse of it.
const UPDATE_SQLITE: &str = "WITH r(v) AS MATERIALIZED (SELECT value FROM json_each($1)) \
     UPDATE invocations SET state = u.state, status_code = u.status_code, \
     duration_us = u.duration_us, cold = u.cold, logs = u.logs, error = u.error, connections = u.connections, node = u.node \
     FROM (SELECT v ->> 'id' AS id, v ->> 'state' AS state, v ->> 'status_code' AS status_code, \
     v ->> 'duration_us' AS duration_us, v ->> 'cold' AS cold, v ->> 'logs' AS logs, \
     v ->> 'error' AS error, v ->> 'connections' AS connections, v ->> 'node' AS node FROM r) AS u WHERE invocations.id = u.id";
const UPDATE_POSTGRES: &str = "UPDATE invocations SET state = r.state, status_code = r.status_code, \
     duration_us = r.duration_us, cold = r.cold, logs = r.logs, error = r.error, connections = r.connections, node = r.node \
     FROM jsonb_to_recordset($1::jsonb) AS r(id text, state text, status_code bigint, duration_us bigint, \
     cold bigint, logs text, error text, connections text, node text) WHERE invocations.id = r.id";

async fn write_batch(store: &Store, rows: &[Row<'_>], results: &[Outcome<'_>]) -> DbResult<()> {
    let mut tx = store.pool.begin().await?;
    let update = match store.dialect {
        Dialect::Sqlite => {
            insert_sqlite(&mut tx, rows).await?;
            UPDATE_SQLITE
        }
        Dialect::Postgres => {
            if !rows.is_empty() {
                let json = serde_json::to_string(rows).expect("call records serialize");
                sqlx::query(INSERT_POSTGRES).bind(json).execute(&mut *tx).await?;
            }
            UPDATE_POSTGRES
        }
    };
    if !results.is_empty() {
        let json = serde_json::to_string(results).expect("call results serialize");
        sqlx::query(update).bind(json).execute(&mut *tx).await?;
    }
    tx.commit().await.map_err(StoreError::from)
}

/// Inserts `rows` in statements of `SQLITE_ROWS_PER_INSERT` rows and one for the rest.
async fn insert_sqlite(tx: &mut sqlx::Transaction<'_, sqlx::Any>, rows: &[Row<'_>]) -> DbResult<()> {
    for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
        let full = chunk.len() == SQLITE_ROWS_PER_INSERT;
        let sql = if full { Cow::Borrowed(SQLITE_FULL_INSERT.as_str()) } else { Cow::Owned(sqlite_insert(chunk.len())) };
        // Only the full-size statement is worth keeping prepared.
        let mut insert = sqlx::query(&sql).persistent(full);
        for r in chunk {
            insert = insert
                .bind(r.id)
                .bind(r.function_id)
                .bind(r.tenant_id)
                .bind(r.version)
                .bind(r.trigger_kind)
                .bind(r.method)
                .bind(&*r.path)
                .bind(r.started_at)
                .bind(r.state)
                .bind(r.status_code)
                .bind(r.duration_us)
                .bind(r.cold)
                .bind(&*r.logs)
                .bind(r.error.as_deref())
                .bind(r.connections)
                .bind(r.node)
                .bind(r.owner);
        }
        insert.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(id: &str) -> Entry {
        Entry::Started(CallStart {
            id: id.into(),
            function_id: 1,
            tenant_id: 1,
            version: 1,
            trigger: "http",
            method: "GET".into(),
            path: "/".into(),
            started_at: 0,
        })
    }

    fn end(id: &str) -> Entry {
        Entry::Ended(CallEnd { id: id.into(), status_code: 200, duration_us: 1, cold: false, logs: String::new(), error: None, connections: None, node: None })
    }

    #[test]
    fn quick_calls_become_one_row_and_long_ones_show_as_running() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        for entry in [start("quick"), start("long"), end("quick"), end("written-earlier")] {
            pending.absorb(entry, t0);
        }
        assert_eq!(pending.next_write(), Some(t0 + LINGER));

        let (rows, ends, _) = pending.take(t0 + LINGER, false);
        let rows: Vec<(&str, bool)> = rows.iter().map(|(s, e)| (s.id.as_str(), e.is_some())).collect();
        assert_eq!(rows, [("quick", true)]);
        assert_eq!(ends.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["written-earlier"]);
        assert_eq!(pending.next_write(), Some(t0 + SHOW_RUNNING_AFTER), "the long call waits");

        let (rows, _, _) = pending.take(t0 + SHOW_RUNNING_AFTER, false);
        assert_eq!(rows.iter().map(|(s, e)| (s.id.as_str(), e.is_some())).collect::<Vec<_>>(), [("long", false)]);
        assert_eq!(pending.next_write(), None);
        pending.absorb(end("long"), t0 + SHOW_RUNNING_AFTER * 2);
        let (rows, ends, _) = pending.take(t0 + SHOW_RUNNING_AFTER * 2, false);
        assert!(rows.is_empty());
        assert_eq!(ends.len(), 1, "its end updates the row written before");
    }

    #[test]
    fn a_flush_writes_running_calls_at_once() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        let (done, _) = oneshot::channel();
        pending.absorb(start("running"), t0);
        pending.absorb(Entry::Flush(done), t0);
        assert!(pending.next_write().is_some_and(|due| due <= Instant::now()));
        let (rows, _, flushes) = pending.take(t0, false);
        assert_eq!((rows.len(), flushes.len()), (1, 1));
    }
}
