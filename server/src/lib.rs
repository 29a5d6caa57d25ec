//! vcd-faas: the server binary's library. Each area is a folder with one job:
//! - `http`: the portal's router, the REST API and the front that serves function routes;
//! - `platform`: the rules (tenants, functions, users, tokens) behind the portal and the API;
//! - `calls`: the one call pipeline, from any source to a function's answer;
//! - `run`: containers, the warm pool and the connection to a function's runtime;
//! - `build`: function images;
//! - `cluster`: worker nodes on several Docker hosts, and the front's placement of calls on them;
//! - `store`: all SQL;
//! - `schedules`: schedule triggers (cron in a time zone) and the task that runs their ticks;
//! - `vcd`: VMware Cloud Director (registration, API calls and events over AMQP);
//! - `ops`: the reconciler, purging deleted functions, service links, CPU priority;
//! - `cli`: `vcd-faas fn …`, the developer CLI (a REST API client);
//! - leaves: `config`, `auth` (passwords, tokens), `metrics`, `cache`, `amqp` (broker links).
// The OpenAPI document (`http/openapi.rs`) is one `json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

pub mod amqp;
pub mod auth;
pub mod build;
pub mod cache;
pub mod calls;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod platform;
pub mod run;
pub mod schedules;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod vcd;
