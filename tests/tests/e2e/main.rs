//! End-to-end tests that drive the built `herald` binary as a user would.

mod cli;
mod console_browser;
mod durability;
mod encryption;
mod examples;
mod faults;
mod fuzz;
mod hostile;
mod logs;
mod playground_browser;
mod process;
mod replicas;
mod retention;
mod secrets;
