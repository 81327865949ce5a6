//! [`FileStore`]: tokens kept in files, across the runs of a CLI or a desktop app, and shared by
//! the processes of one user on one machine.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth2::store::{FileStore, TokenStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
//! let dir = std::env::temp_dir().join(format!("tower-oauth2-doc-file-mod-{}", std::process::id()));
//! let store = FileStore::new(&dir); // no I/O yet
//! store.set("tower-oauth2:{0123abcd}", b"value", Some(Duration::from_secs(60))).await?;
//! // A later run of the program (a new store over the same directory) reads it back.
//! let next_run = FileStore::new(&dir);
//! assert_eq!(next_run.get("tower-oauth2:{0123abcd}").await?.as_deref(), Some(&b"value"[..]));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{StoreError, StoreFuture, TokenStore};
use crate::clock::{Clock, SystemClock};

/// A [`TokenStore`] in a directory: one file per key, for CLIs and desktop apps. The token a
/// run fetched is there for the next run, and two processes of one user (two terminals
/// running the same CLI) share it, with one token request between them.
///
/// # Files
///
/// * The directory is created on the first write (with its missing parents), readable by its
///   user only (mode 0700 on Unix). A directory that already exists keeps its mode.
/// * Each key has a file named after it (`<name>.token`): the key with every character but
///   `a-z`, `0-9`, `-` and `_` escaped as `~` and two hex digits per UTF-8 byte, a long key cut
///   and completed with a hash of the whole key. Any key gives a name valid on Linux, macOS and
///   Windows, and distinct keys distinct names, case-insensitive file systems included.
/// * A file holds the value's expiry (from the `ttl` of [`set`](TokenStore::set), as wall-clock
///   time) and the value's bytes. It is created readable by its user only (mode 0600 on Unix,
///   from creation: never readable by others, not even for a moment) and replaced atomically:
///   the value is written to a new file in the same directory, flushed to disk, and renamed
///   over the old one, so a reader sees the old value or the new one, never a mix, and a crash
///   never leaves half a file.
/// * [`get`](TokenStore::get) of an expired value is `None` (the file stays until the next
///   [`set`](TokenStore::set) replaces it). A file whose content is not a value of this store
///   (truncated, garbled, another format) counts as absent; a file that cannot be read (the
///   permission is denied, the directory is a file) is a [`StoreError`]. Values are opaque to
///   the store: use [`SharedStore::encryption`](super::SharedStore::encryption) (feature
///   `encryption`) so that the files hold no bearer token in the clear.
///
/// # The lock
///
/// On Unix, the lock of a key is an advisory `flock` (exclusive, never waiting) on the file
/// `<name>.lock`, taken by [`try_lock`](TokenStore::try_lock). The open file is kept in the
/// store (clones share it) until [`unlock`](TokenStore::unlock) by the same owner; when the
/// process ends, however it ends, the operating system releases it. So two processes, and two
/// `FileStore`s over one directory in one process, exclude each other. The lock's `ttl` is
/// known only to the store that holds it: a lock this store holds past its `ttl` is taken over
/// by the next `try_lock` of this store (or a clone), while another process waits for the
/// holder to unlock or die. The `.lock` files stay in the directory (empty): deleting a lock
/// file in use would let two processes hold "the" lock. `flock` needs a local file system
/// (not NFS).
///
/// Elsewhere (Windows), the lock is the file `<name>.lock` created if absent (`create_new`),
/// holding the owner and the lock's expiry; [`unlock`](TokenStore::unlock) deletes it if it
/// holds the owner, and a `try_lock` finding it expired (its holder died or is late) breaks
/// it. Two processes breaking the same expired lock at the same moment may, rarely, both take
/// it (the cost is one extra token request).
///
/// # Threads and timeout
///
/// Every file operation runs on tokio's blocking threads
/// ([`spawn_blocking`](tokio::task::spawn_blocking)), so that the cache's
/// [timeout](super::SharedStore::timeout) bounds it and a slow disk never blocks the runtime
/// (outside a tokio runtime, it runs in place). A lock taken after its caller gave up waiting
/// is released at once. Give the cache a timeout of a second or so: the default (100 ms) suits
/// a network store, while a write flushes the file to disk, which a busy machine may take
/// longer to do (past the timeout, the cache fetches its token on its own).
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::store::{FileStore, SharedStore, TokenStore};
/// use tower_oauth2::{ClientAuth, RefreshToken, TokenCache, TokenEndpoint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tower-oauth2-doc-file-{}", std::process::id()));
/// // A CLI keeps its tokens in the user's cache directory (~/.cache/my-cli on Linux) ...
/// # let _ = || -> Result<FileStore, tower_oauth2::store::StoreError> {
/// let store = FileStore::in_user_cache_dir("my-cli")?;
/// # Ok(store) };
/// # let store = FileStore::new(&dir);
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
/// // ... and the refresh token its last run left there, rotated or not, is the one redeemed.
/// let cache = TokenCache::builder(RefreshToken::new(endpoint, "refresh-token-from-login"))
///     .store(SharedStore::new(store.clone()).timeout(Duration::from_secs(1)))
///     .build();
/// # let _ = cache;
/// // Two processes exclude each other, and so do two stores over one directory.
/// let other_process = FileStore::new(store.dir());
/// assert!(store.try_lock("k", "me", Duration::from_secs(10)).await?);
/// assert!(!other_process.try_lock("k", "you", Duration::from_secs(10)).await?);
/// store.unlock("k", "me").await?;
/// assert!(other_process.try_lock("k", "you", Duration::from_secs(10)).await?);
/// # drop(other_process); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    dir: Arc<Path>,
    clock: Arc<dyn Clock>,
    #[cfg(unix)]
    locks: flock::Locks,
}

impl FileStore {
    /// A store in `dir`. Nothing is read or created until the store is used: the directory is
    /// created by the first write.
    ///
    /// ```
    /// use tower_oauth2::store::FileStore;
    ///
    /// let store = FileStore::new("/nonexistent/tokens"); // no I/O
    /// assert_eq!(format!("{store:?}"), r#"FileStore { dir: "/nonexistent/tokens" }"#);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: Arc::from(dir.into()),
            clock: Arc::new(SystemClock),
            #[cfg(unix)]
            locks: Arc::default(),
        }
    }

    /// A store in the user's cache directory for `app_name`: `$XDG_CACHE_HOME/app_name` (or
    /// `~/.cache/app_name`) on Linux and other Unix systems, `~/Library/Caches/app_name` on
    /// macOS, `%LOCALAPPDATA%\app_name` on Windows. Read from the environment only (a relative
    /// `XDG_CACHE_HOME` is ignored, as the XDG specification says); nothing is created until
    /// the first write.
    ///
    /// An error if the environment names no such directory (no `HOME`), or if `app_name` is
    /// not one plain file name (empty, `.`, `..`, or holding a path separator).
    ///
    /// ```
    /// use tower_oauth2::store::FileStore;
    ///
    /// match FileStore::in_user_cache_dir("my-cli") {
    ///     Ok(store) => assert!(store.dir().ends_with("my-cli")),
    ///     Err(err) => eprintln!("{err}"), // no $HOME
    /// }
    /// assert!(FileStore::in_user_cache_dir("../elsewhere").is_err());
    /// ```
    pub fn in_user_cache_dir(app_name: &str) -> Result<Self, StoreError> {
        let base = user_cache_dir(Os::CURRENT, |name| std::env::var_os(name))?;
        Ok(FileStore::new(base.join(checked_app_name(app_name)?)))
    }

    /// The clock that dates values' and locks' expiry ([`SystemClock`] by default); tests give
    /// a [`ManualClock`](crate::clock::ManualClock).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_oauth2::clock::ManualClock;
    /// use tower_oauth2::store::{FileStore, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_oauth2::store::StoreError> {
    /// # let dir = std::env::temp_dir().join(format!("tower-oauth2-doc-file-clock-{}", std::process::id()));
    /// let clock = ManualClock::new();
    /// let store = FileStore::new(&dir).clock(clock.clone());
    /// store.set("k", b"v", Some(Duration::from_secs(60))).await?;
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(store.get("k").await?, None);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The directory the files are in.
    ///
    /// ```
    /// use std::path::Path;
    /// use tower_oauth2::store::FileStore;
    ///
    /// assert_eq!(FileStore::new("tokens").dir(), Path::new("tokens"));
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The directory, never what the files hold.
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

impl TokenStore for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let path = self.dir.join(format!("{}.token", file_name(key)));
        let clock = self.clock.clone();
        Box::pin(blocking(move || read_value(&path, &*clock)))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        let dir = self.dir.clone();
        let name = file_name(key);
        let expires_at = ttl.map(|ttl| millis_since_epoch(self.clock.now()).saturating_add(millis(ttl)));
        let contents = encode_value(value, expires_at);
        Box::pin(async move {
            let contents = contents?;
            blocking(move || write_value(&dir, &name, &contents)).await
        })
    }

    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let now = millis_since_epoch(self.clock.now());
        let until = now.saturating_add(millis(ttl).max(1));
        let (dir, name, owner) = (self.dir.clone(), file_name(key), owner.to_owned());
        #[cfg(unix)]
        {
            let locks = self.locks.clone();
            Box::pin(async move {
                let guard = blocking(move || flock::try_lock(&locks, &dir, name, owner, now, until)).await?;
                // Taken and received: keep it. (Had this future been dropped first, the guard,
                // dropped with the task's output, would have released it.)
                Ok(guard.map(flock::Guard::keep).is_some())
            })
        }
        #[cfg(not(unix))]
        Box::pin(blocking(move || {
            lock_file::try_lock(&dir, &name, &owner, now, until)
        }))
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        #[cfg(unix)]
        {
            flock::unlock(&self.locks, &file_name(key), owner);
            Box::pin(std::future::ready(Ok(())))
        }
        #[cfg(not(unix))]
        {
            let (dir, name, owner) = (self.dir.clone(), file_name(key), owner.to_owned());
            Box::pin(blocking(move || lock_file::unlock(&dir, &name, &owner)))
        }
    }
}

/// Runs `op` on tokio's blocking threads (in place outside a runtime).
async fn blocking<T, F>(op: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn_blocking(op).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => Err(StoreError::new("a file operation panicked")),
            Err(_) => Err(StoreError::new(
                "a file operation was cancelled (the runtime is shutting down)",
            )),
        },
        Err(_) => op(),
    }
}

/// An I/O error, with what was done and on which file.
#[derive(Debug)]
struct FileError {
    action: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for FileError {}

fn file_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| {
        StoreError::new(FileError {
            action,
            path: path.to_owned(),
            source,
        })
    }
}

// ---- File names ----

/// Encoded keys longer than this are cut and completed with a hash: with the suffixes and
/// the temporary files' prefix and random part, names stay well under 255 bytes.
const MAX_NAME: usize = 160;
/// How much of the encoded key a long key's name keeps.
const CUT_NAME: usize = 120;

/// The file name (without suffix) of `key`: `a-z`, `0-9`, `-` and `_` as they are, every other
/// byte of the UTF-8 as `~` and two lowercase hex digits. Injective, and the same on
/// case-insensitive file systems (no capital letter is left). A name longer than
/// [`MAX_NAME`] keeps its first [`CUT_NAME`] bytes, then `~~` (which no escape produces) and
/// 128 bits of the key's SHA-256; the empty key is `~` (which no escape produces either).
fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => name.push(char::from(byte)),
            _ => name.push_str(&format!("~{byte:02x}")),
        }
    }
    if name.is_empty() {
        return "~".to_owned();
    }
    if is_reserved_on_windows(&name) {
        // `con` is `~63on`: the same decoding, so still distinct from every other key's name.
        name.replace_range(..1, &format!("~{:02x}", name.as_bytes()[0]));
    }
    if name.len() > MAX_NAME {
        // Only ASCII: every index is a char boundary.
        name.truncate(CUT_NAME);
        let hash = Sha256::digest(key.as_bytes());
        name.push_str("~~");
        for byte in &hash[..16] {
            name.push_str(&format!("{byte:02x}"));
        }
    }
    name
}

/// Windows' device names, which no file may be called, whatever its extension.
fn is_reserved_on_windows(name: &str) -> bool {
    match name {
        "con" | "prn" | "aux" | "nul" => true,
        _ => {
            let bytes = name.as_bytes();
            bytes.len() == 4
                && (name.starts_with("com") || name.starts_with("lpt"))
                && bytes[3].is_ascii_digit()
        }
    }
}

// ---- Values ----

/// The first bytes of a value's file.
const MAGIC: &[u8; 8] = b"TO2FILE1";
/// The magic, the expiry (ms since the Unix epoch, big-endian; `u64::MAX`: none) and the
/// value's length (big-endian).
const HEADER: usize = 8 + 8 + 8;
/// The largest value (tokens are a few kilobytes): a larger file is not one of this store's.
const MAX_VALUE: usize = 1 << 20;

fn encode_value(value: &[u8], expires_at: Option<u64>) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    if value.len() > MAX_VALUE {
        return Err(StoreError::new(format!(
            "a value of {} bytes is larger than the file store's limit ({MAX_VALUE} bytes)",
            value.len()
        )));
    }
    // Values are tokens: every copy is wiped when dropped.
    let mut contents = Zeroizing::new(Vec::with_capacity(HEADER + value.len()));
    contents.extend_from_slice(MAGIC);
    contents.extend_from_slice(&expires_at.unwrap_or(u64::MAX).to_be_bytes());
    contents.extend_from_slice(&(value.len() as u64).to_be_bytes());
    contents.extend_from_slice(value);
    Ok(contents)
}

/// The value in `contents` and its expiry, `None` if it is not a value's file.
fn decode_value(contents: &[u8]) -> Option<(&[u8], Option<u64>)> {
    let rest = contents.strip_prefix(MAGIC)?;
    let (expires_at, rest) = rest.split_first_chunk::<8>()?;
    let (len, value) = rest.split_first_chunk::<8>()?;
    if u64::from_be_bytes(*len) != value.len() as u64 {
        return None;
    }
    let expires_at = u64::from_be_bytes(*expires_at);
    Some((value, (expires_at != u64::MAX).then_some(expires_at)))
}

fn read_value(path: &Path, clock: &dyn Clock) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(file_error("open", path)(err)),
    };
    // Sized from the start: a buffer that grows leaves unwiped copies behind.
    let len = file
        .metadata()
        .map_or(0, |meta| meta.len())
        .min((HEADER + MAX_VALUE) as u64);
    let mut contents = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    file.take((HEADER + MAX_VALUE + 1) as u64)
        .read_to_end(&mut contents)
        .map_err(file_error("read", path))?;
    let Some((value, expires_at)) = decode_value(&contents) else {
        tracing::debug!(file = %path.display(), "the file store ignores a file that holds no value");
        return Ok(None);
    };
    if expires_at.is_some_and(|at| at <= millis_since_epoch(clock.now())) {
        return Ok(None);
    }
    Ok(Some(value.to_vec()))
}

fn write_value(dir: &Path, name: &str, contents: &[u8]) -> Result<(), StoreError> {
    create_dir(dir)?;
    let path = dir.join(format!("{name}.token"));
    let temp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    let written = write_new_private(&temp, contents).map_err(file_error("write", &temp));
    let renamed = written.and_then(|()| fs::rename(&temp, &path).map_err(file_error("replace", &path)));
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed?;
    // The rename itself survives a crash once the directory is on disk.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(file_error("sync", dir))?;
    Ok(())
}

/// Creates `dir` and its missing parents, readable by its user only (0700) on Unix.
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(file_error("create the directory", dir))
}

/// Options that create a new file, readable and writable by its user only (0600) on Unix.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn write_new_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = private_options().create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX - 1)
}

fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, millis)
}

// ---- Locks ----

/// Unix: `flock` on `<name>.lock`, the open file kept in the store.
#[cfg(unix)]
mod flock {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::io::AsRawFd;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, MutexGuard};

    /// The locks a store (and its clones) hold, by file name.
    pub(super) type Locks = Arc<Mutex<HashMap<String, HeldLock>>>;

    /// A lock this store holds.
    pub(super) struct HeldLock {
        owner: String,
        /// When its TTL runs out (ms since the epoch).
        until: u64,
        /// Tells this lock from a later one under the same name.
        id: u64,
        /// Open and `flock`ed: closing it releases the lock.
        _file: File,
    }

    /// A lock just taken, released on drop unless [`kept`](Guard::keep).
    pub(super) struct Guard {
        locks: Locks,
        name: String,
        id: u64,
        keep: bool,
    }

    impl Guard {
        pub(super) fn keep(mut self) {
            self.keep = true;
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.keep {
                let mut locks = lock(&self.locks);
                if locks.get(&self.name).is_some_and(|held| held.id == self.id) {
                    locks.remove(&self.name);
                }
            }
        }
    }

    fn lock(locks: &Mutex<HashMap<String, HeldLock>>) -> MutexGuard<'_, HashMap<String, HeldLock>> {
        // Nothing panics while holding it.
        locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn try_lock(
        locks: &Locks,
        dir: &Path,
        name: String,
        owner: String,
        now: u64,
        until: u64,
    ) -> Result<Option<Guard>, StoreError> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let mut held = lock(locks);
        match held.get(&name) {
            Some(lock) if lock.until > now => return Ok(None),
            // Past its TTL: closing the file releases the lock, for this store or another.
            Some(_) => drop(held.remove(&name)),
            None => {}
        }
        create_dir(dir)?;
        let path = dir.join(format!("{name}.lock"));
        let file = private_options()
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(file_error("open the lock file", &path))?;
        loop {
            // SAFETY: `file` is an open descriptor for the whole call.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(file_error("lock", &path)(err)),
            }
        }
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        held.insert(
            name.clone(),
            HeldLock {
                owner,
                until,
                id,
                _file: file,
            },
        );
        Ok(Some(Guard {
            locks: locks.clone(),
            name,
            id,
            keep: false,
        }))
    }

    pub(super) fn unlock(locks: &Mutex<HashMap<String, HeldLock>>, name: &str, owner: &str) {
        let mut held = lock(locks);
        if held.get(name).is_some_and(|lock| lock.owner == owner) {
            // Closing the file releases the lock.
            held.remove(name);
        }
    }
}

/// Elsewhere: `<name>.lock` created if absent, holding the owner and the expiry.
#[cfg(any(not(unix), test))]
mod lock_file {
    use super::*;

    /// The lock file's content: `<expiry ms since the epoch>\n<owner>`.
    fn encode(owner: &str, until: u64) -> Vec<u8> {
        format!("{until}\n{owner}").into_bytes()
    }

    fn decode(contents: &[u8]) -> Option<(u64, &[u8])> {
        let newline = contents.iter().position(|&byte| byte == b'\n')?;
        let until = std::str::from_utf8(&contents[..newline]).ok()?.parse().ok()?;
        Some((until, &contents[newline + 1..]))
    }

    pub(super) fn try_lock(
        dir: &Path,
        name: &str,
        owner: &str,
        now: u64,
        until: u64,
    ) -> Result<bool, StoreError> {
        create_dir(dir)?;
        let path = dir.join(format!("{name}.lock"));
        // Twice at most: once, and once more after breaking an expired lock.
        for _ in 0..2 {
            match private_options().create_new(true).open(&path) {
                Ok(mut file) => {
                    let written = file
                        .write_all(&encode(owner, until))
                        .and_then(|()| file.sync_all());
                    drop(file);
                    if let Err(err) = written {
                        let _ = fs::remove_file(&path);
                        return Err(file_error("write the lock file", &path)(err));
                    }
                    return Ok(true);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(file_error("create the lock file", &path)(err)),
            }
            let contents = match fs::read(&path) {
                Ok(contents) => contents,
                // Released meanwhile: try again.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(file_error("read the lock file", &path)(err)),
            };
            let expired = match decode(&contents) {
                Some((held_until, _)) => held_until <= now,
                // Being written (just created), or garbled: expired once it is older than a
                // lock's TTL.
                None => fs::metadata(&path)
                    .and_then(|meta| meta.modified())
                    .map(|modified| millis_since_epoch(modified).saturating_add(until - now) <= now)
                    .unwrap_or(false),
            };
            if !expired || !remove_if(dir, &path, |held| held == contents)? {
                return Ok(false);
            }
        }
        Ok(false)
    }

    pub(super) fn unlock(dir: &Path, name: &str, owner: &str) -> Result<(), StoreError> {
        let path = dir.join(format!("{name}.lock"));
        let contents = match fs::read(&path) {
            Ok(contents) => contents,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(file_error("read the lock file", &path)(err)),
        };
        if decode(&contents).is_some_and(|(_, held_by)| held_by == owner.as_bytes()) {
            remove_if(dir, &path, |held| held == contents)?;
        }
        Ok(())
    }

    /// Deletes the lock file at `path` if its content passes `check`: moved aside first (a
    /// rename: one process at most gets it), checked there, and put back if another holder
    /// took the lock between the read and the move. `true` if deleted.
    fn remove_if(dir: &Path, path: &Path, check: impl Fn(&[u8]) -> bool) -> Result<bool, StoreError> {
        let mut aside_name = OsString::from(".");
        aside_name.push(path.file_name().unwrap_or_default());
        aside_name.push(format!(".{:016x}.aside", fastrand::u64(..)));
        let aside = dir.join(aside_name);
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(file_error("move the lock file", path)(err)),
        }
        let ours = fs::read(&aside).is_ok_and(|contents| check(&contents));
        if !ours {
            // Put back only if no one created a lock since (a hard link fails if it exists).
            let _ = fs::hard_link(&aside, path);
        }
        let _ = fs::remove_file(&aside);
        Ok(ours)
    }
}

// ---- The user's cache directory ----

/// The operating systems whose cache directory differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Os {
    Windows,
    Mac,
    /// Linux and the other Unix systems: XDG.
    Xdg,
}

impl Os {
    const CURRENT: Os = if cfg!(windows) {
        Os::Windows
    } else if cfg!(target_os = "macos") {
        Os::Mac
    } else {
        Os::Xdg
    };
}

fn user_cache_dir(os: Os, var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, StoreError> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|path| path.is_absolute());
    let found = match os {
        Os::Windows => absolute("LOCALAPPDATA"),
        Os::Mac => absolute("HOME").map(|home| home.join("Library").join("Caches")),
        Os::Xdg => absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache"))),
    };
    found.ok_or_else(|| {
        StoreError::new(match os {
            Os::Windows => "no user cache directory: %LOCALAPPDATA% is not set",
            Os::Mac => "no user cache directory: $HOME is not set",
            Os::Xdg => "no user cache directory: neither $XDG_CACHE_HOME nor $HOME is set",
        })
    })
}

fn checked_app_name(app_name: &str) -> Result<&str, StoreError> {
    let plain = !matches!(app_name, "" | "." | "..")
        && !app_name.contains(['/', '\\', ':', '\0'])
        && Path::new(app_name).components().count() == 1;
    if plain {
        Ok(app_name)
    } else {
        Err(StoreError::new(
            "the application name of a cache directory must be one plain file name",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_portable_and_distinct() {
        let long = "x".repeat(500);
        let keys = [
            "tower-oauth2:{0123abcd}",
            "",
            "~",
            "a",
            "A",
            "con",
            "CON",
            "~63on",
            "com1",
            "lpt9",
            "com",
            "a/b",
            "a\\b",
            "..",
            ".",
            "a b",
            "é",
            "e\u{301}",
            "\u{1F511}",
            "a\0b",
            &long,
            &format!("{long}y"),
        ];
        let names: Vec<String> = keys.iter().map(|key| file_name(key)).collect();
        for (key, name) in keys.iter().zip(&names) {
            assert!(!name.is_empty() && name.len() <= MAX_NAME, "{key:?} -> {name:?}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_~".contains(&b)),
                "{key:?} -> {name:?}"
            );
            assert!(!is_reserved_on_windows(name), "{key:?} -> {name:?}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(
            file_name("tower-oauth2:{0123abcd}"),
            "tower-oauth2~3a~7b0123abcd~7d"
        );
        assert_eq!(file_name("con"), "~63on");
    }

    #[test]
    fn values_round_trip_and_garbage_is_none() {
        let contents = encode_value(b"token bytes", Some(42)).unwrap();
        assert_eq!(decode_value(&contents), Some((&b"token bytes"[..], Some(42))));
        let contents = encode_value(b"", None).unwrap();
        assert_eq!(decode_value(&contents), Some((&b""[..], None)));
        let contents = encode_value(b"token bytes", None).unwrap();
        for cut in 0..contents.len() {
            assert_eq!(decode_value(&contents[..cut]), None, "cut at {cut}");
        }
        let mut longer = contents.clone();
        longer.push(0);
        assert_eq!(decode_value(&longer), None);
        assert_eq!(decode_value(b"{\"access_token\":\"x\"}"), None);
        assert!(encode_value(&vec![0; MAX_VALUE + 1], None).is_err());
    }

    #[test]
    fn user_cache_dirs() {
        fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| OsString::from(v))
            }
        }
        let home = [("HOME", "/home/u")];
        let xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/var/cache/u")];
        let relative_xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "cache")];
        assert_eq!(
            user_cache_dir(Os::Xdg, env(&home)).unwrap(),
            Path::new("/home/u/.cache")
        );
        assert_eq!(
            user_cache_dir(Os::Xdg, env(&xdg)).unwrap(),
            Path::new("/var/cache/u")
        );
        assert_eq!(
            user_cache_dir(Os::Xdg, env(&relative_xdg)).unwrap(),
            Path::new("/home/u/.cache")
        );
        assert_eq!(
            user_cache_dir(Os::Mac, env(&xdg)).unwrap(),
            Path::new("/home/u/Library/Caches")
        );
        assert!(user_cache_dir(Os::Xdg, env(&[])).is_err());
        assert!(user_cache_dir(Os::Mac, env(&[])).is_err());
        // Windows paths are absolute only on Windows: that branch reads LOCALAPPDATA.
        assert!(user_cache_dir(Os::Windows, env(&home)).is_err());
        for name in ["", ".", "..", "a/b", "a\\b", "c:x", "a\0"] {
            assert!(checked_app_name(name).is_err(), "{name:?}");
        }
        assert_eq!(checked_app_name("my-cli").unwrap(), "my-cli");
        assert_eq!(checked_app_name(".my-cli").unwrap(), ".my-cli");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tower-oauth2-file-unit-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn portable_lock_files() {
        let dir = temp_dir("lock-file");
        let name = file_name("tower-oauth2:{k}");
        assert!(lock_file::try_lock(&dir, &name, "a", 1_000, 2_000).unwrap());
        assert!(!lock_file::try_lock(&dir, &name, "b", 1_500, 2_500).unwrap());
        lock_file::unlock(&dir, &name, "b").unwrap(); // not the owner
        assert!(!lock_file::try_lock(&dir, &name, "b", 1_500, 2_500).unwrap());
        lock_file::unlock(&dir, &name, "a").unwrap();
        assert!(lock_file::try_lock(&dir, &name, "b", 1_500, 2_500).unwrap());
        // Expired: broken by the next try_lock; the old owner's unlock leaves the new lock.
        assert!(lock_file::try_lock(&dir, &name, "c", 2_500, 3_500).unwrap());
        lock_file::unlock(&dir, &name, "b").unwrap();
        assert!(!lock_file::try_lock(&dir, &name, "d", 3_000, 4_000).unwrap());
        lock_file::unlock(&dir, &name, "c").unwrap();
        assert!(lock_file::try_lock(&dir, &name, "d", 3_000, 4_000).unwrap());
        // A garbled lock file (a holder that just created it) is held until a TTL after its
        // modification.
        let garbled = file_name("garbled");
        fs::write(dir.join(format!("{garbled}.lock")), b"").unwrap();
        let now = millis_since_epoch(SystemTime::now());
        assert!(!lock_file::try_lock(&dir, &garbled, "a", now, now + 10_000).unwrap());
        assert!(lock_file::try_lock(&dir, &garbled, "a", now + 60_000, now + 70_000).unwrap());
        // Nothing left aside.
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(left.iter().all(|name| name.ends_with(".lock")), "{left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
