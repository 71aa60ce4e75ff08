//! The status page as a browser shows it: headless Chromium (Debian
//! `chromium`) loads `GET /`, its DOM holds the zones, nameservers,
//! machines and audit tables with the data, and its screenshot is a real
//! picture of the page (right size, many colours, not blank).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run headless Chromium on `url` with `args` (bounded to 90 s); its stdout.
async fn chromium(url: String, args: Vec<String>, profile: std::path::PathBuf) -> String {
    require("chromium", "chromium");
    tokio::task::spawn_blocking(move || {
        let child = Command::new("timeout")
            .args(["-k", "5", "90", "chromium"])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(&args)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut guard = Child(child);
        let mut out = String::new();
        let mut err = String::new();
        use std::io::Read;
        guard
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        guard
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = guard.0.wait().unwrap();
        assert!(status.success(), "chromium {args:?}: {status:?}\n{err}");
        out
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_status_page_renders_its_tables_in_chromium() {
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let h = Harness::start_with(|c| {
        write(
            &c.zones_dir.join("acme.toml"),
            &format!(
                "{ZONE_FILE}\n[[secondary]]\naddress = \"{dead}\"\nname = \"ns2.example.net.\"\n"
            ),
        );
    })
    .await;
    let owner = zname("_acme-challenge.mx1");
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&owner, 60, RecordType::TXT, "page-token")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    let rc = h
        .update_rcode(
            "www1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&owner, 60, RecordType::TXT, "not-mine")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::Refused);
    write(
        &h.path("acl/netbox.toml"),
        "networks = [\"not a network\"]\n",
    );
    assert!(h.server().policy.reload(true).is_err());
    // Let the NOTIFY to the dead secondary fail, so its row shows an error.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.server().zones.all().iter().all(|z| {
        z.propagation
            .statuses()
            .iter()
            .all(|s| s.last_error.is_none())
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "NOTIFY to a closed port did not fail"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!(
        "http://{}/",
        h.server.as_ref().unwrap().http_addr().unwrap()
    );

    let dom = chromium(
        url.clone(),
        vec!["--dump-dom".into()],
        h.path("chromium-dom"),
    )
    .await;
    for table in ["zones", "keys", "secondaries", "machines", "audit"] {
        assert!(
            dom.contains(&format!("<table id=\"{table}\">")),
            "table {table} in the DOM:\n{dom}"
        );
    }
    for text in [
        ZONE,
        "ecdsap256sha256",
        "ns2.example.net.",
        "NOTIFY",
        "mx1",
        "_acme-challenge.mx1 TXT(3)",
        "page-token",
        "REFUSED (acl)",
        "The last reload failed",
        "netbox.toml:1:",
        &format!(
            "{} ecdsap256sha256 (csk)",
            common::unbound::zone_key(&h).key_tag()
        ),
        "none (no key-lifetime",
    ] {
        assert!(dom.contains(text), "{text:?} on the page:\n{dom}");
    }

    let shot = h.path("status-page.png");
    chromium(
        url,
        vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600".into(),
        ],
        h.path("chromium-shot"),
    )
    .await;
    let bytes = std::fs::read(&shot).expect("chromium wrote the screenshot");
    // Kept for a person to look at.
    let _ = std::fs::copy(
        &shot,
        concat!(env!("CARGO_TARGET_TMPDIR"), "/status-page.png"),
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 1600));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let mut colours: Vec<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "only {} colours: a blank page?",
        colours.len()
    );
    // The header bar (#1f3a5f) across the top, and text below it.
    let header = pixels[(10 * info.width + 640) as usize];
    assert_eq!(&header[..3], &[0x1f, 0x3a, 0x5f], "the header bar is drawn");
    let dark = pixels
        .iter()
        .skip((80 * info.width) as usize)
        .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
        .count();
    assert!(dark > 2000, "text under the header: {dark} dark pixels");
}
