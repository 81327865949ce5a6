//! A real `redis-server` for the tests (Debian's `redis-server` package; `.ci/run` installs
//! it): started on a free loopback port with no persistence, in a temporary directory of its
//! own, stopped and restarted on the same port by fault tests, killed on drop. And
//! [`DelayProxy`], a TCP proxy in front of it that can hold Redis's replies back.
//! Included with `#[path = "support/redis.rs"] mod redis_server;`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How long `redis-server` may take to answer PING after it was started.
const STARTUP: Duration = Duration::from_secs(20);

/// A `redis-server` process on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers PING.
    ///
    /// Panics (failing the test, never skipping it) when `redis-server` is not installed.
    pub fn start() -> RedisServer {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!("tower-oauth2-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for redis-server");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits for it to exit: connections to it are reset, new ones
    /// refused. Everything it held is lost (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Runs one command with a fresh connection (bypassing any store) and returns its reply
    /// as RESP text: for tests that write or read keys by hand.
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        use std::io::{Read as _, Write as _};
        let mut stream = StdStream::connect(self.addr()).expect("connect to redis-server");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        stream
            .write_all(&request)
            .expect("send a command to redis-server");
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // Replies of the commands the tests send fit one read; read until a whole line is in.
        while !reply.ends_with(b"\r\n") || !complete(&reply) {
            let n = stream.read(&mut buf).expect("read redis-server's reply");
            assert!(n > 0, "redis-server closed the connection");
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the Redis store tests need a real one \
                 (Debian: `apt-get install -y redis-server`; `.ci/run` installs it)"
            ),
            Err(err) => panic!("could not start redis-server: {err}"),
        };
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.pings() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("redis-server exited at start-up ({status}) on port {}", self.port);
            }
            assert!(
                started.elapsed() < STARTUP,
                "redis-server did not answer PING within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = StdStream::connect_timeout(&self.addr(), Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

/// Whether `reply` holds one whole RESP reply (the simple kinds the tests read: status,
/// error, integer, bulk string or nil).
fn complete(reply: &[u8]) -> bool {
    match reply.first() {
        Some(b'$') => {
            let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let len: i64 = std::str::from_utf8(&reply[1..end]).unwrap().parse().unwrap();
            len < 0 || reply.len() >= end + 2 + len as usize + 2
        }
        // Arrays (LRANGE, ...): the tests only look for bytes in them; one read is enough.
        _ => true,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy on loopback in front of `upstream`, forwarding both ways, that holds every
/// chunk of the upstream's replies back for [`DelayProxy::set_delay`] before passing it on
/// (0 by default). It runs until its runtime shuts down.
#[derive(Clone)]
pub struct DelayProxy {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
}

impl DelayProxy {
    pub async fn start(upstream: SocketAddr) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let delay = delay.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    };
                    let replies = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match server_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let ms = delay.load(Ordering::SeqCst);
                            if ms > 0 {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(requests, replies);
                });
            }
        });
        DelayProxy { addr, delay_ms }
    }

    /// `redis://<proxy>/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Holds each reply back for `delay` from now on (`Duration::ZERO`: passes them at once).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}
