//! Several Docker hosts as one platform. Worker nodes (`vcd-faas node`, `node.rs`) run beside
//! their engines; fronts place each call on one (`placement.rs`, `forward.rs`) by what the
//! nodes' heartbeats say (`members.rs`). Membership lives in PostgreSQL (a row per node,
//! beaten every second); a call goes front → node as one keep-alive HTTP request with the
//! cluster secret (`wire.rs`). A node that lacks a version's image rebuilds it from the stored
//! files: no registry to run, and the image is exactly what the first build checked.

pub mod forward;
pub mod members;
pub mod node;
pub mod placement;
pub mod tls;
pub mod wire;
