//! The `tessera` binary: parse the command line, load settings, start
//! logging, hand off to `cli::run`.

use std::process::ExitCode;

use clap::Parser as _;
use tessera::cli::{Cli, Command};
use tessera::config::{ConfigSources, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&ConfigSources::standard(cli.config.clone())) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    tessera::telemetry::init(&settings.log);
    let command = cli.command.unwrap_or(Command::Serve { port: None });
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(tessera::cli::run(command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
