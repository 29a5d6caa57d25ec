//! The file tabs of the create and edit forms: a tab per file; new, rename and delete (never the
//! entry file); the language's manifest from its example; a zip's files. A tab shows its file's
//! field errors (the server's, else the same checks made here while typing) and the failed
//! build's line. The whole tree is sent as `form[files]`, a JSON object of path → content.

use super::code_view::CodeView;
use super::tree_edit::{is_entry, new_path, rename, tab_order, tree_bytes};
use crate::api::FormOutcome;
use crate::components::FieldMsg;
use crate::files::{error_place, file_field, human_bytes, validate_tree, FileTree};
use crate::model::{FieldError, Language};
use leptos::prelude::*;

/// What the row under the tabs is asking for.
#[derive(Clone, Debug, PartialEq)]
enum Dialog {
    Closed,
    NewFile,
    Rename(String),
    Delete(String),
}

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
                    fallback_name="form[code]" />
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

fn files_count(n: usize) -> String {
    if n == 1 { "1 file".into() } else { format!("{n} files") }
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

/// New file, rename, delete, the manifest, upload zip; and the row that asks for a path.
#[component]
fn FileActions(files: RwSignal<FileTree>, selected: RwSignal<String>, open_tab: Memo<String>, language: Signal<Language>, max_bytes: usize) -> impl IntoView {
    let dialog = RwSignal::new(Dialog::Closed);
    let typed = RwSignal::new(String::new());
    let dialog_error = RwSignal::new(None::<String>);
    let path_input = NodeRef::<leptos::html::Input>::new();
    // The path field takes the focus when it opens.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(input) = path_input.get() {
            let _ = input.focus();
        }
    });
    let upload_note = RwSignal::new(None::<Result<String, String>>);
    let open_dialog = move |next: Dialog| {
        typed.set(match &next {
            Dialog::Rename(path) => path.clone(),
            _ => String::new(),
        });
        dialog_error.set(None);
        dialog.set(next);
    };
    let apply = move || {
        let current = dialog.get_untracked();
        if let Dialog::Delete(path) = &current {
            files.update(|f| {
                f.remove(path);
            });
            dialog.set(Dialog::Closed);
            return;
        }
        let renaming = match &current {
            Dialog::Rename(from) => Some(from.clone()),
            _ => None,
        };
        match files.with_untracked(|f| new_path(f, &typed.get_untracked(), renaming.as_deref())) {
            Err(why) => dialog_error.set(Some(why)),
            Ok(path) => {
                files.update(|f| match &renaming {
                    Some(from) => rename(f, from, &path),
                    None => {
                        f.insert(path.clone(), String::new());
                    }
                });
                selected.set(path);
                dialog.set(Dialog::Closed);
            }
        }
    };
    let open_is_entry = move || is_entry(&open_tab.get(), language.get());
    let manifest = move || language.get().manifest_example();
    let add_manifest = move |_| {
        let (path, example) = manifest();
        files.update(|f| {
            f.entry(path.to_string()).or_insert_with(|| example.to_string());
        });
        selected.set(path.to_string());
    };
    let on_zip = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            let input: web_sys::HtmlInputElement = event_target(&ev);
            let Some(file) = input.files().and_then(|list| list.get(0)) else { return };
            let name = file.name();
            upload_note.set(Some(Ok(format!("reading {name}…"))));
            super::editor_js::unzip_file(&file, max_bytes, move |result| match result {
                Ok(tree) if tree.is_empty() => upload_note.set(Some(Err(format!("{name} has no files")))),
                Ok(tree) => {
                    let count = tree.len();
                    files.set(tree);
                    selected.set(language.get_untracked().entry_file().to_string());
                    upload_note.set(Some(Ok(format!("{} loaded from {name}, in place of the files before", files_count(count)))));
                }
                Err(why) => upload_note.set(Some(Err(format!("{name} was not loaded: {why}")))),
            });
            // The same file may be picked again after it is fixed.
            input.set_value("");
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, max_bytes);
    };
    view! {
        <div class="file-actions">
            <button type="button" class="button small" on:click=move |_| open_dialog(Dialog::NewFile)>"New file"</button>
            <button type="button" class="button small" disabled=open_is_entry
                title=move || if open_is_entry() { "The entry file keeps its name" } else { "" }
                on:click=move |_| open_dialog(Dialog::Rename(open_tab.get_untracked()))>"Rename"</button>
            <button type="button" class="button small" disabled=open_is_entry
                title=move || if open_is_entry() { "The entry file cannot be deleted" } else { "" }
                on:click=move |_| open_dialog(Dialog::Delete(open_tab.get_untracked()))>"Delete"</button>
            {move || {
                let (path, _) = manifest();
                (!files.with(|f| f.contains_key(path))).then(|| view! {
                    <button type="button" class="button small" on:click=add_manifest>{format!("Add {path}")}</button>
                })
            }}
            <label class="button small upload">
                "Upload zip"
                <input type="file" accept=".zip,application/zip" class="visually-hidden" data-testid="upload-zip" on:change=on_zip />
            </label>
        </div>
        {move || upload_note.get().map(|note| match note {
            Ok(m) => view! { <p class="alert ok" role="status">{m}</p> }.into_any(),
            Err(m) => view! { <p class="alert error" role="alert" data-testid="upload-error">{m}</p> }.into_any(),
        })}
        {move || match dialog.get() {
            Dialog::Closed => None,
            Dialog::Delete(path) => Some(view! {
                <div class="file-dialog" role="group" aria-label="Delete file">
                    <span>{format!("Delete {path}? Its content is gone once the form is saved.")}</span>
                    <button type="button" class="button small danger-text" on:click=move |_| apply()>"Delete file"</button>
                    <button type="button" class="button small subtle" on:click=move |_| dialog.set(Dialog::Closed)>"Cancel"</button>
                </div>
            }.into_any()),
            other => {
                let (label, button) = match &other {
                    Dialog::Rename(path) => (format!("New path of {path}"), "Rename"),
                    _ => ("Path of the new file".to_string(), "Add file"),
                };
                let group_label = label.clone();
                Some(view! {
                    <div class="file-dialog" role="group" aria-label=group_label>
                        <label for="file-path">{label}</label>
                        <input id="file-path" autocomplete="off" spellcheck="false" node_ref=path_input
                            placeholder=move || match language.get() { Language::Nodejs => "lib/util.js", Language::Python => "lib/util.py" }
                            prop:value=move || typed.get()
                            on:input=move |ev| typed.set(event_target_value(&ev))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
                                // Enter would submit the whole function form.
                                "Enter" => { ev.prevent_default(); apply(); }
                                "Escape" => dialog.set(Dialog::Closed),
                                _ => {}
                            } />
                        <button type="button" class="button small primary" on:click=move |_| apply()>{button}</button>
                        <button type="button" class="button small subtle" on:click=move |_| dialog.set(Dialog::Closed)>"Cancel"</button>
                        {move || dialog_error.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
                    </div>
                }.into_any())
            }
        }}
    }
}
