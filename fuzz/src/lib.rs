//! Helpers shared by the fuzz targets: the input formats (so that seed files stay readable) and a
//! tiny HTTP/1.1 server that answers every request with the current fuzz input.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

/// Splits `data` at the first NUL: the text before it, and `KEY=VALUE` pairs after it (one per
/// NUL-separated piece). Invalid UTF-8 is replaced, so every input is usable.
pub fn text_and_pairs(data: &[u8]) -> (String, BTreeMap<String, String>) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let head = parts.next().unwrap_or_default().to_owned();
    let pairs = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (head, pairs)
}

/// The HTTP statuses a fuzz input's first byte selects from.
pub const STATUSES: [u16; 8] = [200, 200, 400, 422, 500, 503, 204, 299];

/// What the test server answers: status and body.
#[derive(Debug, Default)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// A loopback HTTP/1.1 server (one thread) answering every request with the shared [`Answer`]
/// and `Connection: close`. Returns its base URL and the answer slot.
pub fn server() -> &'static (String, Arc<Mutex<Answer>>) {
    static SERVER: OnceLock<(String, Arc<Mutex<Answer>>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new(Answer::default()));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body (Content-Length) of one request.
                loop {
                    let Ok(n) = stream.read(&mut chunk) else { break };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let (status, body) = {
                    let a = shared.lock().unwrap_or_else(|p| p.into_inner());
                    (a.status, a.body.clone())
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        (url, answer)
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A current-thread tokio runtime shared by the calls of one fuzz process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}
