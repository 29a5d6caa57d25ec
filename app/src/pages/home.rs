//! The first page after signing in: the provider's dashboard, or a tenant's functions.

use super::functions::FunctionList;
use super::provider::Dashboard;
use crate::components::Frame;
use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Frame page=|caller| {
            if caller.is_provider() {
                view! { <Dashboard /> }.into_any()
            } else {
                view! { <FunctionList /> }.into_any()
            }
        } />
    }
}
