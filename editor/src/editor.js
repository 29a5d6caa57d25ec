// The portal's code editor: CodeMirror 6 behind a small global API (`window.vcdFaasEditor`) that
// the Leptos code calls through wasm-bindgen, plus a zip reader for "upload zip". Bundled by
// esbuild into public/editor/editor.js, so the portal needs no CDN.
import { EditorState, Compartment, StateEffect, StateField, Annotation } from "@codemirror/state";
import {
  EditorView, Decoration, keymap, lineNumbers, highlightActiveLineGutter, highlightSpecialChars,
  drawSelection, dropCursor, rectangularSelection, crosshairCursor, highlightActiveLine,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { indentOnInput, bracketMatching, foldGutter, foldKeymap } from "@codemirror/language";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { json } from "@codemirror/lang-json";
import { oneDark } from "@codemirror/theme-one-dark";
import { MergeView, unifiedMergeView } from "@codemirror/merge";
import { unzip, unzipFile } from "./zip.js";

const LANGUAGES = { javascript: () => javascript(), python: () => python(), json: () => json() };
const languageSupport = (name) => (LANGUAGES[name] ? LANGUAGES[name]() : []);

// The page's code colours (style/main.css: --code-bg), one-dark's syntax colours.
const portalTheme = EditorView.theme(
  {
    "&": { backgroundColor: "var(--code-bg, #0f172a)", fontSize: ".9rem", borderRadius: "7px", maxHeight: "32rem" },
    "&.cm-focused": { outline: "none" },
    ".cm-scroller": { fontFamily: "var(--mono, monospace)", lineHeight: "1.45", overflow: "auto" },
    ".cm-content, .cm-gutter": { minHeight: "16rem" },
    ".cm-gutters": { backgroundColor: "var(--code-bg, #0f172a)", borderRight: "1px solid #1e293b" },
    ".cm-error-line": { backgroundColor: "rgba(239, 68, 68, .22)", boxShadow: "inset 3px 0 0 #ef4444" },
  },
  { dark: true },
);

// A failed build's line: a line decoration that follows edits above it.
const setErrorLine = StateEffect.define();
const errorLineMark = Decoration.line({ attributes: { class: "cm-error-line", "data-error-line": "true" } });
const errorLineField = StateField.define({
  create: () => Decoration.none,
  update(marks, tr) {
    marks = marks.map(tr.changes);
    for (const effect of tr.effects) {
      if (!effect.is(setErrorLine)) continue;
      const line = effect.value;
      marks = line >= 1 && line <= tr.state.doc.lines
        ? Decoration.set([errorLineMark.range(tr.state.doc.line(line).from)])
        : Decoration.none;
    }
    return marks;
  },
  provide: (field) => EditorView.decorations.from(field),
});

// Content set by the page (a tab switch) is not reported back as the user's typing.
const fromPage = Annotation.define();

// CodeMirror's basic setup without autocompletion, whose popup would take Enter while typing.
function editingSetup() {
  return [
    lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), foldGutter(),
    drawSelection(), dropCursor(), EditorState.allowMultipleSelections.of(true), indentOnInput(),
    bracketMatching(), closeBrackets(), rectangularSelection(), crosshairCursor(), highlightActiveLine(),
    highlightSelectionMatches(),
    // Tab indents; Esc then Tab moves focus on (CodeMirror's own escape hatch).
    keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
  ];
}

function readOnlySetup() {
  return [lineNumbers(), highlightSpecialChars(), foldGutter(), drawSelection(), bracketMatching(),
    highlightSelectionMatches(), EditorState.readOnly.of(true), keymap.of([...defaultKeymap, ...searchKeymap, ...foldKeymap])];
}

/**
 * An editor in `element`. Options: `doc`, `language` ("javascript", "python", "json" or anything
 * else for plain text), `readOnly`, `label` (its accessible name), `onChange(doc)` for the user's
 * edits. The handle keeps one state per key (`show`), so each file tab has its own undo history.
 */
function mount(element, options = {}) {
  const language = new Compartment();
  const label = new Compartment();
  const onChange = options.onChange;
  const extensions = (lang, name) => [
    options.readOnly ? readOnlySetup() : editingSetup(),
    // The portal's theme first: earlier extensions take precedence.
    portalTheme, oneDark, errorLineField,
    language.of(languageSupport(lang)),
    label.of(EditorView.contentAttributes.of({ "aria-label": name || "Code" })),
    EditorView.updateListener.of((update) => {
      if (onChange && update.docChanged && !update.transactions.some((tr) => tr.annotation(fromPage))) {
        onChange(update.state.doc.toString());
      }
    }),
  ];
  const stateFor = (doc, lang, name) => EditorState.create({ doc: doc ?? "", extensions: extensions(lang, name) });
  const view = new EditorView({ parent: element, state: stateFor(options.doc, options.language, options.label) });
  const kept = new Map();
  let current = null;
  const handle = {
    view,
    getDoc: () => view.state.doc.toString(),
    /** Replaces the text (not reported to onChange). */
    setDoc(doc) {
      if (doc === view.state.doc.toString()) return;
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: doc }, annotations: fromPage.of(true) });
    },
    setLanguage(lang) {
      view.dispatch({ effects: language.reconfigure(languageSupport(lang)) });
    },
    /** Shows the file `key`: its kept state (cursor, undo) when its text is still `doc`. */
    show(key, doc, lang, name) {
      if (current !== null) kept.set(current, view.state);
      const state = kept.get(key);
      view.setState(state && state.doc.toString() === doc ? state : stateFor(doc, lang, name));
      current = key;
    },
    forget(key) {
      kept.delete(key);
    },
    /** Marks a 1-based line (a failed build's); 0 or null clears the mark. */
    markLine(line) {
      view.dispatch({ effects: setErrorLine.of(line || 0) });
      if (line >= 1 && line <= view.state.doc.lines) {
        view.dispatch({ effects: EditorView.scrollIntoView(view.state.doc.line(line).from, { y: "center" }) });
      }
    },
    focus: () => view.focus(),
    destroy() {
      kept.clear();
      view.destroy();
      delete element.vcdFaasEditor;
    },
  };
  // Tests and scripts reach the editor of a page element through it.
  element.vcdFaasEditor = handle;
  return handle;
}

/**
 * Two texts compared in `element`: side by side, or unified (deleted lines shown inline) when the
 * element is narrow or `options.unified` says so. Unchanged stretches are folded away.
 */
function mergeView(element, a, b, options = {}) {
  const shared = [readOnlySetup(), portalTheme, oneDark, languageSupport(options.language), EditorView.editable.of(false)];
  const collapseUnchanged = { margin: 3, minSize: 6 };
  const unified = options.unified ?? element.clientWidth < 720;
  if (unified) {
    const view = new EditorView({
      parent: element,
      doc: b,
      extensions: [shared, unifiedMergeView({ original: a, mergeControls: false, gutter: true, collapseUnchanged })],
    });
    return { destroy: () => view.destroy() };
  }
  const merge = new MergeView({ a: { doc: a, extensions: shared }, b: { doc: b, extensions: shared }, parent: element, gutter: true, collapseUnchanged });
  return { destroy: () => merge.destroy() };
}

window.vcdFaasEditor = { mount, mergeView, unzip, unzipFile };
