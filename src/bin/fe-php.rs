//! `fe-php`: the harness binary.
fn main() {}
