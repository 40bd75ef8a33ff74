//! `hfi-sim serve --socket PATH [--scenario FILE] [--device-id ID] [--stats]`: the device model
//! as a vfio-user server until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Args;

use super::say;
use crate::harness::{runner, scenario};
use crate::world::node::NodeConfig;
use crate::world::serve;

/// Flags of `hfi-sim serve`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct ServeArgs {
    /// The UNIX socket to listen on (mode 0600; an existing socket there is replaced).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Take the served device, peer and rendezvous parameters from this scenario file.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// PCI device ID, hexadecimal (0x24f0 or 0x24f1).
    #[arg(long, value_name = "ID", value_parser = parse_device_id)]
    pub device_id: Option<u16>,
    /// Print the server's and the device's counters as JSON at exit.
    #[arg(long)]
    pub stats: bool,
}

/// A PCI device ID: a hexadecimal u16, with or without `0x`.
pub fn parse_device_id(v: &str) -> Result<u16, String> {
    let hex = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
    u16::from_str_radix(hex, 16).map_err(|_| format!("{v} is not a hexadecimal u16"))
}

impl ServeArgs {
    /// Serves until a signal.
    pub fn run(self) -> Result<bool, String> {
        let mut cfg = NodeConfig::default();
        if let Some(p) = &self.scenario {
            let s = scenario::load_file(p).map_err(|e| e.to_string())?;
            // The served device, peer and rendezvous parameters come from the scenario (its
            // first policy: the policy itself is the client driver's choice).
            let policy = s.policies.first().copied().unwrap_or_default();
            cfg = runner::node_config(&s, policy);
        }
        let mut served = serve::served_config(&cfg);
        served.device_id = self.device_id.unwrap_or(served.device_id);
        let counters = serve::run_served(&self.socket, served)?;
        if self.stats {
            let json = serde_json::to_string_pretty(&counters).map_err(|e| e.to_string())?;
            say(&format!("{json}\n"));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_hexadecimal() {
        assert_eq!(parse_device_id("0x24f1"), Ok(0x24f1));
        assert_eq!(parse_device_id("0X24F0"), Ok(0x24f0));
        assert_eq!(parse_device_id("24f0"), Ok(0x24f0));
        assert!(parse_device_id("0x10000").is_err());
        assert!(parse_device_id("zz").is_err());
    }
}
