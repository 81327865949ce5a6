//! [`TerminalPrompt`]: the device flow's user code and verification URI, shown on a terminal
//! the way modern CLIs show them, with a QR code of `verification_uri_complete` when the
//! `qrcode` feature is on.
//!
//! ```
//! use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
//!
//! // The device flow calls this with the server's answer (see `DeviceCode::on_user_code`):
//! let show = TerminalPrompt::new().into_callback(); // prints to stderr
//! let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
//! show(&auth);
//! // What it printed:
//! let text = TerminalPrompt::new().render(&auth);
//! assert_eq!(text, "To sign in, open https://example.com/device\nand enter the code: WDJB-MJHT\n");
//! // Server text is escaped: a hostile user code cannot clear the screen or move the cursor.
//! let hostile = DeviceAuthorization::new("WDJB\u{1b}[2J", "https://example.com/device");
//! let text = TerminalPrompt::new().render(&hostile);
//! assert!(text.contains(r"WDJB\u{1b}[2J") && !text.contains('\u{1b}'));
//! ```

use std::io::{self, Write};

use crate::error::sanitize_server_text;
use crate::grant::device_code::DeviceAuthorization;

/// Prints a device authorization for the user: where to go, the code to enter, the URI with
/// the code in it when the server sent one, and (feature `qrcode`) a QR code of that URI made of
/// Unicode half blocks, for a phone to scan.
///
/// The server's text is printed made safe: control characters and invisible or
/// direction-changing characters are escaped, so a hostile server cannot move the cursor or
/// disguise the URI. The QR code holds the URI exactly as the server sent it.
///
/// ```
/// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
///
/// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
/// let mut out = Vec::new();
/// TerminalPrompt::new().write_to(&auth, &mut out)?;
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("https://example.com/device") && text.contains("WDJB-MJHT"));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// With a [`DeviceCode`](crate::DeviceCode), [`into_callback`](Self::into_callback) prints to
/// stderr:
///
/// ```
/// use tower_oauth2::{ClientAuth, DeviceCode, TerminalPrompt, TokenEndpoint};
///
/// # fn main() -> Result<(), tower_oauth2::Error> {
/// let endpoint = TokenEndpoint::new("https://auth.example.com/token", ClientAuth::none("my-cli"))?;
/// let source = DeviceCode::new(endpoint, "https://auth.example.com/device/code")?
///     .on_user_code(TerminalPrompt::new().into_callback());
/// # let _ = source; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TerminalPrompt {
    #[cfg(feature = "qrcode")]
    qr_code: bool,
}

impl Default for TerminalPrompt {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalPrompt {
    /// A prompt with the QR code on (when the `qrcode` feature is).
    ///
    /// ```
    /// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
    ///
    /// let text = TerminalPrompt::new().render(&DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device"));
    /// assert_eq!(text, "To sign in, open https://example.com/device\nand enter the code: WDJB-MJHT\n");
    /// ```
    pub fn new() -> Self {
        TerminalPrompt {
            #[cfg(feature = "qrcode")]
            qr_code: true,
        }
    }

    /// Whether to print a QR code of `verification_uri_complete` (default `true`; there is
    /// none when the server sent no such URI).
    ///
    /// ```
    /// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device")
    ///     .with_verification_uri_complete("https://example.com/device?user_code=WDJB-MJHT");
    /// let text = TerminalPrompt::new().qr_code(true).render(&auth);
    /// assert!(text.contains('█'));
    /// assert!(!TerminalPrompt::new().qr_code(false).render(&auth).contains('█'));
    /// ```
    #[cfg(feature = "qrcode")]
    pub fn qr_code(mut self, on: bool) -> Self {
        self.qr_code = on;
        self
    }

    /// The text [`write_to`](Self::write_to) writes.
    ///
    /// ```
    /// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
    /// assert!(TerminalPrompt::new().render(&auth).contains("WDJB-MJHT"));
    /// ```
    pub fn render(&self, auth: &DeviceAuthorization) -> String {
        let mut text = format!(
            "To sign in, open {}\nand enter the code: {}\n",
            sanitize_server_text(auth.verification_uri()),
            sanitize_server_text(auth.user_code()),
        );
        if let Some(complete) = auth.verification_uri_complete() {
            text.push_str(&format!(
                "(or open {}, which holds the code)\n",
                sanitize_server_text(complete)
            ));
            #[cfg(feature = "qrcode")]
            if self.qr_code {
                if let Some(qr) = qr_block(complete) {
                    text.push_str("or scan:\n");
                    text.push_str(&qr);
                    text.push('\n');
                }
            }
        }
        text
    }

    /// Writes the prompt to `out` (and flushes it).
    ///
    /// ```
    /// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
    ///
    /// let auth = DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device");
    /// TerminalPrompt::new().write_to(&auth, &mut std::io::stdout())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_to<W: Write + ?Sized>(&self, auth: &DeviceAuthorization, out: &mut W) -> io::Result<()> {
        out.write_all(self.render(auth).as_bytes())?;
        out.flush()
    }

    /// A callback for [`DeviceCode::on_user_code`](crate::DeviceCode::on_user_code) that
    /// writes the prompt to stderr. A failed write is logged (at WARN, with `tracing`) and
    /// does not stop the login.
    ///
    /// ```
    /// use tower_oauth2::{DeviceAuthorization, TerminalPrompt};
    ///
    /// let show = TerminalPrompt::new().into_callback();
    /// show(&DeviceAuthorization::new("WDJB-MJHT", "https://example.com/device"));
    /// ```
    pub fn into_callback(self) -> impl Fn(&DeviceAuthorization) + Send + Sync + 'static {
        move |auth| {
            if let Err(err) = self.write_to(auth, &mut io::stderr().lock()) {
                tracing::warn!(error = %err, "could not show the user code on stderr");
            }
        }
    }
}

/// A QR code of `data` in Unicode half blocks (two rows of modules per line), drawn for a dark
/// terminal: light modules and the quiet zone are blocks, dark modules are spaces. `None` if
/// `data` is too long for a QR code.
#[cfg(feature = "qrcode")]
fn qr_block(data: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;

    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}
