//! Delivery orders and global states: causal broadcast with a hold-back queue, total-order
//! broadcast, and distributed snapshots (Chandy–Lamport, Lai–Yang).

pub mod holdback;
pub mod snapshot;
pub mod total_order;
