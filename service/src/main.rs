//! `bank-service`: runs one service of the reference system.
//!
//! ```text
//! bank-service external    --listen 127.0.0.1:0 --db ext.db    [fault knobs]
//! bank-service ledger      --listen 127.0.0.1:0 --db ledger.db [fault knobs] [policy]
//! bank-service coordinator --listen 127.0.0.1:0 --db saga.db --external-url URL --ledger-url URL
//! ```
//! Each prints `listening on http://ADDR` on stdout once it accepts connections, logs to
//! stderr, and stops gracefully on SIGTERM. The roles live in `service::cli`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "bank-service",
    version,
    about = "BankTransfer reference system services"
)]
struct Cli {
    #[command(subcommand)]
    role: service::cli::Role,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service::server::init_logging();
    service::cli::run(Cli::parse().role).await
}
