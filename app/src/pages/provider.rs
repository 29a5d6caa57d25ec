use super::functions::FunctionTable;
use super::nodes_panel::NodesPanel;
use crate::api::{list_functions, list_tenants, service_links, CreateTenant, DeleteTenant, FormOutcome, UpdateTenant};
use crate::components::{error_text, outcome_of, use_ticker, FieldMsg, FormMessage, Frame, ListFieldMsg};
use crate::model::{FunctionStatus, Sandbox, ServiceLink, TenantView};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// The provider's overview: every tenant and every function, live.
#[component]
pub fn Dashboard() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(3));
    let functions = Resource::new(move || tick.get(), |_| list_functions());
    let tenants = Resource::new(move || tick.get(), |_| list_tenants());
    view! {
        <Title text="Dashboard · vcd-faas" />
        <div class="page-head"><h1>"Provider dashboard"</h1><a class="button primary" href="/tenants">"Manage tenants"</a></div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || match (functions.get(), tenants.get()) {
                (Some(Ok(functions)), Some(Ok(tenants))) => {
                    let count = |s: FunctionStatus| functions.iter().filter(|f| f.status == s).count();
                    let stats = FunctionStatus::ALL.iter().map(|&s| (s.to_string(), count(s))).collect::<Vec<_>>();
                    Some(view! {
                        <div class="stats">
                            <div class="stat"><span class="value">{tenants.len()}</span><span class="label">"tenants"</span></div>
                            <div class="stat"><span class="value">{functions.len()}</span><span class="label">"functions"</span></div>
                            {stats.into_iter().map(|(s, n)| view! {
                                <div class="stat"><span class="value">{n}</span><span class=format!("label badge-text-{s}")>{s.clone()}</span></div>
                            }).collect_view()}
                        </div>
                        <section class="card">
                            <h2>"Tenants"</h2>
                            <div class="table-wrap">
                                <table class="tenant-figures">
                                    <thead><tr><th>"Org"</th><th>"Functions"</th><th>"Calls"</th><th>"Errors (5xx)"</th><th>"Cold starts"</th><th>"Mean duration"</th><th>"Containers now"</th></tr></thead>
                                    <tbody>
                                        {tenants.into_iter().map(|t| view! {
                                            <tr data-tenant=t.name.clone()>
                                                <td>{t.name.clone()}</td>
                                                <td>{t.function_count}</td>
                                                <td>{t.calls}</td>
                                                <td>{t.errors}</td>
                                                <td>{t.cold_starts}</td>
                                                <td>{if t.calls > 0 { format!("{:.1} ms", t.mean_ms) } else { "–".into() }}</td>
                                                <td>{t.containers}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <p class="hint">"Calls since the server started; Prometheus text at /metrics (provider token)."</p>
                        </section>
                        <section class="card">
                            <h2>"All functions"</h2>
                            {if functions.is_empty() {
                                view! { <p class="muted">"No tenant has a function yet."</p> }.into_any()
                            } else {
                                view! { <FunctionTable functions show_org=true /> }.into_any()
                            }}
                        </section>
                    }.into_any())
                }
                (Some(Err(e)), _) | (_, Some(Err(e))) => Some(view! { <p class="alert error">{error_text(&e)}</p> }.into_any()),
                _ => None,
            }}
        </Transition>
        // Outside the view above, which is made anew on every refresh: made once, each keeps
        // one timer and one resource of its own.
        <NodesPanel />
        <ServiceLinks />
    }
}

/// Whether Docker, the database and the brokers answer, refreshed every 3 s like the dashboard.
#[component]
fn ServiceLinks() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(3));
    let links = Resource::new(move || tick.get(), |_| service_links());
    let row = |l: ServiceLink| {
        view! {
            <tr data-link=l.name.clone()>
                <td>{l.name.clone()}</td>
                <td><span class=format!("badge badge-{}", l.state)>{l.state.clone()}</span></td>
                <td>{l.detail.clone()}</td>
            </tr>
        }
    };
    view! {
        <section class="card">
            <h2>"Connections"</h2>
            <Transition fallback=|| view! { <p class="muted">"Checking…"</p> }>
                {move || links.get().map(|links| match links {
                    Ok(links) => view! {
                        <div class="table-wrap">
                            <table class="service-links">
                                <thead><tr><th>"Service"</th><th>"State"</th><th>"Detail"</th></tr></thead>
                                <tbody>{links.into_iter().map(row).collect_view()}</tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
pub fn TenantsPage() -> impl IntoView {
    view! { <Frame page=|_| view! { <Tenants /> } /> }
}

#[component]
fn Tenants() -> impl IntoView {
    let create = ServerAction::<CreateTenant>::new();
    let update = ServerAction::<UpdateTenant>::new();
    let delete = ServerAction::<DeleteTenant>::new();
    let tenants = Resource::new(move || (create.version().get(), update.version().get(), delete.version().get()), |_| list_tenants());
    let delete_result = Signal::derive(move || delete.value().get());
    let outcome = outcome_of(create);
    let result = Signal::derive(move || create.value().get());
    let update_result = Signal::derive(move || update.value().get());
    view! {
        <Title text="Tenants · vcd-faas" />
        <div class="page-head"><h1>"Tenants"</h1></div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || tenants.get().map(|r| match r {
                Ok(list) => view! {
                    <FormMessage result=update_result />
                    <FormMessage result=delete_result />
                    <div class="table-wrap card">
                        <table class="tenants">
                            <thead><tr><th>"Org"</th><th>"Display name"</th><th>"Functions"</th><th>"Users"</th><th>"Max functions"</th><th>"Max memory (MB)"</th><th>"Max timeout (ms)"</th><th>"Max instances"</th><th>"vCD org id"</th><th>"Outbound network"</th><th>"Sandbox"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| view! { <TenantRow t update delete /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
        <section class="card">
            <h2>"New tenant"</h2>
            <ActionForm action=create attr:class="form" attr:novalidate=true>
                <FormMessage result />
                <div class="row">
                    <div class="field">
                        <label for="t-name">"Org name"</label>
                        <input id="t-name" name="form[name]" placeholder="pscoe" autocomplete="off" />
                        <p class="hint">"Used in routes: /api/org/<name>/…"</p>
                        <FieldMsg outcome field="name" />
                    </div>
                    <div class="field">
                        <label for="t-display">"Display name"</label>
                        <input id="t-display" name="form[display_name]" placeholder="PS CoE" />
                        <FieldMsg outcome field="display_name" />
                    </div>
                </div>
                <TenantLimitFields outcome prefix="t" values=None />
                <button type="submit" class="button primary">"Create tenant"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn TenantLimitFields(outcome: Signal<Option<FormOutcome>>, prefix: &'static str, values: Option<TenantView>) -> impl IntoView {
    let v = |f: fn(&TenantView) -> i64| values.as_ref().map(|t| f(t).to_string()).unwrap_or_default();
    let org_id = values.as_ref().and_then(|t| t.vcd_org_id.clone()).unwrap_or_default();
    let egress = values.as_ref().map(|t| t.egress.join("\n")).unwrap_or_default();
    let sandbox = values.as_ref().map(|t| t.sandbox).unwrap_or(Sandbox::Runc);
    view! {
        <div class="row">
            <div class="field">
                <label for=format!("{prefix}-maxf")>"Max functions"</label>
                <input id=format!("{prefix}-maxf") name="form[max_functions]" type="number" min="1" value=v(|t| t.max_functions) />
                <FieldMsg outcome field="max_functions" />
            </div>
            <div class="field">
                <label for=format!("{prefix}-maxm")>"Max memory per function (MB)"</label>
                <input id=format!("{prefix}-maxm") name="form[max_memory_mb]" type="number" min="64" value=v(|t| t.max_memory_mb) />
                <FieldMsg outcome field="max_memory_mb" />
            </div>
            <div class="field">
                <label for=format!("{prefix}-maxt")>"Max timeout per call (ms)"</label>
                <input id=format!("{prefix}-maxt") name="form[max_timeout_ms]" type="number" min="100" value=v(|t| t.max_timeout_ms) />
                <FieldMsg outcome field="max_timeout_ms" />
            </div>
            <div class="field">
                <label for=format!("{prefix}-maxi")>"Max instances per function"</label>
                <input id=format!("{prefix}-maxi") name="form[max_instances]" type="number" min="1" value=v(|t| t.max_instances) />
                <FieldMsg outcome field="max_instances" />
            </div>
            <div class="field">
                <label for=format!("{prefix}-vcd")>"vCD org id (optional)"</label>
                <input id=format!("{prefix}-vcd") name="form[vcd_org_id]" placeholder="urn:vcloud:org:…" value=org_id />
                <FieldMsg outcome field="vcd_org_id" />
            </div>
            <div class="field">
                <label for=format!("{prefix}-sandbox")>"Sandbox"</label>
                <select id=format!("{prefix}-sandbox") name="form[sandbox]">
                    <option value="runc" selected=sandbox == Sandbox::Runc>"Containers (runc)"</option>
                    <option value="gvisor" selected=sandbox == Sandbox::Gvisor>"gVisor (runsc): a kernel of its own"</option>
                </select>
                <p class="hint">"gVisor isolates more; cold starts and calls cost more."</p>
                <FieldMsg outcome field="sandbox" />
            </div>
        </div>
        <div class="field">
            <label for=format!("{prefix}-egress")>"Outbound network allowlist"</label>
            <textarea id=format!("{prefix}-egress") name="form[egress]" rows="3" spellcheck="false"
                placeholder="api.example.com:443\n*.corp.example:443\n10.1.0.0/16:*">{egress}</textarea>
            <p class="hint">"One destination per line: host:port, *.domain:port or CIDR:port, port * for any. Empty: the tenant's functions have no outbound network."</p>
            <ListFieldMsg outcome field="egress" />
        </div>
    }
}

#[component]
fn TenantRow(t: TenantView, update: ServerAction<UpdateTenant>, delete: ServerAction<DeleteTenant>) -> impl IntoView {
    let form_id = format!("edit-{}", t.name);
    let limits = Some(t.clone());
    let (name, display_name, vcd_org_id) = (t.name.clone(), t.display_name.clone(), t.vcd_org_id.clone());
    let display_id = format!("{name}-display");
    let confirm_id = format!("{name}-confirm-delete");
    let delete_label = format!("Delete {name}: its functions, containers, images, users and tokens go. Type {name} to confirm");
    let delete_org = name.clone();
    let (form_name, form_display) = (name.clone(), display_name.clone());
    view! {
        <tr data-tenant=name.clone()>
            <td><strong>{name.clone()}</strong></td>
            <td>{display_name.clone()}</td>
            <td>{t.function_count}</td>
            <td>{t.user_count}</td>
            <td>{t.max_functions}</td>
            <td>{t.max_memory_mb}</td>
            <td>{t.max_timeout_ms}</td>
            <td>{t.max_instances}</td>
            <td><code>{vcd_org_id.unwrap_or_else(|| "–".into())}</code></td>
            <td data-testid="tenant-egress">{if t.egress.is_empty() { "none".to_string() } else { t.egress.join(", ") }}</td>
            <td data-testid="tenant-sandbox">{t.sandbox.as_str()}</td>
            <td>
                <details class="inline-edit">
                    <summary>"Edit"</summary>
                    <ActionForm action=update attr:id=form_id attr:class="form" attr:novalidate=true>
                        <input type="hidden" name="form[name]" value=form_name />
                        <label for=display_id.clone()>"Display name"</label>
                        <input id=display_id.clone() name="form[display_name]" value=form_display />
                        <TenantLimitFields outcome=outcome_of(update) prefix="e" values=limits />
                        <button type="submit" class="button primary">"Save"</button>
                    </ActionForm>
                    <ActionForm action=delete attr:class="form danger-zone" attr:novalidate=true>
                        <input type="hidden" name="org" value=delete_org />
                        <label for=confirm_id.clone()>{delete_label}</label>
                        <input id=confirm_id name="confirm" autocomplete="off" />
                        <FieldMsg outcome=outcome_of(delete) field="confirm" />
                        <button type="submit" class="button danger">"Delete tenant"</button>
                    </ActionForm>
                </details>
            </td>
        </tr>
    }
}
