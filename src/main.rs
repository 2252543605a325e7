//! The binary: parse the configuration, set up logging, run the chosen subcommand.

use clap::Parser;
use orderdesk::{
    app::{Application, shutdown_signal},
    cli,
    config::{AdminCommand, BenchTarget, Cli, Command},
    db::Db,
    telemetry,
};

/// mimalloc instead of glibc's malloc: imports allocate per XML node and per row, and glibc's
/// malloc and free took about 15 % of an import's CPU (perf, `bench import`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { config, command } = Cli::parse();
    telemetry::init_tracing(config.log_format);
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            println!("orderdesk is running at {}", app.state().config.public_url());
            if let Some(sim) = app.simulator_url() {
                println!("built-in Yahoo!ショッピング simulator at {sim} (demo-client / demo-secret)");
            }
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = Db::connect(config.database_url.as_ref().map(|u| u.expose()), &config.data_dir).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend_name());
            Ok(())
        }
        Command::Admin { command: AdminCommand::Create { email, name } } => {
            let password = std::env::var("ORDERDESK_ADMIN_PASSWORD").ok();
            cli::admin::create(&config, &email, &name, password).await
        }
        Command::Simulator { redirect_uris, no_demo } => cli::simulator::run(&config, redirect_uris, no_demo).await,
        Command::Bench { target: BenchTarget::Simulator { seconds, concurrency, orders } } => {
            cli::bench::simulator_order_info(seconds, concurrency, orders).await
        }
        Command::Bench { target: BenchTarget::Import { orders, postgres, limited_orders, rate, rules } } => {
            cli::bench::import(orders, postgres, limited_orders, rate, rules).await
        }
        Command::Bench { target: BenchTarget::Admin { postgres } } => cli::bench_admin::admin(postgres).await,
        Command::Bench {
            target:
                BenchTarget::Orders {
                    orders,
                    stores,
                    seconds,
                    concurrency,
                    postgres,
                    csv_orders,
                    skip_sqlite,
                    max_load,
                    wait_secs,
                    keep,
                    only,
                },
        } => {
            let options = cli::bench_orders::Options {
                orders,
                stores,
                seconds,
                concurrency,
                postgres,
                csv_orders,
                skip_sqlite,
                max_load,
                wait_secs,
                keep,
                only,
            };
            cli::bench_orders::run(options).await
        }
        Command::Bench {
            target: BenchTarget::Fleet { postgres, stores, processes, warmup_secs, measure_secs, orders_per_store_day },
        } => {
            let options = cli::bench_fleet::Options {
                postgres,
                stores,
                processes,
                warmup_secs,
                measure_secs,
                orders_per_store_day,
            };
            cli::bench_fleet::fleet(options).await
        }
        Command::Bench { target: BenchTarget::OrdersServer } => cli::bench_orders::serve_child(config).await,
        Command::Bench { target: BenchTarget::Stock { codes, postgres } } => {
            cli::bench_stock::stock(codes, postgres).await
        }
        Command::Bench { target: BenchTarget::Shipping { orders, postgres } } => {
            cli::bench_shipping::shipping(orders, postgres).await
        }
        Command::Bench { target: BenchTarget::Mail { mails, orders, smtp, postgres } } => {
            cli::bench_mail::mail(mails, orders, smtp, postgres).await
        }
        Command::Bench { target: BenchTarget::Documents { orders, lines, postgres } } => {
            cli::bench_documents::documents(orders, lines, postgres).await
        }
    }
}
