//! Interoperability with chrony 4.3, the reference NTP daemon, on loopback: Debian's package
//! unpacked into `target/peers/chrony` by `make chrony` (never installed system-wide), run as
//! `chronyd -x` (it never touches the system clock).
//!
//! - `chronyd -x` serving on a random port is queried by `chronoscope ntp query`;
//! - `chronyd -Q` queries `chronoscope ntp serve --skew …` and reports the skew;
//! - both again with shared SHA256 and AES128 keys, and a wrong key is refused by both sides.
//!
//! The tests are `#[ignore]`d in a plain `cargo test` (they need the unpacked chronyd);
//! `make test` unpacks it and runs them with `--ignored`.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Arc,
    time::Duration,
};

use chronoscope::sync::ntp::auth::KeyRing;
use support::{ntp_serve, Running};

mod support;
use chronoscope_server::services::{
    clock::HostClock,
    ntp::{query, QueryOptions},
};

const KEYS: &str = "\
1 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
2 AES128 HEX:0F0E0D0C0B0A09080706050403020100
";
const WRONG_KEYS: &str = "\
1 SHA256 HEX:FF112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
2 AES128 HEX:FF0E0D0C0B0A09080706050403020100
";

fn chronyd() -> PathBuf {
    let path = std::env::var_os("CHRONYD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/chrony/usr/sbin/chronyd")
        });
    assert!(
        path.is_file(),
        "chronyd not found at {} — run `make chrony` (or set CHRONYD)",
        path.display()
    );
    path
}

/// The user chronyd runs as (it refuses to start as root without `-u`).
fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("chronoscope-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port chrony can bind: free a moment ago (chrony needs a fixed port in its config).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chronyd -x` serving NTP on a random loopback port, once it answers.
async fn chronyd_server(dir: &Scratch, keys: bool) -> (Running, SocketAddr) {
    let port = free_udp_port();
    let mut conf = format!(
        "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n\
         pidfile {0}/chronyd.pid\ndriftfile {0}/drift\n",
        dir.0.display()
    );
    if keys {
        conf += &format!("keyfile {}\n", dir.file("server.keys", KEYS).display());
    }
    let conf = dir.file("server.conf", &conf);
    let log = std::fs::File::create(dir.0.join("chronyd.log")).unwrap();
    let child = Command::new(chronyd())
        .args(["-u", &user(), "-x", "-d", "-f"])
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start chronyd");
    let running = Running(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Ready is a condition: it has answered an NTP request (bounded attempts).
    let probe = QueryOptions {
        samples: 1,
        timeout: Duration::from_millis(200),
        key_id: keys.then_some(1),
        keys: keys.then(|| Arc::new(KeyRing::parse(KEYS).unwrap())),
        ..QueryOptions::default()
    };
    for _ in 0..100 {
        if query(addr, &probe, &HostClock).await.estimate.is_some() {
            return (running, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.0.join("chronyd.log")).unwrap_or_default();
    panic!("chronyd never answered on {addr}; its log:\n{log}");
}

/// Stops our server with SIGINT and returns what it printed after the banner (its counters).
fn stop(mut server: Running) -> String {
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let mut rest = String::new();
    let stdout = server.0.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        rest += &line.unwrap();
        rest.push('\n');
    }
    rest
}

/// A counter from the server's closing line (`served 3, …, failed authentication 1, …`).
fn counter(line: &str, name: &str) -> u64 {
    line.split(&format!("{name} "))
        .nth(1)
        .and_then(|r| r.split([',', '\n']).next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} counter in {line:?}"))
}

/// `chronyd -Q` (measure once, set nothing) with the given config; its log.
fn chronyd_q(dir: &Scratch, conf: &str, wait_secs: u32) -> String {
    let conf = dir.file("client.conf", conf);
    let Output { stdout, stderr, .. } = Command::new(chronyd())
        .args(["-u", &user(), "-Q", "-t", &wait_secs.to_string(), "-f"])
        .arg(&conf)
        .output()
        .expect("run chronyd -Q");
    String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr)
}

/// The offset in `System clock wrong by X seconds (ignored)`.
fn wrong_by(log: &str) -> Option<f64> {
    let rest = log.split("System clock wrong by ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn our_query(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronoscope"))
        .args(["ntp", "query", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
#[ignore = "needs chronyd (make chrony); make test runs it"]
async fn chronoscope_ntp_query_reads_chronyd() {
    let dir = Scratch::new("chronyd-serves");
    let (_chronyd, addr) = chronyd_server(&dir, false).await;
    let (ok, json, err) = our_query(&["--samples", "4", "--interval", "10ms", &addr.to_string()]);
    assert!(ok, "query failed: {err}");
    let est = &json["servers"][0]["estimate"];
    assert_eq!(est["stratum"], 8, "{json}");
    assert_eq!(est["reference_id"], serde_json::json!([127, 127, 1, 1]));
    assert_eq!(est["leap"], "no_warning");
    // Both read the same host clock: the true offset is 0, so the measured one must lie
    // within the exchange's own bound (half the delay) plus chrony's precision.
    let offset = est["offset"].as_f64().unwrap();
    let delay = est["delay"].as_f64().unwrap();
    assert!(
        offset.abs() <= delay / 2.0 + 1e-3,
        "offset {offset} with delay {delay}"
    );
}

#[tokio::test]
#[ignore = "needs chronyd (make chrony); make test runs it"]
async fn chronyd_q_reports_our_injected_skew() {
    let dir = Scratch::new("chronyd-q");
    for (skew, expect) in [("+250ms", 0.250), ("-80ms", -0.080)] {
        let (server, addr) = ntp_serve(&["--skew", skew]);
        let log = chronyd_q(
            &dir,
            &format!(
                "server 127.0.0.1 port {} iburst maxsamples 1\n",
                addr.port()
            ),
            15,
        );
        let measured =
            wrong_by(&log).unwrap_or_else(|| panic!("no offset in chronyd's log:\n{log}"));
        // One loopback exchange: chrony's error is half its round trip, far below 25 ms.
        assert!(
            (measured - expect).abs() < 0.025,
            "chronyd measured {measured}, skew {expect}"
        );
        assert!(counter(&stop(server), "served") >= 1);
    }
}

#[tokio::test]
#[ignore = "needs chronyd (make chrony); make test runs it"]
async fn shared_keys_authenticate_both_ways_and_a_wrong_key_is_refused() {
    let dir = Scratch::new("chrony-auth");
    let keys = dir.file("client.keys", KEYS);
    let wrong = dir.file("wrong.keys", WRONG_KEYS);

    // Our client against chronyd with the SHA256 key and the AES128 (CMAC) key.
    let (_chronyd, addr) = chronyd_server(&dir, true).await;
    for key in ["1", "2"] {
        let (ok, json, err) = our_query(&[
            "--samples",
            "2",
            "--interval",
            "10ms",
            "--key",
            key,
            "--key-file",
            keys.to_str().unwrap(),
            &addr.to_string(),
        ]);
        assert!(ok, "key {key}: {err}");
        assert_eq!(json["servers"][0]["estimate"]["stratum"], 8);
        // chronyd drops a request whose MAC fails: no time, the query fails with one line.
        let (ok, json, err) = our_query(&[
            "--samples",
            "2",
            "--timeout",
            "300ms",
            "--key",
            key,
            "--key-file",
            wrong.to_str().unwrap(),
            &addr.to_string(),
        ]);
        assert!(!ok, "a wrong key {key} got time: {json}");
        assert!(json["servers"][0]["estimate"].is_null());
        assert!(
            err.starts_with("error: no server gave a usable time"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // chronyd -Q against our server, which requires authentication.
    let (server, ours) = ntp_serve(&["--skew", "+250ms", "--key-file", keys.to_str().unwrap()]);
    let conf = |file: &Path, key: u32| {
        format!(
            "keyfile {}\nserver 127.0.0.1 port {} iburst maxsamples 1 key {key}\n",
            file.display(),
            ours.port()
        )
    };
    for key in [1, 2] {
        let log = chronyd_q(&dir, &conf(&keys, key), 15);
        let measured = wrong_by(&log).unwrap_or_else(|| panic!("key {key}: no offset:\n{log}"));
        assert!(
            (measured - 0.250).abs() < 0.025,
            "key {key}: measured {measured}"
        );
        let log = chronyd_q(&dir, &conf(&wrong, key), 3);
        assert_eq!(wrong_by(&log), None, "a wrong key {key} got time:\n{log}");
    }
    // And without a key at all.
    let log = chronyd_q(
        &dir,
        &format!(
            "server 127.0.0.1 port {} iburst maxsamples 1\n",
            ours.port()
        ),
        3,
    );
    assert_eq!(
        wrong_by(&log),
        None,
        "an unauthenticated request got time:\n{log}"
    );
    let counters = stop(server);
    // Two good exchanges; three refused (two wrong keys, one without a MAC).
    assert!(counter(&counters, "served") >= 2, "{counters}");
    assert!(
        counter(&counters, "failed authentication") >= 3,
        "{counters}"
    );
}
