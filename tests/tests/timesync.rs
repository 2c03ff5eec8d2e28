//! The time service on real sockets: clusters of `TimeSyncNode`s on loopback gRPC, each
//! polling all the others. Every assertion is a condition waited for with a generous timeout
//! (the machine may be slow), never a wall-clock window.

use std::time::Duration;

use chronoscope::sync::timesync::{SourceState, TimeSyncConfig};
use chronoscope_server::{
    cli::timesync::report,
    services::timesync::{cluster::Cluster, NodeStatus, Simulation},
    Shutdown,
};

/// One cluster at a time: the tests measure time on a shared, small machine, and three
/// clusters at once would only add queueing to every round trip.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Fast rounds so the tests take seconds; the proposal's other values.
fn config() -> TimeSyncConfig {
    TimeSyncConfig {
        sync_interval: 0.5,
        timeout: 0.5,
        ..TimeSyncConfig::default()
    }
}

fn sims(skews_ms: &[f64], variation_ms: f64) -> Vec<Simulation> {
    skews_ms
        .iter()
        .map(|&skew_ms| Simulation {
            skew_ms,
            drift_ms_per_s: 0.0,
            variation_ms,
        })
        .collect()
}

/// Waits until `done` holds for the cluster's statuses; panics with every node's tables after
/// `limit`.
async fn wait_until(
    cluster: &Cluster,
    what: &str,
    limit: Duration,
    done: impl Fn(&[NodeStatus]) -> bool,
) -> Vec<NodeStatus> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let statuses = cluster.statuses();
        if done(&statuses) {
            return statuses;
        }
        if tokio::time::Instant::now() > deadline {
            let tables: String = statuses.iter().map(report).collect();
            panic!("not {what} after {limit:?}:\n{tables}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The convergence bound: every node within 10 ms of true time. Idle loopback gives well under
/// a millisecond; the margin is for a loaded machine, where round trips reach tens of
/// milliseconds and their asymmetry biases offsets by half of it.
const BOUND: f64 = 0.010;

fn converged(s: &[NodeStatus]) -> bool {
    s.iter()
        .all(|n| n.tracking.synced && n.offset_to_truth.abs() < BOUND)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_skewed_nodes_converge_within_the_bound() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(
        config(),
        &sims(&[120.0, -80.0, 0.0, 0.0, 0.0], 0.5),
        7,
        Shutdown::new(),
    )
    .await
    .unwrap();
    let statuses = wait_until(&cluster, "converged", Duration::from_secs(90), converged).await;
    for s in &statuses {
        assert_eq!(
            s.sources
                .iter()
                .filter(|r| r.state == SourceState::Best)
                .count(),
            1,
            "{}",
            report(s)
        );
    }
    // A and B got there by the daemon's corrections (120 ms and 80 ms slewed, not stepped:
    // both are under the 0.5 s step threshold).
    assert_eq!(statuses[0].steps + statuses[1].steps, 0);
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_node_is_rejected_as_a_falseticker() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(
        config(),
        &sims(&[0.0, 0.0, 0.0, 0.0, 0.0], 0.0),
        11,
        Shutdown::new(),
    )
    .await
    .unwrap();
    let liar = cluster.node("E").unwrap();
    liar.set_lie(0.300);
    let statuses = wait_until(
        &cluster,
        "rejecting E everywhere",
        Duration::from_secs(60),
        |s| {
            converged(s)
                && s[..4].iter().all(|n| {
                    n.rejected.iter().any(|r| r.peer == "E")
                        && n.sources
                            .iter()
                            .any(|r| r.peer == "E" && r.state == SourceState::Falseticker)
                })
        },
    )
    .await;
    let why = &statuses[0].rejected[0].why;
    assert!(
        why.contains("misses the interval 3 peers agree on"),
        "{why}"
    );
    // What A saw of E: the 300 ms lie, within the measurement's error.
    let e = statuses[0].sources.iter().find(|r| r.peer == "E").unwrap();
    let (offset, error) = (e.offset.unwrap(), e.error.unwrap());
    assert!(
        (offset - 0.300).abs() <= error + BOUND,
        "{}",
        report(&statuses[0])
    );
    // The lie moved nobody: the honest nodes stay at true time.
    assert!(statuses.iter().all(|s| s.offset_to_truth.abs() < BOUND));
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_node_falls_back_and_resyncs_after_healing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(
        config(),
        &sims(&[0.0, 0.0, 0.0, 0.0, 0.0], 0.0),
        13,
        Shutdown::new(),
    )
    .await
    .unwrap();
    wait_until(&cluster, "converged", Duration::from_secs(60), converged).await;
    assert!(cluster.set_partitioned("C", true));
    // C loses its peers: it falls back to its own clock, its error bound grows, and a fault
    // moves its clock 200 ms while nobody can tell it.
    let c = cluster.node("C").unwrap();
    let cut = wait_until(&cluster, "C falling back", Duration::from_secs(30), |s| {
        !s[2].tracking.synced && s[2].tracking.failed_rounds >= 2
    })
    .await;
    c.jump(0.200);
    wait_until(
        &cluster,
        "C's bound growing",
        Duration::from_secs(30),
        |s| s[2].tracking.error_bound > cut[2].tracking.error_bound,
    )
    .await;
    // The others keep their majority of three.
    let others = cluster.statuses();
    assert!(
        others
            .iter()
            .filter(|s| s.id != "C")
            .all(|s| s.offset_to_truth.abs() < BOUND),
        "{}",
        others.iter().map(report).collect::<String>()
    );
    assert!(cluster.set_partitioned("C", false));
    let healed = wait_until(&cluster, "C resynchronised", Duration::from_secs(60), |s| {
        converged(s)
            && s[2]
                .log
                .iter()
                .any(|l| l.text.starts_with("resynchronised"))
    })
    .await;
    assert!(healed[2]
        .log
        .iter()
        .any(|l| l.text.starts_with("falling back")));
    cluster.stop().await.unwrap();
}
