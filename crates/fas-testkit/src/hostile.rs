//! An HTTP server that misbehaves on purpose (raw TCP): bodies of 100 MB, bodies that never end,
//! one byte a second, invalid UTF-8, JSON nested 100 000 deep. The hostile-input tests of the
//! Prometheus collector and the Machines API client use it.

/// How the hostile server answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Hostile {
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
    /// 200 with this JSON body (a well-formed answer, for a control).
    Body(&'static str),
}

/// Starts the hostile server on a free port; returns `http://127.0.0.1:PORT`.
pub async fn hostile(mode: Hostile) -> String {
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
                    Hostile::Body(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\n{json}content-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        s.write_all(body.as_bytes()).await
                    }
                    Hostile::DeepJson => {
                        let n = 100_000;
                        let body = format!(
                            "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":{}{}}}}}",
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
