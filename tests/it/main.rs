//! Integration tests over real WebSockets on 127.0.0.1: one binary, one module per area.

mod abuse;
mod cluster;
mod corpus;
mod databases;
mod durability;
mod faults;
mod fuzz;
mod harness;
mod identity;
mod migrations;
mod postgres;
mod rooms;
mod sync;
mod tls;
mod trust;
