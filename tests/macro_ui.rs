//! Compile-time behaviour of `#[imle_layer]` (trybuild): `tests/ui/pass/*.rs` must compile and
//! run, `tests/ui/fail/*.rs` must fail with exactly the errors in their `.stderr` files.
//! `TRYBUILD=overwrite cargo test --release --test macro_ui` rewrites the `.stderr` files.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
