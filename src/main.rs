//! ci-gate's entry point: parse the command line, run the command, map the outcome to an exit
//! code (0 pass, 1 the gate found errors, 2 bad input, 3 environment).

use std::process::ExitCode;

use clap::Parser;

use ci_gate::cli::{Cli, Command};
use ci_gate::commands;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap: help/version are not errors; usage errors are bad input.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Rules => commands::rules(),
        Command::Explain { rule } => commands::explain(&rule),
        Command::Verify(args) => commands::verify(&args),
    }
}
