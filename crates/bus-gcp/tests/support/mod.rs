//! What the emulator tests share: finding Google's Pub/Sub emulator (a test
//! fails, never skips, when it is not there) and a config for a fresh project.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use roomcast_bus_gcp::Config;
use roomcast_bus_gcp::config::EMULATOR_ENV;
use roomcast_core::RoomId;

const HOW: &str = "start it with scripts/start-pubsub-emulator, then \
                   export PUBSUB_EMULATOR_HOST=127.0.0.1:8085";

/// `PUBSUB_EMULATOR_HOST`, after checking that something listens there.
/// Panics with instructions if it is unset or nothing answers.
pub fn emulator_host() -> String {
    let host = std::env::var(EMULATOR_ENV).unwrap_or_default();
    assert!(
        !host.is_empty(),
        "{EMULATOR_ENV} is not set: these tests need Google's Pub/Sub emulator; {HOW}"
    );
    let listening = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        listening,
        "nothing listens at {EMULATOR_ENV}={host}: these tests need Google's Pub/Sub emulator; {HOW}"
    );
    host
}

/// A config for the emulator in a project of its own (`<what>-<unique>`), so
/// tests never see each other's topics or subscriptions.
pub fn config(what: &str) -> Config {
    Config {
        project: format!("{what}-{}", RoomId::new().0.simple()),
        emulator_host: emulator_host(),
        ..Config::default()
    }
}
