//! The bundled editor (`public/editor/editor.js`, `window.vcdFaasEditor`) as Rust calls, for
//! the browser build only: the server renders a textarea in its place. Every call that needs the
//! bundle answers `None` when it did not load, so the page keeps its textarea.

use crate::files::FileTree;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        pub type Handle;
        #[wasm_bindgen(catch, js_namespace = vcdFaasEditor, js_name = mount)]
        pub fn mount(element: &web_sys::HtmlElement, options: &js_sys::Object) -> Result<Handle, JsValue>;
        #[wasm_bindgen(method, js_name = getDoc)]
        pub fn get_doc(this: &Handle) -> String;
        #[wasm_bindgen(method, js_name = setDoc)]
        pub fn set_doc(this: &Handle, doc: &str);
        #[wasm_bindgen(method)]
        pub fn show(this: &Handle, key: &str, doc: &str, language: &str, label: &str);
        #[wasm_bindgen(method, js_name = markLine)]
        pub fn mark_line(this: &Handle, line: u32);
        #[wasm_bindgen(method)]
        pub fn destroy(this: &Handle);

        pub type Merge;
        #[wasm_bindgen(catch, js_namespace = vcdFaasEditor, js_name = mergeView)]
        pub fn merge_view(element: &web_sys::HtmlElement, a: &str, b: &str, options: &js_sys::Object) -> Result<Merge, JsValue>;
        #[wasm_bindgen(method, js_name = destroy)]
        pub fn destroy_merge(this: &Merge);

        #[wasm_bindgen(catch, js_namespace = vcdFaasEditor, js_name = unzipFile)]
        pub fn unzip_file(file: &web_sys::File, max_bytes: f64, done: &JsValue) -> Result<(), JsValue>;
    }
}

fn options(entries: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in entries {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// One CodeMirror editor; destroyed when dropped.
pub struct Editor {
    handle: js::Handle,
    // Called by the editor on every edit: lives as long as the editor.
    _on_change: Option<Closure<dyn FnMut(String)>>,
}

impl Editor {
    pub fn mount(element: &web_sys::HtmlElement, read_only: bool, on_change: Option<Box<dyn FnMut(String)>>) -> Option<Editor> {
        let on_change = on_change.map(Closure::wrap);
        let callback = on_change.as_ref().map(|c| c.as_ref().clone()).unwrap_or(JsValue::UNDEFINED);
        let handle = js::mount(element, &options(&[("readOnly", read_only.into()), ("onChange", callback)])).ok()?;
        Some(Editor { handle, _on_change: on_change })
    }

    /// Shows the file `path`, keeping each file's cursor and undo history while its text is unchanged.
    pub fn show(&self, path: &str, doc: &str, language: &str) {
        self.handle.show(path, doc, language, &format!("Code of {path}"));
    }

    pub fn doc(&self) -> String {
        self.handle.get_doc()
    }

    /// Replaces the text, e.g. after a zip upload (not reported back as an edit).
    pub fn set_doc(&self, doc: &str) {
        self.handle.set_doc(doc);
    }

    /// Marks a 1-based line; 0 clears the mark.
    pub fn mark_line(&self, line: u32) {
        self.handle.mark_line(line);
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        self.handle.destroy();
    }
}

/// Two texts compared (CodeMirror's merge view); destroyed when dropped.
pub struct MergeView(js::Merge);

impl MergeView {
    /// `unified`: one column; otherwise side by side when the element is wide enough.
    pub fn mount(element: &web_sys::HtmlElement, before: &str, after: &str, language: &str, unified: bool) -> Option<MergeView> {
        let unified = if unified { JsValue::TRUE } else { JsValue::UNDEFINED };
        js::merge_view(element, before, after, &options(&[("language", language.into()), ("unified", unified)])).ok().map(MergeView)
    }
}

impl Drop for MergeView {
    fn drop(&mut self) {
        self.0.destroy_merge();
    }
}

/// Reads a picked zip file in the browser; `done` gets its text files or what to fix.
pub fn unzip_file(file: &web_sys::File, max_bytes: usize, done: impl FnOnce(Result<FileTree, String>) + 'static) {
    #[derive(serde::Deserialize)]
    struct Answer {
        files: Option<FileTree>,
        error: Option<String>,
    }
    let done = std::rc::Rc::new(std::cell::RefCell::new(Some(done)));
    let finish = {
        let done = done.clone();
        move |result: Result<FileTree, String>| {
            if let Some(done) = done.borrow_mut().take() {
                done(result);
            }
        }
    };
    let finish_from_js = finish.clone();
    let callback = Closure::once_into_js(move |json: String| {
        finish_from_js(match serde_json::from_str::<Answer>(&json) {
            Ok(Answer { files: Some(files), .. }) => Ok(files),
            Ok(Answer { error: Some(error), .. }) => Err(error),
            _ => Err("the zip reader gave no answer; reload the page".into()),
        })
    });
    if js::unzip_file(file, max_bytes as f64, &callback).is_err() {
        finish(Err("the editor did not load, so zip files cannot be read here; reload the page".into()));
    }
}
