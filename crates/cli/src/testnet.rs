//! `spore testnet`: spore's main job on an embedded default, on loopback only.

use crate::output::Output;

/// Arguments of `spore testnet`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Size of the generated file to share, in MiB.
    #[arg(long, default_value_t = 16)]
    pub size_mib: u64,
    /// Seed for the generated content and every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the local network.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    out.result(
        &serde_json::json!({ "size_mib": args.size_mib, "seed": args.seed }),
        || "testnet: nothing to run yet".to_string(),
    );
    Ok(())
}
