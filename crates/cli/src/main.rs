//! `gpc-tasks`: parses arguments and calls the library.

/// mimalloc rather than the system allocator: a request parses and drops
/// many small JSON values, and bench/run measured the difference (README,
/// Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gpc_cli::run()
}
