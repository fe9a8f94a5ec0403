//! Cross-service and browser tests live in `tests/`.
