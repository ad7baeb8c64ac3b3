//! Only its tests matter: `tests/compile_fail.rs` and the programs in
//! `tests/ui/`.
