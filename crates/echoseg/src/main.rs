//! The `echoseg` command: see `echoseg --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // before the first tensor: every training step then reuses the last one's memory
    echoseg_kernels::keep_freed_memory();
    match echoseg::run_cli(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", echoseg::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}
