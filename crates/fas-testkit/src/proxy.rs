//! A TCP proxy that can partition the network silently (no socket is closed by a cut).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A TCP proxy on `127.0.0.1:<random port>` forwarding every connection to an upstream address,
/// with the failures of a network between them:
///
/// - [`Proxy::cut`]: a silent partition. Nothing crosses in either direction any more and no
///   socket is closed: the client sees no error, only silence (its queries time out). Data
///   already read is held, not dropped, and delivered after [`Proxy::heal`] (as TCP retransmits).
///   New connections are accepted but never forwarded while cut, so a client's connect or
///   startup handshake times out.
/// - [`Proxy::close_upstream`]: closes the server-side socket of every forwarded connection, as
///   a server that noticed a dead peer (its TCP keepalives) and ended the session. The client
///   sides stay open and silent until [`Proxy::heal`] (at once when not cut).
/// - [`Proxy::heal`]: forwarding resumes; connections accepted during the cut are forwarded now,
///   except those their client closed meanwhile (as a connection attempt lost in a partition,
///   they never reach the server).
///
/// Both ends' TCP keepalive probes are answered by this process's kernel, so neither side
/// detects a cut by itself: a test decides when the server "notices" with
/// [`Proxy::close_upstream`]. Every task stops when the proxy is dropped (its sockets close).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    /// Bumped by each [`Proxy::close_upstream`].
    closes: watch::Sender<u64>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each accepted connection to `upstream`.
    ///
    /// Panics when it cannot bind (tests only).
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's local address");
        let shared = Arc::new(Shared {
            upstream,
            cut: watch::channel(false).0,
            closes: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops forwarding in both directions without closing anything (see [`Proxy`]).
    pub fn cut(&self) {
        self.shared.cut.send_replace(true);
    }

    /// Resumes forwarding (see [`Proxy`]).
    pub fn heal(&self) {
        self.shared.cut.send_replace(false);
    }

    /// Whether the proxy is cut now.
    pub fn is_cut(&self) -> bool {
        *self.shared.cut.borrow()
    }

    /// Closes the server side of every connection forwarded so far (see [`Proxy`]).
    pub fn close_upstream(&self) {
        self.shared.closes.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's JoinSet: aborting it drops them all.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    let _ = client.set_nodelay(true);
                    conns.spawn(connection(client, shared.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Waits until the proxy is not cut (returns `false` when the proxy is gone).
async fn wait_open(cut: &mut watch::Receiver<bool>) -> bool {
    cut.wait_for(|c| !*c).await.is_ok()
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut cut = shared.cut.subscribe();
    let mut closes = shared.closes.subscribe();
    // Accepted during a cut: held, unread, until healed.
    let held = *cut.borrow_and_update();
    if !wait_open(&mut cut).await {
        return;
    }
    // A close_upstream before this connection reached the server does not concern it.
    closes.mark_unchanged();
    // Its client may have given up during the cut (a connect timeout): then, as a SYN lost in a
    // partition, it never reaches the server. Otherwise what it sent so far goes first.
    let mut early = Vec::new();
    if held {
        let mut buf = [0u8; 4096];
        loop {
            match client.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => early.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
    }
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let closed = {
        let up = pump(&mut cr, &mut uw, shared.cut.subscribe());
        let down = pump(&mut ur, &mut cw, shared.cut.subscribe());
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            r = closes.changed() => r.is_ok(),
        }
    };
    if closed {
        // The server's side goes now; the client's stays silent until the network heals.
        drop((ur, uw));
        wait_open(&mut cut).await;
    }
}

/// Copies `from` → `to`; every chunk read waits for the network to be open before it is written
/// (nothing crosses while cut). An end of stream is forwarded as a write shutdown, also only when
/// open.
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if !wait_open(&mut cut).await {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::time::timeout;

    /// An upstream echo server: each connection's bytes are sent back; it reports each
    /// connection's end (EOF or error) on the channel and counts the connections it accepted.
    async fn echo() -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<()>,
        Arc<AtomicUsize>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = tx.send(());
                });
            }
        });
        (addr, rx, accepted)
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        timeout(Duration::from_millis(300), s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    }

    #[tokio::test]
    async fn forwards_then_a_cut_is_silent_and_a_heal_delivers_what_was_held() {
        let (up, _ends, _) = echo().await;
        let proxy = Proxy::start(up).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s, b"hello").await.as_deref(),
            Some(&b"hello"[..])
        );
        proxy.cut();
        assert!(proxy.is_cut());
        // Nothing comes back, and the socket is not closed: no EOF, no error.
        s.write_all(b"during").await.unwrap();
        let mut buf = [0u8; 16];
        let r = timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(r.is_err(), "the cut is silent: {r:?}");
        proxy.heal();
        let mut held = [0u8; 6];
        timeout(Duration::from_secs(2), s.read_exact(&mut held))
            .await
            .expect("delivered after the heal")
            .unwrap();
        assert_eq!(&held, b"during");
        assert_eq!(
            roundtrip(&mut s, b"again").await.as_deref(),
            Some(&b"again"[..])
        );
    }

    #[tokio::test]
    async fn a_connection_made_during_a_cut_is_accepted_but_not_forwarded_until_healed() {
        let (up, _ends, _) = echo().await;
        let proxy = Proxy::start(up).await;
        proxy.cut();
        let mut s = timeout(Duration::from_secs(1), TcpStream::connect(proxy.addr()))
            .await
            .expect("accepted during the cut")
            .unwrap();
        assert_eq!(roundtrip(&mut s, b"ping").await, None);
        proxy.heal();
        let mut buf = [0u8; 4];
        timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("forwarded after the heal")
            .unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn close_upstream_ends_the_server_side_only_and_the_client_learns_at_the_heal() {
        let (up, mut ends, _) = echo().await;
        let proxy = Proxy::start(up).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"x").await.is_some());
        proxy.cut();
        proxy.close_upstream();
        timeout(Duration::from_secs(2), ends.recv())
            .await
            .expect("the server saw its connection end");
        // The client still sees silence, not an end.
        let mut buf = [0u8; 4];
        let r = timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(r.is_err(), "still silent: {r:?}");
        proxy.heal();
        let r = timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("the client side closes at the heal");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        // New connections work again after the heal.
        let mut s2 = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut s2, b"new").await.is_some());
    }

    #[tokio::test]
    async fn close_upstream_spares_connections_made_later() {
        let (up, _ends, _) = echo().await;
        let proxy = Proxy::start(up).await;
        proxy.close_upstream();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"y").await.is_some());
    }

    #[tokio::test]
    async fn a_connection_its_client_gave_up_during_the_cut_never_reaches_the_server() {
        let (up, _ends, accepted) = echo().await;
        let proxy = Proxy::start(up).await;
        proxy.cut();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"startup").await.unwrap();
        drop(s);
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.heal();
        let mut s2 = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut s2, b"z").await.is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "only the later connection"
        );
    }
}
