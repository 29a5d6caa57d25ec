//! The function page's view of its environment: each variable with its value, and each
//! secret by name only (the portal never receives a secret's value).

use crate::model::EnvVars;
use leptos::prelude::*;

#[component]
pub fn EnvFacts(env: EnvVars, secrets: Vec<String>) -> impl IntoView {
    if env.is_empty() && secrets.is_empty() {
        return view! { <span class="muted">"no variables or secrets"</span> }.into_any();
    }
    view! {
        <ul class="env-facts">
            {env.into_iter().map(|(name, value)| view! {
                <li data-testid="env-var"><code>{format!("{name} = {value}")}</code></li>
            }).collect_view()}
            {secrets.into_iter().map(|name| view! {
                <li data-testid="env-secret"><code>{name}</code> " " <span class="tag">"secret, value hidden"</span></li>
            }).collect_view()}
        </ul>
    }.into_any()
}
