//! `chronoscope ntp serve|query` through the real binary, without chrony: several servers with
//! a falseticker and a dead one, Kiss-o'-Death, bad input in one clear line.

mod support;

use support::{chronoscope, ntp_serve as serve};

fn ntp(args: &[&str]) -> (bool, String, String) {
    chronoscope(&[&["ntp"], args].concat())
}

#[test]
fn three_servers_one_liar_one_dead_the_majority_wins() {
    let (_a, a) = serve(&["--skew", "+100ms"]);
    let (_b, b) = serve(&["--skew", "+101ms", "--stratum", "3"]);
    let (_c, c) = serve(&["--skew", "-2s"]);
    let (_d, dead) = serve(&[]);
    drop(_d); // nobody answers there now
    let (ok, out, err) = ntp(&[
        "query",
        "--samples",
        "3",
        "--interval",
        "10ms",
        "--timeout",
        "2s",
        "--format",
        "json",
        &a.to_string(),
        &b.to_string(),
        &c.to_string(),
        &dead.to_string(),
    ]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let servers = json["servers"].as_array().unwrap();
    assert_eq!(servers[1]["estimate"]["stratum"], 3);
    assert!(servers[3]["estimate"].is_null());
    assert_eq!(
        json["combined"]["verdicts"],
        serde_json::json!(["truechimer", "truechimer", "falseticker"])
    );
    // The combined offset lies in Marzullo's interval, which the two truthful servers share.
    let offset = json["combined"]["offset"].as_f64().unwrap();
    let (lo, hi) = (
        json["combined"]["interval"]["lo"].as_f64().unwrap(),
        json["combined"]["interval"]["hi"].as_f64().unwrap(),
    );
    assert!(lo <= offset && offset <= hi);
    for s in &servers[..2] {
        let e = &s["estimate"];
        let (o, bound) = (
            e["offset"].as_f64().unwrap(),
            e["delay"].as_f64().unwrap() / 2.0,
        );
        assert!(o > 0.099 - bound && o < 0.102 + bound, "offset {o}");
    }
    // The table names the falseticker and the dead server.
    let (_, table, _) = ntp(&[
        "query",
        "--samples",
        "2",
        "--interval",
        "10ms",
        "--timeout",
        "2s",
        &a.to_string(),
        &b.to_string(),
        &c.to_string(),
        &dead.to_string(),
    ]);
    assert!(table.contains("(falseticker)"), "{table}");
    assert!(table.contains(&format!("{dead}")), "{table}");
    assert!(table.contains("2 of 3 answering servers agree"), "{table}");
    // The combined offset is a weighted mean of the two truthful servers' offsets, so it lies
    // within half the larger of their delays of their skews (100 and 101 ms). The bound comes
    // from this run's own delays: a loaded machine widens it instead of failing the test.
    let ms_after = |line: &str, key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let delay_ms = |server: &std::net::SocketAddr| -> f64 {
        let row = table
            .lines()
            .find(|l| l.starts_with(&server.to_string()))
            .unwrap_or_else(|| panic!("no row for {server}:\n{table}"));
        // Columns: server, stratum, refid, offset (signed, "ms"), delay ("ms"), ...
        let cols: Vec<&str> = row.split_whitespace().collect();
        cols[5].parse().unwrap_or_else(|_| panic!("delay in {row}"))
    };
    let half = delay_ms(&a).max(delay_ms(&b)) / 2.0;
    let combined = table.lines().find(|l| l.starts_with("combined:")).unwrap();
    let offset = ms_after(combined, "combined: offset ");
    assert!(
        offset > 99.0 - half && offset < 102.0 + half,
        "combined offset {offset} ms, half delay {half} ms:\n{table}"
    );
}

#[test]
fn no_usable_time_is_one_line_and_a_failure() {
    // A rate limit below one request per second: the very first request is kissed.
    let (_s, addr) = serve(&["--rate-limit", "0.01"]);
    let (ok, _, err) = ntp(&["query", "--samples", "3", &addr.to_string()]);
    assert!(!ok);
    assert_eq!(
        err,
        format!("error: no server gave a usable time ({addr}: kiss-o'-death RATE)")
    );
}

#[test]
fn bad_input_is_one_clear_line() {
    let (ok, _, err) = ntp(&["query", "nowhere"]);
    assert!(!ok);
    assert!(
        err.starts_with("error: cannot resolve \"nowhere\""),
        "{err}"
    );
    let missing = std::env::temp_dir().join("chronoscope-no-such-keys");
    let (ok, _, err) = ntp(&["serve", "--key-file", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.starts_with("error: cannot read key file"), "{err}");
    let bad = std::env::temp_dir().join(format!("chronoscope-bad-keys-{}", std::process::id()));
    std::fs::write(&bad, "1 SHA256 HEX:00112233\n2 BLAKE3 xyz\n").unwrap();
    let (ok, _, err) = ntp(&[
        "query",
        "127.0.0.1:1",
        "--key",
        "1",
        "--key-file",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.ends_with("key file line 2: unknown key type \"BLAKE3\""),
        "{err}"
    );
    std::fs::write(&bad, "1 SHA256 HEX:00112233\n").unwrap();
    let (ok, _, err) = ntp(&[
        "query",
        "127.0.0.1:1",
        "--key",
        "5",
        "--key-file",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(err, "error: key 5 is not in the key file");
    let _ = std::fs::remove_file(&bad);
    let (ok, _, err) = ntp(&["serve", "--skew", "-3d"]);
    assert!(!ok && err.contains("within ±1 day"), "{err}");
}
