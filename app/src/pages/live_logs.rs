//! Live logs: the function's calls and their logs as they end, from the server-sent events of
//! `GET /api/v1/functions/{name}/logs?follow=true` (the browser's EventSource sends the
//! session cookie). Drawn in the browser only; the server renders the button.

use super::call_cells::{CallOutput, CallStatus};
use crate::components::format_time;
use crate::model::InvocationView;
use leptos::prelude::*;

#[component]
pub fn LiveLogs(org: String, name: String) -> impl IntoView {
    let following = RwSignal::new(false);
    let calls = RwSignal::new(Vec::<InvocationView>::new());
    // "connecting", "live" or "reconnecting": what the EventSource says.
    let link = RwSignal::new(String::new());
    let url = format!("/api/v1/functions/{name}/logs?org={org}&tail=5&follow=true");
    follow_while_on(url, following, calls, link);
    view! {
        <section class="card" aria-label="Live logs">
            <div class="section-head">
                <h2>"Live logs"</h2>
                <div class="inline">
                    <span class="muted" data-testid="live-state">{move || following.get().then(|| link.get())}</span>
                    <button type="button" class="button" data-testid="follow"
                        on:click=move |_| following.update(|on| *on = !*on)>
                        {move || if following.get() { "Stop" } else { "Follow live" }}
                    </button>
                </div>
            </div>
            {move || (!following.get() && calls.with(Vec::is_empty)).then(|| view! {
                <p class="muted">"Follow live to see each call and its logs as it ends, whoever makes it."</p>
            })}
            <ul class="live-calls">
                {move || calls.get().into_iter().map(|c| view! {
                    <li data-request-id=c.id.clone()>
                        <div class="live-call-head">
                            <CallStatus status_code=c.status_code />
                            <span class="muted">{format_time(c.started_at)}</span>
                            <code>{format!("{} {}", c.method, c.path)}</code>
                            <span>{c.trigger.clone()}</span>
                            <span>{c.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default()}</span>
                            <span class="muted">{if c.cold { "cold" } else { "warm" }}</span>
                        </div>
                        <CallOutput call=c.clone() />
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

#[cfg(not(feature = "hydrate"))]
fn follow_while_on(_: String, _: RwSignal<bool>, _: RwSignal<Vec<InvocationView>>, _: RwSignal<String>) {}

/// Opens the event stream while `following` is on and closes it when it goes off or the panel
/// goes away; each call that arrives goes on top of `calls`.
#[cfg(feature = "hydrate")]
fn follow_while_on(url: String, following: RwSignal<bool>, calls: RwSignal<Vec<InvocationView>>, link: RwSignal<String>) {
    use wasm_bindgen::prelude::*;
    use web_sys::{EventSource, MessageEvent};
    /// Calls kept on screen, newest first.
    const KEPT: usize = 50;

    struct Stream {
        source: EventSource,
        _on_call: Closure<dyn FnMut(MessageEvent)>,
        _on_open: Closure<dyn FnMut(web_sys::Event)>,
        _on_error: Closure<dyn FnMut(web_sys::Event)>,
    }
    let stream = StoredValue::new_local(None::<Stream>);
    let close = move || {
        if let Some(s) = stream.try_update_value(Option::take).flatten() {
            s.source.close();
        }
    };
    Effect::new(move |_| {
        if !following.get() {
            close();
            return;
        }
        let Ok(source) = EventSource::new(&url) else {
            link.set("cannot open the event stream".into());
            return;
        };
        link.set("connecting…".into());
        let on_call = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            if let Ok(call) = serde_json::from_str::<InvocationView>(&text) {
                calls.update(|list| {
                    list.retain(|c| c.id != call.id);
                    list.insert(0, call);
                    list.truncate(KEPT);
                });
            }
        });
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| link.set("live".into()));
        // The browser reconnects by itself; say so meanwhile.
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| link.set("reconnecting…".into()));
        let _ = source.add_event_listener_with_callback("call", on_call.as_ref().unchecked_ref());
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        stream.set_value(Some(Stream { source, _on_call: on_call, _on_open: on_open, _on_error: on_error }));
    });
    on_cleanup(close);
}
