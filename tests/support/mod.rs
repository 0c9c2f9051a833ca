//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod charm_server;
pub mod fake_ssh;
