use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wxgate::cli::Cli::parse();
    match wxgate::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(1)
        }
    }
}
