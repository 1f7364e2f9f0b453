//! The `tokenmint` binary: parse the command line, load the configuration,
//! start logging, hand over to `tokenmint::cli`.

use std::process::ExitCode;

use clap::Parser;
use tokenmint::cli::{Cli, run};
use tokenmint::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tokenmint: {e}");
            return ExitCode::from(2);
        }
    };
    tokenmint::telemetry::init_logging(&config);
    match actix_web::rt::System::new().block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenmint: {e:#}");
            ExitCode::FAILURE
        }
    }
}
