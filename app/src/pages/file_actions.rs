//! The row above the file tabs: new file, rename, delete (never the entry file), the language's
//! manifest from its example, upload zip; and the row that asks for a path or a confirmation.

use super::tree_edit::{is_entry, new_path, rename};
use crate::files::FileTree;
use crate::model::Language;
use leptos::prelude::*;

/// What the row under the tabs is asking for.
#[derive(Clone, Debug, PartialEq)]
enum Dialog {
    Closed,
    NewFile,
    Rename(String),
    Delete(String),
}

/// New file, rename, delete, the manifest, upload zip; and the row that asks for a path.
#[component]
pub(super) fn FileActions(files: RwSignal<FileTree>, selected: RwSignal<String>, open_tab: Memo<String>, language: Signal<Language>, max_bytes: usize) -> impl IntoView {
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
                    upload_note.set(Some(Ok(format!("{} loaded from {name}, in place of the files before", super::tree_edit::files_count(count)))));
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
