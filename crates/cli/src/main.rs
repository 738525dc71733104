//! `gpc-tasks`: parses arguments and calls the library.

fn main() -> std::process::ExitCode {
    gpc_cli::run()
}
