//! loom models for ventus live in `tests/`; this library is empty.
