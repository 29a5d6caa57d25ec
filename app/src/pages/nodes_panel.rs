//! The provider dashboard's Nodes panel: the cluster's worker nodes with their state, what
//! they hold and run, and a Drain / Undrain button each. Shown only when nodes are registered.

use crate::api::{list_nodes, SetNodeDraining};
use crate::components::{error_text, use_ticker};
use crate::model::NodeView;
use leptos::prelude::*;
use std::time::Duration;

#[component]
pub fn NodesPanel() -> impl IntoView {
    let tick = use_ticker(Duration::from_secs(3));
    let steer = ServerAction::<SetNodeDraining>::new();
    let nodes = Resource::new(move || (tick.get(), steer.version().get()), |_| list_nodes());
    view! {
        <Transition fallback=|| ()>
            {move || nodes.get().map(|nodes| match nodes {
                Ok(nodes) if nodes.is_empty() => ().into_any(),
                Ok(nodes) => view! { <NodesTable nodes steer /> }.into_any(),
                Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn NodesTable(nodes: Vec<NodeView>, steer: ServerAction<SetNodeDraining>) -> impl IntoView {
    let up = nodes.iter().filter(|n| n.state == "up").count();
    let total = nodes.len();
    view! {
        <section class="card">
            <h2>"Nodes"</h2>
            <p class="hint">{format!("{up} of {total} worker node(s) take calls. A drained node takes no new call; its calls in flight end there.")}</p>
            <div class="table-wrap">
                <table class="nodes">
                    <thead><tr><th>"Node"</th><th>"Address"</th><th>"State"</th><th>"Containers"</th><th>"Memory"</th><th>"CPU"</th><th>"Calls/s"</th><th>"In flight"</th><th></th></tr></thead>
                    <tbody>{nodes.into_iter().map(|n| view! { <NodeRow n steer /> }).collect_view()}</tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn NodeRow(n: NodeView, steer: ServerAction<SetNodeDraining>) -> impl IntoView {
    let draining = n.state == "draining";
    let (label, next) = if draining { ("Undrain", "false") } else { ("Drain", "true") };
    let (name, steerable) = (n.name.clone(), n.state != "down");
    view! {
        <tr data-node=n.name.clone()>
            <td><strong>{n.name.clone()}</strong></td>
            <td><code>{n.address.clone()}</code></td>
            <td><span class=format!("badge badge-{}", n.state)>{n.state.clone()}</span></td>
            <td>{n.containers}</td>
            <td>{format!("{} / {} MB", n.used_memory_mb, n.memory_mb)}</td>
            <td>{format!("{:.1} / {:.1}", n.used_cpus, n.cpus)}</td>
            <td>{format!("{:.1}", n.calls_per_sec)}</td>
            <td>{n.calls_in_flight}</td>
            <td>
                {steerable.then(|| view! {
                    <ActionForm action=steer>
                        <input type="hidden" name="name" value=name />
                        <input type="hidden" name="draining" value=next />
                        <button type="submit" class="button subtle">{label}</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn node(name: &str, state: &str) -> NodeView {
        NodeView {
            name: name.into(),
            address: "169.254.77.2:7070".into(),
            state: state.into(),
            memory_mb: 2048,
            used_memory_mb: 384,
            cpus: 2.0,
            used_cpus: 1.5,
            containers: 3,
            calls_in_flight: 2,
            calls_per_sec: 41.5,
            started_at: 0,
            heartbeat_at: 0,
        }
    }

    #[test]
    fn each_node_shows_its_state_use_and_the_button_that_steers_it() {
        let owner = Owner::new();
        owner.set();
        let steer = ServerAction::<SetNodeDraining>::new();
        let nodes = vec![node("worker-1", "up"), node("worker-2", "draining"), node("worker-3", "down")];
        let html = view! { <NodesTable nodes steer /> }.to_html();
        for part in ["1 of 3 worker node(s) take calls", "worker-1", "169.254.77.2:7070", "384 / 2048 MB", "1.5 / 2.0", "41.5", "badge-draining"] {
            assert!(html.contains(part), "{part:?} missing in {html}");
        }
        // Drain for the node up, Undrain for the drained one, nothing for the one down.
        assert_eq!((html.matches(">Drain<").count(), html.matches(">Undrain<").count()), (1, 1), "{html}");
    }
}
