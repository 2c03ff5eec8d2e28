//! The end-to-end harness: a real Chronoscope server on a free loopback port, and real
//! headless Chromium sessions (through Debian's chromedriver) pointed at it.
//!
//! ```no_run
//! # async fn demo() {
//! use chronoscope_e2e::{Browser, TestServer};
//! let server = TestServer::start_with_built_app().await;
//! let mut browser = Browser::start().await;
//! let tab = browser.open(&server.url("/")).await;
//! tab.wait_for_css("[data-status=connected]").await;
//! # }
//! ```
//!
//! Scenarios with several tabs call [`Browser::open`] once per tab: each tab is its own
//! Chromium session with its own profile, so they are as independent as two users.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

pub mod ws;

use chronoscope_server::{ServeConfig, Shutdown, KEEPALIVE};
use fantoccini::{Client, ClientBuilder, Locator};

static SCRATCH: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory under the system temp dir, removed when the returned guard drops.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Create a new empty directory.
    pub fn new(tag: &str) -> Scratch {
        let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("chronoscope-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The built front end: `$CHRONOSCOPE_DIST`, or `dist/` at the workspace root.
pub fn built_dist() -> PathBuf {
    std::env::var_os("CHRONOSCOPE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("dist"))
}

/// A real server running in this process on `127.0.0.1:<free port>`.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fire to stop it.
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
    /// Its data directory (kept so a restarted server can reuse it).
    pub data_dir: PathBuf,
    _scratch: Option<Scratch>,
}

impl TestServer {
    /// Start a server on the built front end (see [`built_dist`]). Panics with a clear message
    /// when the front end has not been built.
    pub async fn start_with_built_app() -> TestServer {
        let dist = built_dist();
        assert!(
            dist.join("index.html").is_file(),
            "the front end is not built at {}: run `make dist` (or `make test`) first",
            dist.display()
        );
        let scratch = Scratch::new("data");
        let data_dir = scratch.0.clone();
        Self::start(dist, data_dir, Some(scratch)).await
    }

    /// Start a server with an explicit front-end directory and data directory.
    pub async fn start(dist: PathBuf, data_dir: PathBuf, scratch: Option<Scratch>) -> TestServer {
        Self::start_with_keepalive(dist, data_dir, scratch, KEEPALIVE).await
    }

    /// Start a server on a given address — a restart where the last one listened, so pages
    /// that knew it reconnect (retries for a few seconds while the old socket lets go).
    pub async fn start_at(
        addr: SocketAddr,
        dist: PathBuf,
        data_dir: PathBuf,
        scratch: Option<Scratch>,
    ) -> TestServer {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on {addr} again: {e}"),
            }
        };
        Self::serve(listener, dist, data_dir, scratch, KEEPALIVE)
    }

    /// Start a server (on a free port) whose keepalive pings idle connections after
    /// `keepalive` and closes them after twice that.
    pub async fn start_with_keepalive(
        dist: PathBuf,
        data_dir: PathBuf,
        scratch: Option<Scratch>,
        keepalive: Duration,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free loopback port");
        Self::serve(listener, dist, data_dir, scratch, keepalive)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        dist: PathBuf,
        data_dir: PathBuf,
        scratch: Option<Scratch>,
        keepalive: Duration,
    ) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let config = ServeConfig {
            dist,
            data_dir: data_dir.clone(),
            keepalive,
        };
        let sd = shutdown.clone();
        let task = tokio::spawn(async move {
            chronoscope_server::run(listener, config, sd)
                .await
                .expect("server runs");
        });
        TestServer {
            addr,
            shutdown,
            task,
            data_dir,
            _scratch: scratch,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Fire the shutdown signal and wait until the server has stopped. Fails the test if it
    /// does not stop within [`STOP_WAIT`], or if it (or any of the relay's tasks) panicked.
    pub async fn stop(self) {
        self.shutdown.trigger();
        stopped(self.task, STOP_WAIT).await;
    }
}

/// How long [`TestServer::stop`] waits for the server to stop.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Wait for a server task after its shutdown fired: panics if it is still running after
/// `limit` (a hang on shutdown), re-raises its panic if it panicked (the server's own, or its
/// report that relay tasks panicked), and returns if it stopped cleanly.
pub async fn stopped(task: tokio::task::JoinHandle<()>, limit: Duration) {
    match tokio::time::timeout(limit, task).await {
        Err(_) => panic!("the server did not stop within {limit:?} of its shutdown signal"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the server task ended abnormally: {e}"),
        Ok(Ok(())) => {}
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A chromedriver process; each [`Browser::open`] starts a fresh headless Chromium through it.
pub struct Browser {
    driver: Child,
    port: u16,
    profiles: Vec<Scratch>,
}

/// One browser tab (its own Chromium session).
pub struct Tab {
    /// The WebDriver client.
    pub client: Client,
    /// Where its downloads land (inside its profile).
    pub downloads: PathBuf,
}

/// How long waits for the page last before failing.
pub const WAIT: Duration = Duration::from_secs(20);

impl Browser {
    /// Start `chromedriver` (from `$CHROMEDRIVER` or `/usr/bin/chromedriver`).
    pub async fn start() -> Browser {
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_bin}: {e} (install Debian's chromium-driver; `make test` does)")
            });
        // Wait for it to accept connections.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Browser {
            driver,
            port,
            profiles: Vec::new(),
        }
    }

    /// Open `url` in a new headless Chromium and return the tab.
    pub async fn open(&mut self, url: &str) -> Tab {
        let profile = Scratch::new("chromium-profile");
        let downloads = profile.0.join("downloads");
        std::fs::create_dir_all(&downloads).expect("a downloads folder");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                }
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with headless Chromium");
        self.profiles.push(profile);
        client.goto(url).await.expect("navigate");
        Tab { client, downloads }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Tab {
    /// Wait until an element matching `css` exists, and return its text.
    pub async fn wait_for_css(&self, css: &str) -> String {
        let el = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element matches {css:?} within {WAIT:?}: {e}"));
        el.text().await.unwrap_or_default()
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element matches {css:?}: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    /// Click the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element matches {css:?}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css:?}: {e}"));
    }

    /// After a page opened its trace in the space-time view (`#/trace`): wait for Mermaid's
    /// sequence diagram and our SVG's slanted message arrows, check the validator found every
    /// clock legal, and return the text of Mermaid's SVG.
    pub async fn expect_legal_diagram(&self) -> String {
        let mermaid = self
            .wait_for_css("#mermaid-out svg[aria-roledescription='sequence']")
            .await;
        self.wait_for_css("#space-time-out svg.space-time line.message")
            .await;
        let findings = self.text("#trace-findings").await;
        assert!(findings.contains("every clock is legal"), "{findings}");
        mermaid
    }

    /// Run `script` (a function body; `arguments` holds `args`) and return its value.
    pub async fn eval(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Set a form control's value and fire `change` (as a user's edit does).
    pub async fn set_value(&self, css: &str, value: &str) {
        self.eval(
            "const el = document.querySelector(arguments[0]); \
             if (!el) throw new Error('no element ' + arguments[0]); \
             if (el.type === 'checkbox') el.checked = arguments[1] === '1'; else el.value = arguments[1]; \
             el.dispatchEvent(new Event('input', { bubbles: true })); \
             el.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![css.into(), value.into()],
        )
        .await;
    }

    /// Wait until `check` returns `Some`, polling the page; panics after [`WAIT`] with the
    /// last thing seen.
    pub async fn until<T, E, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        E: std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match check().await {
                Ok(v) => return v,
                Err(seen) if tokio::time::Instant::now() >= deadline => {
                    panic!("{what}: not seen within {WAIT:?}; last seen {seen:?}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Wait until the file `name` is completely downloaded, and return its text.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.join(name);
        self.until(&format!("download {name}"), || async {
            let partial = std::fs::read_dir(&self.downloads)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "crdownload"))
                })
                .unwrap_or(false);
            match std::fs::read_to_string(&path) {
                Ok(text) if !partial => Ok(text),
                _ => Err(format!(
                    "{:?}",
                    std::fs::read_dir(&self.downloads)
                        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                )),
            }
        })
        .await
    }

    /// Close the session (and its Chromium).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "did not stop within")]
    async fn a_server_that_hangs_on_shutdown_fails_the_test() {
        stopped(tokio::spawn(std::future::pending()), STOP_WAIT).await;
    }

    #[tokio::test]
    #[should_panic(expected = "the server's own panic")]
    async fn a_server_that_panicked_fails_the_test() {
        stopped(
            tokio::spawn(async { panic!("the server's own panic") }),
            STOP_WAIT,
        )
        .await;
    }

    #[tokio::test]
    async fn a_clean_stop_passes() {
        stopped(tokio::spawn(async {}), STOP_WAIT).await;
    }
}
