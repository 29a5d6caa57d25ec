//! Asks before a page with unsaved changes is left: the browser's own prompt when the tab is
//! closed or reloaded, and a confirmation before an in-app link is followed (the router has no
//! guard of its own, so the click is caught before it reaches the router).

use leptos::prelude::*;

/// Installs both guards for as long as the calling component lives.
pub fn warn_before_leaving(dirty: Signal<bool>) {
    #[cfg(feature = "hydrate")]
    client::install(dirty);
    #[cfg(not(feature = "hydrate"))]
    let _ = dirty;
}

#[cfg(feature = "hydrate")]
mod client {
    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    const LEAVE_QUESTION: &str = "You have unsaved changes. Leave this page and lose them?";

    pub fn install(dirty: Signal<bool>) {
        let unload = window_event_listener(leptos::ev::beforeunload, move |ev: web_sys::BeforeUnloadEvent| {
            if dirty.get_untracked() {
                ev.prevent_default();
                ev.set_return_value(LEAVE_QUESTION);
            }
        });
        let on_click = Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |ev: web_sys::MouseEvent| {
            if !dirty.get_untracked() || ev.default_prevented() || ev.button() != 0 || ev.ctrl_key() || ev.meta_key() || ev.shift_key() {
                return;
            }
            let link = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|el| el.closest("a[href]").ok().flatten())
                .and_then(|el| el.dyn_into::<web_sys::HtmlAnchorElement>().ok());
            let Some(link) = link else { return };
            // A link that opens elsewhere or only moves within the page leaves nothing behind.
            if !link.target().is_empty() || link.get_attribute("href").is_some_and(|h| h.starts_with('#')) {
                return;
            }
            if !window().confirm_with_message(LEAVE_QUESTION).unwrap_or(true) {
                ev.prevent_default();
                ev.stop_propagation();
            }
        });
        let options = web_sys::AddEventListenerOptions::new();
        options.set_capture(true);
        let _ = document().add_event_listener_with_callback_and_add_event_listener_options(
            "click",
            on_click.as_ref().unchecked_ref(),
            &options,
        );
        let listener = StoredValue::new_local(Some(on_click));
        on_cleanup(move || {
            unload.remove();
            if let Some(Some(on_click)) = listener.try_update_value(|l| l.take()) {
                let _ = document().remove_event_listener_with_callback_and_bool("click", on_click.as_ref().unchecked_ref(), true);
            }
        });
    }
}
