//! OpenID Connect and OAuth 2.0 protocol types shared by the provider and the web app.
#![warn(missing_docs)]
