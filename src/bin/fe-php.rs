//! `fe-php`: the harness binary (`fe-php serve --config config.toml`, `fe-php bench ...`).

fn main() -> std::process::ExitCode {
    // The executor pool's supervisor, exec'd by its owner (nginx with fephp_executor_binary).
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == fephp::executor::EXEC_COMMAND {
        fephp::executor::exec_main(&args[2]);
    }
    fephp::harness::cli::main()
}
