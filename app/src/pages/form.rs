//! The fields of a function, shared by the create and edit forms.

use super::editor::FilesEditor;
use super::env_edit::EnvEditor;
use super::tree_edit::switch_language;
use super::unsaved::warn_before_leaving;
use crate::api::FormOutcome;
use crate::components::{FieldMsg, ListFieldMsg};
use crate::files::FileTree;
use crate::model::{route_of, EnvVars, validate_name, Language, Limits, PoolMode, Trigger, MAX_CONCURRENCY};
use leptos::prelude::*;

/// Common vCD notification types offered for event triggers; any other type may be typed.
pub const COMMON_EVENTS: [(&str, &str); 6] = [
    ("com/vmware/vcloud/event/vm/create", "VM created"),
    ("com/vmware/vcloud/event/vm/delete", "VM deleted"),
    ("com/vmware/vcloud/event/vm/deploy", "VM deployed (powered on)"),
    ("com/vmware/vcloud/event/vm/undeploy", "VM undeployed"),
    ("com/vmware/vcloud/event/vapp/create", "vApp created"),
    ("com/vmware/vcloud/event/user/create", "User created"),
];

/// Time zones offered for schedules; any other IANA name may be typed.
pub const COMMON_ZONES: [&str; 10] = [
    "UTC",
    "Europe/Sofia",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Singapore",
    "Australia/Sydney",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Initial {
    pub name: String,
    pub language: Language,
    pub files: FileTree,
    pub memory_mb: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub mode: PoolMode,
    pub max_instances: Option<i64>,
    pub min_instances: Option<i64>,
    pub concurrency: Option<i64>,
    pub public: bool,
    pub trigger: Trigger,
    pub env: EnvVars,
    /// The secrets' names (their values never reach the portal).
    pub secrets: Vec<String>,
    /// Its own narrowing of the tenant's outbound allowlist.
    pub egress: Option<Vec<String>>,
}

#[component]
pub fn FunctionFields(
    org: String,
    editing: bool,
    initial: Initial,
    limits: Limits,
    outcome: Signal<Option<FormOutcome>>,
    /// The form is being submitted: leaving then is the form's own doing, not a loss.
    pending: Signal<bool>,
    /// Why the version the form holds did not build, when it did not: its line is marked.
    #[prop(into, optional)]
    build_error: Signal<Option<String>>,
) -> impl IntoView {
    let name = RwSignal::new(initial.name.clone());
    let language = RwSignal::new(initial.language);
    let files = RwSignal::new(initial.files.clone());
    // What the server holds: unsaved changes are what differs from it, or any field typed in.
    let saved_files = StoredValue::new(initial.files.clone());
    let touched = RwSignal::new(false);
    Effect::new(move |_| {
        if outcome.with(|o| o.as_ref().is_some_and(|o| o.errors.is_empty() && o.error.is_none())) {
            saved_files.set_value(files.get_untracked());
            touched.set(false);
        }
    });
    let dirty = Signal::derive(move || {
        !pending.get() && (touched.get() || files.with(|f| saved_files.with_value(|saved| saved != f)))
    });
    warn_before_leaving(dirty);
    let (trigger_kind, event, successful_only) = match &initial.trigger {
        Trigger::Http => ("http".to_string(), String::new(), true),
        Trigger::VcdEvent { event, successful_only } => ("vcd-event".to_string(), event.clone(), *successful_only),
        Trigger::Schedule { .. } => ("schedule".to_string(), String::new(), true),
    };
    let (cron, timezone) = match &initial.trigger {
        Trigger::Schedule { cron, timezone } => (cron.clone(), timezone.clone()),
        _ => ("*/5 * * * *".to_string(), "UTC".to_string()),
    };
    let trigger_kind = RwSignal::new(trigger_kind);
    let org_for_route = org.clone();
    let route = move || route_of(&org_for_route, &name.get());
    // The hint while typing; not repeated when the server's answer already says the same.
    let name_hint = move || {
        let n = name.get();
        let hint = if n.is_empty() { None } else { validate_name("name", &n).err() };
        hint.filter(|h| outcome.with(|o| o.as_ref().and_then(|o| o.error_for("name")).as_ref() != Some(h)))
    };
    let change_language = move |ev| {
        let next = Language::parse(&event_target_value(&ev)).unwrap_or(Language::Nodejs);
        let previous = language.get_untracked();
        files.set(switch_language(&files.get_untracked(), previous, next));
        language.set(next);
    };
    view! {
        <div class="function-fields" on:input=move |_| touched.set(true) on:change=move |_| touched.set(true)>
        <div class="field">
            <label for="fn-name">"Name"</label>
            {if editing {
                view! {
                    <input id="fn-name" value=initial.name.clone() readonly aria-readonly="true" />
                    <input type="hidden" name="form[name]" value=initial.name.clone() />
                }.into_any()
            } else {
                view! {
                    <input id="fn-name" name="form[name]" required maxlength="63" autocomplete="off"
                        placeholder="hello" pattern="[a-z][a-z0-9-]*"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                }.into_any()
            }}
            <p class="hint">"Route: " <code class="route" data-testid="route-preview">{route}</code></p>
            {move || name_hint().map(|h| view! { <p class="field-hint">{h}</p> })}
            <FieldMsg outcome field="name" />
        </div>
        <div class="row">
            <div class="field">
                <label for="fn-language">"Language"</label>
                <select id="fn-language" name="form[language]" on:change=change_language>
                    {Language::ALL.iter().copied().map(|l| view! {
                        <option value=l.as_str() selected=move || language.get() == l>{l.label()}</option>
                    }).collect_view()}
                </select>
                <FieldMsg outcome field="language" />
            </div>
            <div class="field">
                <label for="fn-trigger">"Trigger"</label>
                <select id="fn-trigger" name="form[trigger]" on:change=move |ev| trigger_kind.set(event_target_value(&ev))>
                    <option value="http" selected=move || trigger_kind.get() == "http">"HTTP endpoint"</option>
                    <option value="vcd-event" selected=move || trigger_kind.get() == "vcd-event">"vCD event"</option>
                    <option value="schedule" selected=move || trigger_kind.get() == "schedule">"Schedule (and HTTP endpoint)"</option>
                </select>
            </div>
        </div>
        <div class="row" class:hidden=move || trigger_kind.get() != "schedule">
            <div class="field">
                <label for="fn-cron">"Cron"</label>
                <input id="fn-cron" name="form[cron]" value=cron placeholder="*/5 * * * *" autocomplete="off" class="mono" />
                <p class="hint">"5 fields: minute hour day-of-month month day-of-week, e.g. */5 * * * * (every five minutes), 0 9 * * 1-5 (09:00 on weekdays). Each run is a POST with {\"scheduledTime\": …} as its body; the route keeps working."</p>
                <FieldMsg outcome field="trigger.cron" />
            </div>
            <div class="field">
                <label for="fn-timezone">"Time zone"</label>
                <input id="fn-timezone" name="form[timezone]" list="time-zones" value=timezone placeholder="Europe/Sofia" autocomplete="off" />
                <datalist id="time-zones">
                    {COMMON_ZONES.into_iter().map(|zone| view! { <option value=zone></option> }).collect_view()}
                </datalist>
                <p class="hint">"An IANA name; the pattern is read in this zone's local time, summer time included."</p>
                <FieldMsg outcome field="trigger.timezone" />
            </div>
        </div>
        <div class="field" class:hidden=move || trigger_kind.get() != "vcd-event">
            <label for="fn-event">"vCD event type"</label>
            <input id="fn-event" name="form[event]" list="vcd-events" value=event placeholder="com/vmware/vcloud/event/vm/create" />
            <datalist id="vcd-events">
                {COMMON_EVENTS.into_iter().map(|(value, label)| view! { <option value=value>{label}</option> }).collect_view()}
            </datalist>
            <p class="hint">"Runs the function with vCD's notification (JSON) as its body, for events in your organisation. Pick a common type or type any vCD event type."</p>
            <FieldMsg outcome field="trigger" />
            <div class="checkbox">
                <input id="fn-successful-only" name="form[successful_only]" type="checkbox" value="on" checked=successful_only />
                <label for="fn-successful-only">"Successful operations only"</label>
            </div>
        </div>
        <div class="row">
            <div class="field">
                <label for="fn-memory">"Memory (MB)"</label>
                <input id="fn-memory" name="form[memory_mb]" type="number" min="64" max=limits.max_memory_mb step="1"
                    placeholder=limits.default_memory_mb.to_string()
                    value=initial.memory_mb.map(|m| m.to_string()).unwrap_or_default() />
                <p class="hint">{format!("64 – {} MB", limits.max_memory_mb)}</p>
                <FieldMsg outcome field="memory_mb" />
            </div>
            <div class="field">
                <label for="fn-timeout">"Timeout (ms)"</label>
                <input id="fn-timeout" name="form[timeout_ms]" type="number" min="100" max=limits.max_timeout_ms step="1"
                    placeholder=limits.default_timeout_ms.to_string()
                    value=initial.timeout_ms.map(|m| m.to_string()).unwrap_or_default() />
                <p class="hint">{format!("100 – {} ms", limits.max_timeout_ms)}</p>
                <FieldMsg outcome field="timeout_ms" />
            </div>
        </div>
        <div class="row">
            <div class="field">
                <label for="fn-mode">"Containers"</label>
                <select id="fn-mode" name="form[mode]">
                    <option value="warm" selected=initial.mode == PoolMode::Warm>"Warm: reused between calls (fast)"</option>
                    <option value="per-call" selected=initial.mode == PoolMode::PerCall>"Per call: a fresh container every call"</option>
                </select>
                <FieldMsg outcome field="mode" />
            </div>
            <div class="field">
                <label for="fn-instances">"Max instances"</label>
                <input id="fn-instances" name="form[max_instances]" type="number" min="1" max=limits.max_instances step="1"
                    placeholder=4.min(limits.max_instances).to_string()
                    value=initial.max_instances.map(|m| m.to_string()).unwrap_or_default() />
                <p class="hint">{format!("containers running at once; 1 – {}", limits.max_instances)}</p>
                <FieldMsg outcome field="max_instances" />
            </div>
        </div>
        <div class="row">
            <div class="field">
                <label for="fn-min-instances">"Min instances"</label>
                <input id="fn-min-instances" name="form[min_instances]" type="number" min="0" max=limits.max_instances step="1"
                    placeholder="0"
                    value=initial.min_instances.map(|m| m.to_string()).unwrap_or_default() />
                <p class="hint">"warm containers kept running while idle, so calls never start cold; 0 scales to zero (warm mode only, at most max instances)"</p>
                <FieldMsg outcome field="min_instances" />
            </div>
            <div class="field">
                <label for="fn-concurrency">"Concurrency"</label>
                <input id="fn-concurrency" name="form[concurrency]" type="number" min="1" max=MAX_CONCURRENCY step="1"
                    placeholder="1"
                    value=initial.concurrency.map(|m| m.to_string()).unwrap_or_default() />
                <p class="hint">{format!("calls one container serves at once before another starts; 1 – {MAX_CONCURRENCY} (1 suits code that is not safe to run concurrently)")}</p>
                <FieldMsg outcome field="concurrency" />
            </div>
        </div>
        <div class="field checkbox">
            <input id="fn-public" name="form[public]" type="checkbox" value="on" checked=initial.public />
            <label for="fn-public">"Public: anyone may call the route without a token"</label>
        </div>
        <EnvEditor env=initial.env.clone() secrets=initial.secrets.clone() outcome />
        <div class="field">
            <label for="fn-egress">"Outbound network (optional)"</label>
            <textarea id="fn-egress" name="form[egress]" rows="2" spellcheck="false" placeholder="api.example.com:443">
                {initial.egress.clone().unwrap_or_default().join("\n")}
            </textarea>
            <p class="hint">"One destination per line (host:port, *.domain:port, CIDR:port) to narrow the tenant's allowlist; empty: the tenant's list as it is. Connect by name: names are resolved by the platform."</p>
            <ListFieldMsg outcome field="egress" />
        </div>
        <div class="field">
            <p class="field-label">"Files"</p>
            <p class="hint">{move || match language.get() {
                Language::Nodejs => "handler.js: module.exports = async (event, context) => result; other files are loaded with require(\"./lib/util\"), packages from package.json",
                Language::Python => "handler.py: def handle(event, context): return result; other modules are imported as usual, packages from requirements.txt",
            }}</p>
            <FilesEditor files language outcome max_bytes=limits.max_files_bytes build_error />
        </div>
        </div>
    }.into_any()
}
