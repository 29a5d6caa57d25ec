use crate::api::{list_tokens, CreateToken, RevokeToken};
use crate::components::{error_text, format_time, outcome_of, FieldMsg, FormMessage, Frame};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn TokensPage() -> impl IntoView {
    view! { <Frame page=|caller| view! { <Tokens org=caller.org /> } /> }
}

#[component]
fn Tokens(org: String) -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    let outcome = outcome_of(create);
    let result = Signal::derive(move || create.value().get());
    view! {
        <Title text="API tokens · vcd-faas" />
        <div class="page-head"><h1>"API tokens"</h1></div>
        <section class="card">
            <p>"Tokens let scripts and CI pipelines use the REST API (" <a href="/api/v1/openapi.json">"OpenAPI"</a>
               ") and call your functions: " <code>{format!("Authorization: Bearer <token>")}</code> "."</p>
            <ActionForm action=create attr:class="form" attr:novalidate=true>
                <div class="row">
                    <div class="field">
                        <label for="tok-name">"Name"</label>
                        <input id="tok-name" name="name" placeholder="ci pipeline" autocomplete="off" />
                        <FieldMsg outcome field="name" />
                    </div>
                    <div class="field">
                        <label for="tok-days">"Expires in (days)"</label>
                        <input id="tok-days" name="expires_in_days" type="number" min="1" placeholder="provider's default" />
                        <FieldMsg outcome field="expires_in_days" />
                    </div>
                    <div class="field">
                        <label for="tok-scope">"Scope"</label>
                        <select id="tok-scope" name="scope">
                            <option value="full">"Full: everything you may do"</option>
                            <option value="invoke">"Invoke: read and call functions"</option>
                            <option value="read">"Read: look only"</option>
                        </select>
                        <FieldMsg outcome field="scope" />
                    </div>
                </div>
                <button type="submit" class="button primary">"Create token"</button>
            </ActionForm>
            <FormMessage result />
            {move || outcome.get().and_then(|o| o.secret).map(|s| view! {
                <pre class="secret" data-testid="new-token">{s}</pre>
            })}
            <p class="hint">{if org == "provider" {
                "Example: curl -H 'Authorization: Bearer <token>' <portal>/api/v1/tenants".to_string()
            } else {
                format!("Example: curl -H 'Authorization: Bearer <token>' <portal>/api/org/{org}/<function>")
            }}</p>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || tokens.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap card">
                        <table>
                            <thead><tr><th>"Name"</th><th>"Scope"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| view! {
                                    <tr>
                                        <td>{t.name}</td>
                                        <td data-testid="token-scope">{t.scope.as_str()}</td>
                                        <td class="muted">{format_time(t.created_at)}</td>
                                        <td class="muted" data-testid="token-expires">{t.expires_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                        <td class="muted">{t.last_used_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="id" value=t.id />
                                                <button type="submit" class="button subtle">"Revoke"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
    }
}
