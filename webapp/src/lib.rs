//! The relying-party web app.
