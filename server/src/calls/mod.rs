//! The one call pipeline. Every source of a call — the HTTP route, vCD's API requests and
//! events, the async worker, the portal's Test — turns its wire format into a `Call` and hands
//! it to the `Dispatcher` (`dispatch.rs`): resolve the route, authorize, admit, run now or
//! defer; the answer comes back as one `CallResponse`. The gateway runs a call in a container
//! and records it; deferred calls wait in the async queue.

pub mod async_broker;
pub mod async_consumers;
pub mod async_worker;
pub mod body;
pub mod deferred;
pub mod directory;
pub mod dispatch;
pub mod gateway;
pub mod journal;
pub mod request;
pub mod run_to_end;
