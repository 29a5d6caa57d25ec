//! Cells of a call in the lists of calls (the function's recent calls, its scheduled runs).

use crate::components::strip_ansi;
use crate::model::InvocationView;
use leptos::prelude::*;

/// The call's status code as a badge ("…" while it runs).
#[component]
pub fn CallStatus(status_code: Option<i64>) -> impl IntoView {
    let ok = status_code.is_some_and(|s| s < 400);
    let text = status_code.map(|s| s.to_string()).unwrap_or_else(|| "…".into());
    view! { <span class=if ok { "badge badge-ready" } else { "badge badge-failed" }>{text}</span> }
}

/// Why the call failed, and its log folded away.
#[component]
pub fn CallOutput(call: InvocationView) -> impl IntoView {
    view! {
        {call.error.clone().map(|e| view! { <p class="field-error">{e}</p> })}
        {(!call.logs.is_empty()).then(|| view! {
            <details><summary>"logs"</summary><pre class="log">{strip_ansi(&call.logs)}</pre></details>
        })}
    }
}
