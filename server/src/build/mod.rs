//! Function images: build contexts, the runtimes' base images, the build worker.

pub mod builder;
pub mod runtimes;
