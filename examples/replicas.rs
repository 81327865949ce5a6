//! Replicas over one Redis (issue 14): K processes, each one replica with its own
//! `TokenCache` sharing its token through a `RedisStore`, under constant load against a local
//! authorization server (AS) issuing short-lived HS256 JWTs and a resource server (RS) that
//! rejects any token past its `exp`. Not part of CI; see "Replicas sharing a store (issue 14)"
//! in BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --features redis --example replicas -- [--replicas K] [--lifetime SECS]
//!     [--lifetimes N] [--rate R] [--no-store] [--outage SECS [--outage-kill]] [--cold-start N]
//! ```
//!
//! The parent process runs the AS, the RS and a `redis-server` of its own on a free loopback
//! port, then starts K copies of itself (`--replica`), each sending R requests per second
//! through `OAuth2Layer` (client credentials, default cache settings) for N token lifetimes,
//! which report their counts as one JSON line. `--no-store` leaves the store out (the
//! baseline); `--outage SECS` stops Redis (`SIGSTOP`, or with `--outage-kill` kills it and
//! starts a new one on the same port) for SECS seconds in the middle of the run;
//! `--cold-start N` instead creates N caches (spread over the K processes), each with its own
//! connection to Redis, which all send one request at the same instant against an empty store.
//!
//! Goals (exit code 0): no failed request and no expired token at the RS; with the store, no
//! duplicate token request (one less than a lifetime / 8 after the one before it: a replica
//! fetched while another's token was new) outside an outage, and one token request for a cold
//! start. 1 when they do not hold, 2 when the run could not be made (bad option, no
//! redis-server).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_oauth2::store::{RedisStore, SharedStore};
use tower_oauth2::{ClientAuth, ClientCredentials, OAuth2Layer, TokenCache, TokenEndpoint};

const CLIENT_ID: &str = "replica";
const CLIENT_SECRET: &str = "replica-secret";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The kinds of failed requests a replica counts, in its JSON line.
const FAILURES: [&str; 5] = [
    "token_error",
    "unauthorized",
    "other_status",
    "timeout",
    "transport",
];

/// The options: the parent's, then those it gives a replica.
const OPTIONS: [&str; 16] = [
    "replicas",
    "lifetime",
    "lifetimes",
    "rate",
    "no-store",
    "outage",
    "outage-kill",
    "cold-start",
    "replica",
    "caches",
    "start-at",
    "as",
    "rs",
    "redis",
    "seconds",
    "cold",
];

/// `--name value` options; flags have the value "true".
struct Args(BTreeMap<String, String>);

impl Args {
    fn parse() -> Result<Args, String> {
        let mut map = BTreeMap::new();
        let mut args = std::env::args().skip(1).peekable();
        while let Some(name) = args.next() {
            let name = name
                .strip_prefix("--")
                .ok_or(format!("unexpected argument {name}"))?
                .to_owned();
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            if !OPTIONS.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}"));
            }
            map.insert(name, value);
        }
        Ok(Args(map))
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| format!("bad value for --{name}: {value:?}")),
        }
    }

    fn text(&self, name: &str) -> Result<&str, String> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or(format!("--{name} is needed"))
    }

    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The time of day of a Unix time in milliseconds, UTC.
fn utc(unix: u64) -> String {
    let seconds = unix / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        unix % 1000
    )
}

/// The monotonic instant of a Unix time in milliseconds (the start all processes share).
fn instant_of(unix: u64) -> Instant {
    Instant::now() + Duration::from_millis(unix.saturating_sub(unix_ms()))
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let result = match Args::parse() {
        Ok(args) if args.flag("replica") => replica(args).await.map(|()| true),
        Ok(args) => parent(args).await,
        Err(message) => Err(message.into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("replicas: {err}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A replica (a child process)

/// A replica's counts: sent, ok, and each kind of failure.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: [AtomicU64; 5],
    first_error: Mutex<Option<String>>,
}

impl Counts {
    fn fail(&self, kind: usize, message: String) {
        self.failed[kind].fetch_add(1, Relaxed);
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(message);
    }
}

async fn replica(args: Args) -> Result<(), BoxError> {
    let caches: usize = args.get("caches", 1)?;
    let start = instant_of(args.get("start-at", 0)?);
    let rs: http::Uri = args.text("rs")?.parse()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut apis = Vec::new();
    for _ in 0..caches {
        let endpoint = TokenEndpoint::new(
            args.text("as")?,
            ClientAuth::client_secret_basic(CLIENT_ID, CLIENT_SECRET),
        )?;
        let mut cache = TokenCache::builder(ClientCredentials::new(endpoint).scope("api"));
        if !args.flag("no-store") {
            cache = cache.store(SharedStore::new(RedisStore::open(args.text("redis")?)?));
        }
        let layer = OAuth2Layer::from_cache(cache.build());
        apis.push(
            ServiceBuilder::new()
                .timeout(REQUEST_TIMEOUT)
                .layer(layer)
                .service(client.clone()),
        );
    }
    let counts = Arc::new(Counts::default());
    let mut requests = tokio::task::JoinSet::new();
    tokio::time::sleep_until(start).await;
    if args.flag("cold") {
        // A cold start: every cache sends one request now.
        for api in apis {
            requests.spawn(send(api, rs.clone(), counts.clone()));
        }
    } else {
        let api = apis.pop().ok_or("no cache")?;
        let end = start + Duration::from_secs_f64(args.get("seconds", 40.0)?);
        let mut tick =
            tokio::time::interval_at(start, Duration::from_secs_f64(1.0 / args.get("rate", 200.0)?));
        while tick.tick().await < end {
            requests.spawn(send(api.clone(), rs.clone(), counts.clone()));
        }
    }
    while requests.join_next().await.is_some() {}
    let failed: serde_json::Map<_, _> = FAILURES
        .iter()
        .zip(&counts.failed)
        .map(|(name, n)| (name.to_string(), n.load(Relaxed).into()))
        .collect();
    let line = serde_json::json!({
        "sent": counts.sent.load(Relaxed),
        "ok": counts.ok.load(Relaxed),
        "failed": failed,
        "first_error": *counts.first_error.lock().unwrap_or_else(|e| e.into_inner()),
    });
    println!("{line}");
    Ok(())
}

async fn send<S>(mut api: S, rs: http::Uri, counts: Arc<Counts>)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
{
    counts.sent.fetch_add(1, Relaxed);
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = rs;
    let result = match api.ready().await {
        Ok(api) => api.call(request).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(response) if response.status() == StatusCode::OK => match response.into_body().collect().await {
            Ok(_) => drop(counts.ok.fetch_add(1, Relaxed)),
            Err(err) => counts.fail(4, format!("body: {err}")),
        },
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => counts.fail(1, "401".into()),
        Ok(response) => counts.fail(2, response.status().to_string()),
        Err(err) if err.is::<tower::timeout::error::Elapsed>() => counts.fail(3, err.to_string()),
        Err(err) if err.is::<tower_oauth2::Error>() => counts.fail(0, err.to_string()),
        Err(err) => counts.fail(4, err.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: AS, RS, Redis, the replicas, the report

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    jti: u64,
}

struct Servers {
    key: [u8; 32],
    lifetime: u64,
    /// When each token request came, since the parent started.
    token_requests: Mutex<Vec<Duration>>,
    started: Instant,
    rs_ok: AtomicU64,
    /// Valid signature, `exp <= now`.
    rs_expired: AtomicU64,
    /// No token, or one that does not verify (should stay 0).
    rs_invalid: AtomicU64,
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    response
}

impl Servers {
    /// The token endpoint: client credentials with `client_secret_basic` (the form is not
    /// read: this client sends nothing else). `exp` in whole seconds, as real servers do.
    fn token(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        self.token_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.started.elapsed());
        let basic = format!("{CLIENT_ID}:{CLIENT_SECRET}");
        let expected = format!(
            "Basic {}",
            base64::Engine::encode(&base64::prelude::BASE64_STANDARD, basic)
        );
        if request
            .headers()
            .get(AUTHORIZATION)
            .is_none_or(|value| value.as_bytes() != expected.as_bytes())
        {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({ "error": "invalid_client" }),
            );
        }
        let now = unix_ms() / 1000;
        let claims = Claims {
            sub: CLIENT_ID.into(),
            iat: now,
            exp: now + self.lifetime,
            jti: self
                .token_requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len() as u64,
        };
        match jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        ) {
            Ok(jwt) => json(
                StatusCode::OK,
                serde_json::json!({ "access_token": jwt, "token_type": "Bearer", "expires_in": self.lifetime }),
            ),
            Err(_) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "error": "server_error" }),
            ),
        }
    }

    fn resource(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false; // checked below, strictly and without leeway
        let claims = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "))
            .and_then(|jwt| {
                jsonwebtoken::decode::<Claims>(jwt, &DecodingKey::from_secret(&self.key), &validation).ok()
            });
        let counter = match claims {
            None => &self.rs_invalid,
            Some(claims) if claims.claims.exp <= unix_ms() / 1000 => &self.rs_expired,
            Some(_) => {
                self.rs_ok.fetch_add(1, Relaxed);
                return Response::new(Full::new(Bytes::from_static(b"ok")));
            }
        };
        counter.fetch_add(1, Relaxed);
        json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({ "error": "invalid_token" }),
        )
    }
}

async fn serve(servers: Arc<Servers>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let servers = servers.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let answer = match request.uri().path() {
                    "/token" => servers.token(&request),
                    _ => servers.resource(&request),
                };
                async move { Ok::<_, Infallible>(answer) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(address)
}

/// A `redis-server` of this run's own, on `port`, without persistence; killed when dropped.
struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Result<Redis, BoxError> {
        let port_text = port.to_string();
        let child = Command::new(std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()))
            .args([
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| format!("redis-server could not start: {err}"))?;
        let redis = Redis(child);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-server did not listen within 2 s".into())
    }

    fn signal(&self, signal: &str) -> Result<(), BoxError> {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} failed").into())
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.signal("-CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn parent(args: Args) -> Result<bool, BoxError> {
    let replicas: usize = args.get("replicas", 8)?;
    let lifetime: u64 = args.get("lifetime", 2)?;
    let lifetimes: u64 = args.get("lifetimes", 20)?;
    let rate: f64 = args.get("rate", 200.0)?;
    let outage: f64 = args.get("outage", 0.0)?;
    let cold: usize = args.get("cold-start", 0)?;
    let store = !args.flag("no-store");
    if replicas == 0 || lifetime == 0 || lifetimes == 0 || rate <= 0.0 || !rate.is_finite() {
        return Err("--replicas, --lifetime, --lifetimes and --rate must be > 0".into());
    }
    if outage.is_nan() || outage < 0.0 || outage >= (lifetime * lifetimes) as f64 {
        return Err("--outage must be >= 0 and shorter than the run".into());
    }
    let servers = Arc::new(Servers {
        key: rand::random(),
        lifetime,
        token_requests: Mutex::default(),
        started: Instant::now(),
        rs_ok: AtomicU64::new(0),
        rs_expired: AtomicU64::new(0),
        rs_invalid: AtomicU64::new(0),
    });
    let address = serve(servers.clone()).await?;
    let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut redis = Redis::start(port)?;
    let seconds = if cold > 0 {
        0.0
    } else {
        (lifetime * lifetimes) as f64
    };
    let start_at = unix_ms() + 1000;
    println!(
        "replicas: {replicas} processes, {}, token lifetime {lifetime} s, redis-server on port {port}; {}",
        if store { "token store: Redis" } else { "no store" },
        if cold > 0 {
            format!("cold start of {cold} caches")
        } else {
            format!("{rate} req/s each for {lifetimes} lifetimes ({seconds} s)")
        },
    );
    let children = (0..replicas)
        .map(|i| {
            let caches = if cold > 0 {
                cold / replicas + usize::from(i < cold % replicas)
            } else {
                1
            };
            let mut command = Command::new(std::env::current_exe()?);
            command.args([
                "--replica",
                "--caches",
                &caches.to_string(),
                "--start-at",
                &start_at.to_string(),
            ]);
            command.args([
                "--as",
                &format!("http://{address}/token"),
                "--rs",
                &format!("http://{address}/api"),
            ]);
            command.args([
                "--redis",
                &format!("redis://127.0.0.1:{port}/"),
                "--seconds",
                &seconds.to_string(),
            ]);
            command.args(["--rate", &rate.to_string()]);
            if !store {
                command.arg("--no-store");
            }
            if cold > 0 {
                command.arg("--cold");
            }
            command.stdout(Stdio::piped()).spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = instant_of(start_at);

    // The outage, in the middle of the run.
    let mut window = None;
    if outage > 0.0 && cold == 0 {
        let from = start + Duration::from_secs_f64((seconds - outage) / 2.0);
        tokio::time::sleep_until(from).await;
        // Wall-clock times, to read beside the replicas' logs (RUST_LOG).
        println!("  Redis down at {} UTC", utc(unix_ms()));
        if args.flag("outage-kill") {
            drop(redis);
            tokio::time::sleep(Duration::from_secs_f64(outage)).await;
            redis = Redis::start(port)?;
        } else {
            redis.signal("-STOP")?;
            tokio::time::sleep(Duration::from_secs_f64(outage)).await;
            redis.signal("-CONT")?;
        }
        println!("  Redis back at {} UTC", utc(unix_ms()));
        window = Some((from - servers.started, Instant::now() - servers.started));
    }

    let mut totals = BTreeMap::<String, u64>::new();
    let mut reported = 0;
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let line = String::from_utf8_lossy(&output.stdout);
        let Ok(counts) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            eprintln!("a replica reported nothing ({})", output.status);
            continue;
        };
        reported += 1;
        for name in ["sent", "ok"] {
            *totals.entry(name.into()).or_default() += counts[name].as_u64().unwrap_or(0);
        }
        for name in FAILURES {
            *totals.entry(name.into()).or_default() += counts["failed"][name].as_u64().unwrap_or(0);
        }
        if let Some(error) = counts["first_error"].as_str() {
            println!("  a replica's first failure: {error}");
        }
    }
    drop(redis);

    // The report.
    let times: Vec<Duration> = servers
        .token_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let since_start: Vec<f64> = times
        .iter()
        .map(|t| t.as_secs_f64() - (start - servers.started).as_secs_f64())
        .collect();
    let failed: u64 = FAILURES.iter().map(|name| totals[*name]).sum();
    let expired = servers.rs_expired.load(Relaxed);
    let invalid = servers.rs_invalid.load(Relaxed);
    println!(
        "requests      sent {}, ok {}, failed {failed} ({})",
        totals["sent"],
        totals["ok"],
        FAILURES
            .iter()
            .map(|name| format!("{name} {}", totals[*name]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "resource srv  ok {}, expired {expired}, invalid {invalid}",
        servers.rs_ok.load(Relaxed)
    );
    let mut met = failed == 0 && expired == 0 && invalid == 0 && reported == replicas;
    if cold > 0 {
        println!(
            "cold start    {cold} caches in {replicas} processes: {} token requests",
            times.len()
        );
        met &= !store || times.len() == 1;
    } else {
        let mut per_lifetime = vec![0u64; lifetimes as usize];
        for t in &since_start {
            if let Some(bucket) = per_lifetime.get_mut((t / lifetime as f64).max(0.0) as usize) {
                *bucket += 1;
            }
        }
        let in_run = per_lifetime.iter().sum::<u64>();
        let in_window = |t: f64| {
            window.is_some_and(|(from, to): (Duration, Duration)| {
                let offset = (start - servers.started).as_secs_f64();
                // The outage, and one lifetime after it (tokens fetched alone, still in use).
                t >= from.as_secs_f64() - offset && t < to.as_secs_f64() - offset + lifetime as f64
            })
        };
        let close = lifetime as f64 / 8.0;
        let duplicates = since_start
            .windows(2)
            .filter(|w| w[1] - w[0] < close && !in_window(w[1]))
            .count();
        println!(
            "token reqs    {} in all, {in_run} in the run: {:.2} per lifetime, max {} in one lifetime ({:?})",
            times.len(),
            in_run as f64 / lifetimes as f64,
            per_lifetime.iter().max().unwrap_or(&0),
            per_lifetime,
        );
        println!("duplicates    {duplicates} token requests less than {close} s after the one before (outside an outage)");
        if let Some((from, to)) = window {
            let during = times.iter().filter(|t| **t >= from && **t < to).count();
            let after = times
                .iter()
                .filter(|t| **t >= to && **t < to + Duration::from_secs(lifetime))
                .count();
            println!(
                "outage        {:.1} s to {:.1} s of the run ({}): {during} token requests during it, {after} in the lifetime after",
                (from - (start - servers.started)).as_secs_f64(),
                (to - (start - servers.started)).as_secs_f64(),
                if args.flag("outage-kill") { "killed, restarted empty" } else { "SIGSTOP / SIGCONT" },
            );
        }
        met &= !store || duplicates == 0;
    }
    println!("{}", if met { "GOALS MET" } else { "GOALS MISSED" });
    Ok(met)
}
