//! The `cairn` binary: parse, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use cairn::exit::Exit;
use clap::Parser;

fn main() -> ExitCode {
    cairn::allocator::release_large_blocks();
    let cli = cairn::cli::Cli::parse();
    cairn::logging::init(cli.global.verbose, cli.global.quiet);
    let code = match cairn::commands::run(cli) {
        Ok(exit) => exit.or_partial(),
        Err(error) => {
            let exit = Exit::for_error(&error);
            eprintln!("error: {error:#}");
            if let Some(hint) = exit.hint() {
                eprintln!("hint: {hint}");
            }
            exit
        }
    };
    ExitCode::from(code as u8)
}
