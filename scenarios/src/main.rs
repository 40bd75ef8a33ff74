//! `hfi-sim`: the command-line entry point; the subcommands are [`scenarios::cli`].

fn main() -> std::process::ExitCode {
    scenarios::cli::main()
}
