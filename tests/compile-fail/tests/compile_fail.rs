//! Programs that must not compile: entering a runtime, where Gs may change
//! OS threads, needs `unsafe` (issue 14's program among them).

#[test]
fn entering_a_runtime_needs_unsafe() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
