//! Differential parity: every script of the corpus in `tests/parity/` runs through the FPM
//! backend (REAL php-fpm) and the embedded backend (REAL libphp), both behind `fe-php serve`,
//! against the same document root and the same php.ini. Status, headers (minus the volatile
//! ones listed in [`VOLATILE_HEADERS`]) and body must be identical.

mod support;

use std::path::{Path, PathBuf};

use support::{http, Fpm, Harness, HttpResponse};

/// Headers whose values legitimately differ between two runs of the same request.
const VOLATILE_HEADERS: &[&str] = &["date"];

struct Case {
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Vec<u8>,
}

fn get(target: &'static str) -> Case {
    Case { method: "GET", target, headers: &[], body: Vec::new() }
}

fn with(method: &'static str, target: &'static str, headers: &'static [(&'static str, &'static str)], body: &[u8]) -> Case {
    Case { method, target, headers, body: body.to_vec() }
}

fn multipart() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"--B0undary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello world\r\n");
    b.extend_from_slice(b"--B0undary\r\nContent-Disposition: form-data; name=\"list[]\"\r\n\r\none\r\n");
    b.extend_from_slice(b"--B0undary\r\nContent-Disposition: form-data; name=\"list[]\"\r\n\r\ntwo\r\n");
    b.extend_from_slice(b"--B0undary\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\n");
    b.extend((0..50_000).map(|i| b"abcdefghij"[i % 10]));
    b.extend_from_slice(b"\r\n--B0undary\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n");
    b.extend_from_slice(b"--B0undary--\r\n");
    b
}

const FORM: &[(&str, &str)] = &[("Content-Type", "application/x-www-form-urlencoded")];
const MULTIPART: &[(&str, &str)] = &[("Content-Type", "multipart/form-data; boundary=B0undary")];
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

fn corpus() -> Vec<Case> {
    vec![
        get("/hello.php"),
        get("/get_params.php?a=1&b[]=2&b[]=3&c[k]=v&enc=%C3%BC%20x&empty="),
        with("POST", "/post_urlencoded.php", FORM, b"x=1&y[]=a&y[]=b&z=J%C3%BCrgen+M"),
        with("POST", "/post_multipart.php", MULTIPART, &multipart()),
        with("POST", "/upload_error.php", MULTIPART, &multipart()),
        with("GET", "/cookies.php", &[("Cookie", "a=1; b=two%20words; arr[x]=y")], b""),
        with("POST", "/request_merge.php?g=1&both=get", &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "c=1")], b"p=2&both=post"),
        with("GET", "/server_subset.php/extra/path?q=1", &[("X-Parity", "yes"), ("Cookie", "s=1")], b""),
        with("POST", "/server_subset.php", FORM, b"a=b"),
        with("PUT", "/php_input.php", &[("Content-Type", "application/octet-stream")], &[7u8; 300_000]),
        with("POST", "/php_input.php", FORM, b"a=1&b=2"),
        get("/header_set.php"),
        get("/header_remove.php"),
        get("/response_code.php"),
        get("/response_code_get.php"),
        get("/setcookie_multi.php"),
        get("/redirect.php"),
        get("/redirect_301.php"),
        get("/redirect_201_location.php"),
        with("HEAD", "/head.php", &[], b""),
        get("/head.php"),
        get("/ob_flush.php"),
        get("/ob_nested.php"),
        get("/exit_mid.php"),
        get("/die_message.php"),
        get("/shutdown_function.php"),
        get("/session.php"),
        get("/session.php"),
        get("/ignore_user_abort.php"),
        get("/fatal_error.php"),
        get("/hello.php"),
        get("/uncaught_exception.php"),
        get("/exception_handler.php"),
        get("/memory_limit.php"),
        get("/hello.php"),
        get("/time_limit.php"),
        get("/hello.php"),
        get("/warning.php"),
        get("/notice_undefined_var.php"),
        get("/json_1000.php"),
        get("/large_output.php"),
        get("/content_type.php"),
        get("/status_header.php"),
        get("/status_reason_custom.php"),
        get("/status_reason_table.php"),
        get("/status_reason_header.php"),
        get("/status_reason_ok.php"),
        get("/headers_list.php"),
        get("/headers_sent.php"),
        get("/path_info.php/a/b%20c"),
        get("/path_info.php"),
        get("/utf8.php"),
        get("/empty_body.php"),
        get("/no_content_204.php"),
        get("/cwd.php"),
        get("/cwd.php"),
        get("/umask.php"),
        get("/umask.php"),
        get("/putenv.php"),
        get("/putenv.php"),
        with("GET", "/getenv_server.php", &[("X-Parity", "env")], b""),
        get("/include_file.php"),
        get("/static_counter.php"),
        get("/static_counter.php"),
        get("/error_log.php"),
        get("/setlocale.php"),
        get("/setlocale.php"),
        get("/header_after_output.php"),
        get("/sapi_info.php"),
        get("/opcache.php"),
        get("/env_isolation.php"),
        with("DELETE", "/method_echo.php", &[], b""),
        with("PATCH", "/method_echo.php", &[("Content-Type", "text/plain")], b"patched"),
        get("/flush_chunks.php"),
        get("/finish_request.php"),
        get("/userini/show.php"),
        get("/userini/sub/show.php"),
        get("/hello.php"),
        get("/hello.php"),
        with("POST", "/post_json.php", JSON, br#"{"k":[1,2,{"x":null}]}"#),
        get("/missing.php"),
        get("/lib/../hello.php"),
    ]
}

fn parity_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity")
}

/// Status line (code and reason), headers without volatile ones (and Set-Cookie's relative
/// Max-Age normalised), body.
fn normalise(r: &HttpResponse) -> (String, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers
        .iter()
        .filter(|(n, _)| !VOLATILE_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| {
            let v = match v.find("Max-Age=") {
                Some(i) => {
                    let end = v[i..].find(';').map(|e| i + e).unwrap_or(v.len());
                    format!("{}Max-Age=N{}", &v[..i], &v[end..])
                }
                None => v.clone(),
            };
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    (format!("{} {}", r.status, r.reason), headers, r.body.clone())
}

#[test]
fn fpm_and_embedded_give_identical_responses() {
    let root = parity_root();
    let ini = support::test_php_ini();
    let fpm = Fpm::start_unix(2);
    let fpm_harness = Harness::start(&root, &format!("use_fpm = true\nfpm_socket = \"{}\"\n", fpm.address));
    let sessions = tempfile::tempdir().unwrap();
    let embedded_toml = format!(
        "use_fpm = false\nini_file = \"{}\"\n[php.ini]\nsession.save_path = \"{}\"\n",
        ini.display(),
        sessions.path().display()
    );
    let embedded = Harness::start_with_args(&root, &embedded_toml, &["--workers", "1"]);

    let cases = corpus();
    assert!(cases.len() >= 40);
    let mut differences = Vec::new();
    for case in &cases {
        let a = http(fpm_harness.addr, case.method, case.target, case.headers, &case.body);
        let b = http(embedded.addr, case.method, case.target, case.headers, &case.body);
        let (na, nb) = (normalise(&a), normalise(&b));
        if na != nb {
            differences.push(format!(
                "{} {}:\n  fpm:      {} {:?}\n            {:?}\n  embedded: {} {:?}\n            {:?}",
                case.method,
                case.target,
                na.0,
                na.1,
                String::from_utf8_lossy(&na.2[..na.2.len().min(300)]),
                nb.0,
                nb.1,
                String::from_utf8_lossy(&nb.2[..nb.2.len().min(300)]),
            ));
        }
    }
    // .user.ini files apply (both backends could ignore them alike): the root's memory_limit, the
    // sub directory's precision, not its PHP_INI_SYSTEM allow_url_fopen.
    let sub = http(embedded.addr, "GET", "/userini/sub/show.php", &[], b"");
    let text = String::from_utf8_lossy(&sub.body);
    for line in ["memory_limit = '77M'", "precision = '7'", "allow_url_fopen = '1'", "display_errors = '1'"] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // The reason phrase passes through (both backends could lose it alike).
    for addr in [fpm_harness.addr, embedded.addr] {
        let custom = http(addr, "GET", "/status_reason_custom.php", &[], b"");
        assert_eq!((custom.status, custom.reason.as_str()), (299, "Custom Reason"));
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}\n--- embedded log:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n"),
        embedded.log()
    );
}

/// php-fpm's pool `php_value[]` / `php_admin_value[]` against embedded PHP's per-request
/// `[php.values]` / `[php.admin_values]` (the same code path as nginx's `fephp_php_value` /
/// `fephp_php_admin_value`): the values seen by the script, `ini_set()` refused on admin values,
/// `open_basedir` enforced, `upload_max_filesize` applied to the request body.
#[test]
fn per_request_ini_matches_php_fpm_pool_values() {
    let root = parity_root();
    let ini = support::test_php_ini();
    let basedir = format!("{}:/tmp", root.display());
    let fpm = Fpm::start_unix_with(
        1,
        &format!(
            "php_value[memory_limit] = 96M\nphp_value[upload_max_filesize] = 1K\n\
             php_admin_value[open_basedir] = {basedir}\nphp_admin_value[precision] = 5\n"
        ),
    );
    let fpm_harness = Harness::start(&root, &format!("use_fpm = true\nfpm_socket = \"{}\"\n", fpm.address));
    let embedded_toml = format!(
        "use_fpm = false\nini_file = \"{}\"\n[php.values]\nmemory_limit = \"96M\"\nupload_max_filesize = \"1K\"\n\
         [php.admin_values]\nopen_basedir = \"{basedir}\"\nprecision = 5\n",
        ini.display()
    );
    let embedded = Harness::start_with_args(&root, &embedded_toml, &["--workers", "1"]);
    for case in [get("/ini_values.php"), with("POST", "/ini_values.php", MULTIPART, &multipart()), get("/hello.php")] {
        let a = http(fpm_harness.addr, case.method, case.target, case.headers, &case.body);
        let b = http(embedded.addr, case.method, case.target, case.headers, &case.body);
        assert_eq!(
            normalise(&a),
            normalise(&b),
            "{} {}:\n fpm: {}\n embedded: {}\n--- embedded log:\n{}",
            case.method,
            case.target,
            String::from_utf8_lossy(&a.body),
            String::from_utf8_lossy(&b.body),
            embedded.log()
        );
        if case.target == "/ini_values.php" {
            let body = String::from_utf8_lossy(&b.body);
            assert!(body.contains("memory_limit = '96M'"), "{body}");
            assert!(body.contains("ini_set admin open_basedir: false"), "{body}");
            assert!(body.contains("outside open_basedir: false"), "{body}");
            if case.method == "POST" {
                assert!(body.contains("upload doc: error 1\n"), "{body}");
            }
        }
    }
}
