//! The function page's Schedule panel: the pattern and its zone, the next run, and the last
//! runs (the calls with trigger `schedule`).

use crate::components::{format_time, strip_ansi};
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
                                    let status = i.status_code.map(|s| s.to_string()).unwrap_or_else(|| "…".into());
                                    let ok = i.status_code.is_some_and(|s| s < 400);
                                    view! {
                                        <tr>
                                            <td class="muted">{format_time(i.started_at)}</td>
                                            <td><span class=if ok { "badge badge-ready" } else { "badge badge-failed" }>{status}</span></td>
                                            <td>{i.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default()}</td>
                                            <td>
                                                {i.error.clone().map(|e| view! { <p class="field-error">{e}</p> })}
                                                {(!i.logs.is_empty()).then(|| view! {
                                                    <details><summary>"logs"</summary><pre class="log">{strip_ansi(&i.logs)}</pre></details>
                                                })}
                                            </td>
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
