//! Test helpers that start the real services.
