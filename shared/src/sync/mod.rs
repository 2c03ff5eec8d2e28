//! Clock synchronization algorithms, one module each. They are pure: they take timestamps
//! (read by the lab from [`crate::clocks::physical_clock::PhysicalClock`]s, or by a browser tab from
//! `Date.now()`) and return estimates and corrections; they never read a clock themselves.

pub mod berkeley;
pub mod bft;
pub mod cristian;
pub mod ft_average;
pub mod marzullo;
pub mod ntp;
pub mod timesync;
