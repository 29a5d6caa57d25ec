pub mod audit;
mod call_cells;
mod call_history;
mod code_view;
pub mod create;
pub mod detail;
mod editor;
mod env_edit;
mod env_facts;
mod env_rows;
#[cfg(feature = "hydrate")]
mod editor_js;
mod file_actions;
pub mod form;
pub mod functions;
pub mod home;
mod live_logs;
pub mod login;
pub mod provider;
mod route_fact;
mod monitor;
mod nodes_panel;
mod schedule_panel;
pub mod tokens;
pub mod tree_edit;
mod unsaved;
pub mod users;
mod version_files;

use leptos::prelude::*;

/// Answers the page with 404 when it is rendered on the server.
pub fn set_status_not_found() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status_not_found();
    view! {
        <main class="content narrow">
            <div class="card">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address."</p>
                <a class="button primary" href="/">"Go to your functions"</a>
            </div>
        </main>
    }
}
