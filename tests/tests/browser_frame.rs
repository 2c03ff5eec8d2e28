//! The lab frame in real headless Chromium, on two labs (Lamport and drift): a run's
//! parameters live in the URL (set them, reload, same run and same numbers; the back button
//! walks back through changes), a single step handles exactly one event, and the downloads
//! hold the run's data. No wall-clock window is asserted: every wait is for a condition.

use chronoscope_e2e::{Browser, Tab, TestServer};

/// The page's URL fragment.
async fn hash(tab: &Tab) -> String {
    tab.eval("return location.hash", vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `t = 12.345 s` (or `t = 12.345 s of 20 s`) as seconds.
async fn sim_time(tab: &Tab) -> f64 {
    let text = tab.text(".frame-time").await;
    text.trim_start_matches("t = ")
        .split(" s")
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unreadable simulated time {text:?}"))
}

async fn events(tab: &Tab) -> u64 {
    let t = tab.text(".frame-events").await;
    t.trim()
        .parse()
        .unwrap_or_else(|_| panic!("unreadable event count {t:?}"))
}

/// Waits until the run shows simulated time `t` exactly.
async fn wait_time(tab: &Tab, t: f64) {
    tab.until(&format!("simulated time {t}"), || async {
        let now = sim_time(tab).await;
        if (now - t).abs() < 1e-9 {
            Ok(())
        } else {
            Err(now)
        }
    })
    .await;
}

/// Pauses, runs to `t` and returns what the run shows then: the claims and a data table.
async fn numbers_at(tab: &Tab, t: f64, table: &str) -> (String, String) {
    tab.wait_for_css("button.play").await;
    if tab.text("button.play").await.contains("Pause") {
        tab.click("button.play").await;
    }
    tab.set_value("input.run-to", &t.to_string()).await;
    tab.click("button.run-to-go").await;
    wait_time(tab, t).await;
    let claims = tab.text("#claims").await;
    let data = tab.text(&format!("table[data-table={table}]")).await;
    (claims, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn lamport_run_lives_in_the_url_steps_one_event_and_downloads_its_data() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser
        .open(&server.url("/#/lamport?exp=9&duration=20&seed=7"))
        .await;
    tab.wait_for_css("section.lab[data-lab=lamport] #claims li.claim")
        .await;
    // The link is rewritten to its canonical form, in place.
    assert_eq!(hash(&tab).await, "#/lamport?seed=7&exp=9&duration=20");
    let first = numbers_at(&tab, 20.0, "machines").await;
    assert!(first.0.contains("Lamport's clock condition"), "{}", first.0);
    assert!(first.1.contains("M2"), "{}", first.1);

    // Reload: the same run, the same numbers.
    tab.client.refresh().await.expect("reload");
    tab.wait_for_css("#claims li.claim").await;
    assert_eq!(numbers_at(&tab, 20.0, "machines").await, first);

    // A change through a control is a new history entry; back returns to the first run.
    tab.set_value("select[data-param=exp]", "10").await;
    tab.until("the experiment in the URL", || async {
        let h = hash(&tab).await;
        if h == "#/lamport?seed=7&exp=10&duration=20" {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
    let changed = numbers_at(&tab, 20.0, "machines").await;
    assert_ne!(changed, first, "another experiment, other numbers");
    tab.client.back().await.expect("back");
    tab.until("back to experiment 9", || async {
        let h = hash(&tab).await;
        if h == "#/lamport?seed=7&exp=9&duration=20" {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
    assert_eq!(numbers_at(&tab, 20.0, "machines").await, first);

    // A single step handles exactly one event and says what it was.
    tab.click("button.reset").await;
    wait_time(&tab, 0.0).await;
    let before = events(&tab).await;
    tab.click("button.step").await;
    tab.until("one more event", || async {
        let n = events(&tab).await;
        if n == before + 1 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    assert!(!tab.text(".frame-last").await.is_empty());
    tab.click("button.step").await;
    tab.until("one more event again", || async {
        let n = events(&tab).await;
        if n == before + 2 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;

    // Downloads: the machines table as CSV equals the page's table; the clocks chart's
    // series as JSON; the trace as a ShiViz log that parses back.
    numbers_at(&tab, 20.0, "machines").await;
    tab.click("button[data-download='machines.csv']").await;
    let csv = tab.downloaded("lamport-seed7-machines.csv").await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("machine,rate_per_s,clock,internal,sends,receives,largest_jump,largest_jump_at_s,queue_max,queue_now")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let shown = tab.text("table[data-table=machines] tbody").await;
    for r in &rows {
        let line = format!("{} {} {}", r[0], r[1], r[2]);
        assert!(shown.contains(&line), "{line:?} not in {shown:?}");
    }
    tab.click("button[data-download='clocks.json']").await;
    let json: serde_json::Value =
        serde_json::from_str(&tab.downloaded("lamport-seed7-clocks.json").await).unwrap();
    let last = json.as_array().and_then(|a| a.last()).expect("rows");
    for (m, r) in rows.iter().enumerate() {
        let key = format!("M{m} ({}/s)", r[1]);
        assert_eq!(last[&key].as_f64(), r[2].parse::<f64>().ok(), "{key}");
    }
    tab.click("button[data-download='trace.log']").await;
    let log = tab.downloaded("lamport-seed7-trace.shiviz.log").await;
    let trace = chronoscope::trace::shiviz::import(&log).expect("a ShiViz log");
    assert!(trace.len() > 100, "{} events", trace.len());
    tab.click("figure[data-chart=queues] button.download").await;
    let svg = tab.downloaded("lamport-seed7-queues.svg").await;
    assert!(
        svg.starts_with("<svg") && svg.contains("Queue length"),
        "{svg:.80}"
    );
    tab.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn drift_run_lives_in_the_url_steps_one_event_and_downloads_its_data() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser
        .open(&server.url("/#/drift?sync=ntp&nodes=3&seed=5"))
        .await;
    tab.wait_for_css("section.lab[data-lab=drift] #claims li.claim")
        .await;
    assert_eq!(hash(&tab).await, "#/drift?seed=5&nodes=3&sync=ntp");
    let first = numbers_at(&tab, 120.0, "nodes").await;
    assert!(
        first.1.contains("selected"),
        "NTP judged the nodes: {}",
        first.1
    );

    tab.client.refresh().await.expect("reload");
    tab.wait_for_css("#claims li.claim").await;
    assert_eq!(numbers_at(&tab, 120.0, "nodes").await, first);

    // A per-node control: node B's drift.
    tab.set_value("input[data-param=drift][data-node='1']", "200")
        .await;
    tab.until("the drifts in the URL", || async {
        let h = hash(&tab).await;
        if h.contains("drift=-50,200,50") {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
    // The change kept the simulated time.
    wait_time(&tab, 120.0).await;
    assert_ne!(numbers_at(&tab, 120.0, "nodes").await, first);
    tab.client.back().await.expect("back");
    tab.until("back to the default drifts", || async {
        let h = hash(&tab).await;
        if h == "#/drift?seed=5&nodes=3&sync=ntp" {
            Ok(())
        } else {
            Err(h)
        }
    })
    .await;
    assert_eq!(numbers_at(&tab, 120.0, "nodes").await, first);

    let before = events(&tab).await;
    let t0 = sim_time(&tab).await;
    tab.click("button.step").await;
    tab.until("one more event", || async {
        let n = events(&tab).await;
        if n == before + 1 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    assert!(sim_time(&tab).await >= t0);

    numbers_at(&tab, 120.0, "nodes").await;
    tab.click("button[data-download='samples.csv']").await;
    let csv = tab.downloaded("drift-seed5-samples.csv").await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time_s,offset_A_ms,offset_B_ms,offset_C_ms,skew_ms")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 121, "one sample a second from 0 to 120 s");
    assert!(rows[120].starts_with("120,"), "{}", rows[120]);
    tab.click("button[data-download='nodes.json']").await;
    let json: serde_json::Value =
        serde_json::from_str(&tab.downloaded("drift-seed5-nodes.json").await).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(3));
    assert_eq!(json[0]["node"], "A");
    tab.close().await;
    server.stop().await;
}
