//! Integration tests of oidc-core: standard test vectors, the "Tokens and keys" attack table,
//! interoperability with the independent `openidconnect` crate, wire shapes, and property tests
//! proving that parsers answer malformed input with an error value, never a panic.

mod common;
mod fuzz;
mod interop;
mod logout;
mod security;
mod vectors;
mod wire;
