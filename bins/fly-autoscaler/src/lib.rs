//! The pieces of the `fly-autoscaler` binary, as a library so that tests and benches can drive them.
pub mod config;
