//! The function page's Schedule panel: the pattern and its zone, the next run, and the last
//! runs (the calls with trigger `schedule`).

use super::call_cells::{CallOutput, CallStatus};
use crate::components::format_time;
use crate::model::{FunctionView, InvocationView, Trigger};
use leptos::prelude::*;

#[component]
pub fn SchedulePanel(function: FunctionView, runs: Vec<InvocationView>) -> impl IntoView {
    let Trigger::Schedule { cron, timezone } = function.trigger else { return ().into_any() };
    view! {
        <section class="card" aria-label="Schedule">
            <h2>"Schedule"</h2>
            <dl class="facts">
                <div><dt>"Cron"</dt><dd><code data-testid="schedule-cron">{cron}</code></dd></div>
                <div><dt>"Time zone"</dt><dd data-testid="schedule-timezone">{timezone}</dd></div>
                <div class="wide"><dt>"Next run"</dt><dd data-testid="next-run">
                    {function.next_run.unwrap_or_else(|| "none".into())}
                    {function.version.is_none().then(|| view! { <span class="muted">" · runs once a version is ready"</span> })}
                </dd></div>
            </dl>
            <h3>"Last runs"</h3>
            {if runs.is_empty() {
                view! { <p class="muted" data-testid="no-scheduled-runs">"No run yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="invocations" data-testid="scheduled-runs">
                            <thead><tr><th>"Time"</th><th>"Status"</th><th>"Duration"</th><th>"Logs"</th></tr></thead>
                            <tbody>
                                {runs.into_iter().map(|i| {
                                    view! {
                                        <tr>
                                            <td class="muted">{format_time(i.started_at)}</td>
                                            <td><CallStatus status_code=i.status_code /></td>
                                            <td>{i.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default()}</td>
                                            <td><CallOutput call=i.clone() /></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn function(trigger: Trigger, next_run: Option<&str>) -> FunctionView {
        let mut f: FunctionView = serde_json::from_value(serde_json::json!({
            "name": "ticker", "org": "acme", "language": "nodejs", "route": "/api/org/acme/ticker", "status": "ready",
            "version": 1, "latest_version": 1, "build_status": "ready", "build_error": null, "build_log": "",
            "memory_mb": 128, "timeout_ms": 1000, "public": false, "trigger": {"type": "http"},
            "registration": {"state": "local", "detail": "", "next_retry_at": null}, "mode": "warm",
            "max_instances": 1, "min_instances": 0, "concurrency": 1, "code": "", "files": {}, "env": {}, "secrets": [],
            "created_at": 0, "updated_at": 0
        }))
        .unwrap();
        f.trigger = trigger;
        f.next_run = next_run.map(String::from);
        f
    }

    #[test]
    fn shows_the_schedule_its_next_run_and_its_last_runs() {
        let trigger = Trigger::Schedule { cron: "*/5 * * * *".into(), timezone: "Europe/Sofia".into() };
        let run = InvocationView {
            id: "1".into(),
            function: "ticker".into(),
            version: 1,
            trigger: "schedule".into(),
            method: "POST".into(),
            path: "/".into(),
            status_code: Some(200),
            duration_ms: Some(2.5),
            cold: false,
            logs: "tick\n".into(),
            error: None,
            started_at: 1_796_196_300_000,
            connections: Vec::new(),
            node: None,
        };
        let html = view! { <SchedulePanel function=function(trigger.clone(), Some("2026-12-02T10:05:00+02:00")) runs=vec![run] /> }.to_html();
        for part in ["*/5 * * * *", "Europe/Sofia", "2026-12-02T10:05:00+02:00", "2.5 ms", "badge-ready"] {
            assert!(html.contains(part), "{part} in {html}");
        }
        let html = view! { <SchedulePanel function=function(trigger, None) runs=vec![] /> }.to_html();
        assert!(html.contains("No run yet."), "{html}");
        // Not a scheduled function: no panel.
        let html = view! { <SchedulePanel function=function(Trigger::Http, None) runs=vec![] /> }.to_html();
        assert!(!html.contains("Schedule"), "{html}");
    }
}
