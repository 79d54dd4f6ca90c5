//! Runs the OmniDimension simulator like `dialerd simulate`, for trying it
//! (and the SDK test) without the full CLI:
//! `cargo run --example simulate -- --listen 127.0.0.1:8787 --seed 7`.

use clap::Parser;
use dialerd::sim::{self, SimOptions};

/// `simulate` with its `--listen` address.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    #[command(flatten)]
    sim: SimOptions,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "simulator listening on http://{}/api/v1",
        listener.local_addr()?
    );
    sim::serve(listener, args.sim, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
