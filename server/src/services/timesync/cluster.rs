//! N time service nodes on loopback in one process, each polling all the others over real
//! gRPC sockets: what `chronoscope timesync cluster` prints, what the time service page shows
//! and what the tests drive. The nodes share one [`TrueTime`], so "offset to true time" is the
//! same measure for all of them.

use std::net::{Ipv4Addr, SocketAddr};

use chronoscope::sync::timesync::TimeSyncConfig;
use tokio::{net::TcpListener, task::JoinHandle};

use super::{
    LinkFaults, NodeError, NodeOptions, NodeStatus, Security, Simulation, TimeSyncNode, TrueTime,
};
use crate::Shutdown;

/// The most nodes a cluster runs (their ids are the letters `A`…`Z`).
pub const MAX_NODES: usize = 26;

/// The id of the `i`-th node: `A`, `B`, …
pub fn node_id(i: usize) -> String {
    char::from(b'A' + (i % MAX_NODES) as u8).to_string()
}

/// A running cluster.
pub struct Cluster {
    /// The nodes, in id order.
    nodes: Vec<TimeSyncNode>,
    /// Their gRPC addresses.
    addrs: Vec<SocketAddr>,
    /// Stops every node.
    shutdown: Shutdown,
    /// The nodes' tasks.
    tasks: Vec<JoinHandle<Result<(), NodeError>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Binds `simulations.len()` nodes on `127.0.0.1:0` (2 to [`MAX_NODES`]), each with its
    /// simulation, and starts them; they stop with `shutdown`.
    pub async fn start(
        config: TimeSyncConfig,
        simulations: &[Simulation],
        seed: u64,
        shutdown: Shutdown,
    ) -> Result<Cluster, NodeError> {
        Self::start_secured(config, simulations, seed, shutdown, |_| Security::default()).await
    }

    /// As [`Cluster::start`], with each node's [`Security`] (keys, TLS) by node id.
    pub async fn start_secured(
        config: TimeSyncConfig,
        simulations: &[Simulation],
        seed: u64,
        shutdown: Shutdown,
        security: impl Fn(&str) -> Security,
    ) -> Result<Cluster, NodeError> {
        let n = simulations.len();
        if !(2..=MAX_NODES).contains(&n) {
            return Err(NodeError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a cluster has 2 to {MAX_NODES} nodes, not {n}"),
            )));
        }
        let mut listeners = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
            addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let truth = TrueTime::from_host();
        let mut nodes = Vec::with_capacity(n);
        for (i, sim) in simulations.iter().enumerate() {
            let peers = (0..n)
                .filter(|j| *j != i)
                .map(|j| (node_id(j), addrs[j]))
                .collect();
            let id = node_id(i);
            nodes.push(TimeSyncNode::new(NodeOptions {
                security: security(&id),
                id,
                config,
                peers,
                simulation: *sim,
                seed: seed.wrapping_add(i as u64),
                truth,
            })?);
        }
        let tasks = nodes
            .iter()
            .zip(listeners)
            .map(|(node, l)| tokio::spawn(node.clone().run(l, shutdown.clone())))
            .collect();
        Ok(Cluster {
            nodes,
            addrs,
            shutdown,
            tasks,
        })
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> &[TimeSyncNode] {
        &self.nodes
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&TimeSyncNode> {
        self.nodes.iter().find(|n| n.id() == id)
    }

    /// The nodes' gRPC addresses, in id order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Every node's status, in id order.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        self.nodes.iter().map(TimeSyncNode::status).collect()
    }

    /// Sets the extra delay of the directed link `from` → `to`, seconds (applied by `to`'s
    /// server to requests from `from`, and by `from`'s server to replies to `to`).
    pub fn set_link_delay(&self, from: &str, to: &str, delay: f64) -> bool {
        let (Some(a), Some(b)) = (self.node(from), self.node(to)) else {
            return false;
        };
        let delay = delay.max(0.0);
        b.set_link(
            from,
            LinkFaults {
                delay_in: delay,
                ..b.link(from)
            },
        );
        a.set_link(
            to,
            LinkFaults {
                delay_out: delay,
                ..a.link(to)
            },
        );
        true
    }

    /// Cuts (`true`) or heals every link between `id` and the rest, in both directions.
    pub fn set_partitioned(&self, id: &str, cut: bool) -> bool {
        let Some(node) = self.node(id) else {
            return false;
        };
        node.set_partitioned(cut);
        for other in self.nodes.iter().filter(|n| n.id() != id) {
            other.set_link(
                id,
                LinkFaults {
                    cut,
                    ..other.link(id)
                },
            );
        }
        true
    }

    /// Stops every node and waits for them; returns the first error.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.shutdown.trigger();
        let mut first = Ok(());
        for t in self.tasks {
            match t.await {
                Ok(Err(e)) if first.is_ok() => first = Err(e),
                _ => {}
            }
        }
        first
    }
}
