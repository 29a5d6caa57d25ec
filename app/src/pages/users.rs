use crate::api::{list_tenants, list_users, ChangeUser, CreateUser};
use crate::components::{error_text, format_time, outcome_of, FieldMsg, FormMessage, Frame};
use crate::model::{Caller, Role, UserView};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn UsersPage() -> impl IntoView {
    view! { <Frame page=|caller| view! { <Users caller /> } /> }
}

#[component]
fn Users(caller: Caller) -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let change = ServerAction::<ChangeUser>::new();
    let users = Resource::new(move || (create.version().get(), change.version().get()), |_| list_users());
    let change_result = Signal::derive(move || change.value().get());
    let me = (caller.org.clone(), caller.username.clone());
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
                Ok(list) => {
                    let me = me.clone();
                    view! {
                    <FormMessage result=change_result />
                    <div class="table-wrap card">
                        <table>
                            <thead><tr><th>"Org"</th><th>"Username"</th><th>"Role"</th><th>"State"</th><th>"Created"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| {
                                    let manageable = u.role != Role::Provider && (u.org.clone(), u.username.clone()) != me;
                                    view! {
                                    <tr data-user=format!("{}/{}", u.org, u.username)>
                                        <td>{u.org.clone()}</td><td>{u.username.clone()}</td>
                                        <td data-role=u.role.as_str()>{u.role.label()}</td>
                                        <td data-testid="user-state">{if u.disabled { "disabled" } else { "active" }}</td>
                                        <td class="muted">{format_time(u.created_at)}</td>
                                        <td>{manageable.then(|| view! { <UserActions user=u.clone() change /> })}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()},
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

/// Role, enable/disable, a new password and deletion of one user, each its own small form.
#[component]
fn UserActions(user: UserView, change: ServerAction<ChangeUser>) -> impl IntoView {
    let other_role = if user.role == Role::Admin { Role::Developer } else { Role::Admin };
    let toggle = if user.disabled { ("enable", "Enable") } else { ("disable", "Disable") };
    let password_id = format!("pw-{}-{}", user.org, user.username);
    let [role_fields, toggle_fields, password_fields, delete_fields] =
        ["role", toggle.0, "password", "delete"].map(|action| hidden_fields(&user.org, &user.username, action));
    view! {
        <details class="row-actions">
            <summary>"Manage"</summary>
            <div class="row-actions-body">
                <ActionForm action=change>
                    {role_fields}
                    <input type="hidden" name="value" value=other_role.as_str() />
                    <button type="submit" class="button subtle">{format!("Make {}", other_role.label().to_lowercase())}</button>
                </ActionForm>
                <ActionForm action=change>
                    {toggle_fields}
                    <input type="hidden" name="value" value="" />
                    <button type="submit" class="button subtle">{toggle.1}</button>
                </ActionForm>
                <ActionForm action=change attr:class="form inline">
                    {password_fields}
                    <label for=password_id.clone()>"New password"</label>
                    <input id=password_id name="value" type="password" autocomplete="new-password" />
                    <button type="submit" class="button subtle">"Set password"</button>
                </ActionForm>
                <ActionForm action=change attr:class="form inline">
                    {delete_fields}
                    <input type="hidden" name="value" value="" />
                    <button type="submit" class="button danger-text" data-testid="delete-user">"Delete user"</button>
                </ActionForm>
            </div>
        </details>
    }
}

fn hidden_fields(org: &str, username: &str, action: &'static str) -> impl IntoView {
    view! {
        <input type="hidden" name="org" value=org.to_string() />
        <input type="hidden" name="username" value=username.to_string() />
        <input type="hidden" name="action" value=action />
    }
}
