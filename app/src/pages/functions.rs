use crate::api::list_functions;
use crate::components::{error_text, format_time, use_ticker, StatusBadge};
use crate::model::FunctionView;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// A tenant user's functions.
#[component]
pub fn FunctionList() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(2));
    let functions = Resource::new(move || tick.get(), |_| list_functions());
    view! {
        <Title text="Functions · vcd-faas" />
        <div class="page-head">
            <h1>"Functions"</h1>
            <a class="button primary" href="/functions/new">"+ New function"</a>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || functions.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! {
                    <div class="card empty">
                        <h2>"No functions yet"</h2>
                        <p>"Write a function in Node.js or Python; it gets its own route and runs in its own sandboxed container."</p>
                        <a class="button primary" href="/functions/new">"Create your first function"</a>
                    </div>
                }.into_any(),
                Ok(list) => view! { <FunctionTable functions=list show_org=false /> }.into_any(),
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
pub fn FunctionTable(functions: Vec<FunctionView>, show_org: bool) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="functions">
                <thead>
                    <tr>
                        {show_org.then(|| view! { <th>"Org"</th> })}
                        <th>"Name"</th>
                        <th>"Status"</th>
                        <th>"Language"</th>
                        <th>"Route"</th>
                        <th>"Version"</th>
                        <th>"Updated"</th>
                    </tr>
                </thead>
                <tbody>
                    {functions.into_iter().map(|f| {
                        let href = format!("/functions/{}/{}", f.org, f.name);
                        let status = f.status.to_string();
                        view! {
                            <tr data-function=f.name.clone()>
                                {show_org.then(|| view! { <td>{f.org.clone()}</td> })}
                                <td><a href=href>{f.name.clone()}</a></td>
                                <td><StatusBadge status=status /></td>
                                <td>{f.language.label()}</td>
                                <td><code class="route">{f.route.clone()}</code></td>
                                <td>{f.version.map(|v| format!("v{v}")).unwrap_or_else(|| "–".into())}</td>
                                <td class="muted">{format_time(f.updated_at)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
