//! [`OAuth2RouterLayer`]: one layer, several resources, each with its own token.
//!
//! A client that calls API A and API B needs a token for each: another audience (RFC 8707
//! resource indicators), other scopes, or another client altogether. The router sends each
//! request to its route, by [`Resource`] (origin or URL prefix) or by a predicate of yours, and
//! puts that route's token on it; each route has its own [`TokenCache`], with the cache's
//! refresh-ahead, single flight and backoff. A request that matches no route goes out without
//! a token, or fails ([`OtherResources`]).
//!
//! ```
//! # async fn echo(request: http::Request<String>) -> Result<http::Response<String>, std::convert::Infallible> {
//! #     let auth = request.headers().get(http::header::AUTHORIZATION);
//! #     Ok(http::Response::new(auth.map_or("", |v| v.to_str().unwrap()).to_owned()))
//! # }
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_oauth2::{source_fn, OAuth2RouterLayer, Token, TokenCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! // In a real client: `ClientCredentials::new(endpoint.clone()).resource("https://orders.example.com")`.
//! let orders = TokenCache::new(source_fn(|| async { Ok(Token::bearer("for-orders")) }));
//! let billing = TokenCache::new(source_fn(|| async { Ok(Token::bearer("for-billing")) }));
//! let router = OAuth2RouterLayer::new()
//!     .route("https://orders.example.com", orders)?
//!     .route("https://api.example.com/billing/", billing)?;
//! let mut client = ServiceBuilder::new().layer(router).service_fn(echo); // echoes `Authorization`
//! let mut get = async |url: &str| {
//!     let request = http::Request::get(url).body(String::new()).unwrap();
//!     client.ready().await.unwrap().call(request).await.unwrap().into_body()
//! };
//! assert_eq!(get("https://orders.example.com/o/1").await, "Bearer for-orders");
//! assert_eq!(get("https://api.example.com/billing/invoices").await, "Bearer for-billing");
//! assert_eq!(get("https://api.example.com/other").await, ""); // no route: no token
//! # Ok(()) }
//! ```
//!
//! The cost for a request that finds its route is one [`Resource::matches`] per route tried
//! (a few nanoseconds each: scheme, port, then host) and one lock-free load of that route's
//! token; `benches/routing.rs` measures 1, 4 and 16 routes beside [`OAuth2Layer`](crate::OAuth2Layer)
//! (figures in BENCHMARKS.md).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, Method, Request, Response, Uri};
use tower_layer::Layer;
use tower_service::Service;

use crate::cache::TokenCache;
use crate::error::{BoxError, Error};
use crate::layer::resource::{OtherResources, Resource};
use crate::layer::{authorize, other_resource, ResponseFuture};

/// What a route predicate sees of a request: its method, URI, headers and extensions.
///
/// ```
/// use tower_oauth2::{source_fn, OAuth2RouterLayer, Token, TokenCache};
///
/// /// Set by the application on requests for the reporting API.
/// #[derive(Clone)]
/// struct Reporting;
///
/// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
/// let router = OAuth2RouterLayer::new().route_fn(|request| request.extensions().get::<Reporting>().is_some(), cache);
/// # let _ = router;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RouteRequest<'a> {
    /// A view of `request`.
    ///
    /// ```
    /// use tower_oauth2::layer::router::RouteRequest;
    ///
    /// let request = http::Request::get("https://a.example/x").body(()).unwrap();
    /// assert_eq!(RouteRequest::of(&request).uri().path(), "/x");
    /// ```
    pub fn of<B>(request: &'a Request<B>) -> Self {
        RouteRequest {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The request's method.
    ///
    /// ```
    /// # use tower_oauth2::layer::router::RouteRequest;
    /// let request = http::Request::post("https://a.example/").body(()).unwrap();
    /// assert_eq!(RouteRequest::of(&request).method(), http::Method::POST);
    /// ```
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request's URI.
    ///
    /// ```
    /// # use tower_oauth2::layer::router::RouteRequest;
    /// let request = http::Request::get("https://a.example/x?y").body(()).unwrap();
    /// assert_eq!(RouteRequest::of(&request).uri().host(), Some("a.example"));
    /// ```
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request's headers.
    ///
    /// ```
    /// # use tower_oauth2::layer::router::RouteRequest;
    /// let request = http::Request::get("/").header("x-tenant", "acme").body(()).unwrap();
    /// assert_eq!(RouteRequest::of(&request).headers()["x-tenant"], "acme");
    /// ```
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request's extensions.
    ///
    /// ```
    /// # use tower_oauth2::layer::router::RouteRequest;
    /// let mut request = http::Request::get("/").body(()).unwrap();
    /// request.extensions_mut().insert(7u8);
    /// assert_eq!(RouteRequest::of(&request).extensions().get::<u8>(), Some(&7));
    /// ```
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

type Predicate = Arc<dyn Fn(&RouteRequest<'_>) -> bool + Send + Sync>;

#[derive(Clone)]
enum Matcher {
    Resource(Resource),
    Predicate(Predicate),
}

#[derive(Clone)]
struct Route {
    matcher: Matcher,
    cache: TokenCache,
}

/// A canonical origin as the index keys it: `https`, and `host` or `host:port`.
type OriginKey = (bool, Box<str>);

/// The routes, shared by every service the layer makes.
struct Table {
    routes: Box<[Route]>,
    /// Resource routes by canonical origin (scheme, `host` or `host:port`), sorted for a
    /// binary search; each with its route indices in order.
    by_origin: Box<[(OriginKey, Box<[usize]>)]>,
    /// The indices of the predicate routes, in order.
    predicates: Box<[usize]>,
    others: OtherResources,
    invalidate_on_401: bool,
}

impl Table {
    fn new(routes: &[Route], others: OtherResources, invalidate_on_401: bool) -> Table {
        let mut by_origin: Vec<(OriginKey, Vec<usize>)> = Vec::new();
        let mut predicates = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            match &route.matcher {
                Matcher::Resource(resource) => {
                    for (https, key) in resource.origin_keys() {
                        match by_origin
                            .iter_mut()
                            .find(|((h, k), _)| *h == https && **k == *key)
                        {
                            Some((_, indices)) => indices.push(index),
                            None => by_origin.push(((https, key.into()), vec![index])),
                        }
                    }
                }
                Matcher::Predicate(_) => predicates.push(index),
            }
        }
        by_origin.sort_by(|(a, _), (b, _)| a.cmp(b));
        Table {
            routes: routes.into(),
            by_origin: by_origin
                .into_iter()
                .map(|(key, indices)| (key, indices.into_boxed_slice()))
                .collect(),
            predicates: predicates.into_boxed_slice(),
            others,
            invalidate_on_401,
        }
    }

    /// The cache of the first route that takes `request`.
    ///
    /// A request whose authority is spelled canonically (nearly all) costs a binary search of
    /// the origins and the path check of that origin's routes; predicate routes added before
    /// the match are asked first, in order. An origin that is not found is checked for another
    /// spelling (upper case, user info, a trailing dot), which tries every route in turn.
    #[inline]
    fn route<B>(&self, request: &Request<B>) -> Option<&TokenCache> {
        let uri = request.uri();
        let Some((https, raw)) = crate::layer::resource::scheme_and_authority(uri) else {
            return self.route_slowly(request);
        };
        let candidates: &[usize] = match self
            .by_origin
            .binary_search_by(|((h, k), _)| (*h, &**k).cmp(&(https, raw)))
        {
            // Found as it is spelled: canonical, since every key is.
            Ok(found) => &self.by_origin[found].1,
            // Another origin, or another spelling of one of ours.
            Err(_) if !crate::layer::resource::is_canonical(raw) => return self.route_slowly(request),
            Err(_) => &[],
        };
        let mut best = candidates
            .iter()
            .copied()
            .find(|&index| match &self.routes[index].matcher {
                Matcher::Resource(resource) => resource.path_matches(uri),
                Matcher::Predicate(_) => false,
            });
        for &index in self.predicates.iter() {
            if best.is_some_and(|best| index > best) {
                break;
            }
            if let Matcher::Predicate(predicate) = &self.routes[index].matcher {
                if predicate(&RouteRequest::of(request)) {
                    best = Some(index);
                    break;
                }
            }
        }
        best.map(|index| &self.routes[index].cache)
    }

    #[cold]
    fn route_slowly<B>(&self, request: &Request<B>) -> Option<&TokenCache> {
        self.routes
            .iter()
            .find(|route| match &route.matcher {
                Matcher::Resource(resource) => resource.matches(request.uri()),
                Matcher::Predicate(predicate) => predicate(&RouteRequest::of(request)),
            })
            .map(|route| &route.cache)
    }
}

/// A [`Layer`] that puts on each request the token of its route: see the [module docs](self).
/// Routes are tried in the order they were added; the first that takes a request wins.
///
/// ```
/// use tower_oauth2::{source_fn, OAuth2RouterLayer, OtherResources, Token, TokenCache};
///
/// let cache = || TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
/// let router = OAuth2RouterLayer::new()
///     .route("https://orders.example.com", cache())?
///     .route("https://billing.example.com", cache())?
///     .other_resources(OtherResources::Fail)
///     .invalidate_on_401(true);
/// assert_eq!(router.len(), 2);
/// # Ok::<(), tower_oauth2::Error>(())
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct OAuth2RouterLayer {
    routes: Vec<Route>,
    others: OtherResources,
    invalidate_on_401: bool,
}

impl OAuth2RouterLayer {
    /// A router without routes (every request goes without a token until routes are added).
    ///
    /// ```
    /// let router = tower_oauth2::OAuth2RouterLayer::new();
    /// assert!(router.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests to `resource` (an origin or URL prefix, see [`Resource`]) get the token of
    /// `cache`. Fails on a URL that is not a valid resource.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2RouterLayer, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// assert!(OAuth2RouterLayer::new().route("https://api.example.com/v1/", cache.clone()).is_ok());
    /// assert!(OAuth2RouterLayer::new().route("api.example.com", cache).is_err());
    /// ```
    pub fn route(self, resource: &str, cache: TokenCache) -> Result<Self, Error> {
        Ok(self.route_resource(Resource::parse(resource)?, cache))
    }

    /// Requests to `resource` get the token of `cache`.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2RouterLayer, Resource, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// let router = OAuth2RouterLayer::new().route_resource(Resource::parse("https://api.example.com")?, cache);
    /// assert_eq!(router.len(), 1);
    /// # Ok::<(), tower_oauth2::Error>(())
    /// ```
    pub fn route_resource(mut self, resource: Resource, cache: TokenCache) -> Self {
        self.routes.push(Route {
            matcher: Matcher::Resource(resource),
            cache,
        });
        self
    }

    /// Requests for which `predicate` says yes get the token of `cache`: route by a header,
    /// an extension the application sets, or a host pattern. The predicate runs on every
    /// request that reaches this route, so keep it cheap, and make sure it only takes
    /// requests for servers the token is meant for.
    ///
    /// ```
    /// use tower_oauth2::{source_fn, OAuth2RouterLayer, Token, TokenCache};
    ///
    /// let cache = TokenCache::new(source_fn(|| async { Ok(Token::bearer("t")) }));
    /// // Every tenant's API under one domain, over https.
    /// let router = OAuth2RouterLayer::new().route_fn(
    ///     |request| {
    ///         let uri = request.uri();
    ///         uri.scheme_str() == Some("https") && uri.host().is_some_and(|h| h.ends_with(".api.example.com"))
    ///     },
    ///     cache,
    /// );
    /// # let _ = router;
    /// ```
    pub fn route_fn<F>(mut self, predicate: F, cache: TokenCache) -> Self
    where
        F: Fn(&RouteRequest<'_>) -> bool + Send + Sync + 'static,
    {
        self.routes.push(Route {
            matcher: Matcher::Predicate(Arc::new(predicate)),
            cache,
        });
        self
    }

    /// What happens to a request no route takes: sent without a token (the default), or
    /// failed with [`Error::NotForThisResource`]; see [`OtherResources`].
    ///
    /// ```
    /// use tower_oauth2::{OAuth2RouterLayer, OtherResources};
    ///
    /// let router = OAuth2RouterLayer::new().other_resources(OtherResources::Fail);
    /// # let _ = router;
    /// ```
    pub fn other_resources(mut self, others: OtherResources) -> Self {
        self.others = others;
        self
    }

    /// When on (default off), a `401 invalid_token` response drops the token its request
    /// carried from that route's cache, as
    /// [`OAuth2Layer::invalidate_on_401`](crate::OAuth2Layer::invalidate_on_401) does.
    ///
    /// ```
    /// let router = tower_oauth2::OAuth2RouterLayer::new().invalidate_on_401(true);
    /// # let _ = router;
    /// ```
    pub fn invalidate_on_401(mut self, on: bool) -> Self {
        self.invalidate_on_401 = on;
        self
    }

    /// The number of routes.
    ///
    /// ```
    /// assert_eq!(tower_oauth2::OAuth2RouterLayer::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there is no route.
    ///
    /// ```
    /// assert!(tower_oauth2::OAuth2RouterLayer::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl fmt::Debug for OAuth2RouterLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|route| match &route.matcher {
                Matcher::Resource(resource) => resource.to_string(),
                Matcher::Predicate(_) => "<predicate>".to_owned(),
            })
            .collect();
        f.debug_struct("OAuth2RouterLayer")
            .field("routes", &routes)
            .field("other_resources", &self.others)
            .field("invalidate_on_401", &self.invalidate_on_401)
            .finish()
    }
}

impl<S> Layer<S> for OAuth2RouterLayer {
    type Service = OAuth2Router<S>;

    fn layer(&self, inner: S) -> OAuth2Router<S> {
        OAuth2Router {
            inner,
            table: Arc::new(Table::new(&self.routes, self.others, self.invalidate_on_401)),
        }
    }
}

/// The service made by [`OAuth2RouterLayer`]. Cheap to clone if `S` is; clones share the
/// routes and their caches.
///
/// ```
/// use tower::Layer;
/// use tower_oauth2::{OAuth2Router, OAuth2RouterLayer};
///
/// let service: OAuth2Router<_> = OAuth2RouterLayer::new().layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct OAuth2Router<S> {
    inner: S,
    table: Arc<Table>,
}

impl<S> OAuth2Router<S> {
    /// The inner service.
    ///
    /// ```
    /// use tower::Layer;
    ///
    /// let inner = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) });
    /// let router = tower_oauth2::OAuth2RouterLayer::new().layer(inner);
    /// let _inner = router.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for OAuth2Router<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Router")
            .field("inner", &self.inner)
            .field("routes", &self.table.routes.len())
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OAuth2Router<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(AUTHORIZATION) {
            return ResponseFuture::called(self.inner.call(request), None);
        }
        let table = &*self.table;
        match table.route(&request) {
            Some(cache) => {
                let lookup = cache.lookup();
                authorize(&mut self.inner, cache, lookup, request, table.invalidate_on_401)
            }
            None => other_resource(&mut self.inner, table.others, request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{source_fn, Token};
    use tower::ServiceExt;

    fn cache(name: &'static str) -> TokenCache {
        TokenCache::new(source_fn(move || async move { Ok(Token::bearer(name)) }))
    }

    async fn token_for(router: &OAuth2RouterLayer, url: &str, header: bool) -> String {
        let service = router.layer(tower::service_fn(|request: Request<()>| async move {
            let auth = request
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned());
            Ok::<_, std::convert::Infallible>(Response::new(auth.unwrap_or_default()))
        }));
        let mut request = Request::get(url).body(()).unwrap();
        if header {
            request
                .headers_mut()
                .insert("x-route", http::HeaderValue::from_static("yes"));
        }
        service.oneshot(request).await.unwrap().into_body()
    }

    /// The first route that takes a request wins, whether the index or a predicate finds it,
    /// and odd spellings of an origin find the same route.
    #[tokio::test]
    async fn routes_keep_their_order_and_every_spelling_finds_its_route() {
        let router = OAuth2RouterLayer::new()
            .route("https://a.example/v1/", cache("a-v1"))
            .unwrap()
            .route_fn(
                |request| request.headers().contains_key("x-route"),
                cache("header"),
            )
            .route("https://a.example", cache("a"))
            .unwrap()
            .route("http://127.0.0.1:8080", cache("local"))
            .unwrap();
        assert_eq!(
            token_for(&router, "https://a.example/v1/x", false).await,
            "Bearer a-v1"
        );
        assert_eq!(
            token_for(&router, "https://a.example/v1/x", true).await,
            "Bearer a-v1"
        );
        assert_eq!(
            token_for(&router, "https://a.example/v2", true).await,
            "Bearer header"
        );
        assert_eq!(
            token_for(&router, "https://a.example/v2", false).await,
            "Bearer a"
        );
        assert_eq!(
            token_for(&router, "https://A.Example:443/v10", false).await,
            "Bearer a"
        );
        assert_eq!(
            token_for(&router, "https://a.example.:443/v1", false).await,
            "Bearer a-v1"
        );
        assert_eq!(
            token_for(&router, "https://a.example:443/v1", false).await,
            "Bearer a-v1"
        );
        assert_eq!(
            token_for(&router, "http://127.0.0.1:8080/", false).await,
            "Bearer local"
        );
        assert_eq!(token_for(&router, "http://127.0.0.1/", false).await, "");
        assert_eq!(token_for(&router, "http://a.example/", false).await, "");
        assert_eq!(
            token_for(&router, "https://a.example@evil.example/", false).await,
            ""
        );
        assert_eq!(token_for(&router, "/relative", true).await, "Bearer header");
    }
}
