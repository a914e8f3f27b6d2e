//! The `roomcast` binary's library half: configuration and process assembly.
//!
//! # Layout
//! - [`config`]: the typed config tree, its documented defaults, and loading
//!   (defaults → TOML file → `ROOMCAST_…` environment → flags).
//! - [`strict`]: unknown keys in the file (an error) or the environment (a
//!   warning), each named with the closest valid key.
//! - [`bus`]: picks and connects the bus backend.
//! - [`membership`]: the gateway's membership answered by the store (`serve`).
//! - [`secret`]: where the JWT secret comes from when none is configured.
//! - [`ready`]: `GET /readyz`, each dependency checked.
//! - [`server`]: builds `roomcast serve` (store, bus, API, gateway, relay) and
//!   runs it on a listener until a shutdown signal.
//! - `main.rs`: the command line.

pub mod bus;
pub mod config;
pub mod membership;
pub mod ready;
pub mod secret;
pub mod server;
pub mod strict;

pub use config::Config;
pub use server::{Role, Server, bind};
