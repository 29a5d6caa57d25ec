//! Function images: build contexts, the runtimes' base images, dependency installs, the build
//! worker.

pub mod builder;
pub mod deps;
pub mod failure;
pub mod relay;
pub mod runtimes;
