//! The OpenID Connect provider: configuration, storage, accounts, applications, keys, pages and endpoints.
