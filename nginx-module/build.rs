//! Passes the version of the nginx being built against to the module as `cfg`s, for the few
//! structures that changed between the nginx versions we support (1.22 in Debian 12, 1.28
//! vendored): `nginx1_23` (`ngx_table_elt_t.next`; `headers_out.cache_control` and `link` as
//! linked lists instead of an array / absent).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(nginx1_23)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let version: u64 = std::env::var("DEP_NGINX_VERSION_NUMBER").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if version >= 1_023_000 {
        println!("cargo::rustc-cfg=nginx1_23");
    }
}
