//! `WWW-Authenticate` challenges, parsed as RFC 9110 §11.6.1 defines them, so that the `error`
//! of a Bearer challenge (RFC 6750 §3) can be read reliably.
//!
//! The layer uses this to decide whether a `401` means "this token is dead" (RFC 6750 §3.1:
//! `error="invalid_token"` in a `Bearer` challenge, or in a `DPoP` one, RFC 9449 §7.1): a
//! mention of `invalid_token` anywhere else (inside an `error_description`, in a `realm`, under
//! another scheme) does not count.
//!
//! The grammar (RFC 9110 §11.6.1, §5.6):
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Several challenges may share one field line, separated by commas like the parameters they
//! carry, and a response may have several field lines; [`parse_headers`] reads them all.
//! Scheme and parameter names compare without regard to case ([`Challenge::is_scheme`],
//! [`Challenge::param`]); quoted-string values are returned unescaped.
//!
//! ```
//! use tower_oauth2::layer::www_authenticate;
//!
//! let challenges = www_authenticate::parse(
//!     r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Bearer error=invalid_token"#,
//! );
//! assert_eq!(challenges.len(), 2);
//! assert_eq!(challenges[0].param("TITLE"), Some(r#"Login to "apps""#));
//! assert!(challenges[1].is_scheme("bearer"));
//! assert_eq!(challenges[1].param("error"), Some("invalid_token"));
//! assert!(challenges.error().is_none());
//! ```
//!
//! # Malformed input
//!
//! Parsing never fails as a whole and never panics: it stops at the first byte the grammar
//! does not allow and keeps every challenge and every complete parameter read before it (the
//! challenge being read included), recording the [`ParseError`] in [`Challenges::error`]. A
//! token that a server says is invalid in a challenge it then garbles is still seen as
//! invalid; a garbled parameter is never guessed at. [`parse_headers`] reads each field line
//! on its own, so a malformed line does not hide the challenges of the next one.
//!
//! Output is bounded: at most [`MAX_CHALLENGES`] challenges in all and [`MAX_PARAMS`]
//! parameters per challenge (beyond that, parsing stops with an error), and the names and
//! values kept are never longer, together, than the input.

use std::fmt;
use std::ops::Index;

use http::header::WWW_AUTHENTICATE;
use http::HeaderMap;

/// The most challenges [`parse`] and [`parse_headers`] return; parsing stops with
/// [`ParseErrorKind::TooManyChallenges`] at the next one.
pub const MAX_CHALLENGES: usize = 16;

/// The most parameters kept for one challenge; parsing stops with
/// [`ParseErrorKind::TooManyParams`] at the next one.
pub const MAX_PARAMS: usize = 32;

/// One authentication challenge: a scheme with either a token68 or a list of parameters.
///
/// ```
/// use tower_oauth2::layer::www_authenticate;
///
/// let challenges = www_authenticate::parse(r#"Bearer realm="api", error="invalid_token""#);
/// let bearer = &challenges[0];
/// assert_eq!(bearer.scheme(), "Bearer");
/// assert_eq!(bearer.param("Error"), Some("invalid_token"));
/// assert_eq!(bearer.params().count(), 2);
/// assert_eq!(bearer.token68(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The authentication scheme as the server spelled it (`Bearer`, `bearer`, `DPoP`, ...).
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse(r#"dpop algs="ES256""#);
    /// assert_eq!(challenges[0].scheme(), "dpop");
    /// ```
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether this challenge is of `scheme`, compared without regard to ASCII case.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("bEaReR");
    /// assert!(challenges[0].is_scheme("Bearer"));
    /// ```
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68 the challenge carries instead of parameters, if it does.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("Negotiate a87421000492aa874209af8bc028==");
    /// assert_eq!(challenges[0].token68(), Some("a87421000492aa874209af8bc028=="));
    /// ```
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The parameters, in order, names as sent and values unescaped.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse(r#"Basic realm="a \"b\"", charset=UTF-8"#);
    /// let params: Vec<_> = challenges[0].params().collect();
    /// assert_eq!(params, [("realm", r#"a "b""#), ("charset", "UTF-8")]);
    /// ```
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The value of the parameter `name`, compared without regard to ASCII case. A parameter
    /// must not occur twice in a challenge (RFC 9110 §11.2); if it does, the first one counts.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("Bearer ERROR=invalid_token");
    /// assert_eq!(challenges[0].param("error"), Some("invalid_token"));
    /// assert_eq!(challenges[0].param("scope"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The challenges of one `WWW-Authenticate` value or of all of a response's, in order, with
/// the error that stopped parsing, if any. Index it, or iterate over it.
///
/// ```
/// use tower_oauth2::layer::www_authenticate;
///
/// let challenges = www_authenticate::parse(r#"Basic realm="x", Bearer error="invalid_token"#);
/// // The unterminated quoted string stops parsing; what came before it is kept.
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[1].param("error"), None);
/// assert!(challenges.error().is_some());
/// for challenge in &challenges {
///     println!("{}", challenge.scheme());
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenges {
    list: Vec<Challenge>,
    error: Option<ParseError>,
}

impl Challenges {
    /// The challenges as a slice.
    ///
    /// ```
    /// use tower_oauth2::layer::www_authenticate::{self, Challenge};
    ///
    /// let challenges = www_authenticate::parse("Basic, Bearer");
    /// let slice: &[Challenge] = challenges.as_slice();
    /// assert!(slice.iter().any(|c| c.is_scheme("bearer")));
    /// ```
    pub fn as_slice(&self) -> &[Challenge] {
        &self.list
    }

    /// An iterator over the challenges.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("Basic, Bearer");
    /// let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme()).collect();
    /// assert_eq!(schemes, ["Basic", "Bearer"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Challenge> {
        self.list.iter()
    }

    /// How many challenges were read.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::layer::www_authenticate::parse("Basic, Bearer").len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no challenge was read.
    ///
    /// ```
    /// use tower_oauth2::layer::www_authenticate;
    ///
    /// assert!(www_authenticate::parse("").is_empty());
    /// assert!(www_authenticate::parse("=oops").is_empty()); // and `error()` says why
    /// ```
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first error met, if the input was malformed or too long; the challenges read
    /// before it are kept.
    ///
    /// ```
    /// use tower_oauth2::layer::www_authenticate::{self, ParseErrorKind};
    ///
    /// let challenges = www_authenticate::parse("Bearer realm=a/b");
    /// let error = challenges.error().unwrap();
    /// assert_eq!(error.kind(), ParseErrorKind::Syntax);
    /// assert_eq!(error.offset(), 14);
    /// ```
    pub fn error(&self) -> Option<&ParseError> {
        self.error.as_ref()
    }

    /// The challenges, as a `Vec`.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("Basic, Bearer").into_vec();
    /// assert_eq!(challenges.len(), 2);
    /// ```
    pub fn into_vec(self) -> Vec<Challenge> {
        self.list
    }
}

impl Index<usize> for Challenges {
    type Output = Challenge;

    fn index(&self, index: usize) -> &Challenge {
        &self.list[index]
    }
}

impl<'a> IntoIterator for &'a Challenges {
    type Item = &'a Challenge;
    type IntoIter = std::slice::Iter<'a, Challenge>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl IntoIterator for Challenges {
    type Item = Challenge;
    type IntoIter = std::vec::IntoIter<Challenge>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

/// Why parsing stopped; see [`Challenges::error`]. Its `Display` names the position, never
/// the server's text.
///
/// ```
/// let challenges = tower_oauth2::layer::www_authenticate::parse("Bearer error=\"invalid_token");
/// assert_eq!(
///     challenges.error().unwrap().to_string(),
///     "malformed WWW-Authenticate (field line 0, byte 13): unterminated quoted string",
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    line: usize,
    offset: usize,
}

impl ParseError {
    /// What was wrong.
    ///
    /// ```
    /// use tower_oauth2::layer::www_authenticate::{self, ParseErrorKind};
    ///
    /// let challenges = www_authenticate::parse(r#"Bearer realm="api"#);
    /// assert_eq!(challenges.error().map(|e| e.kind()), Some(ParseErrorKind::UnterminatedQuotedString));
    /// ```
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Which `WWW-Authenticate` field line (counting from 0, in the order of the header map)
    /// was malformed; always 0 for [`parse`].
    ///
    /// ```
    /// use http::header::{HeaderMap, WWW_AUTHENTICATE};
    /// use tower_oauth2::layer::www_authenticate;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.append(WWW_AUTHENTICATE, "Basic realm=x".parse().unwrap());
    /// headers.append(WWW_AUTHENTICATE, "Bearer realm=a/b".parse().unwrap());
    /// let challenges = www_authenticate::parse_headers(&headers);
    /// assert_eq!(challenges.len(), 2);
    /// assert_eq!(challenges.error().map(|e| e.line()), Some(1));
    /// ```
    pub fn line(&self) -> usize {
        self.line
    }

    /// The byte offset in that field line at which parsing stopped.
    ///
    /// ```
    /// let challenges = tower_oauth2::layer::www_authenticate::parse("Bearer realm=a/b");
    /// assert_eq!(challenges.error().map(|e| e.offset()), Some(14)); // at the `/`
    /// ```
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed WWW-Authenticate (field line {}, byte {}): ",
            self.line, self.offset
        )?;
        match self.kind {
            ParseErrorKind::Syntax => f.write_str("unexpected character"),
            ParseErrorKind::UnterminatedQuotedString => f.write_str("unterminated quoted string"),
            ParseErrorKind::TooManyChallenges => write!(f, "more than {MAX_CHALLENGES} challenges"),
            ParseErrorKind::TooManyParams => write!(f, "more than {MAX_PARAMS} parameters in a challenge"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The kinds of [`ParseError`].
///
/// ```
/// use tower_oauth2::layer::www_authenticate::{self, ParseErrorKind};
///
/// let kind_of = |value: &str| www_authenticate::parse(value).error().map(|e| e.kind());
/// assert_eq!(kind_of("Bearer error=invalid_token"), None);
/// assert_eq!(kind_of("Bearer realm=a/b"), Some(ParseErrorKind::Syntax));
/// assert_eq!(kind_of(r#"Bearer realm="a"#), Some(ParseErrorKind::UnterminatedQuotedString));
/// assert_eq!(kind_of(&"Basic, ".repeat(17)), Some(ParseErrorKind::TooManyChallenges));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A byte the grammar does not allow there (a control character, a `/` in an unquoted
    /// value, a parameter without a scheme, ...).
    Syntax,
    /// A quoted string without its closing `"`.
    UnterminatedQuotedString,
    /// More than [`MAX_CHALLENGES`] challenges.
    TooManyChallenges,
    /// More than [`MAX_PARAMS`] parameters in one challenge.
    TooManyParams,
}

/// Parses one `WWW-Authenticate` field value (a `&str`, `&[u8]` or `&HeaderValue`).
///
/// ```
/// use tower_oauth2::layer::www_authenticate;
///
/// let value = http::HeaderValue::from_static(r#"Basic realm="invalid_token", DPoP error="invalid_token""#);
/// let challenges = www_authenticate::parse(&value);
/// assert_eq!(challenges[0].param("realm"), Some("invalid_token"));
/// assert!(challenges[1].is_scheme("dpop"));
/// ```
pub fn parse(value: impl AsRef<[u8]>) -> Challenges {
    let mut challenges = Challenges::default();
    if let Err(error) = parse_line(value.as_ref(), 0, &mut challenges.list) {
        challenges.error = Some(error);
    }
    challenges
}

/// Parses every `WWW-Authenticate` field line of `headers`, in order, each on its own: a
/// malformed line keeps what parsed before its error and the next lines are still read.
/// [`Challenges::error`] is the first error met. Parsing stops for good at
/// [`MAX_CHALLENGES`].
///
/// ```
/// use http::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
/// use tower_oauth2::layer::www_authenticate;
///
/// let mut headers = HeaderMap::new();
/// headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="x""#));
/// headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#));
/// let challenges = www_authenticate::parse_headers(&headers);
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[1].param("error"), Some("invalid_token"));
/// ```
pub fn parse_headers(headers: &HeaderMap) -> Challenges {
    let mut challenges = Challenges::default();
    for (line, value) in headers.get_all(WWW_AUTHENTICATE).iter().enumerate() {
        if let Err(error) = parse_line(value.as_bytes(), line, &mut challenges.list) {
            challenges.error.get_or_insert(error);
            if error.kind == ParseErrorKind::TooManyChallenges {
                break;
            }
        }
    }
    challenges
}

/// Parses one field line, appending its challenges to `out` (which may hold those of earlier
/// lines: they count towards the cap, but parameters never attach to them).
fn parse_line(input: &[u8], line: usize, out: &mut Vec<Challenge>) -> Result<(), ParseError> {
    let mut p = Parser { input, pos: 0, line };
    // Whether the last challenge of `out` is this line's and takes parameters.
    let mut open = false;
    loop {
        p.skip_ows();
        if p.eat(b',') {
            // Empty list elements are allowed (RFC 9110 §5.6.1.2).
            continue;
        }
        if p.at_end() {
            return Ok(());
        }
        let start = p.pos;
        let name = p.token().ok_or_else(|| p.error(ParseErrorKind::Syntax))?;
        let after_name = p.pos;
        p.skip_ows();
        if p.peek() == Some(b'=') {
            // `name=value`: one more parameter of the open challenge.
            let Some(challenge) = out.last_mut().filter(|_| open) else {
                return Err(p.error_at(ParseErrorKind::Syntax, start));
            };
            let param = p.param_value_after(name)?;
            if challenge.params.len() >= MAX_PARAMS {
                return Err(p.error_at(ParseErrorKind::TooManyParams, start));
            }
            challenge.params.push(param);
            continue;
        }
        // A new challenge: `name` is its scheme.
        let spaced = p.pos > after_name;
        if !(p.at_end() || p.peek() == Some(b',') || spaced) {
            return Err(p.error(ParseErrorKind::Syntax));
        }
        if out.len() >= MAX_CHALLENGES {
            return Err(p.error_at(ParseErrorKind::TooManyChallenges, start));
        }
        out.push(Challenge {
            scheme: name,
            token68: None,
            params: Vec::new(),
        });
        open = true;
        if p.at_end() || p.peek() == Some(b',') {
            continue;
        }
        let Some(challenge) = out.last_mut() else {
            return Ok(());
        };
        if let Some(token68) = p.token68() {
            challenge.token68 = Some(token68);
            open = false;
            continue;
        }
        // The first parameter, which must follow the scheme's space.
        let name = p.token().ok_or_else(|| p.error(ParseErrorKind::Syntax))?;
        p.skip_ows();
        if p.peek() != Some(b'=') {
            return Err(p.error(ParseErrorKind::Syntax));
        }
        let param = p.param_value_after(name)?;
        challenge.params.push(param);
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        self.error_at(kind, self.pos)
    }

    fn error_at(&self, kind: ParseErrorKind, offset: usize) -> ParseError {
        ParseError {
            kind,
            line: self.line,
            offset,
        }
    }

    /// `1*tchar` (RFC 9110 §5.6.2), or `None` (nothing consumed).
    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| ascii(&self.input[start..self.pos]))
    }

    /// A token68 that makes up the whole rest of a list element, consumed; otherwise `None`
    /// and nothing consumed (`name=value` is not a token68: `=` only pads its end).
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let mut end = start;
        while self.input.get(end).copied().is_some_and(is_token68_char) {
            end += 1;
        }
        if end == start {
            return None;
        }
        while self.input.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut next = end;
        while matches!(self.input.get(next), Some(b' ' | b'\t')) {
            next += 1;
        }
        if !matches!(self.input.get(next), None | Some(b',')) {
            return None;
        }
        self.pos = end;
        Some(ascii(&self.input[start..end]))
    }

    /// At the `=` after a parameter's name (and optional whitespace): reads the value and
    /// checks that the list element ends there.
    fn param_value_after(&mut self, name: String) -> Result<(String, String), ParseError> {
        self.pos += 1; // '='
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            self.token().ok_or_else(|| self.error(ParseErrorKind::Syntax))?
        };
        self.skip_ows();
        if !(self.at_end() || self.peek() == Some(b',')) {
            return Err(self.error(ParseErrorKind::Syntax));
        }
        Ok((name, value))
    }

    /// `DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4), unescaped. Bytes that are
    /// not UTF-8 (obs-text) become U+FFFD.
    fn quoted_string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error_at(ParseErrorKind::UnterminatedQuotedString, open));
            };
            match byte {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(escaped) if escaped == b'\t' || (escaped >= b' ' && escaped != 0x7f) => {
                            value.push(escaped);
                            self.pos += 1;
                        }
                        Some(_) => return Err(self.error(ParseErrorKind::Syntax)),
                        None => return Err(self.error_at(ParseErrorKind::UnterminatedQuotedString, open)),
                    }
                }
                b'\t' | b' '..=b'~' | 0x80..=0xff => {
                    value.push(byte);
                    self.pos += 1;
                }
                _ => return Err(self.error(ParseErrorKind::Syntax)),
            }
        }
        Ok(match String::from_utf8(value) {
            Ok(value) => value,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The characters of a token68 before its `=` padding (RFC 9110 §11.2).
fn is_token68_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

/// ASCII bytes (checked by the caller's character class) as a `String`.
fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge.params().collect()
    }

    #[test]
    fn rfc_9110_example_two_challenges_in_one_line() {
        let c = parse(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#);
        assert_eq!(c.error(), None);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme(), "Newauth");
        assert_eq!(
            params(&c[0]),
            [("realm", "apps"), ("type", "1"), ("title", r#"Login to "apps""#)]
        );
        assert_eq!(c[1].scheme(), "Basic");
        assert_eq!(params(&c[1]), [("realm", "simple")]);
    }

    #[test]
    fn rfc_6750_examples() {
        let c = parse(r#"Bearer realm="example""#);
        assert_eq!(params(&c[0]), [("realm", "example")]);
        let c = parse(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        );
        assert_eq!(c.error(), None);
        assert_eq!(c[0].param("error"), Some("invalid_token"));
        assert_eq!(c[0].param("error_description"), Some("The access token expired"));
    }

    #[test]
    fn names_are_case_insensitive_values_are_not() {
        let c = parse(r#"bEaReR ERROR="invalid_token", Scope="A b""#);
        assert!(c[0].is_scheme("Bearer"));
        assert_eq!(c[0].scheme(), "bEaReR");
        assert_eq!(c[0].param("error"), Some("invalid_token"));
        assert_eq!(c[0].param("scope"), Some("A b"));
        assert!(!c[0].is_scheme("Bearer2"));
    }

    #[test]
    fn token_and_quoted_values_and_whitespace_around_equals() {
        let c = parse("Bearer error = invalid_token ,realm\t=\t\"x\"");
        assert_eq!(c.error(), None);
        assert_eq!(params(&c[0]), [("error", "invalid_token"), ("realm", "x")]);
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let c = parse(r#"X a="\\", b="\"", c="\a\ b", d="""#);
        assert_eq!(c.error(), None);
        assert_eq!(params(&c[0]), [("a", "\\"), ("b", "\""), ("c", "a b"), ("d", "")]);
    }

    #[test]
    fn commas_inside_quoted_strings_do_not_split() {
        let c = parse(r#"Bearer error_description="a, Bearer error=invalid_token", realm=x"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("error"), None);
        assert_eq!(c[0].param("realm"), Some("x"));
    }

    #[test]
    fn token68_forms() {
        let c = parse("Negotiate abc/+_.-~==, Basic, Foo YWxhZGRpbjpvcGVuc2VzYW1l");
        assert_eq!(c.error(), None);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].token68(), Some("abc/+_.-~=="));
        assert_eq!(c[1].token68(), None);
        assert_eq!(c[1].params().len(), 0);
        assert_eq!(c[2].token68(), Some("YWxhZGRpbjpvcGVuc2VzYW1l"));
        // `a=` could only be a token68: a parameter needs a value.
        let c = parse("Foo a=");
        assert_eq!((c[0].token68(), c.error()), (Some("a="), None));
    }

    #[test]
    fn a_parameter_after_a_token68_is_an_error() {
        let c = parse("Foo abc==, error=invalid_token");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].token68(), Some("abc=="));
        assert_eq!(c[0].param("error"), None);
        assert_eq!(c.error().map(ParseError::kind), Some(ParseErrorKind::Syntax));
        assert_eq!(c.error().map(ParseError::offset), Some(11));
    }

    #[test]
    fn empty_list_elements_and_surrounding_whitespace() {
        let c = parse("  , ,Basic ,, Bearer , , error=\"invalid_token\" ,  ");
        assert_eq!(c.error(), None);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        assert_eq!(parse("").len(), 0);
        assert_eq!(parse(" \t ").error(), None);
    }

    #[test]
    fn malformed_input_keeps_what_came_before() {
        // A parameter without a scheme.
        let c = parse("error=invalid_token");
        assert!(c.is_empty());
        assert_eq!(c.error().unwrap().kind(), ParseErrorKind::Syntax);
        // Garbage after a complete parameter: the parameter before it is kept.
        let c = parse(r#"Bearer error="invalid_token", realm=a/b, scope=x"#);
        assert_eq!(c[0].param("error"), Some("invalid_token"));
        assert_eq!(c[0].param("realm"), None);
        assert_eq!(c[0].param("scope"), None);
        // Two words with no `=` after a scheme are neither a token68 nor a parameter.
        let c = parse("Bearer invalid_token here");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].params().len(), 0);
        assert!(c.error().is_some());
        // A scheme glued to a quote.
        let c = parse(r#"Bearer"x""#);
        assert!(c.is_empty());
        assert_eq!(c.error().unwrap().offset(), 6);
        // Control characters in a quoted string.
        let c = parse(b"Bearer a=\"x\x01\", error=invalid_token");
        assert_eq!(c[0].param("error"), None);
        assert_eq!(c.error().unwrap().kind(), ParseErrorKind::Syntax);
        // An escape at the very end.
        let c = parse(r#"Bearer a="x\"#);
        assert_eq!(
            c.error().unwrap().kind(),
            ParseErrorKind::UnterminatedQuotedString
        );
        assert_eq!(c.error().unwrap().offset(), 9);
    }

    #[test]
    fn obs_text_becomes_replacement_characters() {
        let c = parse(b"Basic realm=\"caf\xe9\", charset=\"\xc3\xa9\"");
        assert_eq!(c.error(), None);
        assert_eq!(c[0].param("realm"), Some("caf\u{fffd}"));
        assert_eq!(c[0].param("charset"), Some("é"));
    }

    #[test]
    fn the_first_of_a_repeated_parameter_counts() {
        let c = parse("Bearer error=insufficient_scope, ERROR=invalid_token");
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        assert_eq!(c[0].params().len(), 2);
    }

    #[test]
    fn challenges_are_capped() {
        let many = vec!["Basic"; MAX_CHALLENGES + 5].join(", ");
        let c = parse(&many);
        assert_eq!(c.len(), MAX_CHALLENGES);
        assert_eq!(c.error().unwrap().kind(), ParseErrorKind::TooManyChallenges);
        let exact = vec!["Basic"; MAX_CHALLENGES].join(", ");
        assert_eq!(parse(&exact).error(), None);
    }

    #[test]
    fn params_are_capped() {
        let many: Vec<String> = (0..MAX_PARAMS + 3).map(|i| format!("p{i}=v")).collect();
        let c = parse(format!("Bearer {}", many.join(", ")));
        assert_eq!(c[0].params().len(), MAX_PARAMS);
        assert_eq!(c.error().unwrap().kind(), ParseErrorKind::TooManyParams);
    }

    #[test]
    fn header_lines_are_parsed_each_on_its_own() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="oops"#));
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("error=x"));
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=invalid_token"),
        );
        let c = parse_headers(&headers);
        assert_eq!(c.len(), 2);
        assert!(c[0].is_scheme("basic"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        // The first error is kept: line 0's unterminated string.
        let error = c.error().unwrap();
        assert_eq!(
            (error.kind(), error.line(), error.offset()),
            (ParseErrorKind::UnterminatedQuotedString, 0, 12)
        );
        // A parameter on a line of its own never attaches to the previous line's challenge.
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("error=invalid_token"));
        let c = parse_headers(&headers);
        assert_eq!(c[0].param("error"), None);
        assert_eq!(c.error().unwrap().line(), 1);
    }

    #[test]
    fn the_cap_applies_across_lines() {
        let mut headers = HeaderMap::new();
        let line = HeaderValue::from_str(&["Basic"; 10].join(",")).unwrap();
        for _ in 0..3 {
            headers.append(WWW_AUTHENTICATE, line.clone());
        }
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=invalid_token"),
        );
        let c = parse_headers(&headers);
        assert_eq!(c.len(), MAX_CHALLENGES);
        assert_eq!(c.error().unwrap().kind(), ParseErrorKind::TooManyChallenges);
        assert_eq!(c.error().unwrap().line(), 1);
        assert!(c.iter().all(|challenge| challenge.is_scheme("basic")));
    }

    #[test]
    fn any_bytes_parse_without_panicking_within_bounds() {
        // A cheap sweep over short inputs built from the grammar's interesting bytes.
        let alphabet = b"a=\", \\\t/B\x01\xff";
        let mut input = Vec::new();
        for n in 0..alphabet.len().pow(5) {
            input.clear();
            let mut k = n;
            for _ in 0..5 {
                input.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let c = parse(&input);
            assert!(c.len() <= MAX_CHALLENGES);
            let kept: usize = c
                .iter()
                .map(|ch| {
                    ch.scheme().len()
                        + ch.token68().map_or(0, str::len)
                        + ch.params().map(|(n, v)| n.len() + v.len()).sum::<usize>()
                })
                .sum();
            // U+FFFD is 3 bytes for 1 input byte; nothing else grows.
            assert!(kept <= 3 * input.len());
        }
    }
}
