//! End-to-end tests of the provider and the web app together: over HTTP with a cookie-keeping
//! client that submits the real forms, and in headless Chromium through chromedriver.

mod browser;
mod http_flow;
mod passkeys;
mod replicas;
mod second_factor;
mod virtual_authenticator;
mod webdriver;
