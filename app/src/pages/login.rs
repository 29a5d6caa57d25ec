use crate::api::Login;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    crate::components::mark_hydrated();
    let error = move || login.value().get().and_then(|r| r.err()).map(|e| crate::components::error_text(&e));
    view! {
        <Title text="Sign in · vcd-faas" />
        <header class="topbar"><A href="/" attr:class="brand"><span class="logo" aria-hidden="true">"λ"</span>"vcd-faas"</A></header>
        <main class="content narrow">
            <div class="card login">
                <h1>"Sign in"</h1>
                <p class="muted">"Functions as a Service for your VMware Cloud Director organisation."</p>
                <ActionForm action=login>
                    <label for="org">"Organisation"</label>
                    <input id="org" name="org" required autocomplete="organization" placeholder="e.g. pscoe, or provider" />
                    <label for="username">"Username"</label>
                    <input id="username" name="username" required autocomplete="username" />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" required autocomplete="current-password" />
                    {move || error().map(|e| view! { <p class="alert error" role="alert">{e}</p> })}
                    <button type="submit" class="button primary wide" disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
