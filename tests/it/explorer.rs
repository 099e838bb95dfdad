//! The block explorer at `/`, driven in a real browser: headless Chromium through
//! chromedriver (WebDriver), as a user would click through it.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them the test fails and says so.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use minichain::node::start;
use minichain::primitives::address::encode_address;
use minichain::rpc::auth::read_cookie;
use minichain::rpc::serve;
use minichain::testkit::{key, pubkey};
use serde_json::{Value, json};

use crate::harness::{config, pay_from_coinbase};

/// Failure bound for anything the page must show: generous, so a busy machine still passes.
const DEADLINE: Duration = Duration::from_secs(30);

/// A chromedriver process on a free loopback port, killed on drop with the Chromium it
/// started (one process group), so a failed test leaves no browser running.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; it touches
            // no memory of ours. The group is chromedriver's own (process_group(0) below).
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Driver {
    // chromedriver cannot report a port it chose itself: take a free one from the kernel.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromedriver ({e}): install chromium and chromium-driver")
        });
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + DEADLINE;
    while http.get(format!("{}/status", driver.url)).send().await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not answer within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"] }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("chromedriver started no Chromium session")
}

/// Waits until the element `css` exists and its text is `want`; panics with what it
/// showed instead.
async fn wait_text(c: &Client, css: &str, want: &str) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = String::from("(no such element)");
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(text) = e.text().await
        {
            if text.trim() == want {
                return;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} should show {want:?} but shows {seen:?} at {:?}", c.current_url().await);
}

/// Clicks the first element matching `css`, once it is there.
async fn click(c: &Client, css: &str) {
    let e = c.wait().at_most(DEADLINE).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
        panic!("no {css} to click: {e}");
    });
    e.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_follows_the_chain_live_and_links_blocks_transactions_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(config(dir.path(), vec![])).await.unwrap();
    let server = serve("127.0.0.1:0".parse().unwrap(), node.clone(), dir.path()).await.unwrap();
    let base = format!("http://{}", server.addr());
    let token = read_cookie(dir.path()).unwrap();
    let http = reqwest::Client::new();
    let mine = |blocks: u32| {
        let req = http.post(format!("{base}/mine")).bearer_auth(&token);
        async move {
            let r = req.json(&json!({ "blocks": blocks })).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    // 101 blocks make the first coinbase spendable; block 102 carries a payment from it.
    mine(101).await;
    let payment = pay_from_coinbase(1, 7);
    let txid = node.submit_tx(payment).await.unwrap().to_string();
    mine(1).await;
    let payer = encode_address("mcrt", &pubkey(&key(1)));
    let payee = encode_address("mcrt", &pubkey(&key(7)));

    let driver = chromedriver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{base}/")).await.unwrap();
    wait_text(&c, "#tip-height", "102").await;
    wait_text(&c, "#recent-blocks tr[data-height='102'] a.block-link", "102").await;
    wait_text(&c, "#sync-state", "synced").await;

    // A block mined now appears without a reload, in the header and the list.
    let mined = mine(1).await;
    wait_text(&c, "#tip-height", "103").await;
    wait_text(&c, "#recent-blocks tr[data-height='103'] a.block-link", "103").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.fragment().unwrap_or(""), "", "the page navigated by itself: {url}");
    assert_eq!(
        c.find(Locator::Css("#recent-blocks tr[data-height='103'] a.block-link"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap(),
        Some(format!("#/block/{}", mined["blocks"][0].as_str().unwrap())),
    );

    // Block → transaction → address.
    click(&c, "#recent-blocks tr[data-height='102'] a.block-link").await;
    wait_text(&c, "#block-height", "102").await;
    click(&c, &format!("#block-view a.tx-link[data-txid='{txid}']")).await;
    wait_text(&c, "#tx-id", &txid).await;
    wait_text(&c, "#tx-confirmations", "2").await;
    wait_text(&c, "#tx-fee", "0.00010000").await;
    // The input shows the output it spent: the miner's coinbase of block 1.
    wait_text(&c, &format!("#tx-view a.address-link[data-address='{payer}']"), &payer).await;
    click(&c, &format!("#tx-view a.output-address[data-address='{payee}']")).await;
    wait_text(&c, "#address", &payee).await;
    wait_text(&c, "#address-balance", "49.99990000").await;
    let short = format!("{}…{}", &txid[..8], &txid[56..]);
    wait_text(&c, &format!("#address-utxos a.tx-link[data-txid='{txid}']"), &short).await;
    // Its history: the one payment in. The payer's: the same payment out, below it the
    // coinbase it spent.
    let row = format!("#address-history tr[data-txid='{txid}']");
    wait_text(&c, &format!("{row} td.received"), "49.99990000").await;
    wait_text(&c, &format!("{row} td.sent"), "0.00000000").await;
    c.goto(&format!("{base}/#/address/{payer}")).await.unwrap();
    wait_text(&c, "#address", &payer).await;
    wait_text(&c, &format!("{row} td.sent"), "50.00000000").await;
    wait_text(&c, &format!("{row} td.net"), "-50.00000000").await;
    let rows = c.find_all(Locator::Css("#address-history tbody tr")).await.unwrap();
    let coinbases = c.find_all(Locator::Css("#address-history tbody tr td.num:last-child")).await;
    let coinbases = coinbases.unwrap();
    let mut mined = 0;
    for cell in &coinbases {
        mined += usize::from(cell.text().await.unwrap() == "coinbase");
    }
    assert!(rows.len() >= 2 && mined >= 1, "{} rows, {mined} coinbases", rows.len());

    // Search by height.
    let search = c.find(Locator::Css("#search")).await.unwrap();
    search.send_keys("5").await.unwrap();
    c.find(Locator::Css("#search-form button")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#block-height", "5").await;

    // Readable at phone width: nothing wider than the screen, and a screenshot to look at.
    c.set_window_size(375, 800).await.unwrap();
    c.goto(&format!("{base}/#/tx/{txid}")).await.unwrap();
    wait_text(&c, "#tx-id", &txid).await;
    let overflow = c
        .execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap() <= 0, "the page is {overflow} px wider than a phone");
    let shot = c.screenshot().await.unwrap();
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer-phone.png"),
        shot,
    )
    .unwrap();
    c.set_window_size(1280, 1000).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    wait_text(&c, "#tip-height", "103").await;
    let shot = c.screenshot().await.unwrap();
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer.png"), shot)
        .unwrap();
    c.close().await.unwrap();
    node.shutdown().await;
}
