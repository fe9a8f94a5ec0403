//! Load generator and measurements for the provider: flows a browser and a relying party make,
//! run at several concurrencies against a provider on loopback, next to this machine's limits.

pub mod clientcost;
pub mod deployment;
pub mod flows;
pub mod http;
pub mod limits;
pub mod pages;
pub mod process;
pub mod procfs;
pub mod report;
pub mod runner;
pub mod soak;
pub mod stats;
pub mod suite;
