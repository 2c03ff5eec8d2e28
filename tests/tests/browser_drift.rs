//! The drift lab page in real headless Chromium: it renders, its chart moves, its controls
//! act on the simulation, and the tab measures its offset to the relay over the WebSocket.

use std::time::Duration;

use chronoscope_e2e::{Browser, TestServer, WAIT};
use fantoccini::Locator;

/// The path of the first offset line.
async fn points(tab: &chronoscope_e2e::Tab) -> String {
    tab.client
        .find(Locator::Css("figure[data-chart=offsets] svg path.line"))
        .await
        .expect("an offset line")
        .attr("d")
        .await
        .expect("d attribute")
        .unwrap_or_default()
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t1 = sim_seconds(&tab.text(".frame-time").await);
    let p1 = points(&tab).await;
    assert!(t1 > t0, "simulated time did not advance: {t0} → {t1}");
    assert_ne!(p0, p1, "the chart did not move");

    // Pause stops it; step advances by exactly one event.
    tab.client
        .find(Locator::Css("button.play"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused = tab.text(".frame-time").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
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
    tab.client
        .find(Locator::Css("button.play"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = tab.text(".events").await;
        if log.contains("SYNC EVENT (Berkeley") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sync event in the log: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The real-network probe: the tab measures its offset and RTT to the relay.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = tab.text(".probe .probe-last").await;
        if last.contains("RTT") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe result: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let deadline = tokio::time::Instant::now() + WAIT;
    while !tab.text(".events").await.contains("SYNC EVENT (Berkeley") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sync event in the log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tab.click("button.open-trace").await;
    let text = tab.expect_legal_diagram().await;
    assert!(text.contains("poll"), "Mermaid drew {text:?}");
    tab.close().await;
    server.stop().await;
}
