//! A function's calls, the newest first: filtered by status, trigger, version or request id,
//! a page at a time. The first page follows new calls as they come.

use super::call_cells::{CallOutput, CallStatus};
use crate::api::search_invocations;
use crate::components::{error_text, format_time, use_ticker};
use crate::model::{Connection, InvocationPage, InvocationQuery, InvocationView};
use leptos::prelude::*;
use std::time::Duration;

const PAGE: i64 = 20;
const STATUSES: [(&str, &str); 6] = [("", "any status"), ("success", "success"), ("error", "errors (5xx)"), ("4xx", "4xx"), ("5xx", "5xx"), ("running", "running")];
const TRIGGERS: [(&str, &str); 6] = [("", "any trigger"), ("http", "http"), ("vcd", "vcd"), ("event", "event"), ("schedule", "schedule"), ("async", "async")];

#[component]
pub fn CallHistory(org: String, name: String) -> impl IntoView {
    let (status, trigger, version, request_id) = (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    // The cursors of the pages before this one: empty on the first page.
    let cursors = RwSignal::new(Vec::<String>::new());
    let tick = use_ticker(Duration::from_secs(2));
    let query = move || {
        let text = |s: RwSignal<String>| Some(s.get().trim().to_string()).filter(|s| !s.is_empty());
        InvocationQuery {
            status: text(status),
            trigger: text(trigger),
            version: version.get().trim().parse().ok(),
            request_id: text(request_id),
            cursor: cursors.with(|c| c.last().cloned()),
            limit: Some(PAGE),
            ..Default::default()
        }
    };
    // Only the first page follows new calls; an older page stays as it was.
    let follow = move || if cursors.with(Vec::is_empty) { tick.get() } else { 0 };
    let page = Resource::new(move || (org.clone(), name.clone(), query(), follow()), |(o, n, q, _)| search_invocations(o, n, q));
    let refilter = move |signal: RwSignal<String>, value: String| {
        signal.set(value);
        cursors.set(Vec::new());
    };
    view! {
        <section class="card" aria-label="Recent calls">
            <h2>"Recent calls"</h2>
            <div class="filters" role="search" aria-label="Filter calls">
                <select aria-label="Status" data-filter="status" on:change=move |e| refilter(status, event_target_value(&e))>
                    {STATUSES.map(|(v, label)| view! { <option value=v>{label}</option> })}
                </select>
                <select aria-label="Trigger" data-filter="trigger" on:change=move |e| refilter(trigger, event_target_value(&e))>
                    {TRIGGERS.map(|(v, label)| view! { <option value=v>{label}</option> })}
                </select>
                <input aria-label="Version" data-filter="version" type="number" min="1" placeholder="version" on:change=move |e| refilter(version, event_target_value(&e)) />
                <input aria-label="Request id" data-filter="request-id" placeholder="request id" spellcheck="false" on:change=move |e| refilter(request_id, event_target_value(&e)) />
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || page.get().map(|r| match r {
                    Ok(p) => view! { <CallPage page=p cursors /> }.into_any(),
                    Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn CallPage(page: InvocationPage, cursors: RwSignal<Vec<String>>) -> impl IntoView {
    let first = cursors.with(Vec::is_empty);
    let next = page.next_cursor.clone();
    let pager = (!first || next.is_some()).then(|| view! {
        <div class="pager">
            <button type="button" class="button" disabled=first on:click=move |_| cursors.update(|c| { c.pop(); })>"Newer"</button>
            <button type="button" class="button" disabled=next.is_none()
                on:click=move |_| if let Some(cursor) = next.clone() { cursors.update(|c| c.push(cursor)) }>"Older"</button>
        </div>
    });
    if page.invocations.is_empty() {
        let empty = if first { "No calls yet. Press Test Function, or call the route." } else { "No older calls." };
        return view! { <p class="muted">{empty}</p> {pager} }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="invocations">
                <thead><tr><th>"Time"</th><th>"Trigger"</th><th>"Request"</th><th>"Status"</th><th>"Duration"</th><th>"Start"</th><th>"Logs"</th></tr></thead>
                <tbody>{page.invocations.into_iter().map(call_row).collect_view()}</tbody>
            </table>
        </div>
        {pager}
    }
    .into_any()
}

fn call_row(i: InvocationView) -> AnyView {
    let ran = [Some(format!("v{}", i.version)), i.node.clone().map(|n| format!("on {n}"))].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    view! {
        <tr data-request-id=i.id.clone()>
            <td class="muted">{format_time(i.started_at)}<br /><span class="hint">{ran}</span></td>
            <td>{i.trigger.clone()}</td>
            <td><code>{format!("{} {}", i.method, i.path)}</code><br /><code class="hint" title="request id">{i.id.clone()}</code></td>
            <td><CallStatus status_code=i.status_code /></td>
            <td>{i.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default()}</td>
            <td>{if i.cold { "cold" } else { "warm" }}</td>
            <td>
                {(!i.connections.is_empty()).then(|| view! { <Connections list=i.connections.clone() /> }.into_any())}
                <CallOutput call=i.clone() />
            </td>
        </tr>
    }
    // Type-erased: fully nested, the page's rendering went deeper than a thread's stack.
    .into_any()
}

/// The outbound connections of one call.
#[component]
fn Connections(list: Vec<Connection>) -> impl IntoView {
    let refused = list.iter().filter(|c| !c.allowed).count();
    let count = if list.len() == 1 { "1 connection".to_string() } else { format!("{} connections", list.len()) };
    let summary = if refused == 0 { count } else { format!("{count}, {refused} refused") };
    view! {
        <details data-testid="connections">
            <summary>{summary}</summary>
            <ul class="connections">
                {list.into_iter().map(|c| {
                    let what = match (&c.error, c.allowed) {
                        (None, _) => format!("{} B sent, {} B received", c.sent, c.received),
                        (Some(e), _) => e.clone(),
                    };
                    view! {
                        <li class=if c.allowed && c.error.is_none() { "allowed" } else { "refused" }>
                            <code>{format!("{}:{}", c.host, c.port)}</code>" "{what}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </details>
    }
}
