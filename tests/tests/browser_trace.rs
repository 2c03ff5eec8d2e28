//! Real-browser tests of the space-time view and the Lamport lab page: Mermaid (loaded on
//! demand from the dist's vendor directory) renders the trace as SVG beside our own view.
//! They need the built front end (`make dist`) and Chromium, so they are `#[ignore]`d in a
//! plain `cargo test` and run by `make test` with `--ignored`.

use chronoscope_e2e::{Browser, TestServer};
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
    tab.wait_for_css("#lamport-run").await;
    tab.client
        .find(Locator::Css("#lamport-run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let findings = tab.wait_for_css("#lamport-findings li").await;
    assert!(findings.contains("fastest machine"), "{findings}");
    tab.wait_for_css("#lamport-table td.queue-now").await;
    tab.client
        .find(Locator::XPath("//button[contains(., 'Open trace')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = tab.expect_legal_diagram().await;
    assert!(text.contains("M0"), "Mermaid drew {text:?}");
    tab.close().await;
    server.stop().await;
}
