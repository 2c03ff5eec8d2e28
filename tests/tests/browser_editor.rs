//! The collaborative editor in real headless Chromium: three tabs (three browsers) in one room,
//! one slow link, typing in all three, a visible hold-back queue, then one text everywhere.
//! Needs the built front end (`make dist`) and Debian's chromium + chromium-driver, hence
//! `#[ignore]`; `make test` runs it with `--ignored`.

use std::time::{Duration, Instant};

use chronoscope_e2e::{Browser, Tab, TestServer, WAIT};
use fantoccini::Locator;

/// The slow link's delay: long enough to watch the held op, short enough for a test.
const SLOW_MS: u32 = 4000;

async fn value(tab: &Tab) -> String {
    tab.client
        .execute(
            "return document.querySelector('#editor-text').value",
            vec![],
        )
        .await
        .expect("script runs")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Poll `check` until it holds, or fail with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if start.elapsed() > limit => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Wait until the tab's text area holds exactly `text`, or fail with `what`.
async fn until_shows(tab: &Tab, text: &str, what: &str) {
    eventually(WAIT, what, || async {
        let v = value(tab).await;
        (v == text).then_some(()).ok_or(v)
    })
    .await;
}

async fn replica(tab: &Tab) -> u32 {
    eventually(WAIT, "replica id shown", || async {
        let t = tab.text("#editor-replica").await;
        t.trim().parse::<u32>().map(|_| ()).map_err(|_| t)
    })
    .await;
    tab.text("#editor-replica").await.trim().parse().unwrap()
}

/// Type `keys` at the end of the tab's text area.
async fn type_at_end(tab: &Tab, keys: &str) {
    let area = tab
        .client
        .find(Locator::Css("#editor-text:not([readonly])"))
        .await
        .expect("an editable text area");
    tab.client
        .execute(
            "const a = document.querySelector('#editor-text'); a.focus(); \
             a.setSelectionRange(a.value.length, a.value.length);",
            vec![],
        )
        .await
        .expect("script runs");
    area.send_keys(keys).await.expect("typing");
}

/// Insert `text` at the end through the browser's own editing command (fires `input` like
/// typing does); ChromeDriver's send_keys cannot type characters outside the BMP (emoji).
async fn insert_at_end(tab: &Tab, text: &str) {
    tab.client
        .execute(
            "const a = document.querySelector('#editor-text'); a.focus(); \
             a.setSelectionRange(a.value.length, a.value.length); \
             document.execCommand('insertText', false, arguments[0]);",
            vec![serde_json::Value::String(text.to_owned())],
        )
        .await
        .expect("script runs");
}

async fn open_editor(browser: &mut Browser, url: &str) -> Tab {
    let tab = browser.open(url).await;
    tab.wait_for_css(".conn[data-status=connected]").await;
    tab.wait_for_css("#editor-text:not([readonly])").await;
    tab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn three_tabs_with_a_slow_link_hold_back_then_converge() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let url = server.url(&format!("/?room=editor-e2e-{}#/editor", std::process::id()));
    let a = open_editor(&mut browser, &url).await;
    let b = open_editor(&mut browser, &url).await;
    let c = open_editor(&mut browser, &url).await;
    let (ra, rc) = (replica(&a).await, replica(&c).await);

    // Slow the link a → c through a's latency matrix (the slider's change event).
    let row = format!("#editor-matrix td[data-link=\"{ra}-{rc}\"] input.delay");
    a.wait_for_css(&row).await;
    a.client
        .execute(
            &format!(
                "const s = document.querySelector('{}'); s.value = '{SLOW_MS}'; \
                 s.dispatchEvent(new Event('change', {{ bubbles: true }}));",
                row.replace('\'', "\\'")
            ),
            vec![],
        )
        .await
        .expect("script runs");
    // Every tab shows the new matrix.
    for tab in [&a, &b, &c] {
        let label = format!("#editor-matrix td[data-link=\"{ra}-{rc}\"] .delay-ms");
        eventually(WAIT, "matrix change seen by every tab", || async {
            let t = tab.text(&label).await;
            if t.contains(&SLOW_MS.to_string()) {
                Ok(())
            } else {
                Err(t)
            }
        })
        .await;
    }

    // a types; b gets it at once, c only after the slow link's delay.
    type_at_end(&a, "Grüße ").await;
    eventually(WAIT, "b receives a's edit", || async {
        let v = value(&b).await;
        if v.contains("Grüße") {
            Ok(())
        } else {
            Err(v)
        }
    })
    .await;
    // b's edit depends on a's, so at c it is held until a's message arrives; c types too.
    tokio::join!(type_at_end(&b, "日本 "), async {
        type_at_end(&c, "ç ").await;
        insert_at_end(&c, "😀").await;
    });
    type_at_end(&a, "a2 ").await;
    eventually(
        Duration::from_millis(SLOW_MS as u64),
        "c's hold-back queue fills",
        || async {
            let n = c.text("#editor-held-count").await;
            match n.trim().parse::<u32>() {
                Ok(k) if k > 0 => Ok(()),
                _ => Err(format!("held count {n:?}, value {:?}", value(&c).await)),
            }
        },
    )
    .await;
    let held = c.text("#editor-held").await;
    if let Ok(dir) = std::env::var("CHRONOSCOPE_SCREENSHOTS") {
        let png = c.client.screenshot().await.expect("screenshot");
        std::fs::write(format!("{dir}/editor-held.png"), png).expect("write screenshot");
    }
    assert!(
        held.contains(&format!("waits for ({ra}, 1)")),
        "c's held op names its dependency on a's first message: {held:?}"
    );

    // After the delay everything is delivered: one text everywhere, queues empty, all acked.
    eventually(WAIT, "all three tabs show the same text", || async {
        let (va, vb, vc) = (value(&a).await, value(&b).await, value(&c).await);
        let held = c.text("#editor-held-count").await;
        let unacked: Vec<String> = vec![
            a.text("#editor-unacked-count").await,
            b.text("#editor-unacked-count").await,
            c.text("#editor-unacked-count").await,
        ];
        if va == vb
            && vb == vc
            && ["Grüße", "日本", "ç 😀", "a2"]
                .iter()
                .all(|w| va.contains(w))
            && held.trim() == "0"
            && unacked.iter().all(|u| u.trim() == "0")
        {
            Ok(())
        } else {
            Err(format!(
                "{va:?} / {vb:?} / {vc:?}, held {held}, unacked {unacked:?}"
            ))
        }
    })
    .await;

    // A reloaded tab rebuilds the document from the relay's log and keeps its replica id.
    let before = value(&b).await;
    let rb = replica(&b).await;
    b.client.refresh().await.expect("reload");
    b.wait_for_css("#editor-text:not([readonly])").await;
    until_shows(&b, &before, "reloaded tab shows the document").await;
    assert_eq!(replica(&b).await, rb, "a reload keeps the replica id");
    type_at_end(&b, "!").await;
    let expected = format!("{before}!");
    for tab in [&a, &c] {
        until_shows(
            tab,
            &expected,
            "an edit after the reload reaches the others",
        )
        .await;
    }

    for tab in [a, b, c] {
        tab.close().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn editor_opens_its_causal_multicast_in_the_diagram_view() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let url = server.url(&format!(
        "/?room=editor-trace-e2e-{}#/editor",
        std::process::id()
    ));
    let a = open_editor(&mut browser, &url).await;
    let b = open_editor(&mut browser, &url).await;
    type_at_end(&a, "hi").await;
    until_shows(&b, "hi", "a's edit reaches b").await;
    // b's trace holds a's broadcast and its delivery at b.
    b.click("button.open-trace").await;
    let text = b.expect_legal_diagram().await;
    assert!(text.contains("broadcast"), "Mermaid drew {text:?}");
    for tab in [a, b] {
        tab.close().await;
    }
    server.stop().await;
}

/// The keys of this tab's `sessionStorage` holding unacknowledged messages, with how many
/// messages each holds.
async fn stored_unacked(tab: &Tab) -> Vec<(String, usize)> {
    let v = tab
        .client
        .execute(
            "return Object.keys(sessionStorage) \
               .filter(k => k.startsWith('chronoscope-unacked-')) \
               .map(k => [k, JSON.parse(sessionStorage.getItem(k)).messages.length]);",
            vec![],
        )
        .await
        .expect("script runs");
    serde_json::from_value(v).expect("[[key, count], ...]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn a_reload_before_the_relay_acknowledged_loses_nothing() {
    let dist = chronoscope_e2e::built_dist();
    assert!(dist.join("index.html").is_file(), "run `make dist` first");
    let data = chronoscope_e2e::Scratch::new("data");
    let server = TestServer::start(dist.clone(), data.0.clone(), None).await;
    let addr = server.addr;
    let url = server.url(&format!("/?room=reload-e2e-{}#/editor", std::process::id()));
    let mut browser = Browser::start().await;
    let a = open_editor(&mut browser, &url).await;
    let b = open_editor(&mut browser, &url).await;
    let ra = replica(&a).await;

    type_at_end(&a, "acked ").await;
    until_shows(&b, "acked ", "b sees a's acknowledged text").await;
    eventually(WAIT, "a's first message acknowledged", || async {
        let n = a.text("#editor-unacked-count").await;
        (n.trim() == "0").then_some(()).ok_or(n)
    })
    .await;

    // The relay goes away; a keeps typing. Its messages cannot be acknowledged: they wait in
    // the panel and in sessionStorage.
    server.stop().await;
    a.wait_for_css(".conn:not([data-status=connected])").await;
    type_at_end(&a, "offline").await;
    insert_at_end(&a, " 🦀").await;
    eventually(WAIT, "a's offline edits wait unacknowledged", || async {
        let n = a.text("#editor-unacked-count").await;
        let stored = stored_unacked(&a).await;
        if n.trim() != "0" && stored.iter().any(|(_, k)| *k > 0) {
            Ok(())
        } else {
            Err(format!("panel {n:?}, sessionStorage {stored:?}"))
        }
    })
    .await;
    assert_eq!(value(&a).await, "acked offline 🦀");

    // "Reload": leave the page, bring the relay back on the same address and data, come back.
    a.client.goto("about:blank").await.expect("leave the page");
    let server = TestServer::start_at(addr, dist, data.0.clone(), None).await;
    a.client.goto(&url).await.expect("reload the editor");
    a.wait_for_css(".conn[data-status=connected]").await;
    assert_eq!(
        replica(&a).await,
        ra,
        "the reloaded tab resumed its replica"
    );

    // The stored messages were restored, re-sent and acknowledged: both tabs have everything.
    for (tab, name) in [(&a, "a"), (&b, "b")] {
        until_shows(tab, "acked offline 🦀", &format!("{name} shows every edit")).await;
    }
    eventually(
        WAIT,
        "everything acknowledged and the store emptied",
        || async {
            let n = a.text("#editor-unacked-count").await;
            let stored = stored_unacked(&a).await;
            if n.trim() == "0" && stored.is_empty() {
                Ok(())
            } else {
                Err(format!("panel {n:?}, sessionStorage {stored:?}"))
            }
        },
    )
    .await;
    let problems = a
        .client
        .execute(
            "return Array.from(document.querySelectorAll('.editor-problems li'))\
               .map(li => li.textContent).join(' | ')",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(problems.as_str(), Some(""), "no problems reported");

    // A third tab that joins now gets the same document from the relay's log.
    let c = open_editor(&mut browser, &url).await;
    until_shows(&c, "acked offline 🦀", "a late joiner catches up").await;
    for tab in [a, b, c] {
        tab.close().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn two_tabs_of_one_browser_are_two_replicas_that_converge() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let url = server.url(&format!(
        "/?room=one-browser-{}#/editor",
        std::process::id()
    ));
    // One Chromium session, two tabs: they share the profile, cookies and local storage, and
    // each has its own sessionStorage — so each is its own replica.
    let tab = open_editor(&mut browser, &url).await;
    let first = tab.client.window().await.expect("window handle");
    let second = tab.client.new_window(true).await.expect("new tab").handle;
    tab.client
        .switch_to_window(second.clone())
        .await
        .expect("switch tab");
    tab.client.goto(&url).await.expect("open the editor");
    tab.wait_for_css(".conn[data-status=connected]").await;
    tab.wait_for_css("#editor-text:not([readonly])").await;
    let r2 = replica(&tab).await;
    type_at_end(&tab, "second tab. ").await;

    tab.client
        .switch_to_window(first.clone())
        .await
        .expect("switch tab");
    let r1 = replica(&tab).await;
    assert_ne!(r1, r2, "two tabs of one browser are two replicas");
    until_shows(&tab, "second tab. ", "the first tab sees the second's text").await;
    type_at_end(&tab, "first tab.").await;
    let both = "second tab. first tab.";
    until_shows(&tab, both, "the first tab shows both").await;
    tab.client
        .switch_to_window(second)
        .await
        .expect("switch tab");
    until_shows(&tab, both, "the second tab shows both").await;
    // Presence lists both replicas in either tab.
    let presence = tab.text("#editor-presence").await;
    for r in [r1, r2] {
        assert!(presence.contains(&r.to_string()), "{r} in {presence:?}");
    }
    tab.close().await;
    server.stop().await;
}
