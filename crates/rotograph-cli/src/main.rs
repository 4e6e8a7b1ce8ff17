//! The `rotograph` command-line tool.
fn main() {}
