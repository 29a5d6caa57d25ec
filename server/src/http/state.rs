use super::sessions::Sessions;
use crate::calls::deferred::AsyncCalls;
use crate::platform::Service;
use crate::vcd::Vcd;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Everything a request handler may need; also given to every server function.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub service: Service,
    pub sessions: Sessions,
    /// The async call queue, for `/metrics` (its broker's queue depths).
    pub async_calls: Arc<AsyncCalls>,
    /// The vCD integration when one runs, for `/metrics`.
    pub vcd: Option<Arc<Vcd>>,
}
