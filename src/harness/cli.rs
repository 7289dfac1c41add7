//! Command-line interface of the `fe-php` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fe-php: serve PHP through the fe-php engine (harness and load generator).
#[derive(Debug, Parser)]
#[command(name = "fe-php", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve PHP over HTTP with the backend chosen in the config (`php.use_fpm`).
    Serve {
        /// Path of config.toml.
        #[arg(long, short)]
        config: PathBuf,
        /// Embedded mode: number of serving processes (default: CPU count). Ignored with FPM.
        #[arg(long)]
        workers: Option<usize>,
        /// Log per-request lines too.
        #[arg(long)]
        verbose: bool,
    },
    /// Load-test an HTTP/1.1 URL (closed loop, or open loop with `--rps`).
    Bench(Box<super::bench::BenchArgs>),
}

/// Parses the command line and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, workers, verbose } => {
            if verbose {
                crate::log::set_max_level(crate::log::Level::Debug);
            }
            match super::serve::run(&config, workers) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fe-php: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench(args) => bench(&args),
    }
}

/// `fe-php bench`: runs, prints the report; exit 1 when the target is unreachable or no
/// request got a response.
fn bench(args: &super::bench::BenchArgs) -> ExitCode {
    match super::bench::run(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            if report.stats.responses() == 0 {
                eprintln!("fe-php bench: no responses received");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fe-php bench: {e}");
            ExitCode::from(1)
        }
    }
}
