//! Smoke test of `benches/compare.sh`: a tiny run (1 s, one round, concurrency 16, two
//! workloads) into a temp dir, then RESULTS.md must have a row for every configuration —
//! measured for the available ones, "not available" for the others. No timing assertions.

use std::path::Path;
use std::process::Command;

#[test]
fn compare_script_writes_a_row_per_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(root.join("benches/compare.sh"))
        .env("COMPARE_BUILD", "0")
        .env("FEPHP_BIN", env!("CARGO_BIN_EXE_fe-php"))
        .env("COMPARE_DURATION", "1")
        .env("COMPARE_WARMUP", "0")
        .env("COMPARE_ROUNDS", "1")
        .env("COMPARE_CONCURRENCY", "16")
        .env("COMPARE_WORKLOADS", "hello io")
        .env("COMPARE_OUT", out.path())
        .status()
        .expect("bash runs benches/compare.sh");
    assert!(status.success(), "compare.sh failed: {status}");

    let results = std::fs::read_to_string(out.path().join("RESULTS.md")).expect("RESULTS.md written");
    let svg = std::fs::read_to_string(out.path().join("compare.svg")).expect("compare.svg written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let raw = std::fs::read_to_string(out.path().join("raw.tsv")).unwrap();

    let section = |title: &str| -> String {
        let start = results.find(title).unwrap_or_else(|| panic!("no section {title:?} in\n{results}"));
        let rest = &results[start..];
        rest[..rest[1..].find("\n## ").map_or(rest.len(), |e| e + 1)].to_string()
    };
    let configs = section("## Configurations");
    let hello = section("## hello world");
    let io = section("## io: usleep 20 ms");
    for (label, name) in [
        ("nginx `return 200` (ceiling)", "nginx-return200"),
        ("nginx fastcgi_pass + php-fpm (Debian's snippet)", "nginx-fastcgi-fpm-close"),
        ("nginx fastcgi_pass + php-fpm, upstream keep-alive", "nginx-fastcgi-fpm"),
        ("nginx fephp_pass → php-fpm", "nginx-fephp-fpm"),
        ("nginx fephp_pass embedded", "nginx-fephp-embedded"),
        ("nginx fephp_pass executors", "nginx-fephp-executors"),
        ("fe-php serve → php-fpm", "serve-fpm"),
        ("fe-php serve embedded", "serve-embedded"),
    ] {
        let line = configs.lines().find(|l| l.starts_with(&format!("| {label}"))).unwrap_or_else(|| panic!("{label} missing:\n{configs}"));
        let row = hello.lines().find(|l| l.starts_with(&format!("| {label}"))).unwrap_or_else(|| panic!("{label} has no hello row:\n{hello}"));
        if line.contains("| ok |") {
            // Measured: a row with the concurrency and a figure, and a raw line.
            assert!(row.starts_with(&format!("| {label} | 16 | ")) && !row.contains("no result"), "{row}");
            assert!(raw.lines().any(|l| l.split('\t').nth(1) == Some(name)), "{name} not in raw.tsv:\n{raw}");
            // CPU per request measured (a figure in µs) next to RPS.
            assert!(row.split(" | ").any(|cell| cell.ends_with(" µs") && !cell.starts_with("0.0")), "{label}: no CPU/request in {row}");
            if name != "nginx-return200" {
                assert!(io.lines().any(|l| l.starts_with(&format!("| {label} | 16 | "))), "{label} io row:\n{io}");
            }
        } else {
            assert!(line.contains("not available"), "{line}");
            assert!(row.contains("not available"), "{row}");
        }
    }
}
