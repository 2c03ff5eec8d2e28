//! Real-browser tests: the real app in real headless Chromium against the real server.
//! They need the built front end (`make dist`) and Debian's chromium + chromium-driver, so they
//! are `#[ignore]`d in a plain `cargo test` and run by `make test` with `--ignored`.

use chronoscope_e2e::{Browser, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn app_shell_renders_and_connects_to_the_relay() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/")).await;

    let brand = tab.wait_for_css("header.topbar .brand").await;
    assert!(brand.contains("Chronoscope"), "brand was {brand:?}");
    let nav = tab.text("header.topbar nav").await;
    assert!(nav.contains("Overview"), "navigation was {nav:?}");

    let status = tab.wait_for_css(".conn[data-status=connected]").await;
    assert!(status.contains("replica"), "indicator said {status:?}");

    // Stopping the relay must show the tab reconnecting, not silently connected.
    server.stop().await;
    let status = tab.wait_for_css(".conn[data-status=reconnecting]").await;
    assert!(status.contains("reconnecting"), "indicator said {status:?}");
    tab.close().await;
}

/// The replica id in the indicator's text ("connected · replica 3 · room lobby").
fn replica_of(status: &str) -> String {
    status
        .split("replica ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no replica id in {status:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn a_reloaded_tab_resumes_its_replica_id_and_a_new_tab_gets_another() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/?room=resume")).await;
    let first = replica_of(&tab.wait_for_css(".conn[data-status=connected]").await);

    tab.client.refresh().await.expect("reload");
    let again = replica_of(&tab.wait_for_css(".conn[data-status=connected]").await);
    assert_eq!(again, first, "the reloaded tab kept its replica id");

    let other = browser.open(&server.url("/?room=resume")).await;
    let second = replica_of(&other.wait_for_css(".conn[data-status=connected]").await);
    assert_ne!(second, first);
    other.close().await;
    tab.close().await;
    server.stop().await;
}
