//! Components shared by pages that are not part of the lab frame: views of a relay room.

mod latency_grid;

pub use latency_grid::LatencyGrid;
