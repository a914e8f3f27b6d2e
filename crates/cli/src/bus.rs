//! Choosing and connecting the bus backend from `[bus]`.

use std::sync::Arc;

use anyhow::bail;
use roomcast_bus::{Bus, MemoryBus};

use crate::config::Config;
use crate::server::Role;

/// Connect the configured bus. The in-process bus only makes sense inside one
/// process, so `api` and `realtime` refuse it.
pub async fn connect(role: Role, config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    let kind = config.bus.kind.as_str();
    let bus: Arc<dyn Bus> = match kind {
        "memory" if role == Role::Serve => Arc::new(MemoryBus::new()),
        "memory" => bail!(
            "bus.kind = \"memory\" works only inside `roomcast serve`; the split tiers need \
             a shared bus: set bus.kind to \"nats\", \"redis\" or \"gcp\""
        ),
        "nats" => roomcast_bus_nats::connect(&config.bus.nats).await?,
        "redis" => roomcast_bus_redis::connect(&config.bus.redis).await?,
        "gcp" => roomcast_bus_gcp::connect(&config.bus.gcp).await?,
        other => bail!("bus.kind = {other:?}: expected memory, nats, redis or gcp"),
    };
    tracing::info!(bus = bus.name(), "bus connected");
    Ok(bus)
}
