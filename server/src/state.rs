use crate::service::Service;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

/// Everything a request handler may need; also given to every server function.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub service: Service,
}
