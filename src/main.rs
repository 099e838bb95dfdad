//! The `minichain` binary: parse the command line, run it, report errors on one line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A closed pipe (`minichain peers | head`) should end the program quietly, as it does
    // for every other command-line tool, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: setting SIGPIPE's disposition to the default before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // glibc gives every thread that allocates its own arena (up to 8 per core) and keeps
    // what each freed: a sync, whose blocks are decoded, checked and written on different
    // threads, peaked at 300-330 MiB that way and at ~250 MiB with two arenas, as fast
    // (a 500,000-transaction sync, scripts/bench.sh). `MALLOC_ARENA_MAX` still overrides.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    let args = match minichain::cli::config::merge_config_file(std::env::args_os().collect(), |k| {
        std::env::var(k).ok()
    }) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {}", minichain::cli::one_line(&e));
            return ExitCode::from(2);
        }
    };
    let cli = minichain::cli::Cli::parse_from(args);
    match minichain::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The node writes its fatal error through its logger (the log file, JSON); the
        // rest say it here.
        Err(e) if e.downcast_ref::<minichain::cli::Logged>().is_some() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", minichain::cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
