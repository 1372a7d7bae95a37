//! A real browser for the page tests: Debian's Chromium, headless, driven through
//! ChromeDriver (WebDriver) with `fantoccini`. Each [`Browser`] is its own ChromeDriver and
//! Chromium with a fresh profile and a window of the given size (a phone, a tablet), and
//! optionally a fake camera that films a picture (Chromium's `--use-file-for-fake-video-
//! capture`). Screenshots go to `target/browser-artifacts/`; [`Browser::axe`] runs axe-core
//! (the npm package the pages' build installs) on the page.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a wait for the page gives up after.
pub const WAIT: Duration = Duration::from_secs(20);

/// A browser window.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver_url: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Chromium's binary (`VP_CHROMIUM`, else Debian's).
fn chromium() -> String {
    std::env::var("VP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// ChromeDriver's binary (`VP_CHROMEDRIVER`, else Debian's).
fn chromedriver() -> String {
    std::env::var("VP_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Where screenshots are kept.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// A headless Chromium with a `width`×`height` window; `camera`: a Y4M video its fake
    /// camera films.
    pub async fn start(width: u32, height: u32, camera: Option<&Path>) -> Browser {
        Browser::start_with(width, height, camera, None).await
    }

    /// As [`Browser::start`]; downloads (without asking) go to `downloads`.
    pub async fn start_with(
        width: u32,
        height: u32,
        camera: Option<&Path>,
        downloads: Option<&Path>,
    ) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (run deploy/local/install-deps.sh)");
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--lang=zh-CN".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if let Some(video) = camera {
            args.push("--use-fake-ui-for-media-stream".to_owned());
            args.push("--use-fake-device-for-media-stream".to_owned());
            args.push(format!(
                "--use-file-for-fake-video-capture={}",
                video.display()
            ));
        }
        let mut caps = serde_json::Map::new();
        let mut options = json!({ "binary": chromium(), "args": args });
        if let Some(dir) = downloads {
            options["prefs"] = json!({
                "download.default_directory": dir.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            });
        }
        caps.insert("goog:chromeOptions".to_owned(), options);
        // Dialogs (the till's "unpair?") are accepted.
        caps.insert("unhandledPromptBehavior".to_owned(), json!("accept"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session with chromedriver on {url}: {e}"),
            }
        };
        let browser = Browser {
            client,
            driver_url: url,
            driver,
            _profile: profile,
        };
        // The viewport, not the window, is what a phone has.
        browser.client.set_window_size(width, height).await.unwrap();
        browser
    }

    /// Cuts the browser's network (`offline`) or gives it back: ChromeDriver's network
    /// emulation, so `navigator.onLine` turns false and every request fails, as in a basement.
    pub async fn set_offline(&self, offline: bool) {
        let session = self.client.session_id().await.unwrap().unwrap();
        let url = format!(
            "{}/session/{session}/chromium/network_conditions",
            self.driver_url
        );
        let body = json!({"network_conditions": {
            "offline": offline, "latency": 0, "download_throughput": -1, "upload_throughput": -1}});
        let resp = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// `[data-testid="<id>"]`.
    pub fn sel(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }

    /// The element with test id `id`, waiting for it.
    pub async fn find(&self, id: &str) -> fantoccini::elements::Element {
        let css = Self::sel(id);
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within {WAIT:?}: {e}"))
    }

    /// Whether an element with test id `id` is on the page now.
    pub async fn has(&self, id: &str) -> bool {
        self.client
            .find_all(Locator::Css(&Self::sel(id)))
            .await
            .is_ok_and(|v| !v.is_empty())
    }

    /// Clicks the element with test id `id`.
    pub async fn click(&self, id: &str) {
        self.find(id).await.click().await.unwrap();
    }

    /// Types `text` into the element with test id `id` (after clearing it).
    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.find(id).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// The text of the element with test id `id`.
    pub async fn text(&self, id: &str) -> String {
        self.find(id).await.text().await.unwrap()
    }

    /// Attribute `name` of the element with test id `id`.
    pub async fn attr(&self, id: &str, name: &str) -> Option<String> {
        self.find(id).await.attr(name).await.unwrap()
    }

    /// Waits until `check` (a JavaScript expression) is truthy; panics with `what`.
    pub async fn until(&self, what: &str, check: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self
                .client
                .execute(&format!("return !!({check});"), vec![])
                .await
                .unwrap();
            if v == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{check}` not true within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `target/browser-artifacts/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs axe-core on the page; the violations of impact `serious` or `critical`.
    pub async fn axe(&self) -> Vec<Value> {
        let axe = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../services/web/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&axe)
            .unwrap_or_else(|e| panic!("{}: {e} (deploy/local/web.sh installs it)", axe.display()));
        self.client.execute(&source, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                    .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact,
                          help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) }))))
                    .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e) }]));",
                vec![],
            )
            .await
            .unwrap();
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A Y4M video (one 640×480 frame, which Chromium's fake camera loops) of the QR code of
/// `text`, for the till's camera.
pub fn qr_video(text: &str, path: &Path) {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).unwrap();
    let width = code.width();
    let colors = code.to_colors();
    let (w, h) = (640usize, 480usize);
    let module = (h - 40) / (width + 8);
    let size = module * (width + 8);
    let (left, top) = ((w - size) / 2, (h - size) / 2);
    let mut luma = vec![235u8; w * h];
    for y in 0..size {
        for x in 0..size {
            let (mx, my) = (x / module, y / module);
            let dark = mx >= 4
                && my >= 4
                && mx < width + 4
                && my < width + 4
                && colors[(my - 4) * width + (mx - 4)] == qrcode::Color::Dark;
            luma[(top + y) * w + left + x] = if dark { 16 } else { 235 };
        }
    }
    let mut out = format!("YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    out.extend_from_slice(&luma);
    out.extend(std::iter::repeat_n(128u8, w * h / 2));
    std::fs::write(path, out).unwrap();
}
