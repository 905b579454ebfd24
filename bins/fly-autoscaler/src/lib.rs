//! The pieces of the `fly-autoscaler` binary, as a library so that tests and benches can drive
//! them: configuration ([`config`]), the Fly API seam ([`fly`]) and the adapter from the Fly API
//! client to the executor ([`ops`]), one app's tick ([`tick`]) and what it remembers of its
//! creates ([`creates`]), the coordination of replicas through PostgreSQL ([`coord`]), what a failed collection becomes ([`fallback`]), the loop that schedules ticks ([`schedule`]), what a tick records and
//! logs ([`report`]), metric names and the `/metrics` listener ([`telemetry`]), the push trigger
//! ([`trigger`]), the small HTTP
//! server behind `/metrics` and the demo ([`http`]), the commands ([`cli`]) and the
//! self-contained demo ([`demo`]).
pub mod cli;
pub mod config;
pub mod context;
pub mod coord;
pub mod creates;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fallback;
pub mod fly;
pub mod http;
pub mod named;
pub mod ops;
pub mod page;
pub mod pending;
pub mod reload;
pub mod report;
pub mod schedule;
pub mod simulate;
pub mod status;
pub mod status_cli;
pub mod store;
pub mod telemetry;
pub mod tick;
pub mod trigger;
