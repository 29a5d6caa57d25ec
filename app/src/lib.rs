//! The vcd-faas portal: Leptos pages (SSR + hydration), server functions, shared types, and
//! the `Platform` port the server implements.
// The function page's view types nest deeper than rustc's default limit allows.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod egress;
pub mod env;
pub mod files;
pub mod model;
pub mod pages;
pub mod validation;
#[cfg(feature = "ssr")]
pub mod platform;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // The code editor (CodeMirror, bundled from editor/): run before the app hydrates.
                <script defer src="/editor/editor.js"></script>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/vcd-faas.css" />
        <Title text="vcd-faas" />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/login") view=pages::login::LoginPage />
                <Route path=path!("/") view=pages::home::HomePage />
                <Route path=path!("/functions/new") view=pages::create::CreatePage />
                // Async: the page waits for its data, so "not found" can answer 404.
                <Route path=path!("/functions/:org/:name") view=pages::detail::DetailPage ssr=SsrMode::Async />
                <Route path=path!("/tenants") view=pages::provider::TenantsPage />
                <Route path=path!("/users") view=pages::users::UsersPage />
                <Route path=path!("/tokens") view=pages::tokens::TokensPage />
                <Route path=path!("/audit") view=pages::audit::AuditPage />
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
