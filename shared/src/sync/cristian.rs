//! Cristian's algorithm: a client asks a time server for the time and corrects for the round
//! trip.
//!
//! F. Cristian, "Probabilistic clock synchronization", *Distributed Computing* 3(3), 1989.
//! The client sends a request at `t0` (its clock), the server answers with its time `T`, the
//! client receives at `t1`. The server read `T` somewhere inside the round trip, so the
//! client's best estimate of the server's time at `t1` is `T + RTT/2`.
//!
//! Guarantee: if the server is correct, the estimated offset is within **RTT/2** of the true
//! offset (within `RTT/2 − min` if each one-way delay is at least `min`), ignoring the
//! client's drift during the round trip.

use serde::{Deserialize, Serialize};

/// One request/response exchange, in the client's and server's clock readings (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CristianSample {
    /// Client clock when the request left.
    pub t0: f64,
    /// Server clock when it answered.
    pub server_time: f64,
    /// Client clock when the answer arrived.
    pub t1: f64,
}

impl CristianSample {
    /// The round-trip time measured by the client.
    pub fn rtt(&self) -> f64 {
        self.t1 - self.t0
    }

    /// Server clock minus client clock: add it to the client's clock to agree with the server.
    pub fn offset(&self) -> f64 {
        self.server_time + self.rtt() / 2.0 - self.t1
    }

    /// The bound on the error of [`CristianSample::offset`] given that each one-way delay is
    /// at least `min_one_way` seconds: `RTT/2 − min_one_way`.
    pub fn error_bound(&self, min_one_way: f64) -> f64 {
        (self.rtt() / 2.0 - min_one_way).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_delays_give_the_exact_offset() {
        // Client 2 s behind; 10 ms each way.
        let s = CristianSample {
            t0: 100.0,
            server_time: 102.010,
            t1: 100.020,
        };
        assert!((s.offset() - 2.0).abs() < 1e-9);
        assert!((s.rtt() - 0.020).abs() < 1e-12);
    }

    #[test]
    fn asymmetric_delays_bias_the_estimate_within_the_bound() {
        // True offset 2 s; 18 ms out, 2 ms back: the server read at client time 100.018.
        let s = CristianSample {
            t0: 100.0,
            server_time: 102.018,
            t1: 100.020,
        };
        let err = (s.offset() - 2.0).abs();
        assert!((err - 0.008).abs() < 1e-9);
        assert!(err <= s.error_bound(0.002) + 1e-12);
        assert!(err <= s.rtt() / 2.0);
    }
}
