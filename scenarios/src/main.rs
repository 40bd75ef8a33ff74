//! `hfi-sim`: the command-line entry point (filled by the driver-caching issue).

fn main() {}
