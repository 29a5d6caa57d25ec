//! Operating the platform: the reconciler, removing deleted functions, service links, CPU
//! priority.

pub mod cpu_priority;
pub mod links;
pub mod processes;
pub mod purge;
pub mod reconciler;
