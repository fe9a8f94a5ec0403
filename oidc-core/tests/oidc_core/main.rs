//! Integration tests of oidc-core: standard test vectors, the "Tokens and keys" attack table,
//! interoperability with the independent `openidconnect` crate, wire shapes, back-channel logout
//! tokens, and property tests proving that parsers answer malformed and mutated input with their
//! documented error, never a panic.

mod common;
mod fuzz;
mod interop;
mod logout;
mod mutation;
mod security;
mod vectors;
mod wire;
