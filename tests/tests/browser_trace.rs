//! Real-browser tests of the space-time view and the Lamport lab page: Mermaid (loaded on
//! demand from the dist's vendor directory) renders the trace as SVG beside our own view.
//! They need the built front end (`make dist`) and Chromium, so they are `#[ignore]`d in a
//! plain `cargo test` and run by `make test` with `--ignored`.

use chronoscope_e2e::{Browser, Tab, TestServer};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn diagram_view_shows_an_svg_rendered_by_mermaid() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/")).await;
    tab.wait_for_css("header.topbar .brand").await;
    // Mermaid is not loaded on pages that draw no diagram.
    let loaded = tab
        .client
        .execute("return typeof window.mermaid !== 'undefined' || document.getElementById('mermaid-script') !== null", vec![])
        .await
        .unwrap();
    assert_eq!(
        loaded,
        serde_json::Value::Bool(false),
        "Mermaid loaded on the overview page"
    );

    tab.client.goto(&server.url("/#/trace")).await.unwrap();
    // Mermaid's own SVG output (it marks the diagram type on the root element).
    let text = tab
        .wait_for_css("#mermaid-out svg[aria-roledescription='sequence']")
        .await;
    assert!(
        text.contains("alice") && text.contains("carol"),
        "Mermaid drew {text:?}"
    );
    // Our space-time view beside it, with slanted message lines.
    tab.wait_for_css("#space-time-out svg.space-time line.message")
        .await;
    let mermaid_text = tab
        .client
        .execute(
            "return document.getElementById('mermaid-text').value",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        mermaid_text
            .as_str()
            .unwrap_or("")
            .starts_with("sequenceDiagram"),
        "{mermaid_text:?}"
    );
    let findings = tab.text("#trace-findings").await;
    assert!(findings.contains("every clock is legal"), "{findings}");
    tab.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn lamport_lab_runs_and_opens_its_trace_in_the_diagram_view() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/#/lamport")).await;
    // The page runs on open: the claims and the table fill without pressing anything.
    let findings = tab.wait_for_css("#claims li.claim").await;
    assert!(findings.contains("clock condition"), "{findings}");
    assert!(tab.text("#claims").await.contains("fastest machine"));
    tab.wait_for_css("table[data-table=machines] td[data-col=queue_now]")
        .await;
    tab.click("button.open-trace").await;
    let text = tab.expect_legal_diagram().await;
    assert!(text.contains("M0"), "Mermaid drew {text:?}");
    tab.close().await;
    server.stop().await;
}

/// Waits until the findings list has an item containing `text`; returns all findings.
async fn finding(tab: &Tab, text: &str) -> String {
    tab.client
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::XPath(&format!(
            "//ul[@id='trace-findings']/li[contains(., {text:?})]"
        )))
        .await
        .unwrap_or_else(|e| panic!("no finding contains {text:?}: {e}"));
    tab.text("#trace-findings").await
}

/// Drops a file named `name` holding `content` on the space-time view's drop zone, as a
/// person dragging it from a file manager does (a `DataTransfer` with one `File`).
async fn drop_file(tab: &Tab, name: &str, content: &str) {
    tab.client
        .execute(
            "const [name, content] = arguments;
             const zone = document.getElementById('trace-drop');
             const dt = new DataTransfer();
             dt.items.add(new File([content], name, { type: 'application/json' }));
             for (const type of ['dragenter', 'dragover', 'drop']) {
               zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
             }",
            vec![name.into(), content.into()],
        )
        .await
        .unwrap();
}

fn fixture(name: &str) -> String {
    let path = chronoscope_e2e::workspace_root()
        .join("shared/tests/traces")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn a_dropped_otlp_export_is_drawn_and_its_clock_skew_named() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/#/trace")).await;
    tab.wait_for_css("#trace-drop #trace-log").await;

    // A real OTLP export of four services: detected, drawn on four lanes, every clock legal.
    drop_file(&tab, "shop.otlp.json", &fixture("shop.otlp.json")).await;
    let findings = finding(&tab, "read as OpenTelemetry OTLP JSON").await;
    assert!(findings.contains("every clock is legal"), "{findings}");
    assert!(
        findings.contains("4 services as lanes: frontend, checkout, inventory, payments"),
        "{findings}"
    );
    let ours = tab
        .wait_for_css("#space-time-out svg.space-time line.message")
        .await;
    let lanes = tab.text("#space-time-out svg.space-time").await;
    assert!(
        lanes.contains("payments") && lanes.contains("inventory"),
        "{ours} {lanes}"
    );
    let mermaid = tab
        .wait_for_css("#mermaid-out svg[aria-roledescription='sequence']")
        .await;
    assert!(mermaid.contains("checkout"), "Mermaid drew {mermaid:?}");

    // The same shop with inventory's clock 40 ms behind: the validator names the skew.
    drop_file(&tab, "skewed.otlp.json", &fixture("skewed.otlp.json")).await;
    let findings = finding(&tab, "clock skew").await;
    assert!(
        findings.contains("inventory's clock is at least 39.739 ms behind checkout's"),
        "{findings}"
    );

    // Pasted text in the lab notebook's JSON lines, drawn as its immediate happens-before graph.
    tab.client
        .execute(
            "const box = document.getElementById('trace-log');
             box.value = arguments[0];
             box.dispatchEvent(new Event('input', { bubbles: true }));
             const pick = document.getElementById('trace-diagram');
             pick.value = 'graph';
             pick.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![fixture("seed.jsonl").into()],
        )
        .await
        .unwrap();
    finding(&tab, "in the order the nodes first appear").await;
    let expected =
        "graph TD\nA1[Node A: start] --> B1[Node B: recv_from_A]\nC1[Node C: independent_task]\n";
    // Mermaid draws the graph as a flowchart once the page has the new text.
    tab.wait_for_css("#mermaid-out svg[aria-roledescription^='flowchart']")
        .await;
    let text = tab
        .client
        .execute(
            "return document.getElementById('mermaid-text').value",
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap_or("");
    assert_eq!(text, expected);
    tab.close().await;
    server.stop().await;
}
