//! Pieces every page uses: the frame with navigation, status badges, field errors and a polling
//! ticker for live data.

use crate::api::{whoami, FormOutcome, Logout};
use crate::model::Caller;
use leptos::prelude::*;
use leptos_router::components::A;
use std::time::Duration;

/// The page frame. Renders `page` with the signed-in caller, or asks to sign in.
#[component]
pub fn Frame<F, IV>(page: F) -> impl IntoView
where
    F: Fn(Caller) -> IV + Send + Sync + Clone + 'static,
    IV: IntoView + 'static,
{
    let me = Resource::new(|| (), |_| whoami());
    let logout = ServerAction::<Logout>::new();
    mark_hydrated();
    view! {
        <div class="app">
            <Suspense fallback=|| view! { <header class="topbar"><a class="brand" href="/">"vcd-faas"</a></header> }>
                {move || {
                    let page = page.clone();
                    me.get().map(move |result| match result {
                        Ok(Some(caller)) => view! {
                            <TopBar caller=caller.clone() logout />
                            <main class="content">{page(caller)}</main>
                        }.into_any(),
                        Ok(None) => view! {
                            <header class="topbar"><a class="brand" href="/">"vcd-faas"</a></header>
                            <main class="content narrow">
                                <div class="card">
                                    <h1>"Please sign in"</h1>
                                    <p>"You need to be signed in to see this page."</p>
                                    <a class="button primary" href="/login">"Sign in"</a>
                                </div>
                            </main>
                        }.into_any(),
                        Err(e) => view! {
                            <header class="topbar"><a class="brand" href="/">"vcd-faas"</a></header>
                            <main class="content"><p class="alert error">{error_text(&e)}</p></main>
                        }.into_any(),
                    })
                }}
            </Suspense>
        </div>
    }
}

#[component]
fn TopBar(caller: Caller, logout: ServerAction<Logout>) -> impl IntoView {
    let provider = caller.is_provider();
    let admin = caller.is_tenant_admin();
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="logo" aria-hidden="true">"λ"</span>
                "vcd-faas"
            </a>
            <nav aria-label="Main">
                <A href="/">{if provider { "Dashboard" } else { "Functions" }}</A>
                {(!provider).then(|| view! { <A href="/functions/new">"New function"</A> })}
                {provider.then(|| view! { <A href="/tenants">"Tenants"</A> })}
                {(provider || admin).then(|| view! { <A href="/users">"Users"</A> })}
                <A href="/tokens">"API tokens"</A>
                {(provider || admin).then(|| view! { <A href="/audit">"Audit log"</A> })}
            </nav>
            <div class="who">
                <span class="org" title="Your organisation">{caller.org.clone()}</span>
                <span class="user">{caller.username.clone()}</span>
                <ActionForm action=logout>
                    <button type="submit" class="button subtle">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Marks the page once the client has taken over, so tests and styles can tell.
pub fn mark_hydrated() {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<String>) -> impl IntoView {
    view! {
        <span class=move || format!("badge badge-{}", status.get()) data-status=move || status.get()>
            {move || status.get()}
        </span>
    }
}

/// A number that grows every `every`, in the browser only: resources keyed on it refresh.
pub fn use_ticker(every: Duration) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), every) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}

/// The error of one form field, from the latest answer of an action.
#[component]
pub fn FieldMsg(outcome: Signal<Option<FormOutcome>>, field: &'static str) -> impl IntoView {
    move || {
        outcome.get().and_then(|o| o.error_for(field)).map(|m| {
            view! { <p class="field-error" role="alert" data-field=field>{m}</p> }
        })
    }
}

/// The errors of a list field (one entry per line) and of its entries.
#[component]
pub fn ListFieldMsg(outcome: Signal<Option<FormOutcome>>, field: &'static str) -> impl IntoView {
    move || {
        outcome.get().and_then(|o| o.list_errors(field)).map(|m| {
            view! { <p class="field-error pre-line" role="alert" data-field=field>{m}</p> }
        })
    }
}

/// The message of a form's latest answer, or the error of the call itself.
#[component]
pub fn FormMessage(result: Signal<Option<Result<FormOutcome, ServerFnError>>>) -> impl IntoView {
    // A failed submit moves the focus to what to fix, so the user sees that the button did
    // something even when the form is longer than the screen.
    Effect::new(move |_| {
        let failed = result.with(|r| match r {
            Some(Ok(o)) => !o.errors.is_empty() || o.error.is_some(),
            Some(Err(_)) => true,
            None => false,
        });
        if failed {
            set_timeout(focus_first_error, Duration::ZERO);
        }
    });
    move || match result.get() {
        Some(Ok(o)) if !o.errors.is_empty() => {
            let count = o.errors.len();
            let text = if count == 1 { "Please fix the marked field.".to_string() } else { format!("Please fix the {count} marked fields.") };
            Some(view! { <p class="alert error" role="alert">{text}</p> }.into_any())
        }
        Some(Ok(FormOutcome { error: Some(e), .. })) => Some(view! { <p class="alert error" role="alert">{e}</p> }.into_any()),
        Some(Ok(o)) => o.message.map(|m| view! { <p class="alert ok" role="status">{m}</p> }.into_any()),
        Some(Err(e)) => Some(view! { <p class="alert error" role="alert">{error_text(&e)}</p> }.into_any()),
        None => None,
    }
}

/// Scrolls to the first field error on the page and focuses its field (or, with no field
/// error, scrolls to the error message).
#[cfg(feature = "hydrate")]
fn focus_first_error() {
    use wasm_bindgen::JsCast;
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let first = |selector: &str| document.query_selector(selector).ok().flatten();
    let Some(error) = first(".field-error").or_else(|| first(".alert.error")) else { return };
    error.scroll_into_view_with_bool(false);
    let field = error.closest(".field").ok().flatten().and_then(|f| f.query_selector("input:not([type=hidden]), select, textarea, .cm-content").ok().flatten());
    if let Some(field) = field.and_then(|f| f.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = field.focus();
    }
}

#[cfg(not(feature = "hydrate"))]
fn focus_first_error() {}

/// The outcome part of an action's latest answer.
pub fn outcome_of<I>(action: ServerAction<I>) -> Signal<Option<FormOutcome>>
where
    I: leptos::server_fn::ServerFn<Output = FormOutcome> + Clone + Send + Sync + 'static,
    I::Error: Clone + Send + Sync + 'static,
    ServerAction<I>: Copy,
{
    Signal::derive(move || action.value().get().and_then(|r| r.ok()))
}

/// The message of a failed server call, without the "error running server function:" prefix
/// that means nothing to a user.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Output of a build or a call without terminal colour codes (`ESC [ … m` and the like), which
/// would otherwise show as stray characters in the page.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

pub fn format_time(ms: i64) -> String {
    // Rendered the same on server and client: UTC, to the second.
    let secs = ms / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a calendar date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(super::strip_ansi("\u{1b}[91m/app/handler.js:1\u{1b}[39m\nok"), "/app/handler.js:1\nok");
        assert_eq!(super::strip_ansi("plain ^ text"), "plain ^ text");
    }

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_795_824_000_000), "2026-11-28 00:00:00 UTC");
    }
}
