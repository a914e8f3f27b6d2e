//! The `roomcast` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roomcast::{Config, Role, Server, bind};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: glibc's spent ~20% of serve's CPU
/// under `posts` (its arenas shared between the tokio workers and the
/// store's threads, and their consolidation); see BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// roomcast: a realtime chat backend. With no command, runs `serve`.
#[derive(Parser)]
#[command(name = "roomcast", version, about)]
struct Cli {
    /// TOML configuration file (see `roomcast config`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: HTTP API + Socket.IO on SQLite and the in-process bus.
    Serve(ServeArgs),
    /// The stateless API tier of the split deployment (needs a shared bus and `auth.jwt_secret`).
    Api(ServeArgs),
    /// The realtime (Socket.IO) tier of the split deployment (needs a shared bus,
    /// `auth.jwt_secret` and `realtime.api_url`).
    Realtime(ServeArgs),
    /// Print the default configuration, every key documented; with
    /// `--check FILE`, check that file instead (unknown keys, bad values)
    /// without starting anything.
    Config(ConfigArgs),
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// Check this TOML file (with the `ROOMCAST_…` environment over it, as
    /// a process would load it) and exit: 0 if it is valid, 1 if not.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Listen address (overrides `listen` / ROOMCAST_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Database URL (overrides `database_url` / ROOMCAST_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// `api` only: the internal listener's address (overrides
    /// `internal.listen` / ROOMCAST_INTERNAL__LISTEN).
    #[arg(long, value_name = "ADDR")]
    internal_listen: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    let (role, args) = match command {
        Command::Config(ConfigArgs { check: None }) => {
            print!("{}", roomcast::config::DEFAULT_TOML);
            return Ok(());
        }
        Command::Config(ConfigArgs { check: Some(file) }) => {
            Config::load(Some(&file))?;
            for unknown in roomcast::strict::unknown_env(std::env::vars()) {
                eprintln!("warning: {unknown}");
            }
            println!("{}: ok", file.display());
            return Ok(());
        }
        Command::Serve(args) => (Role::Serve, args),
        Command::Api(args) => (Role::Api, args),
        Command::Realtime(args) => (Role::Realtime, args),
    };
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    if let Some(addr) = args.internal_listen {
        config.internal.listen = addr.to_string();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .with_context(|| format!("log filter {:?}", config.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for unknown in roomcast::strict::unknown_env(std::env::vars()) {
        tracing::warn!("{unknown}: ignored");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(role, config))
}

async fn serve(role: Role, config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let server = Server::build_role(role, &config, shutdown.clone()).await?;
    let internal = match (role, config.internal.listen.as_str()) {
        (Role::Api, "") => anyhow::bail!(
            "`roomcast api` needs internal.listen (--internal-listen ADDR, \
             ROOMCAST_INTERNAL__LISTEN): the realtime tier's routes are served there only"
        ),
        (Role::Api, addr) => {
            let addr: std::net::SocketAddr = addr
                .parse()
                .with_context(|| format!("internal.listen = {addr:?}"))?;
            let listener = bind(addr).with_context(|| format!("binding {addr}"))?;
            println!(
                "roomcast internal routes on http://{}",
                listener.local_addr()?
            );
            Some(listener)
        }
        (_, "") => None,
        (_, _) => anyhow::bail!("internal.listen is for `roomcast api` only"),
    };
    let listener = bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let what = match role {
        Role::Serve => format!("serve, database {}", config.database_url),
        Role::Api => format!(
            "api, database {}, bus {}",
            config.database_url, config.bus.kind
        ),
        Role::Realtime => format!(
            "realtime {}, bus {}, api {}",
            roomcast::server::node_id(&config),
            config.bus.kind,
            config.realtime.api_url
        ),
    };
    println!("roomcast listening on http://{addr} ({what})");
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.cancel();
    });
    server.run(listener, internal).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
