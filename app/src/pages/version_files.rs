//! The function page's Files section: any version's files, read-only with a tab per file, or
//! two versions compared file by file (added, removed, changed; unchanged ones named only).

use super::code_view::{CodeView, MergeBox};
use super::tree_edit::{compare_trees, editor_language, tab_order, Change};
use crate::api::version_files;
use crate::components::error_text;
use crate::files::{error_place, FileTree};
use crate::model::{BuildStatus, Language, VersionDetail};
use leptos::prelude::*;

/// A version as the pickers list it.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionChoice {
    pub version: i64,
    pub build_status: BuildStatus,
}

#[component]
pub fn VersionFiles(
    org: String,
    name: String,
    /// Newest first.
    versions: Memo<Vec<VersionChoice>>,
    /// The latest version and its build error, when that build failed.
    latest_failure: Memo<Option<(i64, String)>>,
) -> impl IntoView {
    // None: the latest version, following new ones as they are saved.
    let picked = RwSignal::new(None::<i64>);
    let compared_with = RwSignal::new(None::<i64>);
    let shown = Memo::new(move |_| picked.get().or_else(|| versions.with(|v| v.first().map(|c| c.version))));
    let (org_a, name_a) = (org.clone(), name.clone());
    let shown_files = Resource::new(move || shown.get(), move |v| load(org_a.clone(), name_a.clone(), v));
    let base_files = Resource::new(move || compared_with.get(), move |v| load(org.clone(), name.clone(), v));
    let option_label = move |c: &VersionChoice, latest: bool| {
        let mut label = format!("v{}", c.version);
        if latest {
            label.push_str(" (latest)");
        }
        if c.build_status == BuildStatus::Failed {
            label.push_str(" · build failed");
        }
        label
    };
    view! {
        <section class="card" aria-label="Files">
            <div class="files-head">
                <h2>"Files"</h2>
                <div class="version-pick">
                    <label for="files-version">"Version"</label>
                    <select id="files-version" on:change=move |ev| picked.set(event_target_value(&ev).parse().ok())>
                        {move || versions.get().into_iter().enumerate().map(|(i, c)| {
                            let label = option_label(&c, i == 0);
                            view! { <option value=c.version selected=move || shown.get() == Some(c.version)>{label}</option> }
                        }).collect_view()}
                    </select>
                    <label for="files-compare">"compared with"</label>
                    <select id="files-compare" on:change=move |ev| compared_with.set(event_target_value(&ev).parse().ok())>
                        <option value="" selected=move || compared_with.get().is_none()>"nothing"</option>
                        {move || versions.get().into_iter().enumerate().map(|(i, c)| {
                            let label = option_label(&c, i == 0);
                            view! { <option value=c.version selected=move || compared_with.get() == Some(c.version)>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading the files…"</p> }>
                {move || {
                    let shown_detail = shown_files.get()?;
                    let base_detail = base_files.get()?;
                    Some(match (shown_detail, base_detail) {
                        (Err(e), _) | (_, Err(e)) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                        (Ok(None), _) => view! { <p class="muted">"No version yet."</p> }.into_any(),
                        (Ok(Some(after)), Ok(Some(before))) => view! {
                            <TreeDiff before=before.files after=after.files before_version=before.version.version after_version=after.version.version />
                        }.into_any(),
                        (Ok(Some(detail)), Ok(None)) => {
                            let mark = latest_failure.get_untracked()
                                .filter(|(version, _)| *version == detail.version.version)
                                .and_then(|(_, why)| error_place(&why));
                            view! { <ReadOnlyFiles files=detail.files language=detail.version.language mark /> }.into_any()
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

async fn load(org: String, name: String, version: Option<i64>) -> Result<Option<VersionDetail>, ServerFnError> {
    match version {
        Some(v) => version_files(org, name, v).await.map(Some),
        None => Ok(None),
    }
}

/// One version's files: a tab per file, the code read-only (searchable, selectable).
#[component]
fn ReadOnlyFiles(files: FileTree, language: Language, mark: Option<(String, u32)>) -> impl IntoView {
    let paths = tab_order(&files, language);
    let open = RwSignal::new(
        mark.as_ref().map(|(path, _)| path.clone()).filter(|p| files.contains_key(p)).unwrap_or_else(|| paths.first().cloned().unwrap_or_default()),
    );
    let files = StoredValue::new(files);
    let text = Signal::derive(move || files.with_value(|f| f.get(&open.get()).cloned().unwrap_or_default()));
    let error_line = Signal::derive(move || mark.as_ref().filter(|(path, _)| *path == open.get()).map(|(_, line)| *line));
    view! {
        <div class="file-tabs" role="tablist" aria-label="Files of this version">
            {paths.into_iter().map(|path| {
                let (p1, p2, p3, label) = (path.clone(), path.clone(), path.clone(), path.clone());
                view! {
                    <button type="button" role="tab" class="tab" class:open=move || open.get() == p1
                        aria-selected=move || (open.get() == p2).to_string() data-path=path
                        on:click=move |_| open.set(p3.clone())>{label}</button>
                }
            }).collect_view()}
        </div>
        <div role="tabpanel" aria-label=move || format!("Code of {}", open.get())>
            <CodeView path=open text error_line />
        </div>
    }
}

/// What changed from one version to another, file by file.
#[component]
fn TreeDiff(before: FileTree, after: FileTree, before_version: i64, after_version: i64) -> impl IntoView {
    let changes = compare_trees(&before, &after);
    let count = |kind: Change| changes.iter().filter(|c| c.change == kind).count();
    let summary = [Change::Changed, Change::Added, Change::Removed, Change::Unchanged]
        .into_iter()
        .map(|kind| (count(kind), kind.label()))
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect::<Vec<_>>()
        .join(", ");
    let unchanged: Vec<String> = changes.iter().filter(|c| c.change == Change::Unchanged).map(|c| c.path.clone()).collect();
    let differing: Vec<_> = changes.into_iter().filter(|c| c.change != Change::Unchanged).collect();
    view! {
        <p class="diff-summary" data-testid="diff-summary">
            {format!("From v{before_version} to v{after_version}: {summary}.")}
        </p>
        {differing.is_empty().then(|| view! { <p class="muted">"The two versions have the same files."</p> })}
        {differing.into_iter().map(|c| {
            let language = editor_language(&c.path);
            let one_side = c.change != Change::Changed;
            view! {
                <div class="file-diff" data-path=c.path.clone() data-change=c.change.label()>
                    <h3><code>{c.path.clone()}</code> " " <span class=format!("tag change-{}", c.change.label())>{c.change.label()}</span></h3>
                    <MergeBox before=c.before after=c.after language unified=one_side />
                </div>
            }
        }).collect_view()}
        {(!unchanged.is_empty()).then(|| view! {
            <p class="hint">"Unchanged: " {unchanged.join(", ")}</p>
        })}
    }
}
