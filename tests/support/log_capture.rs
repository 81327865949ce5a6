#![allow(dead_code)]
//! Captures what `tracing` logs on the current thread, at every level.
//!
//! One global subscriber for the whole test binary, writing into a per-thread buffer. A
//! subscriber per test (`set_default`) races with tests that run on other threads without
//! one: `tracing` caches each call site's interest, and an event can be skipped for good.
//! Tests that capture must run on one thread (`#[tokio::test]`'s default current-thread
//! runtime), so that the events of their spawned tasks land in the same buffer.

use std::cell::RefCell;
use std::io;
use std::sync::Once;

thread_local! {
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

struct ThreadWriter;

impl io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        BUFFER.with(|buffer| {
            if let Some(buffer) = buffer.borrow_mut().as_mut() {
                buffer.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures from now on what this thread logs; read it with [`Capture::text`].
pub struct Capture(());

/// Starts capturing this thread's log lines.
pub fn capture() -> Capture {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::Layer as _;
        // Only threads that capture pay for formatting: the filter is asked at each event. A
        // dynamic filter, because a plain `filter_fn` is asked once per call site, on the thread
        // that happens to reach it first, and caches the answer ("never", from a thread that
        // does not capture, would silence that call site for the whole binary).
        let capturing = tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
            BUFFER.with(|buffer| buffer.borrow().is_some())
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .with_filter(capturing);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    BUFFER.with(|buffer| *buffer.borrow_mut() = Some(Vec::new()));
    Capture(())
}

impl Capture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        BUFFER.with(|buffer| {
            String::from_utf8_lossy(buffer.borrow().as_deref().unwrap_or_default()).into_owned()
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        BUFFER.with(|buffer| *buffer.borrow_mut() = None);
    }
}
