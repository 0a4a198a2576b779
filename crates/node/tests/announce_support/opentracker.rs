//! Debian's opentracker on a free loopback port, serving a whitelist of info-hashes, for the
//! tracker client's interop tests (also included by the CLI's end-to-end tracker tests).

#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Ports tried before giving up on finding one free for both TCP and UDP.
const PORT_TRIES_MAX: usize = 50;
/// Connection attempts (one every [`START_POLL`]) while opentracker starts: 10 s in all.
const START_POLLS_MAX: u32 = 500;
const START_POLL: Duration = Duration::from_millis(20);

/// A running opentracker; killed when dropped.
pub struct OpenTracker {
    child: Child,
    /// Where it listens, TCP (HTTP) and UDP alike.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl OpenTracker {
    /// Starts opentracker on a free port of `ip` (a 127.x address) with `info_hashes`
    /// whitelisted.
    pub fn start(ip: Ipv4Addr, info_hashes: &[[u8; 20]]) -> OpenTracker {
        OpenTracker::start_at(free_port(ip), info_hashes)
    }

    /// Starts opentracker on `addr` (from [`free_port`]) with `info_hashes` whitelisted.
    pub fn start_at(addr: SocketAddr, info_hashes: &[[u8; 20]]) -> OpenTracker {
        let dir = tempfile::tempdir().expect("temp dir");
        // opentracker may drop privileges before it reads its whitelist.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        let whitelist = dir.path().join("whitelist.txt");
        let hex: String = info_hashes
            .iter()
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
            .collect();
        std::fs::write(&whitelist, hex).expect("write whitelist");
        let config = dir.path().join("opentracker.conf");
        std::fs::write(
            &config,
            format!(
                "access.whitelist {}\nlisten.tcp_udp {addr}\n",
                whitelist.display()
            ),
        )
        .expect("write config");
        let child = spawn(&config);
        let tracker = OpenTracker {
            child,
            addr,
            _dir: dir,
        };
        let listening = (0..START_POLLS_MAX).any(|_| {
            let up = TcpStream::connect_timeout(&addr, START_POLL).is_ok();
            if !up {
                std::thread::sleep(START_POLL);
            }
            up
        });
        assert!(listening, "opentracker did not listen on {addr} in time");
        tracker
    }

    /// Its HTTP announce URL.
    pub fn http_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// Its UDP announce URL.
    pub fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.addr)
    }
}

impl Drop for OpenTracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path) -> Child {
    Command::new("opentracker")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("opentracker is not installed: run ../shared/peers/install.sh")
}

/// A port on `ip` free for both TCP and UDP right now.
pub fn free_port(ip: Ipv4Addr) -> SocketAddr {
    for _ in 0..PORT_TRIES_MAX {
        let tcp = TcpListener::bind((ip, 0)).expect("bind loopback");
        let addr = tcp.local_addr().expect("local addr");
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no port free for both TCP and UDP on {ip}");
}
