//! `FileStore`: real files in a temporary directory, two stores as two processes, a real
//! second process holding the lock, and token caches over it against the in-process
//! authorization server of `tests/support/auth_server.rs`.

#[path = "support/auth_server.rs"]
mod auth_server;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use auth_server::AuthServer;
use tower_oauth2::clock::ManualClock;
use tower_oauth2::store::{FileStore, SharedStore, TokenStore};
use tower_oauth2::{ClientAuth, ClientCredentials, ErrorCode, RefreshToken, TokenCache, TokenEndpoint};

const KEY: &str = "tower-oauth2:{0123456789abcdef0123456789abcdef}";
/// Set in the child process `real_process_holds_the_lock` starts.
const CHILD_DIR_ENV: &str = "TOWER_OAUTH2_FILE_STORE_CHILD_DIR";

/// A unique directory under the OS temp directory, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tower-oauth2-file-store-{name}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // A test may have left a directory read-only.
            use std::os::unix::fs::PermissionsExt;
            if let Ok(entries) = fs::read_dir(&self.0) {
                for entry in entries.flatten() {
                    let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
                }
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The files in `dir` whose name ends with `suffix`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

fn the_token_file(dir: &Path) -> PathBuf {
    let found = files(dir, ".token");
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("took too long")
}

#[tokio::test]
async fn set_get_replace_and_expiry() {
    let dir = TempDir::new("basic");
    let clock = ManualClock::new();
    let store = FileStore::new(dir.path().join("nested").join("tokens")).clock(clock.clone());
    assert!(!dir.path().exists(), "the constructor does no I/O");
    assert_eq!(store.get(KEY).await.unwrap(), None, "no directory yet: absent");
    assert!(!dir.path().exists(), "reading creates nothing");

    store
        .set(KEY, b"first", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(store.get(KEY).await.unwrap().as_deref(), Some(&b"first"[..]));
    // Another store over the same directory (a later run) reads it.
    let next_run = FileStore::new(store.dir()).clock(clock.clone());
    assert_eq!(next_run.get(KEY).await.unwrap().as_deref(), Some(&b"first"[..]));

    store
        .set(KEY, b"second", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(next_run.get(KEY).await.unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(files(store.dir(), ".token").len(), 1, "replaced in place");
    assert!(files(store.dir(), ".tmp").is_empty(), "no temporary file left");

    clock.advance(Duration::from_secs(59));
    assert_eq!(store.get(KEY).await.unwrap().as_deref(), Some(&b"second"[..]));
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.get(KEY).await.unwrap(), None, "expired at its ttl");
    assert_eq!(next_run.get(KEY).await.unwrap(), None);

    // Without a ttl: kept until replaced.
    store.set(KEY, b"kept", None).await.unwrap();
    clock.advance(Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(store.get(KEY).await.unwrap().as_deref(), Some(&b"kept"[..]));
    // Empty values are values.
    store.set(KEY, b"", None).await.unwrap();
    assert_eq!(store.get(KEY).await.unwrap().as_deref(), Some(&b""[..]));

    // Keys are independent, whatever they hold.
    let keys = [
        "a",
        "A",
        "a/b",
        "a\\b",
        "..",
        "",
        "con",
        "é",
        "tower-oauth2:{x}",
        "tower-oauth2:{X}",
    ];
    for (i, key) in keys.iter().enumerate() {
        store
            .set(key, format!("value {i}").as_bytes(), None)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(format!("value {i}").into_bytes()),
            "{key:?}"
        );
    }
    assert_eq!(files(store.dir(), ".token").len(), keys.len() + 1);
    // Every file is in the store's directory, none above it.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn debug_shows_the_directory_never_the_values() {
    let dir = TempDir::new("debug");
    let store = FileStore::new(dir.path());
    store.set(KEY, b"secret-access-token", None).await.unwrap();
    let debug = format!("{store:?}");
    assert!(debug.contains(&*dir.path().to_string_lossy()), "{debug}");
    assert!(!debug.contains("secret-access-token"), "{debug}");
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_private_from_creation() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("modes");
    let tokens = dir.path().join("a").join("b");
    let store = FileStore::new(&tokens);
    store.set(KEY, b"value", None).await.unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700, "created parents too");
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&tokens), 0o700);
    assert_eq!(mode(&the_token_file(&tokens)), 0o600);
    // A replaced file is a new file, private too.
    store.set(KEY, b"value 2", None).await.unwrap();
    assert_eq!(mode(&the_token_file(&tokens)), 0o600);
    assert!(store.try_lock(KEY, "me", Duration::from_secs(5)).await.unwrap());
    let locks = files(&tokens, ".lock");
    assert_eq!(locks.len(), 1);
    assert_eq!(mode(&locks[0]), 0o600);
}

#[test]
fn a_reader_never_sees_a_torn_value() {
    let dir = TempDir::new("atomic");
    let store = FileStore::new(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Values large enough that a write takes several system calls, each all one byte.
    let value = |i: u8| vec![i; 256 * 1024];
    runtime.block_on(store.set(KEY, &value(0), None)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        runtime.spawn(async move {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let read = store
                    .get(KEY)
                    .await
                    .unwrap()
                    .expect("never absent while replaced");
                assert_eq!(read.len(), 256 * 1024, "a torn value");
                assert!(read.iter().all(|&byte| byte == read[0]), "a mixed value");
                reads += 1;
            }
            reads
        })
    };
    runtime.block_on(async {
        bounded(async {
            for i in 1..=60u8 {
                store.set(KEY, &value(i), None).await.unwrap();
            }
        })
        .await;
        done.store(true, Ordering::Relaxed);
        let reads = bounded(reader).await.unwrap();
        assert!(reads > 0);
        assert_eq!(store.get(KEY).await.unwrap(), Some(value(60)));
    });
    assert!(files(dir.path(), ".tmp").is_empty());
}

#[tokio::test]
async fn two_stores_on_one_directory_lock_like_two_processes() {
    let dir = TempDir::new("locks");
    let clock = ManualClock::new();
    let a = FileStore::new(dir.path()).clock(clock.clone());
    let b = FileStore::new(dir.path()).clock(clock.clone());
    let ttl = Duration::from_secs(10);

    assert!(a.try_lock(KEY, "a", ttl).await.unwrap());
    assert!(!b.try_lock(KEY, "b", ttl).await.unwrap(), "one wins");
    assert!(
        !a.clone().try_lock(KEY, "a2", ttl).await.unwrap(),
        "a clone shares the lock"
    );
    assert!(
        !a.try_lock(KEY, "a", ttl).await.unwrap(),
        "not re-entrant (SET NX)"
    );
    // Another key's lock is free.
    assert!(b.try_lock("other", "b", ttl).await.unwrap());

    // Only the owner unlocks: a wrong owner, through either store, changes nothing.
    b.unlock(KEY, "b").await.unwrap();
    a.unlock(KEY, "b").await.unwrap();
    assert!(!b.try_lock(KEY, "b", ttl).await.unwrap());
    // The owner, through a clone.
    a.clone().unlock(KEY, "a").await.unwrap();
    assert!(b.try_lock(KEY, "b", ttl).await.unwrap(), "free after unlock");
    assert!(!a.try_lock(KEY, "a", ttl).await.unwrap());
    b.unlock(KEY, "b").await.unwrap();
    assert!(a.try_lock(KEY, "a", ttl).await.unwrap(), "and again");

    // Past its ttl, the lock a holds is taken over by a's next try_lock; the old owner's
    // unlock then leaves the new owner's lock.
    clock.advance(Duration::from_secs(11));
    assert!(a.try_lock(KEY, "a-later", ttl).await.unwrap());
    a.unlock(KEY, "a").await.unwrap();
    assert!(!b.try_lock(KEY, "b", ttl).await.unwrap());
    a.unlock(KEY, "a-later").await.unwrap();
    assert!(b.try_lock(KEY, "b", ttl).await.unwrap());

    // Dropping every clone of a store releases its locks (as a process's death does).
    drop(a);
    b.unlock(KEY, "b").await.unwrap();
    let c = FileStore::new(dir.path());
    assert!(c.try_lock(KEY, "c", ttl).await.unwrap());
    drop(c);
    assert!(b.try_lock(KEY, "b", ttl).await.unwrap());
}

#[tokio::test]
async fn a_lock_taken_after_its_caller_gave_up_is_released() {
    let dir = TempDir::new("cancel");
    let a = FileStore::new(dir.path());
    let b = FileStore::new(dir.path());
    // Polled once (the blocking task starts) and dropped before it is done: the blocking task
    // may still take the lock, and must then release it.
    let mut cancelled = 0;
    while cancelled < 20 {
        let mut lock = a.try_lock(KEY, "a", Duration::from_secs(60));
        let polled = lock.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        drop(lock);
        match polled {
            Poll::Pending => cancelled += 1,
            // Done already (the blocking thread was quick): taken for good, or not taken
            // because an earlier, cancelled attempt held it for a moment.
            Poll::Ready(taken) => {
                if taken.unwrap() {
                    a.unlock(KEY, "a").await.unwrap();
                }
            }
        }
    }
    // Let the detached blocking tasks finish.
    bounded(async {
        loop {
            if b.try_lock(KEY, "b", Duration::from_secs(60)).await.unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(!a.try_lock(KEY, "a", Duration::from_secs(60)).await.unwrap());
}

/// Kills the child process when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn real_process_holds_the_lock() {
    let dir = TempDir::new("process");
    // This test binary again, running only `child_process_holding_the_lock`.
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "child_process_holding_the_lock",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let locked = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("LOCKED"))
    });
    assert!(bounded(locked).await.unwrap(), "the child took the lock");

    let store = FileStore::new(dir.path());
    assert!(!store
        .try_lock(KEY, "parent", Duration::from_secs(10))
        .await
        .unwrap());
    // The child's value is readable here.
    assert_eq!(
        store.get(KEY).await.unwrap().as_deref(),
        Some(&b"from the child"[..])
    );

    // SIGKILL: no unlock, no destructor. The OS releases the lock.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(store
        .try_lock(KEY, "parent", Duration::from_secs(10))
        .await
        .unwrap());
}

/// Not a test of its own: the child process of `real_process_holds_the_lock` (it does nothing
/// without the environment variable that test sets). Takes the lock, says so, and waits to be
/// killed (or for its stdin to close).
#[test]
fn child_process_holding_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = FileStore::new(PathBuf::from(dir));
    runtime.block_on(async {
        store.set(KEY, b"from the child", None).await.unwrap();
        assert!(store
            .try_lock(KEY, "child", Duration::from_secs(3600))
            .await
            .unwrap());
    });
    println!("LOCKED");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[tokio::test]
async fn a_garbled_file_is_absent() {
    let dir = TempDir::new("garbled");
    let store = FileStore::new(dir.path());
    store.set(KEY, b"a value long enough to cut", None).await.unwrap();
    let file = the_token_file(dir.path());
    let good = fs::read(&file).unwrap();

    for bad in [
        Vec::new(),
        b"garbage".to_vec(),
        br#"{"access_token":"x"}"#.to_vec(),
        good[..good.len() - 1].to_vec(),
        good[..10].to_vec(),
        [&good[..], b"more"].concat(),
        vec![0xff; 4096],
    ] {
        fs::write(&file, &bad).unwrap();
        assert_eq!(store.get(KEY).await.unwrap(), None, "{bad:?}");
    }
    fs::write(&file, &good).unwrap();
    assert_eq!(
        store.get(KEY).await.unwrap().as_deref(),
        Some(&b"a value long enough to cut"[..])
    );
    // A write replaces a garbled file.
    fs::write(&file, b"garbage").unwrap();
    store.set(KEY, b"new", None).await.unwrap();
    assert_eq!(store.get(KEY).await.unwrap().as_deref(), Some(&b"new"[..]));
}

#[tokio::test]
async fn io_errors_are_store_errors() {
    let dir = TempDir::new("unwritable");
    fs::create_dir_all(dir.path()).unwrap();
    // The store's "directory" is a regular file: nothing can be created in it, nor read.
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"").unwrap();
    let store = FileStore::new(&not_a_dir);
    let err = store.set(KEY, b"secret-value", None).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&*not_a_dir.to_string_lossy()), "{text}");
    assert!(!text.contains("secret-value"), "{text}");
    assert!(store.get(KEY).await.is_err(), "not absent: an error");
    assert!(store.try_lock(KEY, "me", Duration::from_secs(1)).await.is_err());

    // The value's path is a directory: unreadable, an error (not absent).
    let store = FileStore::new(dir.path().join("tokens"));
    store.set(KEY, b"value", None).await.unwrap();
    let file = the_token_file(store.dir());
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert!(store.get(KEY).await.is_err());
    assert!(
        store.set(KEY, b"value", None).await.is_err(),
        "cannot replace a directory"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn permission_denied_is_a_store_error() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("denied");
    let store = FileStore::new(dir.path());
    store.set(KEY, b"value", None).await.unwrap();
    let file = the_token_file(dir.path());
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
    if fs::read(&file).is_ok() {
        // Root (or CAP_DAC_OVERRIDE) reads anything: nothing to test here.
        eprintln!("permission checks are bypassed for this user: skipped");
        return;
    }
    let err = store.get(KEY).await.unwrap_err();
    assert!(err.to_string().contains("ermission denied"), "{err}");
    assert!(
        store.set(KEY, b"new", None).await.is_err(),
        "a read-only directory"
    );
}

// ---- Token caches over a file store ----

/// The store as a cache uses it: a generous timeout (a loaded test machine's fsync may take
/// more than the default 100 ms, and a timeout would make the cache fetch on its own).
fn shared(store: &FileStore) -> SharedStore {
    SharedStore::new(store.clone()).timeout(Duration::from_secs(10))
}

fn client_credentials(server: &AuthServer, store: SharedStore) -> TokenCache {
    let endpoint = TokenEndpoint::new(
        server.token_url(),
        ClientAuth::client_secret_basic("svc", "secret"),
    )
    .unwrap();
    TokenCache::builder(ClientCredentials::new(endpoint).scope("api"))
        .store(store)
        .build()
}

#[tokio::test]
async fn two_caches_over_one_directory_make_one_token_request() {
    let server = AuthServer::start().await;
    let dir = TempDir::new("e2e-shared");
    // Two stores over one directory, as two processes would have.
    let (store_a, store_b) = (FileStore::new(dir.path()), FileStore::new(dir.path()));
    let a = client_credentials(&server, shared(&store_a));
    let b = client_credentials(&server, shared(&store_b));
    let (token_a, token_b) = bounded(async { tokio::join!(a.valid_token(), b.valid_token()) }).await;
    let (token_a, token_b) = (token_a.unwrap(), token_b.unwrap());
    assert_eq!(server.token_requests(), 1, "one fetched, the other read the file");
    assert_eq!(token_a.access_token(), token_b.access_token());

    // A third cache (the next run of the program) reads it too.
    let c = client_credentials(&server, shared(&FileStore::new(dir.path())));
    let token_c = bounded(c.valid_token()).await.unwrap();
    assert_eq!(token_c.access_token(), token_a.access_token());
    assert_eq!(server.token_requests(), 1);
}

fn refresh_token_cache(
    server: &AuthServer,
    refresh_token: &str,
    store: SharedStore,
    clock: &ManualClock,
) -> TokenCache {
    let endpoint = TokenEndpoint::builder(server.token_url(), ClientAuth::none("cli"))
        .clock(clock.clone())
        .build()
        .unwrap();
    TokenCache::builder(RefreshToken::new(endpoint, refresh_token.to_owned()))
        .clock(clock.clone())
        .store(store)
        .build()
}

/// The refresh tokens the server was sent, in order.
fn redeemed(server: &AuthServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|request| request.param("grant_type") == Some("refresh_token"))
        .map(|request| request.param("refresh_token").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_restart_redeems_the_rotated_refresh_token() {
    let server = AuthServer::start().await;
    server.add_client("cli", None, auth_server::ClientAuthMethod::None);
    let dir = TempDir::new("e2e-rotation");
    // The refresh token the CLI got at login, which its configuration still holds at every
    // start.
    let login = server.issue_refresh_token("cli");

    // First run: redeems it; the server rotates it (and the old one is consumed).
    let clock = ManualClock::new();
    let run1 = refresh_token_cache(&server, &login, shared(&FileStore::new(dir.path())), &clock);
    let first = bounded(run1.valid_token()).await.unwrap();
    let rotated = first.refresh_token().unwrap().expose().to_owned();
    assert_ne!(rotated, login);
    assert!(!server.is_refresh_token_valid(&login), "consumed");
    drop(run1);

    // The server refuses a consumed refresh token: what a cache without the store gets.
    let err = bounded(
        refresh_token_cache(
            &server,
            &login,
            SharedStore::new(FileStore::new(dir.path().join("other"))),
            &clock,
        )
        .valid_token(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::InvalidGrant), "{err:?}");
    assert_eq!(redeemed(&server), [login.clone(), login.clone()]);

    // Second run, while the access token is valid: taken from the file, no request.
    let run2 = refresh_token_cache(&server, &login, shared(&FileStore::new(dir.path())), &clock);
    let second = bounded(run2.valid_token()).await.unwrap();
    assert_eq!(second.access_token(), first.access_token());
    assert_eq!(server.token_requests(), 2);
    drop(run2);

    // Third run, after the access token expired: redeems the rotated refresh token from the
    // file, never the consumed one of its configuration.
    clock.advance(Duration::from_secs(2 * 3600));
    let run3 = refresh_token_cache(&server, &login, shared(&FileStore::new(dir.path())), &clock);
    let third = bounded(run3.valid_token()).await.unwrap();
    assert_ne!(third.access_token(), first.access_token());
    assert_eq!(redeemed(&server), [login.clone(), login.clone(), rotated.clone()]);
    let rotated_again = third.refresh_token().unwrap().expose().to_owned();
    assert!(server.is_refresh_token_valid(&rotated_again));
    drop(run3);

    // And the run after that starts from the newest one.
    clock.advance(Duration::from_secs(2 * 3600));
    let run4 = refresh_token_cache(&server, &login, shared(&FileStore::new(dir.path())), &clock);
    bounded(run4.valid_token()).await.unwrap();
    assert_eq!(redeemed(&server).last(), Some(&rotated_again));
}

#[cfg(feature = "encryption")]
#[tokio::test]
async fn encrypted_files_hold_no_token_and_a_wrong_key_is_absent() {
    use tower_oauth2::store::EncryptionKey;

    let server = AuthServer::start().await;
    server.add_client("cli", None, auth_server::ClientAuthMethod::None);
    server.add_client("svc", Some("secret"), auth_server::ClientAuthMethod::Basic);
    let dir = TempDir::new("e2e-encryption");
    let key = EncryptionKey::generate().unwrap();
    let sealed = |key: &EncryptionKey| shared(&FileStore::new(dir.path())).encryption(key.clone());
    let clock = ManualClock::new();
    let login = server.issue_refresh_token("cli");

    let token = bounded(refresh_token_cache(&server, &login, sealed(&key), &clock).valid_token())
        .await
        .unwrap();
    let file = fs::read(the_token_file(dir.path())).unwrap();
    let contains = |needle: &str| {
        file.windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    assert!(
        !contains(token.access_token().expose()),
        "the access token is in the file"
    );
    assert!(
        !contains(token.refresh_token().unwrap().expose()),
        "the refresh token is in the file"
    );
    assert!(!contains("access_token"), "the value's JSON is in the file");

    // The same key reads it: no request.
    let again = bounded(refresh_token_cache(&server, &login, sealed(&key), &clock).valid_token())
        .await
        .unwrap();
    assert_eq!(again.access_token(), token.access_token());
    assert_eq!(server.token_requests(), 1);

    // Another key cannot open it: absent, so a token request (with a client-credentials
    // source, whose request needs nothing from the store).
    let other_key = EncryptionKey::generate().unwrap();
    let cc = |key: &EncryptionKey| {
        client_credentials(
            &server,
            shared(&FileStore::new(dir.path().join("cc"))).encryption(key.clone()),
        )
    };
    bounded(cc(&key).valid_token()).await.unwrap();
    assert_eq!(server.token_requests(), 2);
    bounded(cc(&key).valid_token()).await.unwrap();
    assert_eq!(server.token_requests(), 2, "the right key reads the file");
    bounded(cc(&other_key).valid_token()).await.unwrap();
    assert_eq!(
        server.token_requests(),
        3,
        "a wrong key: absent, a new token request"
    );
    // Nor does a store without encryption read a sealed value.
    bounded(client_credentials(&server, shared(&FileStore::new(dir.path().join("cc")))).valid_token())
        .await
        .unwrap();
    assert_eq!(server.token_requests(), 4);
}
