//! The tracker's web page in headless Chromium: after its script ran, the DOM lists the search
//! results and a torrent's files, swarm health and magnet link, and a screenshot of it shows the
//! results table.

mod tracker_support;

use std::path::Path;
use std::process::Command;

use tracker::server::Config;
use tracker_support::{get_bytes, made_up_torrent, Server};

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--timeout=60000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (test.sh installs it)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn page_renders_search_results_in_headless_chromium() {
    let server = Server::start(None, Config::default());
    let movie = server
        .publish(&made_up_torrent(
            "Sintel open movie 4k",
            &[("sintel/sintel-4k.mkv", 4_000_000)],
        ))
        .info_hash;
    server.publish(&made_up_torrent(
        "Sintel soundtrack flac",
        &[("ost/01.flac", 30_000)],
    ));
    server.publish(&made_up_torrent("Big Buck Bunny", &[("bbb.mp4", 70_000)]));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/?q=sintel", server.base);

    let dom = chromium(&dir.path().join("profile-dom"), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Sintel open movie 4k"), "{dom}");
    assert!(dom.contains("Sintel soundtrack flac"));
    assert!(!dom.contains("Big Buck Bunny"), "only matches are listed");
    assert_eq!(dom.matches("class=\"result\"").count(), 2);
    assert!(dom.contains("magnet:?xt=urn:btih:"));
    assert!(dom.contains("3 torrents indexed"));

    // One seeder joins the movie's swarm; its details (files, swarm health, magnet) show.
    let seeder = tracker::http::AnnounceRequest {
        info_hash: tracker::InfoHash::from_hex(&movie).unwrap(),
        peer_id: tracker::PeerId([1; 20]),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: tracker::Event::Started,
        numwant: Some(0),
        compact: true,
        ip: None,
        key: None,
        tracker_id: None,
    };
    get_bytes(&format!("{}?{}", server.announce_url(), seeder.to_query()));
    let url_details = format!("{}/?q=sintel&t={movie}", server.base);
    let dom = chromium(
        &dir.path().join("profile-details"),
        &["--dump-dom", &url_details],
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("sintel/sintel-4k.mkv (3.8 MiB)"), "{dom}");
    assert!(dom.contains("Swarm: 1 seeders, 0 leechers"), "{dom}");
    assert!(
        dom.contains(&format!("magnet:?xt=urn:btih:{movie}")),
        "{dom}"
    );

    let shot = dir.path().join("page.png");
    chromium(
        &dir.path().join("profile-shot"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,800",
            &url,
        ],
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (1200, 800));
    let bytes = &pixels[..frame.buffer_size()];
    let mean = bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / bytes.len() as f64;
    let variance = bytes
        .iter()
        .map(|&b| (f64::from(b) - mean).powi(2))
        .sum::<f64>()
        / bytes.len() as f64;
    assert!(
        variance > 100.0,
        "screenshot looks blank (variance {variance})"
    );
    // The results table's header band (#dfe8d5) is drawn: the page rendered more than text.
    let channels = frame.color_type.samples();
    let header_band = bytes
        .chunks_exact(channels)
        .filter(|px| px[0] == 0xdf && px[1] == 0xe8 && px[2] == 0xd5)
        .count();
    assert!(
        header_band > 1000,
        "no results table in the screenshot ({header_band} px)"
    );
}
