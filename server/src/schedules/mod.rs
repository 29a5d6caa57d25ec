//! Schedule triggers: cron patterns read in a time zone (`cron.rs`) and the task that runs
//! their ticks (`scheduler.rs`), once per tick however many processes share the database.

pub mod cron;
pub mod scheduler;

use app::model::Trigger;

/// A scheduled function's next run after `now_ms`, as its zone reads it; `None` for other
/// triggers.
pub fn next_run(trigger: &Trigger, now_ms: i64) -> Option<String> {
    let Trigger::Schedule { cron, timezone } = trigger else { return None };
    let schedule = cron::Schedule::parse(cron, timezone).ok()?;
    schedule.next_after(now_ms).map(|tick| schedule.local_time(tick))
}
