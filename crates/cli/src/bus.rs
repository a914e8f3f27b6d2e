//! Choosing and connecting the bus backend from `[bus]`.

use std::sync::Arc;

use anyhow::bail;
use roomcast_bus::{Bus, MemoryBus};

use crate::config::{BusKind, Config};
use crate::server::Role;

/// Connect the configured bus. The in-process bus only makes sense inside one
/// process, so `api` and `realtime` refuse it.
pub async fn connect(role: Role, config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    let bus: Arc<dyn Bus> = match config.bus.kind {
        BusKind::Memory if role == Role::Serve => Arc::new(MemoryBus::new()),
        BusKind::Memory => bail!(
            "bus.kind = \"memory\" works only inside `roomcast serve`; the split tiers need \
             a shared bus: set bus.kind to \"nats\", \"redis\" or \"gcp\""
        ),
        BusKind::Nats => roomcast_bus_nats::connect(&config.bus.nats).await?,
        BusKind::Redis => roomcast_bus_redis::connect(&config.bus.redis).await?,
        BusKind::Gcp => roomcast_bus_gcp::connect(&config.bus.gcp).await?,
    };
    tracing::info!(bus = bus.name(), "bus connected");
    Ok(bus)
}
