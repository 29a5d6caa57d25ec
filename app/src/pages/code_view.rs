//! One file's code: CodeMirror once the page is hydrated and the bundle has loaded, a plain
//! textarea until then (and on the server), so the code shows, and a single-file form submits,
//! before hydration. Also the comparison of two texts (CodeMirror's merge view).

use leptos::html::Div;
use leptos::prelude::*;

#[component]
pub fn CodeView(
    /// The file shown: its path picks the editor's syntax and keeps each file's undo history.
    #[prop(into)]
    path: Signal<String>,
    /// Its text; followed when it changes from outside the editor (a zip upload, a language switch).
    #[prop(into)]
    text: Signal<String>,
    /// Called with the whole text after each edit; without it the view is read-only.
    #[prop(optional)]
    on_edit: Option<Callback<String>>,
    /// A failed build's line in this file (1-based).
    #[prop(into, optional)]
    error_line: Signal<Option<u32>>,
    /// The textarea's form field before hydration, for a form that works without JavaScript.
    /// Without one, the textarea cannot be edited until the page hydrates (its text would not
    /// be sent).
    #[prop(default = None)]
    fallback_name: Option<&'static str>,
    #[prop(optional)] id: Option<&'static str>,
) -> impl IntoView {
    let host = NodeRef::<Div>::new();
    let mounted = RwSignal::new(false);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    #[cfg(feature = "hydrate")]
    client::attach_editor(host, path, text, on_edit, error_line, mounted);
    #[cfg(not(feature = "hydrate"))]
    let _ = error_line;
    view! {
        <div class="code-view" class:mounted=move || mounted.get() class:read-only=on_edit.is_none()>
            <textarea
                class="code-fallback"
                id=id
                name=move || fallback_name.filter(|_| !hydrated.get())
                readonly=move || on_edit.is_none() || (fallback_name.is_none() && !hydrated.get())
                spellcheck="false"
                autocapitalize="off"
                autocomplete="off"
                wrap="off"
                rows="16"
                aria-label=move || format!("Code of {}", path.get())
                // Once CodeMirror shows the text, the hidden textarea stops following it.
                prop:value=move || if mounted.get() { String::new() } else { text.get() }
                on:input=move |ev| {
                    if let Some(edit) = on_edit {
                        edit.run(event_target_value(&ev));
                    }
                }
            >
                {text.get_untracked()}
            </textarea>
            <div class="code-host" node_ref=host></div>
        </div>
    }
}

/// `before` and `after` compared, changed lines highlighted; two plain blocks until the bundle
/// loads. `unified` shows one column (deleted lines inline), as for a file added or removed;
/// otherwise the columns are side by side where there is room.
#[component]
pub fn MergeBox(before: String, after: String, language: &'static str, #[prop(optional)] unified: bool) -> impl IntoView {
    let host = NodeRef::<Div>::new();
    let mounted = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    client::attach_merge(host, before.clone(), after.clone(), language, unified, mounted);
    #[cfg(not(feature = "hydrate"))]
    let _ = (language, unified);
    view! {
        <div class="merge-box" class:mounted=move || mounted.get()>
            <div class="merge-fallback">
                <pre class="log">{before}</pre>
                <pre class="log">{after}</pre>
            </div>
            <div class="merge-host" node_ref=host></div>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use super::super::editor_js::{Editor, MergeView};
    use super::super::tree_edit::editor_language;
    use leptos::html::Div;
    use leptos::prelude::*;

    pub fn attach_editor(
        host: NodeRef<Div>,
        path: Signal<String>,
        text: Signal<String>,
        on_edit: Option<Callback<String>>,
        error_line: Signal<Option<u32>>,
        mounted: RwSignal<bool>,
    ) {
        let editor = StoredValue::new_local(None::<Editor>);
        Effect::new(move |_| {
            let Some(element) = host.get() else { return };
            if editor.with_value(Option::is_some) {
                return;
            }
            let on_change = on_edit.map(|edit| Box::new(move |doc: String| edit.run(doc)) as Box<dyn FnMut(String)>);
            if let Some(mounted_editor) = Editor::mount(&element, on_edit.is_none(), on_change) {
                editor.set_value(Some(mounted_editor));
                mounted.set(true);
            }
        });
        // Shows the open file; an outside change of its text replaces the editor's; the error
        // line is marked again only when the file or the line changes (the mark follows edits).
        Effect::new(move |last: Option<Option<(String, Option<u32>)>>| {
            let (path, text, line) = (path.get(), text.get(), error_line.get());
            if !mounted.get() {
                return None;
            }
            let last = last.flatten();
            editor.with_value(|editor| {
                let Some(editor) = editor else { return };
                let switched = last.as_ref().is_none_or(|(shown, _)| *shown != path);
                if switched {
                    editor.show(&path, &text, editor_language(&path));
                } else if editor.doc() != text {
                    editor.set_doc(&text);
                }
                if switched || last.as_ref().map(|(_, l)| *l) != Some(line) {
                    editor.mark_line(line.unwrap_or(0));
                }
            });
            Some((path, line))
        });
        on_cleanup(move || {
            editor.try_update_value(|editor| editor.take());
        });
    }

    pub fn attach_merge(host: NodeRef<Div>, before: String, after: String, language: &'static str, unified: bool, mounted: RwSignal<bool>) {
        let merge = StoredValue::new_local(None::<MergeView>);
        Effect::new(move |_| {
            let Some(element) = host.get() else { return };
            if merge.with_value(Option::is_some) {
                return;
            }
            if let Some(view) = MergeView::mount(&element, &before, &after, language, unified) {
                merge.set_value(Some(view));
                mounted.set(true);
            }
        });
        on_cleanup(move || {
            merge.try_update_value(|merge| merge.take());
        });
    }
}
