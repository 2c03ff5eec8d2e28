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

/// The files the page has fetched so far, by name.
async fn fetched(tab: &chronoscope_e2e::Tab) -> Vec<String> {
    let v = tab
        .eval(
            "return performance.getEntriesByType('resource').map((e) => e.name);",
            vec![],
        )
        .await;
    v.as_array()
        .expect("a list of resources")
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn the_labs_bundle_loads_on_the_first_lab_and_not_before() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/")).await;

    // The overview and the editor are the shell's: no labs bundle is fetched for them.
    tab.wait_for_css("li.lab-card[data-lab=lamport]").await;
    tab.eval("location.hash = '#/editor';", vec![]).await;
    tab.wait_for_css("textarea").await;
    let before = fetched(&tab).await;
    assert!(
        before.iter().all(|n| !n.contains("chronoscope-labs")),
        "the shell fetched the labs bundle: {before:?}"
    );

    // The first lab brings it, and the lab renders inside the shell's #lab-root.
    tab.eval("location.hash = '#/lamport';", vec![]).await;
    tab.wait_for_css("#lab-root section.page").await;
    let after = fetched(&tab).await;
    assert!(
        after.iter().any(|n| n.contains("chronoscope-labs_bg.wasm")),
        "no labs bundle after opening a lab: {after:?}"
    );

    // Back on a shell page the lab is gone (its timers and rooms with it); another lab comes
    // from the bundle already loaded.
    tab.eval("location.hash = '#/';", vec![]).await;
    tab.until("the lab unmounted", || async {
        let n = tab
            .eval(
                "return document.querySelectorAll('#lab-root *').length;",
                vec![],
            )
            .await;
        if n.as_u64() == Some(0) {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    tab.eval("location.hash = '#/drift';", vec![]).await;
    tab.wait_for_css("#lab-root section.drift").await;
    let labs_fetches = fetched(&tab)
        .await
        .into_iter()
        .filter(|n| n.contains("chronoscope-labs_bg.wasm"))
        .count();
    assert_eq!(labs_fetches, 1, "the labs bundle is fetched once");
    tab.close().await;
}
