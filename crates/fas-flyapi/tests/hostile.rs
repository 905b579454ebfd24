//! Hostile Machines API answers to a list: 100 MB, a body that never ends, one byte a second,
//! invalid UTF-8, JSON nested 100 000 deep. Each ends with a clear error within the client's
//! timeout, with memory bounded by the body limit (32 MiB), and the client keeps working.
//! Times are printed, not asserted (the timeout bounds them).

use std::time::{Duration, Instant};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, Machine, RetryPolicy};

async fn list(url: &str) -> (Result<Vec<Machine>, fas_flyapi::Error>, u64) {
    let mut cc = ClientConfig::new("test-token");
    cc.machines_base_url = url.to_owned();
    cc.timeout = Duration::from_secs(2);
    cc.retry = RetryPolicy::none();
    let client = Client::new(cc).unwrap();
    let before = rss_kib();
    let t0 = Instant::now();
    let r = client
        .list_machines("app", &ListMachinesOptions::default())
        .await;
    let grew = rss_kib().saturating_sub(before);
    eprintln!(
        "{url}: {:?} in {:?}, rss +{grew} KiB",
        r.as_ref().map(Vec::len),
        t0.elapsed()
    );
    (r, grew)
}

fn message(r: &Result<Vec<Machine>, fas_flyapi::Error>) -> String {
    match r {
        Ok(v) => panic!("a hostile answer listed {} machines", v.len()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_100_mb_list_is_refused_at_the_body_limit() {
    let url = hostile(Hostile::Huge).await;
    let (r, grew) = list(&url).await;
    assert!(!message(&r).is_empty());
    assert!(
        grew < 80 << 10,
        "memory grew by {grew} KiB for a 100 MB body"
    );
}

#[tokio::test]
async fn a_never_ending_list_is_cut() {
    let url = hostile(Hostile::Endless).await;
    let (r, grew) = list(&url).await;
    assert!(!message(&r).is_empty());
    assert!(grew < 80 << 10, "memory grew by {grew} KiB");
}

#[tokio::test]
async fn a_list_arriving_one_byte_a_second_times_out() {
    let url = hostile(Hostile::Trickle).await;
    let (r, _) = list(&url).await;
    assert!(matches!(r, Err(fas_flyapi::Error::Timeout { .. })), "{r:?}");
}

#[tokio::test]
async fn an_invalid_utf8_list_is_a_decode_error() {
    let url = hostile(Hostile::NotUtf8).await;
    let (r, _) = list(&url).await;
    assert!(!message(&r).is_empty());
}

#[tokio::test]
async fn a_deeply_nested_list_is_a_decode_error_not_a_stack_overflow() {
    let url = hostile(Hostile::DeepJson).await;
    let (r, _) = list(&url).await;
    assert!(!message(&r).is_empty());
}

// ----- a hostile HTTP server (raw TCP, so it can misbehave) --------------------------------------

/// How the hostile server answers every request.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// 200 with a 100 MB body of spaces (sent as fast as the client reads).
    Huge,
    /// 200 with a chunked body that never ends.
    Endless,
    /// 200, Content-Length 100, then one byte a second.
    Trickle,
    /// 200 with a body that is not UTF-8.
    NotUtf8,
    /// 200 with JSON nested 100 000 arrays deep.
    DeepJson,
}

/// Starts the hostile server on a free port; returns `http://127.0.0.1:PORT`.
async fn hostile(mode: Hostile) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // Read the request head and its body (Content-Length).
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let json = "content-type: application/json\r\n";
                let _ = match mode {
                    Hostile::Huge => {
                        let len = 100 << 20;
                        let head =
                            format!("HTTP/1.1 200 OK\r\n{json}content-length: {len}\r\n\r\n");
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let block = vec![b' '; 64 << 10];
                        for _ in 0..(len / block.len()) {
                            if s.write_all(&block).await.is_err() {
                                return;
                            }
                        }
                        Ok(())
                    }
                    Hostile::Endless => {
                        let head =
                            format!("HTTP/1.1 200 OK\r\n{json}transfer-encoding: chunked\r\n\r\n");
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let block = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                        loop {
                            if s.write_all(block.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                    Hostile::Trickle => {
                        let head = format!("HTTP/1.1 200 OK\r\n{json}content-length: 100\r\n\r\n");
                        if s.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        for _ in 0..100 {
                            if s.write_all(b" ").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                        Ok(())
                    }
                    Hostile::NotUtf8 => {
                        let body: &[u8] = b"{\"status\":\"success\",\"data\":\xff\xfe\xc0\x80}";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\n{json}content-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        s.write_all(body).await
                    }
                    Hostile::DeepJson => {
                        let n = 100_000;
                        let body = format!(
                            "[{{\"id\":\"m\",\"deep\":{}{}}}]",
                            "[".repeat(n),
                            "]".repeat(n)
                        );
                        let head = format!(
                            "HTTP/1.1 200 OK\r\n{json}content-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        s.write_all(body.as_bytes()).await
                    }
                };
            });
        }
    });
    url
}

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
