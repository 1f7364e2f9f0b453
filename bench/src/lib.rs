//! Benchmark helpers (see bench/README.md).
