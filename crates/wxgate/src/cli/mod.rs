//! The command line: one module per subcommand. Doc comments are the help text.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod serve;

/// wxgate: a WeChat Official Account callback gateway and toolkit.
///
/// Run `wxgate serve` with no arguments for a demo account on http://127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "wxgate", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the callback gateway.
    Serve(serve::ServeArgs),
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the subcommand reports; `main` prints it and exits 1.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
