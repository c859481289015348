//! End-to-end tests that drive the built `herald` binary as a user would.

mod cli;
mod durability;
mod encryption;
mod examples;
mod fuzz;
mod hostile;
mod process;
mod retention;
mod secrets;
