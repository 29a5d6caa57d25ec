//! Removing a deleted function for good: its containers and images, then its rows.

use crate::calls::gateway::Gateway;
use crate::run::engine::{Engine, LABEL_FUNCTION, LABEL_TENANT};
use crate::store::{FunctionRow, Store};
use std::collections::HashMap;

/// Removes every container and image of a function on this process's engine (a front without
/// a worker has none: the nodes clean theirs), then its rows; false when something is left,
/// for the reconciler's next pass.
pub async fn purge_function(store: &Store, gateway: &Gateway, f: &FunctionRow, own_engine: bool) -> bool {
    let clean = !own_engine || remove_from_engine(gateway.pool().engine(), f).await;
    if clean {
        // Calls that ended during the deletion are written first, then go with the rest.
        gateway.flush_records().await;
        if let Err(e) = store.delete_function_row(f.id).await {
            tracing::warn!(error = %e, "cannot delete function row; the reconciler will retry");
            return false;
        }
    }
    clean
}

/// Removes the function's containers and images from the engine; false when some are left.
async fn remove_from_engine(engine: &Engine, f: &FunctionRow) -> bool {
    let mut clean = true;
    match engine.list_function_containers().await {
        Ok(containers) => {
            for c in containers.iter().filter(|c| owned_by(&c.labels, f)) {
                if let Err(e) = engine.remove_container(&c.id).await {
                    tracing::warn!(container = %c.name, error = %e, "cannot remove container of deleted function");
                    clean = false;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list containers");
            clean = false;
        }
    }
    match engine.list_function_images().await {
        Ok(images) => {
            for i in images.iter().filter(|i| owned_by(&i.labels, f)) {
                if let Err(e) = engine.remove_image(&i.id).await {
                    tracing::warn!(image = %i.id, error = %e, "cannot remove image of deleted function");
                    clean = false;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list images");
            clean = false;
        }
    }
    clean
}

fn owned_by(labels: &HashMap<String, String>, f: &FunctionRow) -> bool {
    labels.get(LABEL_TENANT) == Some(&f.org) && labels.get(LABEL_FUNCTION) == Some(&f.name)
}
