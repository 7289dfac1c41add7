fn main() {
    capi_soname();
}

/// The C ABI's soname carries its ABI version (`FEPHP_ABI_VERSION` in src/capi/mod.rs), so
/// `libfephp.so.0` can be installed beside a future `libfephp.so.1`.
fn capi_soname() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfephp.so.0");
}
