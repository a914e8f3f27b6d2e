//! The `roomcast` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roomcast::{Config, Server, bind};
use tokio_util::sync::CancellationToken;

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
    /// The stateless API tier of the split deployment.
    Api(ServeArgs),
    /// The realtime (Socket.IO) tier of the split deployment.
    Realtime(ServeArgs),
    /// Print the default configuration, every key documented.
    Config,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Listen address (overrides `listen` / ROOMCAST_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Database URL (overrides `database_url` / ROOMCAST_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    let args = match command {
        Command::Config => {
            print!("{}", roomcast::config::DEFAULT_TOML);
            return Ok(());
        }
        Command::Api(_) | Command::Realtime(_) => {
            eprintln!(
                "roomcast: `api` and `realtime` are the split deployment and need a distributed bus \
                 (Pub/Sub, NATS or Redis); they arrive with issue #4. Run `roomcast serve` meanwhile."
            );
            std::process::exit(2);
        }
        Command::Serve(args) => args,
    };
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .with_context(|| format!("log filter {:?}", config.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let server = Server::build(&config, shutdown.clone()).await?;
    let listener = bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "roomcast listening on http://{addr} (database {})",
        config.database_url
    );
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.cancel();
    });
    server.run(listener).await?;
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
