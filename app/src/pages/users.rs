use crate::api::{list_tenants, list_users, CreateUser};
use crate::components::{error_text, format_time, outcome_of, FieldMsg, FormMessage, Frame};
use crate::model::{Caller, Role};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn UsersPage() -> impl IntoView {
    view! { <Frame page=|caller| view! { <Users caller /> } /> }
}

#[component]
fn Users(caller: Caller) -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let users = Resource::new(move || create.version().get(), |_| list_users());
    let provider = caller.is_provider();
    let tenants = Resource::new(|| (), move |_| async move { if provider { list_tenants().await } else { Ok(vec![]) } });
    let outcome = outcome_of(create);
    let result = Signal::derive(move || create.value().get());
    let own_org = caller.org.clone();
    // After a user is added the form is emptied: a password left in it could be sent again.
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        let added = create.value().with(|r| matches!(r, Some(Ok(o)) if o.errors.is_empty() && o.error.is_none()));
        if let (true, Some(form)) = (added, form.get()) {
            form.reset();
        }
    });
    view! {
        <Title text="Users · vcd-faas" />
        <div class="page-head"><h1>"Users"</h1></div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || users.get().map(|r| match r {
                Ok(list) => view! {
                    <div class="table-wrap card">
                        <table>
                            <thead><tr><th>"Org"</th><th>"Username"</th><th>"Role"</th><th>"Created"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| view! {
                                    <tr><td>{u.org}</td><td>{u.username}</td><td data-role=u.role.as_str()>{u.role.label()}</td><td class="muted">{format_time(u.created_at)}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
        <section class="card">
            <h2>"Add a user"</h2>
            <ActionForm action=create node_ref=form attr:class="form" attr:novalidate=true>
                <FormMessage result />
                <div class="row">
                    <div class="field">
                        <label for="u-org">"Org"</label>
                        {if provider {
                            view! {
                                <select id="u-org" name="org">
                                    <Suspense fallback=|| ()>
                                        {move || tenants.get().and_then(|r| r.ok()).map(|list| list.into_iter().map(|t| view! {
                                            <option value=t.name.clone()>{format!("{} ({})", t.name, t.display_name)}</option>
                                        }).collect_view())}
                                    </Suspense>
                                </select>
                            }.into_any()
                        } else {
                            view! { <input id="u-org" name="org" value=own_org.clone() readonly /> }.into_any()
                        }}
                    </div>
                    <div class="field">
                        <label for="u-name">"Username"</label>
                        <input id="u-name" name="username" autocomplete="off" />
                        <FieldMsg outcome field="username" />
                    </div>
                    <div class="field">
                        <label for="u-pass">"Password"</label>
                        <input id="u-pass" name="password" type="password" autocomplete="new-password" />
                        <FieldMsg outcome field="password" />
                    </div>
                    <div class="field">
                        <label for="u-role">"Role"</label>
                        <select id="u-role" name="role">
                            {[Role::Developer, Role::Admin].map(|r| view! { <option value=r.as_str()>{r.label()}</option> })}
                        </select>
                        <FieldMsg outcome field="role" />
                    </div>
                </div>
                <button type="submit" class="button primary">"Add user"</button>
            </ActionForm>
        </section>
    }
}
