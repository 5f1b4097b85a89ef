//! The `cairn` binary: parse, set up logging, run, map the outcome to an exit code.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use cairn::commands::output::{self, ending};
use cairn::exit::Exit;
use clap::Parser;

fn main() -> ExitCode {
    cairn::allocator::release_large_blocks();
    std::panic::set_hook(Box::new(|info| ending::report_bug(&info.to_string())));
    let cli = match cairn::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(ending::usage_error(&error)),
    };
    output::set_json(cli.global.json);
    cairn::logging::init(cli.global.verbose, cli.global.quiet, cli.global.json);
    let code = match catch_unwind(AssertUnwindSafe(|| cairn::commands::run(cli))) {
        Ok(Ok(exit)) => ending::finish(exit.or_partial()),
        Ok(Err(error)) => ending::report(&error),
        // The hook has said what happened; a bug is an error like any other, not exit 101.
        Err(_) => Exit::Error,
    };
    ExitCode::from(code as u8)
}
