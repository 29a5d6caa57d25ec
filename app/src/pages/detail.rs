use super::call_history::CallHistory;
use super::live_logs::LiveLogs;
use super::route_fact::RouteFact;
use super::monitor::Monitor;
use super::env_facts::EnvFacts;
use super::form::{FunctionFields, Initial};
use super::schedule_panel::SchedulePanel;
use super::version_files::{VersionChoice, VersionFiles};
use crate::api::{function_details, get_function, my_limits, DeleteFunction, DetailsView, RestoreVersion, TestFunction, UpdateFunction};
use crate::components::{error_text, format_time, strip_ansi, outcome_of, use_ticker, FieldMsg, FormMessage, Frame, StatusBadge};
use crate::model::{BuildStatus, Caller, FunctionView, Limits, PoolMode, TestResponse};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use std::time::Duration;

#[component]
pub fn DetailPage() -> impl IntoView {
    view! { <Frame page=|caller| view! { <Detail caller /> } /> }
}

#[component]
fn Detail(caller: Caller) -> impl IntoView {
    let params = use_params_map();
    let org = move || params.with(|p| p.get("org").unwrap_or_default());
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let tick = use_ticker(Duration::from_secs(2));
    let details = Resource::new(move || (org(), name(), tick.get()), |(o, n, _)| function_details(o, n));
    let restore = ServerAction::<RestoreVersion>::new();
    // The function as stored, looked up once (not polled): the panels need only to know that it
    // is there, and the edit form starts from it. Looked up again after a restore, so the edit
    // form holds the restored code.
    let restored = move || restore.value().get().and_then(|r| r.ok()).and_then(|o| o.version);
    let exists = Resource::new(move || (org(), name(), restored()), |(o, n, _)| get_function(o, n));
    let editable = !caller.is_provider();
    // Set after hydration only (an effect), so the server's page and the client's agree.
    let gone = RwSignal::new(false);
    Effect::new(move |_| {
        // Set only on a change: each set re-makes the panels, and the overview refreshes often.
        let now_gone = details.with(|d| matches!(d, Some(Ok(None))));
        if details.with(Option::is_some) && gone.get_untracked() != now_gone {
            gone.set(now_gone);
        }
    });
    // For the Files section, which keeps its pickers while the overview refreshes: it reads
    // these, which change only when a version or its build does.
    let versions = Memo::new(move |_| {
        details.with(|d| match d {
            Some(Ok(Some(d))) => d.versions.iter().map(|v| VersionChoice { version: v.version, build_status: v.build_status }).collect(),
            _ => Vec::new(),
        })
    });
    let latest_failure = Memo::new(move |_| {
        details.with(|d| match d {
            Some(Ok(Some(d))) if d.function.build_status == BuildStatus::Failed => {
                d.function.build_error.clone().map(|why| (d.function.latest_version, why))
            }
            _ => None,
        })
    });
    let has_versions = Memo::new(move |_| !versions.with(Vec::is_empty));
    // The section is drawn in the browser only (it is all pickers and editors), so the server's
    // page and the hydrated one agree.
    let in_browser = RwSignal::new(false);
    Effect::new(move |_| in_browser.set(true));
    view! {
        <Title text=move || format!("{} · vcd-faas", name()) />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || details.get().map(|r| match r {
                Ok(Some(d)) => view! { <Overview details=d restore /> }.into_any(),
                Ok(None) => {
                    super::set_status_not_found();
                    view! {
                    <div class="card"><h1>"Function not found"</h1>
                    <p class="alert error">{format!("no function {:?} in org {:?}", name(), org())}</p>
                    <a class="button" href="/">"Back to functions"</a></div>
                }.into_any()
                }
                // Not "not found": the function may well be there; say what went wrong.
                Err(e) => view! {
                    <div class="card"><h1>"The function could not be loaded"</h1><p class="alert error">{error_text(&e)}</p>
                    <p class="hint">"This page tries again every few seconds."</p></div>
                }.into_any(),
            })}
        </Transition>
        // The panels keep their state (a test result, an open edit form) while the overview above
        // refreshes, so they hang on a lookup that is not polled; each shows only for a function
        // the caller may see.
        // A function deleted meanwhile (in another tab, by the API) loses its panels at the next
        // refresh of the overview.
        {move || (in_browser.get() && has_versions.get() && !gone.get()).then(|| view! {
            <VersionFiles org=org() name=name() versions latest_failure />
        })}
        {move || (!gone.get()).then(|| view! { <TestPanel org=org() name=name() found=exists /> })}
        {move || (editable && !gone.get()).then(|| view! { <EditPanel org=org() current=exists latest_failure /> })}
        {move || (editable && !gone.get()).then(|| view! { <DeletePanel org=org() name=name() found=exists /> })}
        {move || (!gone.get()).then(|| view! { <Monitor org=org() name=name() /> })}
        {move || (!gone.get()).then(|| view! { <LiveLogs org=org() name=name() /> })}
        {move || (!gone.get()).then(|| view! { <CallHistory org=org() name=name() /> })}
    }
}

#[component]
fn Overview(details: DetailsView, restore: ServerAction<RestoreVersion>) -> impl IntoView {
    let f = details.function;
    let restore_result = Signal::derive(move || restore.value().get());
    let failed_build = f.build_status == BuildStatus::Failed;
    let building = f.build_status.is_pending();
    let serving = f.version.map(|v| format!("v{v}")).unwrap_or_else(|| "none yet".into());
    view! {
        <div class="page-head">
            <div>
                <p class="breadcrumb"><a href="/">"Functions"</a> " / " {f.org.clone()}</p>
                <h1>{f.name.clone()} " " <StatusBadge status=f.status.to_string() /></h1>
            </div>
        </div>
        <section class="card overview" aria-label="Overview">
            <dl class="facts">
                <div class="wide"><dt>"Route"</dt><dd><RouteFact route=f.route.clone() public=f.public /></dd></div>
                <div><dt>"Serving"</dt><dd data-testid="serving-version">{serving}</dd></div>
                <div><dt>"Language"</dt><dd>{f.language.label()}</dd></div>
                <div><dt>"Trigger"</dt><dd>{match &f.trigger {
                    crate::model::Trigger::Http => "HTTP endpoint".to_string(),
                    crate::model::Trigger::VcdEvent { event, successful_only: true } => format!("vCD event {event} (successful operations only)"),
                    crate::model::Trigger::VcdEvent { event, successful_only: false } => format!("vCD event {event} (successful and failed operations)"),
                    crate::model::Trigger::Schedule { cron, timezone } => format!("schedule {cron} ({timezone}) and HTTP endpoint"),
                }}</dd></div>
                <div><dt>"Limits"</dt><dd>{format!("{} MB · {} ms", f.memory_mb, f.timeout_ms)}</dd></div>
                <div><dt>"Containers"</dt><dd data-testid="containers">{containers_fact(&f)}</dd></div>
                <div><dt>"Access"</dt><dd>{if f.public { "public" } else { "token of this org" }}</dd></div>
                <div class="wide"><dt>"Environment"</dt><dd data-testid="environment"><EnvFacts env=f.env.clone() secrets=f.secrets.clone() /></dd></div>
                <div class="wide"><dt>"Outbound network"</dt><dd data-testid="egress">{match f.egress.clone() {
                    None => "the tenant's allowlist".to_string(),
                    Some(list) if list.is_empty() => "none".to_string(),
                    Some(list) => list.join(", "),
                }}</dd></div>
                <div class="wide"><dt>"vCD"</dt><dd data-testid="registration">
                    <span class=format!("registration {}", f.registration.state)>{registration_label(&f.registration.state)}</span>
                    " " <span class="muted">{f.registration.detail.clone()}</span>
                    {f.registration.next_retry_at.map(|at| view! { <span class="muted">{format!(" · next try {}", format_time(at))}</span> })}
                </dd></div>
            </dl>
            {(failed_build || building).then(|| view! {
                <div class=if failed_build { "build failed" } else { "build" }>
                    <h2>{if failed_build {
                        format!("Build of v{} failed", f.latest_version)
                    } else {
                        format!("Building v{}…", f.latest_version)
                    }}</h2>
                    {(failed_build && f.version.is_some()).then(|| view! {
                        <p class="hint">{format!("v{} keeps serving. Fix the code under Edit, or restore a version that built under Versions.", f.version.unwrap_or_default())}</p>
                    })}
                    // What failed first; the log under it has the whole story.
                    {f.build_error.clone().filter(|_| failed_build).map(|why| view! {
                        <p class="alert error" data-testid="build-error">{why}</p>
                    })}
                    <pre class="log" data-testid="build-log">{strip_ansi(&f.build_log)}</pre>
                </div>
            })}
        </section>
        {view! { <SchedulePanel function=f.clone() runs=details.scheduled_runs /> }.into_any()}
        <section class="card" aria-label="Versions">
            <h2>"Versions"</h2>
            <FormMessage result=restore_result />
            <div class="table-wrap">
                <table>
                    <thead><tr><th>"Version"</th><th>"Build"</th><th>"Language"</th><th>"Limits"</th><th>"Created"</th><th></th></tr></thead>
                    <tbody>
                        {details.versions.into_iter().map(|v| {
                            // A version that built, other than the latest, can come back as a new one.
                            let restorable = v.build_status == BuildStatus::Ready && v.version != f.latest_version;
                            let (org, name) = (f.org.clone(), f.name.clone());
                            view! {
                            <tr>
                                <td>{format!("v{}", v.version)} {(Some(v.version) == f.version).then(|| view! { <span class="tag">"serving"</span> })}</td>
                                <td><StatusBadge status=v.build_status.to_string() /></td>
                                <td>{v.language.label()}</td>
                                <td>{format!("{} MB · {} ms", v.memory_mb, v.timeout_ms)}</td>
                                <td class="muted">{format_time(v.created_at)}</td>
                                <td>{restorable.then(|| view! {
                                    <ActionForm action=restore>
                                        <input type="hidden" name="org" value=org />
                                        <input type="hidden" name="name" value=name />
                                        <input type="hidden" name="version" value=v.version />
                                        <button type="submit" class="button small" title=format!("Build a new version from v{}", v.version)
                                            disabled=move || restore.pending().get()>{format!("Restore v{}", v.version)}</button>
                                    </ActionForm>
                                })}</td>
                            </tr>
                        }}).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn TestPanel(org: String, name: String, found: Found) -> impl IntoView {
    let test = ServerAction::<TestFunction>::new();
    view! {
        <Suspense fallback=|| ()>
        {move || is_found(found).then(|| { let (org, name) = (org.clone(), name.clone()); view! {
        <section class="card" aria-label="Test function">
            <h2>"Test function"</h2>
            <ActionForm action=test attr:class="test-form">
                <input type="hidden" name="org" value=org />
                <input type="hidden" name="name" value=name />
                <div class="row">
                    <div class="field narrow-field">
                        <label for="t-method">"Method"</label>
                        <select id="t-method" name="request[method]">
                            {["GET", "POST", "PUT", "PATCH", "DELETE"].into_iter().map(|m| view! { <option value=m>{m}</option> }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="t-path">"Path after the route"</label>
                        <input id="t-path" name="request[path]" placeholder="/items/42" />
                    </div>
                    <div class="field">
                        <label for="t-query">"Query"</label>
                        <input id="t-query" name="request[query]" placeholder="name=Ada" />
                    </div>
                </div>
                <div class="row">
                    <div class="field">
                        <label for="t-headers">"Headers (one per line)"</label>
                        <textarea id="t-headers" name="request[headers]" rows="3" placeholder="Content-Type: application/json"></textarea>
                    </div>
                    <div class="field">
                        <label for="t-body">"Body"</label>
                        <textarea id="t-body" name="request[body]" rows="3" class="mono"></textarea>
                    </div>
                </div>
                <button type="submit" class="button primary" disabled=move || test.pending().get()>
                    {move || if test.pending().get() { "Calling…" } else { "Test Function" }}
                </button>
            </ActionForm>
            {move || test.value().get().map(|r| match r {
                Ok(response) => view! { <TestResult response /> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{error_text(&e)}</p> }.into_any(),
            })}
        </section>
        }})}
        </Suspense>
    }
}

#[component]
fn TestResult(response: TestResponse) -> impl IntoView {
    let ok = response.status < 400;
    let body = match serde_json::from_str::<serde_json::Value>(&response.body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or(response.body.clone()),
        Err(_) => response.body.clone(),
    };
    view! {
        <div class="test-result" data-testid="test-result">
            <p class="result-line">
                <span class=if ok { "badge badge-ready" } else { "badge badge-failed" } data-testid="test-status">{response.status}</span>
                <span>{format!("{:.1} ms", response.duration_ms)}</span>
                <span class="tag">{if response.cold { "cold start" } else { "warm" }}</span>
            </p>
            <h3>"Body"</h3>
            <pre class="log" data-testid="test-body">{body}</pre>
            <details>
                <summary>"Headers"</summary>
                <pre class="log">{response.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")}</pre>
            </details>
            <h3>"Logs"</h3>
            <pre class="log" data-testid="test-logs">{if response.logs.is_empty() { "(no output)".to_string() } else { strip_ansi(&response.logs) }}</pre>
        </div>
    }
}

#[component]
fn EditPanel(org: String, current: Found, latest_failure: Memo<Option<(i64, String)>>) -> impl IntoView {
    let update = ServerAction::<UpdateFunction>::new();
    let limits = Resource::new(|| (), |_| my_limits());
    let outcome = outcome_of(update);
    let result = Signal::derive(move || update.value().get());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let body = match (current.get(), limits.get()) {
                    // One form per latest version: when another one is read (after a restore),
                    // a new form starts from it. Re-rendering in place would keep the old form's
                    // inputs and what was typed into them.
                    (Some(Ok(f)), Some(Ok(limits))) => {
                        let org = org.clone();
                        view! {
                            <For each=move || [(f.clone(), limits.clone())] key=|(f, _)| f.latest_version
                                children=move |(f, limits)| view! { <EditForm org=org.clone() f limits update outcome result latest_failure /> } />
                        }.into_any()
                    }
                    // Not there, or not the caller's: the page says so above.
                    (Some(Err(_)), _) | (None, _) | (_, None) => return None,
                    (_, Some(Err(e))) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                };
                Some(view! {
                    <section class="card" aria-label="Edit function">
                        <details class="edit">
                            <summary><h2>"Edit"</h2><span class="hint">"Saving builds a new version; the current one serves until it is ready."</span></summary>
                            {body}
                        </details>
                    </section>
                })
            }}
        </Suspense>
    }
}

#[component]
fn EditForm(
    org: String,
    f: crate::model::FunctionView,
    limits: Limits,
    update: ServerAction<UpdateFunction>,
    outcome: Signal<Option<crate::api::FormOutcome>>,
    result: Signal<Option<Result<crate::api::FormOutcome, ServerFnError>>>,
    latest_failure: Memo<Option<(i64, String)>>,
) -> impl IntoView {
    let initial = Initial {
        name: f.name.clone(),
        language: f.language,
        files: f.files.clone(),
        memory_mb: Some(f.memory_mb),
        timeout_ms: Some(f.timeout_ms),
        mode: f.mode,
        max_instances: Some(f.max_instances),
        min_instances: Some(f.min_instances),
        concurrency: Some(f.concurrency),
        public: f.public,
        trigger: f.trigger.clone(),
        env: f.env.clone(),
        secrets: f.secrets.clone(),
        egress: f.egress.clone(),
    };
    // Each save is made from the latest version this form knows: the one it was loaded with,
    // then the one its last save made. A version saved elsewhere meanwhile makes the save fail
    // (409) instead of being undone by this form's older fields.
    let based_on = RwSignal::new(f.latest_version);
    Effect::new(move |_| {
        if let Some(v) = outcome.get().and_then(|o| o.version) {
            based_on.set(v);
        }
    });
    view! {
        <ActionForm action=update attr:class="form" attr:novalidate=true>
            <input type="hidden" name="org" value=org.clone() />
            <input type="hidden" name="form[expected_version]" value=move || based_on.get().to_string() />
            <FormMessage result />
            <FunctionFields org editing=true initial limits outcome pending=Signal::derive(move || update.pending().get())
                build_error=Signal::derive(move || latest_failure.get().filter(|(v, _)| *v == based_on.get()).map(|(_, why)| why)) />
            <button type="submit" class="button primary" disabled=move || update.pending().get()>
                {move || if update.pending().get() { "Saving…" } else { "Save new version" }}
            </button>
        </ActionForm>
    }
}

#[component]
fn DeletePanel(org: String, name: String, found: Found) -> impl IntoView {
    let delete = ServerAction::<DeleteFunction>::new();
    let outcome = outcome_of(delete);
    let result = Signal::derive(move || delete.value().get());
    view! {
        <Suspense fallback=|| ()>
        {move || is_found(found).then(|| { let (org, name) = (org.clone(), name.clone()); view! {
        <section class="card danger" aria-label="Delete function">
            <details>
                <summary><h2>"Delete"</h2></summary>
                <p>"Deleting removes the route at once, then every version's containers and images. This cannot be undone."</p>
                <ActionForm action=delete>
                    <input type="hidden" name="org" value=org />
                    <input type="hidden" name="name" value=name.clone() />
                    <label for="confirm">{format!("Type {name} to confirm")}</label>
                    <input id="confirm" name="confirm" autocomplete="off" />
                    <FieldMsg outcome field="confirm" />
                    <FormMessage result />
                    <button type="submit" class="button danger">"Delete permanently"</button>
                </ActionForm>
            </details>
        </section>
        }})}
        </Suspense>
    }
}

/// The one lookup of the function the panels share.
type Found = Resource<Result<FunctionView, ServerFnError>>;

/// Whether the function is there for the caller; false while it is being looked up.
fn is_found(found: Found) -> bool {
    found.get().map(|r| r.is_ok()).unwrap_or(false)
}

fn registration_label(state: &str) -> &'static str {
    match state {
        "registered" => "registered in vCD",
        "failed" => "registration failed",
        "pending" => "registering",
        _ => "local only",
    }
}

/// "warm · 1–4 containers · 1 call each": how the function's containers are kept.
fn containers_fact(f: &FunctionView) -> String {
    let calls = if f.concurrency == 1 { "1 call each".to_string() } else { format!("{} calls each", f.concurrency) };
    if f.mode == PoolMode::Warm && f.min_instances > 0 {
        format!("{} · {}–{} containers · {calls}", f.mode, f.min_instances, f.max_instances)
    } else {
        format!("{} · up to {} · {calls}", f.mode, f.max_instances)
    }
}
