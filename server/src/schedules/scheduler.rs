//! The scheduler: one task per server process. It sleeps until the next tick of any schedule,
//! claims the tick in the database (`Store::claim_tick`: exactly one process wins it, and the
//! claim is committed before the call starts, so neither a second process nor a restart runs
//! it again), then calls the function through the dispatcher like any other source: a POST
//! with a small JSON body saying the scheduled time, recorded with trigger `schedule`.
//!
//! After a downtime the latest tick that fell due while no process ran is what a scheduler
//! finds due: it runs once, late, and the ticks missed before it do not run.

use super::cron::Schedule;
use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatcher};
use crate::calls::request::{CallRequest, CallTrigger, FunctionRef};
use crate::store::{now_ms, DbResult, Scheduled, Store};
use app::model::Trigger;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest sleep between two looks at the schedules: another process's new or changed
/// schedules are seen within this (this process's own changes wake it at once).
const RELOAD: Duration = Duration::from_secs(10);
/// Pause after the database failed a pass.
const RETRY: Duration = Duration::from_secs(2);
/// A tick claimed this much after its time is logged as a missed one run late.
const LATE: i64 = 60_000;

struct Ticks {
    store: Store,
    dispatcher: Dispatcher,
    /// Who claims: written with each claim, so the lease says which process ran a tick.
    me: String,
}

/// The running scheduler; `stop` ends it (dropped, it runs on until the process ends).
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    /// Claims no more ticks and waits for the calls of the ticks it claimed: a claimed tick is
    /// never run again, so its call is not cut off.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn start(store: Store, dispatcher: Dispatcher) -> SchedulerHandle {
    let ticks = Arc::new(Ticks { store, dispatcher, me: process_name() });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(ticks.run(stopped));
    SchedulerHandle { stop, task }
}

/// `host:pid:random`, unique among the processes sharing a database.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let random = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{}:{}:{random}", host.trim(), std::process::id())
}

/// Returns once `stop` was called; never when the handle was dropped instead.
async fn stop_asked(stopped: &mut watch::Receiver<bool>) {
    if stopped.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Ticks {
    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut changes = self.dispatcher.directory().subscribe();
        let mut calls = JoinSet::new();
        tracing::info!(process = self.me, "scheduler started");
        loop {
            let pause = match self.pass(&mut calls).await {
                Ok(next_tick) => Duration::from_millis((next_tick - now_ms()).max(0) as u64).min(RELOAD),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying");
                    RETRY
                }
            };
            while calls.try_join_next().is_some() {}
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                // Functions changed here: a new schedule, or a version became ready.
                _ = changes.changed() => {}
                _ = stop_asked(&mut stopped) => break,
            }
        }
        while calls.join_next().await.is_some() {}
        tracing::info!("scheduler stopped");
    }

    /// Claims and starts every tick due now; returns when the next tick falls (Unix ms).
    async fn pass(self: &Arc<Self>, calls: &mut JoinSet<()>) -> DbResult<i64> {
        let now = now_ms();
        let mut next_tick = now + RELOAD.as_millis() as i64;
        for scheduled in self.store.scheduled_functions().await? {
            let Trigger::Schedule { cron, timezone } = &scheduled.function.trigger else { continue };
            let Ok(schedule) = Schedule::parse(cron, timezone) else {
                // Checked when saved; a zone a newer database dropped would land here.
                tracing::warn!(function = scheduled.function.name, org = scheduled.function.org, cron, timezone, "schedule no longer readable; skipped");
                continue;
            };
            if let Some(due) = schedule.due(scheduled.last_due, now) {
                if self.store.claim_tick(scheduled.function.id, &scheduled.key, due, &self.me).await? {
                    calls.spawn(self.clone().run_tick(scheduled, schedule.clone(), due));
                }
            }
            if let Some(tick) = schedule.next_after(now) {
                next_tick = next_tick.min(tick);
            }
        }
        Ok(next_tick)
    }

    /// Calls the function for the tick it claimed.
    async fn run_tick(self: Arc<Self>, scheduled: Scheduled, schedule: Schedule, due: i64) {
        let f = &scheduled.function;
        let Trigger::Schedule { cron, timezone } = &f.trigger else { return };
        let scheduled_time = schedule.local_time(due);
        let late_ms = now_ms() - due;
        if late_ms > LATE {
            tracing::info!(function = f.name, org = f.org, scheduled_time, late_s = late_ms / 1000, "running a tick missed while no scheduler ran");
        }
        let body = serde_json::json!({"scheduledTime": scheduled_time, "cron": cron, "timezone": timezone});
        let call = Call {
            function: FunctionRef::new(f.org.clone(), f.name.clone()),
            request: CallRequest {
                method: "POST".into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-vcd-faas-scheduled-time".into(), scheduled_time.clone()),
                ],
                body: body.to_string().into(),
                trigger: CallTrigger::Schedule,
                ..Default::default()
            },
            // The platform runs its tenant's own schedule.
            credentials: Credentials::Platform,
            delivery: Delivery::Now,
        };
        match self.dispatcher.dispatch(call).await {
            Ok(dispatched) => {
                let status = dispatched.into_response().status;
                tracing::debug!(function = f.name, org = f.org, scheduled_time, status, "scheduled call ran");
            }
            Err(rejection) => {
                tracing::warn!(function = f.name, org = f.org, scheduled_time, reason = rejection.message, "scheduled call not run");
            }
        }
    }
}
