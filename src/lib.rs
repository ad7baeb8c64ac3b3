pub use goro_runtime::*;
