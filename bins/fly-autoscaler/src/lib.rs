//! The pieces of the `fly-autoscaler` binary, as a library so that tests and benches can drive
//! them: configuration ([`config`]), the adapter from the Fly API client to the executor
//! ([`ops`]), the reconciliation loop ([`serve`]), metric names and the `/metrics` listener
//! ([`telemetry`]), the small HTTP server behind `/metrics` and the demo ([`http`]), the
//! commands ([`cli`]) and the self-contained demo ([`demo`]).
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod ops;
pub mod serve;
pub mod telemetry;
