//! goro-chan
