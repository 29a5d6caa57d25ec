use super::form::{FunctionFields, Initial};
use super::tree_edit::template_tree;
use crate::api::{my_limits, CreateFunction};
use crate::components::{error_text, outcome_of, FormMessage, Frame};
use crate::model::{Language, PoolMode, Trigger};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn CreatePage() -> impl IntoView {
    view! {
        <Frame page=|caller| {
            if caller.is_provider() {
                view! {
                    <div class="card">
                        <h1>"New function"</h1>
                        <p>"The provider admin has no functions of its own. Sign in as a user of a tenant to create one."</p>
                        <a class="button" href="/">"Back to the dashboard"</a>
                    </div>
                }.into_any()
            } else {
                view! { <CreateForm org=caller.org /> }.into_any()
            }
        } />
    }
}

#[component]
fn CreateForm(org: String) -> impl IntoView {
    let create = ServerAction::<CreateFunction>::new();
    let limits = Resource::new(|| (), |_| my_limits());
    let outcome = outcome_of(create);
    let result = Signal::derive(move || create.value().get());
    let pending = Signal::derive(move || create.pending().get());
    view! {
        <Title text="New function · vcd-faas" />
        <div class="page-head"><h1>"New function"</h1></div>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let org = org.clone();
                limits.get().map(move |r| match r {
                    Ok(limits) => view! {
                        <ActionForm action=create attr:class="card form" attr:novalidate=true>
                            <FormMessage result />
                            <FunctionFields org editing=false limits outcome pending initial=Initial {
                                name: String::new(),
                                language: Language::Nodejs,
                                files: template_tree(Language::Nodejs),
                                memory_mb: None,
                                timeout_ms: None,
                                mode: PoolMode::Warm,
                                max_instances: None,
                                min_instances: None,
                                concurrency: None,
                                public: false,
                                trigger: Trigger::Http,
                                env: Default::default(),
                                secrets: Vec::new(),
                                egress: None,
                            } />
                            <div class="actions">
                                <button type="submit" class="button primary" disabled=move || create.pending().get()>
                                    {move || if create.pending().get() { "Creating…" } else { "Create function" }}
                                </button>
                                <a class="button subtle" href="/">"Cancel"</a>
                            </div>
                        </ActionForm>
                    }.into_any(),
                    Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                })
            }}
        </Suspense>
    }
}
