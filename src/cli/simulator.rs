//! `orderdesk simulator`: the Yahoo!ショッピング simulator alone, on its own port.

use crate::{
    app::shutdown_signal,
    config::Config,
    simulator::{self, Simulator},
};

pub async fn run(config: &Config, redirect_uris: Vec<String>, no_demo: bool) -> anyhow::Result<()> {
    let sim = Simulator::bind(config.simulator_listen, simulator::Settings::default()).await?;
    if !no_demo {
        let uris = if redirect_uris.is_empty() { vec![config.redirect_uri()] } else { redirect_uris };
        let key_file = config.data_dir.join("simulator").join("demo-key.pem");
        simulator::seed_demo(sim.state(), uris, Some(&key_file)).await?;
    }
    println!("Yahoo!ショッピング simulator is running at {}", sim.base_url());
    sim.run_until(shutdown_signal()).await?;
    Ok(())
}
