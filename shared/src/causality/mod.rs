//! Delivery orders: causal broadcast with a hold-back queue, and total-order broadcast.

pub mod holdback;
pub mod total_order;
