//! The `echoseg` command: see `echoseg --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match echoseg::run_cli(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", echoseg::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}
