//! The audit log: who changed what and when. The provider sees every tenant's (and can narrow
//! to one), a tenant admin its own tenant's.

use crate::api::{list_audit, list_tenants};
use crate::components::{error_text, format_time, Frame};
use crate::model::Caller;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AuditPage() -> impl IntoView {
    view! { <Frame page=|caller| view! { <AuditLog caller /> } /> }
}

#[component]
fn AuditLog(caller: Caller) -> impl IntoView {
    let provider = caller.is_provider();
    let org = RwSignal::new(String::new());
    // Older pages: the id below which the next page starts.
    let before = RwSignal::new(None::<i64>);
    let entries = Resource::new(move || (org.get(), before.get()), |(org, before)| list_audit(Some(org), before));
    let tenants = Resource::new(|| (), move |_| async move { if provider { list_tenants().await } else { Ok(vec![]) } });
    view! {
        <Title text="Audit log · vcd-faas" />
        <div class="page-head"><h1>"Audit log"</h1></div>
        <p class="muted">{if provider {
            "Every change made through the portal or the API: tenants, users, functions, tokens and nodes."
        } else {
            "Every change made to your organisation through the portal or the API."
        }}</p>
        {provider.then(|| view! {
            <div class="form inline">
                <label for="audit-org">"Tenant"</label>
                <select id="audit-org" on:change=move |ev| { before.set(None); org.set(event_target_value(&ev)); }>
                    <option value="">"All"</option>
                    <Suspense fallback=|| ()>
                        {move || tenants.get().and_then(|r| r.ok()).map(|list| list.into_iter().map(|t| view! {
                            <option value=t.name.clone()>{t.name.clone()}</option>
                        }).collect_view())}
                    </Suspense>
                </select>
            </div>
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || entries.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing recorded yet."</p> }.into_any(),
                Ok(list) => {
                    let oldest = list.last().map(|e| e.id);
                    let full_page = list.len() >= 100;
                    view! {
                        <div class="table-wrap card">
                            <table class="audit">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"Org"</th><th>"What"</th><th>"On"</th><th>"Details"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| { let action = e.action.clone(); view! {
                                        <tr data-action=action>
                                            <td class="muted">{format_time(e.at)}</td>
                                            <td>{e.actor}</td>
                                            <td>{e.org.unwrap_or_else(|| "–".into())}</td>
                                            <td><code>{e.action}</code></td>
                                            <td>{e.target}</td>
                                            <td class="detail">{e.detail}</td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <div class="pager">
                            {move || before.get().is_some().then(|| view! {
                                <button class="button subtle" on:click=move |_| before.set(None)>"Newest"</button>
                            })}
                            {full_page.then(|| view! {
                                <button class="button subtle" on:click=move |_| before.set(oldest)>"Older"</button>
                            })}
                        </div>
                    }.into_any()
                }
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
    }
}
