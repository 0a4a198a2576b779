//! The transport seam: peer connections are byte streams; TCP today, uTP (BEP 29) later.
//!
//! Everything above this module sees a [`PeerStreamBox`] (any `AsyncRead + AsyncWrite`), so a uTP
//! socket only needs a `connect`/`accept` pair here and the peer tasks stay as they are.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Time allowed to establish an outgoing connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which transport to use for a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    #[default]
    Tcp,
}

impl Transport {
    /// Opens a connection to `addr`, from `local_ip` when given (one loopback address per peer).
    pub async fn connect(
        self,
        addr: SocketAddr,
        local_ip: Option<std::net::IpAddr>,
    ) -> std::io::Result<Box<dyn PeerStreamBox>> {
        match self {
            Transport::Tcp => {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                if let Some(ip) = local_ip.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
                    socket.bind(SocketAddr::new(ip, 0))?;
                }
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                    })??;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// A connected byte stream to a peer, whatever the transport.
pub trait PeerStreamBox: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStreamBox for T {}

/// A listener for incoming peer connections.
pub struct Listener {
    tcp: TcpListener,
}

impl Listener {
    /// Listens on `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener {
            tcp: TcpListener::bind(addr).await?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next incoming connection.
    pub async fn accept(&self) -> std::io::Result<(Box<dyn PeerStreamBox>, SocketAddr)> {
        let (stream, addr) = self.tcp.accept().await?;
        stream.set_nodelay(true)?;
        Ok((Box::new(stream), addr))
    }
}
