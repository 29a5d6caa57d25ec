//! Running functions: the Docker engine, containers, the warm pool, the runtime connection.

pub mod egress;
pub mod engine;
pub mod job;
pub mod pool;
pub mod runner;
pub mod shim_connection;
pub mod stems;
