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
    let args = match minichain::cli::config::merge_config_file(std::env::args_os().collect(), |k| {
        std::env::var(k).ok()
    }) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let cli = minichain::cli::Cli::parse_from(args);
    match minichain::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: library errors already quote
/// their source in their own message, so a cause that is already in the text is skipped.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
