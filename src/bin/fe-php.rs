//! `fe-php`: the harness binary (`fe-php serve --config config.toml`, `fe-php bench ...`).

fn main() -> std::process::ExitCode {
    fephp::harness::cli::main()
}
