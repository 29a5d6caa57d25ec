//! The file tabs of the create and edit forms: a tab per file; new, rename and delete (never the
//! entry file); the language's manifest from its example; a zip's files. A tab shows its file's
//! field errors (the server's, else the same checks made here while typing) and the failed
//! build's line. The whole tree is sent as `form[files]`, a JSON object of path → content.

use super::code_view::CodeView;
use super::file_actions::FileActions;
use super::tree_edit::{files_count, is_entry, tab_order, tree_bytes};
use crate::api::FormOutcome;
use crate::components::FieldMsg;
use crate::files::{error_place, file_field, human_bytes, validate_tree, FileTree};
use crate::model::{FieldError, Language};
use leptos::prelude::*;

#[component]
pub fn FilesEditor(
    files: RwSignal<FileTree>,
    #[prop(into)] language: Signal<Language>,
    outcome: Signal<Option<FormOutcome>>,
    max_bytes: usize,
    /// Why the version these files are from did not build, when it did not: its file's tab
    /// marks the line. It may arrive while the form is open (a save that fails to build).
    build_error: Signal<Option<String>>,
) -> impl IntoView {
    let build_place = Memo::new(move |_| build_error.with(|why| why.as_deref().and_then(error_place)));
    let selected = RwSignal::new(language.get_untracked().entry_file().to_string());
    // Another language opens its entry file.
    Effect::new(move |previous: Option<Language>| {
        let now = language.get();
        if previous.is_some_and(|p| p != now) {
            selected.set(now.entry_file().to_string());
        }
        now
    });
    // A failed build opens its file, now or when the failure comes in.
    Effect::new(move |_| {
        if let Some((path, _)) = build_place.get() {
            if files.with_untracked(|f| f.contains_key(&path)) {
                selected.set(path);
            }
        }
    });
    // The open tab always exists: after a delete, an upload or a language switch it falls back
    // to the entry file, or the first file.
    let open_tab = Memo::new(move |_| {
        let wanted = selected.get();
        files.with(|f| {
            if f.contains_key(&wanted) {
                return wanted;
            }
            let entry = language.get().entry_file();
            if f.contains_key(entry) { entry.to_string() } else { f.keys().next().cloned().unwrap_or_default() }
        })
    });
    let local_problems = Memo::new(move |_| files.with(|f| validate_tree(language.get(), f, max_bytes)));
    // The server's answer first; while it has nothing for a field, what the checks here find.
    let problem = move |field: &str| -> Option<(String, bool)> {
        let from_server = outcome.with(|o| o.as_ref().and_then(|o| o.error_for(field)));
        from_server.map(|m| (m, true)).or_else(|| {
            local_problems.with(|errors| errors.iter().find(|e| e.field == field).map(|e: &FieldError| (e.message.clone(), false)))
        })
    };
    // After an answer with errors at files, one of them is in view: the open tab's, or the first.
    Effect::new(move |_| {
        let erring: Vec<String> = outcome.with(|o| {
            o.iter().flat_map(|o| o.errors.iter()).filter_map(|e| e.field.strip_prefix("files/").map(str::to_string)).collect()
        });
        let open = open_tab.get_untracked();
        if !erring.is_empty() && !erring.contains(&open) {
            if let Some(path) = erring.into_iter().find(|p| files.with_untracked(|f| f.contains_key(p))) {
                selected.set(path);
            }
        }
    });
    let local_tree_hint = move || {
        let server_has_one = outcome.with(|o| o.as_ref().and_then(|o| o.error_for("files")).is_some());
        (!server_has_one).then(|| problem("files").map(|(m, _)| m)).flatten()
    };
    let text_of_open = Signal::derive(move || {
        let path = open_tab.get();
        files.with(|f| f.get(&path).cloned().unwrap_or_default())
    });
    let on_edit = Callback::new(move |doc: String| {
        let path = open_tab.get_untracked();
        files.update(|f| {
            if let Some(content) = f.get_mut(&path) {
                *content = doc;
            }
        });
    });
    let error_line = Signal::derive(move || build_place.get().filter(|(path, _)| *path == open_tab.get()).map(|(_, line)| line));
    let files_json = Memo::new(move |_| files.with(|f| serde_json::to_string(f).unwrap_or_default()));
    // Before hydration a single file goes as `form[code]` from the textarea; after, the tabs' tree.
    let single_file = files.with_untracked(|f| f.len() == 1);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <div class="files-editor">
            <input type="hidden" name="form[files]" value=move || files_json.get()
                disabled=move || single_file && !hydrated.get() />
            <FieldMsg outcome field="files" />
            {move || local_tree_hint().map(|h| view! { <p class="field-hint" data-field="files">{h}</p> })}
            <FileActions files selected open_tab language max_bytes />
            <div class="file-pane">
            <div class="file-tabs" role="tablist" aria-label="Files">
                <For each=move || tab_order(&files.get(), language.get()) key=|path| path.clone() let:path>
                    {
                        let field = file_field(&path);
                        let has_problem = Signal::derive(move || problem(&field).is_some());
                        view! { <FileTab path selected open_tab language has_problem /> }
                    }
                </For>
            </div>
            {move || {
                let path = open_tab.get();
                let field = file_field(&path);
                problem(&field).map(|(message, from_server)| if from_server {
                    view! { <p class="field-error" role="alert" data-field=field>{message}</p> }.into_any()
                } else {
                    view! { <p class="field-hint" data-field=field>{message}</p> }.into_any()
                })
            }}
            {move || build_place.get().filter(|(path, _)| *path == open_tab.get()).map(|(_, line)| view! {
                <p class="alert error build-error-here" data-testid="build-error-at">
                    {format!("The last build failed at line {line}: {}", build_error.get().unwrap_or_default())}
                </p>
            })}
            {move || files.with(|f| f.is_empty()).then(|| view! {
                <p class="muted empty-tree">"No files. Add the entry file with New file, or upload a zip."</p>
            })}
            <div role="tabpanel" aria-label=move || format!("Code of {}", open_tab.get()) class:hidden=move || files.with(|f| f.is_empty())>
                <CodeView path=open_tab text=text_of_open on_edit error_line id="fn-code"
                    fallback_name=single_file.then_some("form[code]") />
            </div>
            </div>
            <p class="hint" id="editor-help">
                "Tab indents (Esc then Tab moves on); Ctrl-F searches. "
                {move || format!("{} · {} of {}", files_count(files.with(|f| f.len())), human_bytes(files.with(tree_bytes)), human_bytes(max_bytes))}
            </p>
            <FieldMsg outcome field="code" />
        </div>
    }.into_any()
}

#[component]
fn FileTab(path: String, selected: RwSignal<String>, open_tab: Memo<String>, language: Signal<Language>, has_problem: Signal<bool>) -> impl IntoView {
    let is_open = {
        let path = path.clone();
        move || open_tab.get() == path
    };
    let entry = {
        let path = path.clone();
        move || is_entry(&path, language.get())
    };
    let select = {
        let path = path.clone();
        move |_| selected.set(path.clone())
    };
    view! {
        <button type="button" role="tab" class="tab"
            class:open=is_open.clone() class:invalid=move || has_problem.get() class:entry=entry.clone()
            aria-selected=move || is_open().to_string()
            title=move || if entry() { "The entry file: the runtime loads it" } else { "" }
            data-path=path.clone()
            on:click=select>
            {path.clone()}
        </button>
    }
}
