//! The command line: one module per subcommand. Doc comments are the help text.
//!
//! Exit status for every command: 0 all good, 1 problems found, 2 usage error.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wxgate_proto::console::Mode;

pub mod check;
pub mod completions;
pub mod doctor;
pub mod emulate;
pub mod health;
pub mod inbox;
pub mod init;
pub use crate::probe;
mod release_test;
pub mod reload;
pub mod serve;
pub mod sign;
pub mod sim;
pub mod status;
pub mod url;

/// wxgate: a WeChat Official Account callback gateway and toolkit.
///
/// Run `wxgate serve` with no arguments for a demo account on http://127.0.0.1:8080.
/// Exit status: 0 all good, 1 problems found, 2 usage error.
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
    Serve(serve::ServeArgs),
    Init(init::InitArgs),
    Check(check::CheckArgs),
    Sign(sign::SignArgs),
    Url(url::UrlArgs),
    Sim(sim::SimArgs),
    Doctor(doctor::DoctorArgs),
    Emulate(emulate::EmulateArgs),
    Inbox(inbox::InboxArgs),
    Status(status::StatusArgs),
    Health(health::HealthArgs),
    Reload(reload::ReloadArgs),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
}

/// The security modes, as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// 明文模式.
    Plain,
    /// 兼容模式.
    Compat,
    /// 安全模式.
    Safe,
}

/// The data formats (数据格式 of a mini-program), as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// XML (every Official Account; a mini-program's default).
    Xml,
    /// JSON (mini-programs and mini-games only).
    Json,
}

/// The kinds of account (`kind` in wxgate.toml), as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// An Official Account (公众号).
    #[value(name = "official_account")]
    OfficialAccount,
    /// A mini-program (小程序).
    #[value(name = "miniprogram")]
    MiniProgram,
    /// A mini-game (小游戏).
    #[value(name = "minigame")]
    MiniGame,
    /// A WeCom application (企业微信 自建应用).
    #[value(name = "wecom")]
    WeCom,
}

impl From<KindArg> for crate::config::AccountKind {
    fn from(kind: KindArg) -> crate::config::AccountKind {
        use crate::config::AccountKind;
        match kind {
            KindArg::OfficialAccount => AccountKind::OfficialAccount,
            KindArg::MiniProgram => AccountKind::MiniProgram,
            KindArg::MiniGame => AccountKind::MiniGame,
            KindArg::WeCom => AccountKind::WeCom,
        }
    }
}

impl From<FormatArg> for wxgate_proto::Format {
    fn from(format: FormatArg) -> wxgate_proto::Format {
        match format {
            FormatArg::Xml => wxgate_proto::Format::Xml,
            FormatArg::Json => wxgate_proto::Format::Json,
        }
    }
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Plain => Mode::Plain,
            ModeArg::Compat => Mode::Compat,
            ModeArg::Safe => Mode::Safe,
        }
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the subcommand reports; `main` prints it and exits 1.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Url(args) => url::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Emulate(args) => emulate::run(args),
        Command::Inbox(args) => inbox::run(args),
        Command::Status(args) => status::run(args),
        Command::Health(args) => health::run(args),
        Command::Reload(args) => reload::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

/// Where the local server is: the address a running `serve` wrote to
/// `data_dir/serve.addr` (so `serve --listen` is followed), else `listen` from the
/// config; an unspecified IP as loopback.
pub(crate) fn local_server(config: &crate::config::Config) -> std::net::SocketAddr {
    crate::storage::files::ServeAddr::read(&config.data_dir)
        .unwrap_or_else(|| crate::storage::files::reachable(config.listen))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
