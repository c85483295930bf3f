//! `wxgate completions SHELL` and `wxgate man`: generated from the command-line
//! definition by clap, so they never fall behind it.

use std::process::ExitCode;

use clap::{Args, CommandFactory};

/// Print a shell completion script to stdout.
///
/// Examples:
///   wxgate completions bash > /etc/bash_completion.d/wxgate
///   wxgate completions zsh > "${fpath[1]}/_wxgate"
///   wxgate completions fish > ~/.config/fish/completions/wxgate.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// Print the manual page (roff) to stdout.
///
/// Examples:
///   wxgate man > /usr/local/share/man/man1/wxgate.1
///   wxgate man | man -l -
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {}

/// Runs `wxgate completions`.
///
/// # Errors
/// Never in practice (writing to stdout).
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "wxgate", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Runs `wxgate man`.
///
/// # Errors
/// Stdout cannot be written.
pub fn man(_args: ManArgs) -> anyhow::Result<ExitCode> {
    let page = clap_mangen::Man::new(super::Cli::command());
    page.render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
