//! Just enough of the W3C WebDriver protocol to drive Debian's headless
//! Chromium through chromedriver: the WebDriver client crates pull in a
//! second HTTP stack and ICU, while reqwest is already here.

use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where a browser test's screenshot `name` goes: `target/ui-screenshots/`.
pub fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("ui-screenshots")
        .join(name)
}

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
pub const ARROW_DOWN: &str = "\u{E015}";
pub const SPACE: &str = "\u{E00D}";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// axe-core's script, installed from `tests/axe/package-lock.json` by
/// `npm ci` (as `.ci/run` does). Missing, it fails the test, never skips it.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe");
        let file = dir.join("node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; the accessibility checks need axe-core: \
                 run `npm ci --prefix {}`",
                file.display(),
                dir.display()
            )
        })
    })
}

/// chromedriver on a free port and one headless Chromium session.
pub struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Element(String);

/// Whether an error says the element left the page between finding it and
/// using it: a live update replaced it, or a navigation swapped the whole
/// document. Chromium reports the second either as a stale element or, when
/// the old document is torn down mid-call, as an inspector error.
fn replaced(error: &str) -> bool {
    error.contains("stale element")
        || error.contains("does not belong to the document")
        || error.contains("No node with given id")
}

impl Driver {
    /// Fails the test, never skips it, when the browser is missing.
    pub async fn start() -> Self {
        let missing = "the browser tests need Debian's chromium and chromium-driver: \
                       run `apt-get install -y chromium chromium-driver`";
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("no chromium on PATH; {missing}"));
        let chromedriver = find_program(&["chromedriver"])
            .unwrap_or_else(|| panic!("no chromedriver on PATH; {missing}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {missing}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut ready = false;
        // Chromedriver starts in well under a second on an idle machine.
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"].as_bool() == Some(true)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready; {missing}");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args}
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {answer}; {missing}"))
            .to_owned();
        Self {
            http,
            base,
            session,
            chromedriver: child,
            _profile: profile,
        }
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON");
        match answer["value"]["error"].as_str() {
            Some(error) => Err(format!(
                "WebDriver {path}: {error}: {}",
                answer["value"]["message"].as_str().unwrap_or("")
            )),
            None => Ok(answer["value"].clone()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The browser's cookie `name` for the current page (HttpOnly ones
    /// too: WebDriver sees what scripts cannot), or `None`.
    pub async fn cookie(&self, name: &str) -> Option<Value> {
        self.try_call(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await
            .ok()
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no element {css} on {}:\n{}",
            self.url().await,
            self.text("body").await
        );
    }

    /// Does `action` to the first element matching `css`, finding it again
    /// if a live update replaced it in between.
    async fn act(&self, css: &str, action: &str, body: Value) {
        for _ in 0..20 {
            let e = self.find(css).await;
            match self
                .try_call(
                    reqwest::Method::POST,
                    &format!("/element/{}/{action}", e.0),
                    Some(body.clone()),
                )
                .await
            {
                Ok(_) => return,
                Err(e) if replaced(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{css} kept changing under the test");
    }

    pub async fn click(&self, css: &str) {
        self.act(css, "click", json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.act(css, "value", json!({ "text": text })).await;
    }

    /// The rendered text of the first element matching `css` ("" if none).
    pub async fn text(&self, css: &str) -> String {
        // Live updates replace elements between finding and reading them.
        for _ in 0..20 {
            let Some(e) = self.find_all(css).await.into_iter().next() else {
                return String::new();
            };
            match self
                .try_call(
                    reqwest::Method::GET,
                    &format!("/element/{}/text", e.0),
                    None,
                )
                .await
            {
                Ok(text) => return text.as_str().unwrap_or_default().to_owned(),
                Err(e) if replaced(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{css} kept changing under the test");
    }

    /// Waits until the element matching `css` shows `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let mut last = String::new();
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        while tokio::time::Instant::now() < deadline {
            last = self.text(css).await;
            if last.contains(text) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{css} never showed {text:?} on {}; it shows {last:?}",
            self.url().await
        );
    }

    /// Signs in with the demo picker at `web` as `user` of `org`.
    pub async fn sign_in_demo(&self, web: &str, org: &str, user: &str) {
        self.goto(&format!("{web}/sign-in")).await;
        self.click(&format!("input[name=org][value={org}]")).await;
        self.click("main button[type=submit]").await;
        self.wait_for_text("legend", "Who are you at").await;
        self.click(&format!("input[name=user][value={user}]")).await;
        self.click("main button[type=submit]").await;
        self.wait_for_text("h1", "Find a patient").await;
    }

    /// Finds the patient with NHS number `nhs` and waits for `name`.
    pub async fn find_patient(&self, web: &str, nhs: &str, name: &str) {
        self.goto(&format!("{web}/patient")).await;
        self.type_into("#nhs", nhs).await;
        self.click("form.app-find-patient button").await;
        self.wait_for_text("[data-testid=patient-name]", name).await;
    }

    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// axe-core's WCAG 2.1 A and AA rules on the page as it is now: every
    /// rule broken, with the elements that break it.
    pub async fn accessibility_violations(&self) -> Vec<Value> {
        let present = self
            .execute("return typeof window.axe !== 'undefined';")
            .await;
        if present != Value::Bool(true) {
            self.execute(axe_source()).await;
        }
        // axe.run is asynchronous; the last argument of an async script is
        // WebDriver's callback.
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                resultTypes: ['violations']
            }).then(
                r => done({violations: r.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary,
                                              html: n.html}))
                }))}),
                e => done({error: String(e)})
            );
        "#;
        let result = self
            .post("/execute/async", json!({"script": script, "args": []}))
            .await;
        assert!(
            result["error"].is_null(),
            "axe-core did not run on {}: {}",
            self.url().await,
            result["error"]
        );
        result["violations"]
            .as_array()
            .unwrap_or_else(|| panic!("axe-core gave no result: {result}"))
            .clone()
    }

    /// Fails the test, listing every violation, if the page as it is now
    /// breaks any WCAG 2.1 A or AA rule that axe-core checks. `what` names
    /// the page in the failure.
    pub async fn assert_accessible(&self, what: &str) {
        let violations = self.accessibility_violations().await;
        assert!(
            violations.is_empty(),
            "{what} ({}) breaks {} WCAG 2.1 A/AA rule(s):\n{:#}",
            self.url().await,
            violations.len(),
            Value::Array(violations)
        );
    }

    /// Presses keys on whatever has the focus, as a person at a keyboard.
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for c in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// The id (or text) of the focused element.
    pub async fn focused(&self) -> String {
        self.execute(
            "var e = document.activeElement; \
             return e ? (e.id || (e.textContent || '').trim() || e.tagName) : '';",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Makes the viewport `width` CSS pixels wide, as a phone would.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600
            }}),
        )
        .await;
    }

    /// Saves a PNG of the whole page, not only what the viewport shows.
    pub async fn screenshot(&self, path: &Path) {
        let metrics = self
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Page.getLayoutMetrics", "params": {}}),
            )
            .await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Page.captureScreenshot", "params": {
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
                }}),
            )
            .await;
        let data = shot["data"].as_str().expect("a screenshot").to_owned();
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Also reached by a failing test: end the session (which closes
        // Chromium) without an async runtime, then chromedriver itself.
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            // chromedriver answers once Chromium has closed; the headers are enough.
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buffer) {
                answer.extend_from_slice(&buffer[..n]);
                if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}
