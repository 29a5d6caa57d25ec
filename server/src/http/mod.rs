//! HTTP: one router for the portal and the REST API (`router`), and in front of it the
//! service that takes function calls straight to the call pipeline (`front`).

pub mod api;
pub mod front;
pub mod live_logs;
pub mod openapi;
pub mod sessions;
pub mod state;

use app::platform::SharedPlatform;
use app::{shell, App};
use axum::extract::DefaultBodyLimit;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use state::AppState;
use std::sync::Arc;
use tower_http::trace::TraceLayer;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

/// The portal's pages and server functions, and the REST API. Needs no Docker engine, so
/// tests of the API's rules can call it with `oneshot`.
pub fn router(state: AppState) -> Router {
    let config = state.service.config().clone();
    let session_layer = SessionManagerLayer::new(state.sessions.clone())
        .with_name("vcd_faas_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));
    let platform: SharedPlatform = Arc::new(state.service.clone());
    let context = move || provide_context(platform.clone());
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .merge(api::router())
        .merge(live_logs::router())
        .leptos_routes_with_context(&state, routes, context.clone(), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        // The portal's forms are URL-encoded: a Test Function body as large as a route takes
        // grows by up to three times, a function's files (JSON in a form field) by up to four
        // (a newline is `%5Cn`); the platform then checks the decoded sizes.
        .layer(DefaultBodyLimit::max((3 * config.max_body_bytes).max(4 * config.max_files_bytes()) + 1024 * 1024))
        .layer(session_layer)
        .with_state(state)
        .layer(TraceLayer::new_for_http())
}

/// The whole HTTP surface: function routes to the call pipeline, the rest to `router`.
pub fn front(state: AppState) -> front::Front {
    let dispatcher = state.service.calls().clone();
    let max_body_bytes = state.service.config().max_body_bytes;
    front::Front::new(dispatcher, max_body_bytes, router(state))
}
