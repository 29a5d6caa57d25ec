//! A function's route as a user calls it: the full URL (this portal's address, known in the
//! browser), a copy button, and a ready curl command with a placeholder for the token.

use leptos::prelude::*;

#[component]
pub fn RouteFact(route: String, public: bool) -> impl IntoView {
    // The server renders the path; the browser puts its own address in front once it runs.
    let origin = RwSignal::new(String::new());
    Effect::new(move |_| origin.set(page_origin()));
    let url = Memo::new(move |_| format!("{}{route}", origin.get()));
    let curl = move || {
        let auth = if public { String::new() } else { "-H 'Authorization: Bearer <token>' ".to_string() };
        format!("curl {auth}{}", url.get())
    };
    let copied = RwSignal::new(false);
    view! {
        <span class="route-line">
            <code class="route" data-testid="route">{move || url.get()}</code>
            <button type="button" class="button small" data-testid="copy-route"
                on:click=move |_| { copy_text(&url.get_untracked()); copied.set(true); }>
                {move || if copied.get() { "Copied" } else { "Copy URL" }}
            </button>
        </span>
        <pre class="curl" data-testid="curl">{curl}</pre>
        {(!public).then(|| view! { <p class="hint">"Make a token under " <a href="/tokens">"API tokens"</a> " (scope invoke is enough)."</p> })}
    }
}

#[cfg(feature = "hydrate")]
fn page_origin() -> String {
    web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
}

#[cfg(not(feature = "hydrate"))]
fn page_origin() -> String {
    String::new()
}

#[cfg(feature = "hydrate")]
fn copy_text(text: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
}

#[cfg(not(feature = "hydrate"))]
fn copy_text(_: &str) {}
