//! The time service's security on real sockets: per-node tokens (a client without a valid one
//! gets `UNAUTHENTICATED`, and the node counts it) and mutual TLS with a CA the test makes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chronoscope::sync::timesync::TimeSyncConfig;
use chronoscope_server::{
    cli::timesync::report,
    services::timesync::{
        auth::NodeKeys,
        cluster::{node_id, Cluster},
        proto::{time_sync_service_client::TimeSyncServiceClient, TimeRequest},
        NodeStatus, Security, Simulation, TlsFiles,
    },
    Shutdown,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::{
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
    Code, Request,
};

/// One cluster at a time (see tests/timesync.rs).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config() -> TimeSyncConfig {
    TimeSyncConfig {
        sync_interval: 0.5,
        timeout: 0.5,
        ..TimeSyncConfig::default()
    }
}

fn sims() -> Vec<Simulation> {
    [60.0, 0.0, 0.0, 0.0, 0.0]
        .map(|skew_ms| Simulation {
            skew_ms,
            ..Simulation::default()
        })
        .to_vec()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn wait_until(cluster: &Cluster, what: &str, done: impl Fn(&[NodeStatus]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let statuses = cluster.statuses();
        if done(&statuses) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {what}:\n{}",
            statuses.iter().map(report).collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Authenticated rounds work: every node synchronised and the five agree within 10 ms (A
/// started 60 ms off). Agreement, not closeness to true time: no node sees true time, and on a
/// loaded machine early rounds with long round trips have wide intervals that can admit A and
/// move the whole group a little — a fact about load, not about tokens (tests/timesync.rs
/// checks convergence itself).
fn converged(s: &[NodeStatus]) -> bool {
    let offsets = s.iter().map(|n| n.offset_to_truth);
    let spread = offsets.clone().fold(f64::MIN, f64::max) - offsets.fold(f64::MAX, f64::min);
    s.iter().all(|n| n.tracking.synced) && spread < 0.010
}

/// One `GetTime` with the given `authorization` value (none: no header).
async fn get_time(channel: Channel, authorization: Option<String>) -> Result<(), tonic::Status> {
    let mut request = Request::new(TimeRequest { client_time: 1 });
    if let Some(a) = authorization {
        request
            .metadata_mut()
            .insert("authorization", MetadataValue::try_from(a).unwrap());
    }
    TimeSyncServiceClient::new(channel)
        .get_time(request)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_a_client_without_a_valid_one_is_unauthenticated() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut keys = NodeKeys::new();
    for i in 0..5 {
        keys.insert(&node_id(i), vec![i as u8 + 1; 32]);
    }
    let cluster = Cluster::start_secured(config(), &sims(), 3, Shutdown::new(), |_| Security {
        keys: Some(keys.clone()),
        tls: None,
    })
    .await
    .unwrap();
    // The nodes' own authenticated traffic syncs them.
    wait_until(&cluster, "converged with tokens", converged).await;
    let channel = Endpoint::from_shared(format!("http://{}", cluster.addrs()[0]))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let expect = |r: Result<(), tonic::Status>, message: &str| {
        let status = r.expect_err(message);
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains(message), "{status:?}");
    };
    let before = cluster.node("A").unwrap().status().auth_failures;
    expect(get_time(channel.clone(), None).await, "missing token");
    expect(
        get_time(channel.clone(), Some("Bearer nonsense".into())).await,
        "malformed token",
    );
    // B's id with a key that is not B's.
    let mut wrong = NodeKeys::new();
    wrong.insert("B", vec![99; 32]);
    let forged = wrong.mint("B", now() + 30).unwrap();
    expect(
        get_time(channel.clone(), Some(format!("Bearer {forged}"))).await,
        "wrong token for node \"B\"",
    );
    let expired = keys.mint("B", now() - 1).unwrap();
    expect(
        get_time(channel.clone(), Some(format!("Bearer {expired}"))).await,
        "token expired",
    );
    let unknown = {
        let mut k = NodeKeys::new();
        k.insert("Q", vec![1; 32]);
        k.mint("Q", now() + 30).unwrap()
    };
    expect(
        get_time(channel.clone(), Some(format!("Bearer {unknown}"))).await,
        "unknown node",
    );
    // The same request with B's real token is answered.
    let valid = keys.mint("B", now() + 30).unwrap();
    get_time(channel, Some(format!("Bearer {valid}")))
        .await
        .unwrap();
    let after = cluster.node("A").unwrap().status().auth_failures;
    assert_eq!(after - before, 5);
    cluster.stop().await.unwrap();
}

/// A CA and a certificate for `localhost` signed by it, per node.
struct Pki {
    ca_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            ca_cert,
            ca_key,
        }
    }

    /// (certificate PEM, key PEM) for `localhost`.
    fn issue(&self) -> (String, String) {
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_clusters_sync_and_strangers_are_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pki = Pki::new();
    let cluster = Cluster::start_secured(config(), &sims(), 5, Shutdown::new(), |_| {
        let (cert, key) = pki.issue();
        Security {
            keys: None,
            tls: Some(TlsFiles {
                ca: pki.ca_pem.clone().into_bytes(),
                cert: cert.into_bytes(),
                key: key.into_bytes(),
                domain: "localhost".into(),
            }),
        }
    })
    .await
    .unwrap();
    wait_until(&cluster, "converged over mutual TLS", converged).await;
    let addr = cluster.addrs()[1];
    let tls_client = |ca: &str, identity: Option<(String, String)>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .timeout(Duration::from_secs(5))
    };
    // A member's certificate is accepted.
    let member = tls_client(&pki.ca_pem, Some(pki.issue()))
        .connect()
        .await
        .unwrap();
    get_time(member, None).await.unwrap();
    // No client certificate, one from another CA, or plain HTTP/2: no answer.
    let stranger_ca = Pki::new();
    for endpoint in [
        tls_client(&pki.ca_pem, None),
        tls_client(&pki.ca_pem, Some(stranger_ca.issue())),
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(5)),
    ] {
        let refused = match endpoint.connect().await {
            Err(_) => true,
            Ok(channel) => get_time(channel, None).await.is_err(),
        };
        assert!(refused);
    }
    cluster.stop().await.unwrap();
}
