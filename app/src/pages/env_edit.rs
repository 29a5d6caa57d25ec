//! The Environment section of the create and edit forms: variables as NAME / value rows, and
//! secrets, shown by name only (the portal never receives a value). The rows go as
//! `form[env]` (all variables) and `form[secrets]` (only the changes), JSON made here.

use super::env_rows::{after_save, env_of, secrets_change, SecretEntry};
use crate::api::FormOutcome;
use crate::components::FieldMsg;
use crate::model::EnvVars;
use leptos::prelude::*;

#[derive(Clone, Copy)]
struct VarRow {
    id: usize,
    name: RwSignal<String>,
    value: RwSignal<String>,
}

#[derive(Clone, Copy)]
struct SecretRow {
    id: usize,
    name: RwSignal<String>,
    value: RwSignal<String>,
    stored: RwSignal<bool>,
    removed: RwSignal<bool>,
}

impl SecretRow {
    fn entry(&self) -> SecretEntry {
        SecretEntry { name: self.name.get(), stored: self.stored.get(), value: self.value.get(), removed: self.removed.get() }
    }

    fn entry_untracked(&self) -> SecretEntry {
        SecretEntry {
            name: self.name.get_untracked(),
            stored: self.stored.get_untracked(),
            value: self.value.get_untracked(),
            removed: self.removed.get_untracked(),
        }
    }

    fn set(&self, e: SecretEntry) {
        self.name.set(e.name);
        self.stored.set(e.stored);
        self.value.set(e.value);
        self.removed.set(e.removed);
    }
}

/// The server's error for the row named `name` in `set` ("env" or "secrets").
fn row_error(outcome: Signal<Option<FormOutcome>>, set: &'static str, name: RwSignal<String>) -> impl IntoView {
    move || {
        let field = format!("{set}/{}", name.get().trim());
        outcome.with(|o| o.as_ref().and_then(|o| o.error_for(&field))).map(|m| {
            view! { <p class="field-error" role="alert" data-field=field>{m}</p> }
        })
    }
}

#[component]
pub fn EnvEditor(env: EnvVars, secrets: Vec<String>, outcome: Signal<Option<FormOutcome>>) -> impl IntoView {
    let next_id = StoredValue::new(0usize);
    let new_id = move || {
        next_id.update_value(|n| *n += 1);
        next_id.get_value()
    };
    let var_row = move |name: String, value: String| VarRow { id: new_id(), name: RwSignal::new(name), value: RwSignal::new(value) };
    let secret_row = move |e: SecretEntry| SecretRow {
        id: new_id(),
        name: RwSignal::new(e.name),
        value: RwSignal::new(e.value),
        stored: RwSignal::new(e.stored),
        removed: RwSignal::new(e.removed),
    };
    let vars = RwSignal::new(env.into_iter().map(|(n, v)| var_row(n, v)).collect::<Vec<_>>());
    let secret_rows = RwSignal::new(
        secrets.into_iter().map(|name| secret_row(SecretEntry { name, stored: true, ..Default::default() })).collect::<Vec<_>>(),
    );
    // A save that went through: the secrets are stored now and their typed values dropped. A
    // failed one keeps every row as typed.
    Effect::new(move |_| {
        if outcome.with(|o| o.as_ref().is_some_and(|o| o.errors.is_empty() && o.error.is_none())) {
            // Rows keep their ids (and inputs); a removed or blank one goes.
            let left = secret_rows.get_untracked().into_iter().filter(|row| match after_save(&row.entry_untracked()) {
                Some(e) => {
                    row.set(e);
                    true
                }
                None => false,
            });
            let left: Vec<SecretRow> = left.collect();
            secret_rows.set(left);
        }
    });
    let env_json = move || {
        let env = env_of(vars.get().iter().map(|r| (r.name.get(), r.value.get())));
        serde_json::to_string(&env).unwrap_or_default()
    };
    let secrets_json = move || {
        let entries: Vec<SecretEntry> = secret_rows.get().iter().map(|r| r.entry()).collect();
        serde_json::to_string(&secrets_change(&entries)).unwrap_or_default()
    };
    view! {
        <fieldset class="env-editor" aria-label="Environment">
            <legend>"Environment"</legend>
            <p class="hint">"Read by the function as process.env.NAME / os.environ[\"NAME\"]. Names: capital letters, digits and _."</p>
            // Set as properties only (never in the page's HTML, so a typed secret is not either);
            // before hydration they send nothing, which keeps the function's variables and secrets.
            <textarea hidden name="form[env]" prop:value=env_json></textarea>
            <textarea hidden name="form[secrets]" prop:value=secrets_json></textarea>
            <h3>"Variables"</h3>
            <div class="env-rows" data-testid="env-rows">
                <For each=move || vars.get() key=|r| r.id let:row>
                    <div class="env-row" data-testid="env-row">
                        <input class="env-name mono" aria-label="Variable name" placeholder="NAME" autocomplete="off" spellcheck="false"
                            prop:value=move || row.name.get() on:input=move |ev| row.name.set(event_target_value(&ev)) />
                        <input class="env-value" aria-label="Variable value" placeholder="value" autocomplete="off"
                            prop:value=move || row.value.get() on:input=move |ev| row.value.set(event_target_value(&ev)) />
                        <button type="button" class="button small subtle" title="Remove this variable"
                            on:click=move |_| vars.update(|v| v.retain(|r| r.id != row.id))>"Remove"</button>
                        {row_error(outcome, "env", row.name)}
                    </div>
                </For>
            </div>
            <button type="button" class="button small" on:click=move |_| vars.update(|v| v.push(var_row(String::new(), String::new())))>"Add variable"</button>
            <FieldMsg outcome field="env" />
            <h3>"Secrets"</h3>
            <div class="env-rows" data-testid="secret-rows">
                <For each=move || secret_rows.get() key=|r| r.id let:row>
                    <div class="env-row" data-testid="secret-row" class:removed=move || row.removed.get()>
                        {move || if row.stored.get() {
                            view! { <span class="env-name mono" data-testid="secret-name">{move || row.name.get()}</span> }.into_any()
                        } else {
                            view! {
                                <input class="env-name mono" aria-label="Secret name" placeholder="NAME" autocomplete="off" spellcheck="false"
                                    prop:value=move || row.name.get() on:input=move |ev| row.name.set(event_target_value(&ev)) />
                            }.into_any()
                        }}
                        // A stored value is never shown: the placeholder only says one is there.
                        <input type="password" class="env-value" autocomplete="new-password" aria-label="Secret value"
                            placeholder=move || if row.stored.get() { "•••••••• (type to replace)" } else { "value" }
                            disabled=move || row.removed.get()
                            prop:value=move || row.value.get() on:input=move |ev| row.value.set(event_target_value(&ev)) />
                        {move || if row.removed.get() {
                            view! { <button type="button" class="button small subtle" on:click=move |_| row.removed.set(false)>"Keep"</button> }.into_any()
                        } else {
                            view! {
                                <button type="button" class="button small subtle" title="Remove this secret" on:click=move |_| {
                                    if row.stored.get_untracked() {
                                        row.removed.set(true);
                                    } else {
                                        secret_rows.update(|s| s.retain(|r| r.id != row.id));
                                    }
                                }>"Remove"</button>
                            }.into_any()
                        }}
                        {move || row.removed.get().then(|| view! { <span class="hint">"removed when saved"</span> })}
                        {row_error(outcome, "secrets", row.name)}
                    </div>
                </For>
            </div>
            <button type="button" class="button small" on:click=move |_| secret_rows.update(|s| s.push(secret_row(SecretEntry::default())))>"Add secret"</button>
            <FieldMsg outcome field="secrets" />
        </fieldset>
    }
}
