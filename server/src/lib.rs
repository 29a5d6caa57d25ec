//! vcd-faas: the server binary's library — platform, HTTP surfaces, and the wiring of both.

pub mod amqp;
pub mod api;
pub mod async_calls;
pub mod async_queue;
pub mod auth;
pub mod builder;
pub mod cache;
pub mod config;
pub mod engine;
pub mod gateway;
pub mod invoke;
pub mod journal;
pub mod links;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod reconciler;
pub mod runner;
pub mod runtimes;
pub mod service;
pub mod sessions;
pub mod shim_connection;
pub mod startup;
pub mod state;
pub mod store;
pub mod vcd;
