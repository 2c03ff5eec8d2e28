//! The drift lab page in real headless Chromium: it renders, its chart moves, its controls
//! act on the simulation, and the tab measures its offset to the relay over the WebSocket.

use chronoscope_e2e::{Browser, Tab, TestServer};
use fantoccini::Locator;

/// How many probe rounds the tab has completed (its own one-second timer).
async fn probe_count(tab: &Tab) -> u64 {
    let text = tab.text(".probe li:last-child").await;
    text.rsplit("probes: ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unreadable probe count {text:?}"))
}

/// Waits until the sync log shows a Berkeley round.
async fn until_berkeley(tab: &Tab) {
    tab.until("a Berkeley round in the sync log", || async {
        let log = tab.text(".events").await;
        if log.contains("SYNC EVENT (Berkeley") {
            Ok(())
        } else {
            Err(log)
        }
    })
    .await;
}

/// The path of the first offset line, read in one script (the chart redraws while it plays,
/// so an element found in one WebDriver call may be gone by the next).
async fn points(tab: &Tab) -> String {
    let d = tab
        .eval(
            "const p = document.querySelector('figure[data-chart=offsets] svg path.line');
             return p ? p.getAttribute('d') : null;",
            vec![],
        )
        .await;
    d.as_str().expect("an offset line").to_owned()
}

fn sim_seconds(text: &str) -> f64 {
    // "t = 12.300 s"
    text.trim_start_matches("t = ")
        .trim_end_matches(" s")
        .parse()
        .unwrap_or_else(|_| panic!("unreadable sim time {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn drift_page_renders_and_its_chart_moves() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/#/drift")).await;

    let title = tab.wait_for_css("section.drift h1").await;
    assert_eq!(title, "Clock drift lab");
    tab.wait_for_css("figure[data-chart=offsets] svg path.line")
        .await;
    let rows = tab
        .client
        .find_all(Locator::Css("tr.node-row"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "four nodes by default");

    // The simulation advances and the chart's lines change.
    let t0 = sim_seconds(&tab.text(".frame-time").await);
    let p0 = points(&tab).await;
    tab.until("the run advances and its chart moves", || async {
        let (t1, p1) = (
            sim_seconds(&tab.text(".frame-time").await),
            points(&tab).await,
        );
        if t1 > t0 && p1 != p0 {
            Ok(())
        } else {
            Err((t1, p1.len()))
        }
    })
    .await;

    // Pause stops it: two of the tab's own probe rounds later (a second of its timers each,
    // ten play-loop frames each if it still played) the simulated time has not moved.
    tab.click("button.play").await;
    tab.wait_for_css("button.play[aria-pressed=false]").await;
    let paused = tab.text(".frame-time").await;
    let probes = probe_count(&tab).await;
    tab.until("two more probe rounds", || async {
        let n = probe_count(&tab).await;
        if n >= probes + 2 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    assert_eq!(
        tab.text(".frame-time").await,
        paused,
        "pause did not stop the run"
    );

    // The chrony-like table lists every node, and Berkeley syncs show up in the log.
    let chrony = tab.text("table[data-table=nodes]").await;
    for name in ["A", "B", "C", "D"] {
        assert!(chrony.contains(name), "{chrony}");
    }
    tab.click("button.play").await;
    until_berkeley(&tab).await;

    // The real-network probe: the tab measures its offset and RTT to the relay.
    tab.until("a probe result", || async {
        let last = tab.text(".probe .probe-last").await;
        if last.contains("RTT") {
            Ok(())
        } else {
            Err(last)
        }
    })
    .await;
    tab.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn drift_page_opens_its_sync_messages_in_the_diagram_view() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/#/drift")).await;
    tab.wait_for_css("section.drift h1").await;
    // Wait for a Berkeley round, so the trace holds messages.
    until_berkeley(&tab).await;
    tab.click("button.open-trace").await;
    let text = tab.expect_legal_diagram().await;
    assert!(text.contains("poll"), "Mermaid drew {text:?}");
    tab.close().await;
    server.stop().await;
}
