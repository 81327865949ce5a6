//! Which resource servers a token is for (RFC 9700 §2.3 and §4.10: a client sends an access
//! token only to the resource servers it is meant for).
//!
//! A [`Resource`] is an origin (scheme, host and port: `https://api.example.com`) or a URL
//! prefix within one (`https://api.example.com/v1/`). An [`OAuth2Layer`](crate::OAuth2Layer)
//! bound to resources with [`for_resources`](crate::OAuth2Layer::for_resources) puts its token
//! only on requests to them; [`OAuth2RouterLayer`](crate::OAuth2RouterLayer) puts a different
//! token on each. What happens to a request for anything else is [`OtherResources`]'s choice.
//!
//! ```
//! use tower_oauth2::Resource;
//!
//! let api = Resource::parse("https://api.example.com/v1/")?;
//! let uri = |s: &str| s.parse::<http::Uri>().unwrap();
//! assert!(api.matches(&uri("https://API.example.com:443/v1/orders")));
//! assert!(!api.matches(&uri("https://api.example.com/v10/orders"))); // not a segment of /v1/
//! assert!(!api.matches(&uri("http://api.example.com/v1/orders"))); // another scheme
//! assert!(!api.matches(&uri("https://evil.example/v1/orders")));
//! # Ok::<(), tower_oauth2::Error>(())
//! ```
//!
//! A redirect follower stacked *above* the layer (tower-http's `FollowRedirect`, say) sends
//! each hop through the layer again; with the layer bound, a hop to another origin goes out
//! without the token.

use std::fmt;
use std::str::FromStr;

use http::Uri;

use crate::error::Error;

/// An origin, or a URL prefix within one, that a token is for.
///
/// Parsed from an absolute `http` or `https` URL: its scheme, host (compared without regard
/// to case, and without a trailing dot) and port (the scheme's default when absent) make the
/// origin; a path other than `/` makes a prefix, matched at whole segments (`/v1` and `/v1/`
/// both match `/v1` and `/v1/orders`, never `/v10`). Queries, fragments and credentials are
/// refused.
///
/// ```
/// use tower_oauth2::Resource;
///
/// let orders: Resource = "https://orders.example.com".parse()?;
/// assert_eq!(orders.to_string(), "https://orders.example.com");
/// assert!(orders.matches(&"https://orders.example.com/anything".parse().unwrap()));
/// assert!(Resource::parse("https://user:pw@orders.example.com").is_err());
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    https: bool,
    /// Lower case, no trailing dot; IPv6 addresses keep their brackets, as `Uri::host` gives.
    host: Box<str>,
    port: u16,
    /// Without a trailing `/`; empty for a whole origin.
    path: Box<str>,
    /// How a request's authority usually spells this origin: `host` (default port) or
    /// `host:port`, and `host:port` always. Comparing the raw authority with these is the fast
    /// path (the `http` crate's `host()` and `port_u16()` parse it again on each call).
    authority: Box<str>,
    authority_with_port: Box<str>,
}

impl Resource {
    /// Parses an absolute `http` or `https` URL into a resource.
    ///
    /// ```
    /// use tower_oauth2::Resource;
    ///
    /// assert!(Resource::parse("https://api.example.com:8443/v2").is_ok());
    /// assert!(Resource::parse("ftp://api.example.com").is_err());
    /// assert!(Resource::parse("/relative").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Resource, Error> {
        let invalid = |why: &str| Error::Config(format!("invalid resource URL: {why}"));
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let https = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            _ => return Err(invalid("not an absolute http or https URL")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in a resource URL"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(invalid("a query or a fragment in a resource URL"));
        }
        let host = normalized_host(authority.host());
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority_with_port = format!("{host}:{port}");
        let default_port = port == if https { 443 } else { 80 };
        Ok(Resource {
            https,
            authority: if default_port {
                host.clone()
            } else {
                authority_with_port.clone()
            }
            .into(),
            authority_with_port: authority_with_port.into(),
            host: host.into(),
            port,
            path: uri.path().trim_end_matches('/').into(),
        })
    }

    /// Whether a request to `uri` is for this resource. A relative URI (no scheme or host)
    /// never is.
    ///
    /// ```
    /// use tower_oauth2::Resource;
    ///
    /// let api = Resource::parse("http://127.0.0.1:8080")?;
    /// assert!(api.matches(&"http://127.0.0.1:8080/x".parse().unwrap()));
    /// assert!(!api.matches(&"http://127.0.0.1:8081/x".parse().unwrap()));
    /// assert!(!api.matches(&"/x".parse().unwrap()));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    #[inline]
    pub fn matches(&self, uri: &Uri) -> bool {
        let Some((https, raw)) = scheme_and_authority(uri) else {
            return false;
        };
        if https != self.https {
            return false;
        }
        if raw.eq_ignore_ascii_case(&self.authority) || raw.eq_ignore_ascii_case(&self.authority_with_port) {
            return self.path_matches(uri);
        }
        // Other spellings of the same origin (user info, a trailing dot, a port with leading
        // zeros) all contain `@` or start with the host: parse those; anything else is another
        // origin.
        let may_be_ours = raw.contains('@')
            || raw
                .get(..self.host.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(&self.host));
        may_be_ours
            && uri.authority().is_some_and(|authority| {
                self.matches_parts(https, authority.host(), authority.port_u16(), uri.path())
            })
    }

    /// The spellings of this origin a canonical request authority takes (`host` when the
    /// port is the default, and `host:port`), with the scheme: the router's index keys.
    pub(crate) fn origin_keys(&self) -> impl Iterator<Item = (bool, &str)> {
        let short = (self.authority != self.authority_with_port).then_some(&*self.authority);
        short
            .into_iter()
            .chain(std::iter::once(&*self.authority_with_port))
            .map(move |key| (self.https, key))
    }

    /// Whether `uri`'s path is within this resource's (the origin already matched).
    #[inline]
    pub(crate) fn path_matches(&self, uri: &Uri) -> bool {
        self.path.is_empty() || path_within(uri.path(), &self.path)
    }

    /// Whether a request to `url` is for this resource (for clients that speak
    /// [`url::Url`], such as reqwest).
    ///
    /// ```
    /// use tower_oauth2::Resource;
    ///
    /// let api = Resource::parse("https://api.example.com/v1")?;
    /// assert!(api.matches_url(&url::Url::parse("https://api.example.com/v1/x").unwrap()));
    /// assert!(!api.matches_url(&url::Url::parse("https://api.example.com/v2").unwrap()));
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn matches_url(&self, url: &url::Url) -> bool {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return false,
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        self.matches_parts(https, host, url.port(), url.path())
    }

    #[inline]
    fn matches_parts(&self, https: bool, host: &str, port: Option<u16>, path: &str) -> bool {
        https == self.https
            && port.unwrap_or(if https { 443 } else { 80 }) == self.port
            && host_eq(host, &self.host)
            && path_within(path, &self.path)
    }
}

/// The scheme (`true` for https) and raw authority of an absolute `http(s)` URI.
#[inline]
pub(crate) fn scheme_and_authority(uri: &Uri) -> Option<(bool, &str)> {
    let https = match uri.scheme() {
        Some(scheme) if *scheme == http::uri::Scheme::HTTPS => true,
        Some(scheme) if *scheme == http::uri::Scheme::HTTP => false,
        _ => return None,
    };
    Some((https, uri.authority()?.as_str()))
}

/// Whether a raw authority is in the canonical form the router indexes: lower case, no user
/// info, no trailing dot on the host. Any other spelling must be parsed to be compared.
pub(crate) fn is_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let odd = bytes
        .iter()
        .fold(false, |odd, &b| odd | (b.wrapping_sub(b'A') < 26) | (b == b'@'));
    // The host ends before `:port` (digits after the last colon; an IPv6 literal ends in `]`).
    let digits = bytes.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let host_end = match bytes.len().checked_sub(digits + 1) {
        Some(colon) if bytes[colon] == b':' => colon,
        _ => bytes.len(),
    };
    let trailing_dot = host_end > 0 && bytes[host_end - 1] == b'.';
    !odd && !trailing_dot
}

/// A host as it is compared: lower case, without a trailing dot.
fn normalized_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Whether `host` (from a request) names `normalized` (from a [`Resource`]).
#[inline]
fn host_eq(host: &str, normalized: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case(normalized)
}

/// Whether `path` is `prefix` or below it, at a segment boundary.
#[inline]
fn path_within(path: &str, prefix: &str) -> bool {
    // Bytes, not `str::strip_prefix`: a `&str` pattern sets up a substring searcher (over
    // 100 ns for an empty prefix, the common case of a whole origin).
    let (path, prefix) = (path.as_bytes(), prefix.as_bytes());
    path.starts_with(prefix) && matches!(path.get(prefix.len()), None | Some(b'/'))
}

impl FromStr for Resource {
    type Err = Error;

    fn from_str(url: &str) -> Result<Resource, Error> {
        Resource::parse(url)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != if self.https { 443 } else { 80 } {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resource({self})")
    }
}

/// What a bound layer does with a request for none of its resources.
///
/// The default is [`SendWithoutToken`](Self::SendWithoutToken): the request goes out as it
/// is, so a client that also calls other services, or follows a redirect to another origin
/// (an API that redirects a download to a storage service's pre-signed URL, say), keeps
/// working, and the token never leaves for a server it is not meant for.
/// [`Fail`](Self::Fail) makes such a request an error instead, to catch a client sent to the
/// wrong place.
///
/// ```
/// use tower_oauth2::{source_fn, OAuth2Layer, OtherResources, Token};
///
/// let layer = OAuth2Layer::new(source_fn(|| async { Ok(Token::bearer("t")) }))
///     .for_resources(["https://api.example.com"])?
///     .other_resources(OtherResources::Fail);
/// # let _ = layer;
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtherResources {
    /// Send the request without a token (the default).
    #[default]
    SendWithoutToken,
    /// Fail the request with [`Error::NotForThisResource`] without sending it.
    Fail,
}

/// A set of resources; the empty set means "any", for a layer that was not bound.
#[derive(Clone, Debug, Default)]
pub(crate) struct Binding {
    resources: Option<std::sync::Arc<[Resource]>>,
    pub(crate) others: OtherResources,
}

impl Binding {
    /// This binding with the resources of `urls` added; fails on the first invalid URL.
    pub(crate) fn with_urls<I>(&self, urls: I) -> Result<Binding, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut all: Vec<Resource> = self.resources().map(<[Resource]>::to_vec).unwrap_or_default();
        for url in urls {
            all.push(Resource::parse(url.as_ref())?);
        }
        Ok(Binding {
            resources: Some(all.into()),
            others: self.others,
        })
    }

    /// Whether a request to `uri` may carry the token.
    #[inline]
    pub(crate) fn allows(&self, uri: &Uri) -> bool {
        match &self.resources {
            None => true,
            Some(resources) => resources.iter().any(|resource| resource.matches(uri)),
        }
    }

    /// The same for a [`url::Url`].
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn allows_url(&self, url: &url::Url) -> bool {
        match &self.resources {
            None => true,
            Some(resources) => resources.iter().any(|resource| resource.matches_url(url)),
        }
    }

    pub(crate) fn resources(&self) -> Option<&[Resource]> {
        self.resources.as_deref()
    }
}

/// The error, logged, for a request refused because it is for none of a token's resources;
/// `origin` is the request's scheme, host and port only.
pub(crate) fn refuse(origin: String) -> Error {
    tracing::warn!(%origin, "a request for another resource was refused: the token is not for it");
    Error::NotForThisResource { origin }
}

/// The origin of `url`, for an error message: scheme, host and port only.
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) fn origin_of_url(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The origin of `uri`, for an error message: scheme, host and port, never the path or query
/// (which may hold secrets).
pub(crate) fn origin_of(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            let host = authority.host();
            match authority.port_u16() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            }
        }
        _ => "a relative URI".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origins_match_by_scheme_host_and_port() {
        let r = Resource::parse("https://Api.Example.com.").unwrap();
        assert_eq!(r.to_string(), "https://api.example.com");
        assert!(r.matches(&uri("https://api.example.com")));
        assert!(r.matches(&uri("https://api.example.com.:443/a?b=c")));
        assert!(!r.matches(&uri("https://api.example.com:444/")));
        assert!(!r.matches(&uri("https://api.example.com.evil/")));
        assert!(!r.matches(&uri("https://xapi.example.com/")));
        let v6 = Resource::parse("http://[::1]:8080/").unwrap();
        assert!(v6.matches(&uri("http://[::1]:8080/x")));
        assert!(!v6.matches(&uri("http://[::2]:8080/x")));
    }

    #[test]
    fn every_spelling_of_an_origin_matches() {
        let r = Resource::parse("https://api.example.com").unwrap();
        for ok in [
            "https://api.example.com/",
            "https://API.EXAMPLE.COM/",
            "https://api.example.com:443/",
            "https://api.example.com:0443/",
            "https://api.example.com./",
            "https://api.example.com.:443/",
            "https://user@api.example.com/",
        ] {
            assert!(r.matches(&uri(ok)), "{ok}");
        }
        for no in [
            "https://api.example.com:8443/",
            "https://api.example.com.evil.example/",
            "https://api.example.community/",
            "https://user@evil.example/",
            "https://api.example.com@evil.example/",
        ] {
            assert!(!r.matches(&uri(no)), "{no}");
        }
        let local = Resource::parse("http://127.0.0.1:8080/").unwrap();
        assert!(local.matches(&uri("http://127.0.0.1:8080/x")));
        assert!(!local.matches(&uri("http://127.0.0.1/x")));
        assert!(!local.matches(&uri("http://127.0.0.1:80/x")));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r = Resource::parse("https://a.example/v1").unwrap();
        for ok in [
            "https://a.example/v1",
            "https://a.example/v1/",
            "https://a.example/v1/x?y",
        ] {
            assert!(r.matches(&uri(ok)), "{ok}");
        }
        for no in [
            "https://a.example/v10",
            "https://a.example/",
            "https://a.example/x/v1",
        ] {
            assert!(!r.matches(&uri(no)), "{no}");
        }
        assert_eq!(Resource::parse("https://a.example/v1/").unwrap(), r);
    }

    #[test]
    fn bad_resource_urls_are_refused() {
        for bad in [
            "",
            "api.example.com",
            "/v1",
            "ftp://a.example",
            "https://u:p@a.example",
            "https://a.example/?q=1",
            "https://a.example/#f",
        ] {
            assert!(Resource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_in_errors_carry_no_path() {
        assert_eq!(
            origin_of(&uri("https://a.example:8443/secret?token=x")),
            "https://a.example:8443"
        );
        assert_eq!(origin_of(&uri("/x")), "a relative URI");
    }
}
