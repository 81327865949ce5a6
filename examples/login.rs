//! A CLI that logs its user in through the browser, as a native app does (RFC 8252), then
//! calls an API with the user's token: `cargo run --example login --features loopback`.
//!
//! The authorization server is the embedded demo server (no configuration, no network). The
//! client finds its endpoints by discovery, [`LoopbackLogin`] listens on `127.0.0.1` on a port
//! the system picks, and the login's authorization URL is opened by the demo server itself,
//! playing the user's browser: it approves the request at once, as a user who clicks "allow",
//! and follows the redirect back to the listener. With `--browser` the system browser opens it
//! instead (and the URL is printed, as a real CLI does): the demo server approves at once there
//! too, and the page the browser shows says that the login finished.
//!
//! The login's token (with its refresh token) then goes to the API through [`OAuth2Layer`],
//! which refreshes it when it expires.

#[path = "../tests/support/auth_server.rs"]
mod auth_server;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_oauth2::{ClientAuth, LoopbackLogin, OAuth2Client};

/// The demo's public client (a CLI has no secret to keep).
const CLIENT_ID: &str = "login-demo";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let system_browser = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--browser") => true,
        Some(_) => {
            println!("usage: login [--browser]   (default: the demo server plays the browser)");
            return Ok(());
        }
    };

    // The demo authorization server, with the API it protects.
    let server = auth_server::AuthServer::start().await;
    server.add_client(CLIENT_ID, None, auth_server::ClientAuthMethod::None);
    println!("authorization server  {}", server.issuer());

    // The client: endpoints from discovery (RFC 8414).
    let client = OAuth2Client::discover(&server.issuer(), ClientAuth::none(CLIENT_ID)).await?;

    // The login: a listener on 127.0.0.1, the browser, one callback, the code exchange.
    let mut login = LoopbackLogin::bind().await?.timeout(Duration::from_secs(120));
    println!("redirect URI          {}", login.redirect_uri());
    if !system_browser {
        let browser = server.clone();
        login = login.open_with(move |url| {
            println!("the demo server plays the browser at {}", server_part(url));
            let url = url.to_string();
            tokio::spawn(async move {
                match browser.browse(&url).await {
                    Ok((status, page)) => println!("the browser shows: {status}, {}", title(&page)),
                    Err(err) => eprintln!("the browser failed: {err}"),
                }
            });
        });
    }
    let login = login
        .run(&client, |request| request.scope("demo offline_access"))
        .await?;
    let token = login.token();
    println!(
        "logged in: scope {:?}, token for {:?}, refresh token: {}",
        token.scope().unwrap_or(""),
        token.lifetime().unwrap_or_default(),
        if token.refresh_token().is_some() {
            "yes"
        } else {
            "no"
        }
    );

    // The API, with the user's token on every request (refreshed when it expires).
    let api = ServiceBuilder::new()
        .layer(login.into_layer())
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let response = api
        .oneshot(http::Request::get(server.resource_url()).body(Empty::new())?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("GET /resource: {status} {}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Err(format!("the API answered {status}").into());
    }
    Ok(())
}

/// The URL without its query (which holds the state and the PKCE challenge).
fn server_part(url: &url::Url) -> &str {
    &url.as_str()[..url.as_str().find('?').unwrap_or(url.as_str().len())]
}

/// The `<title>` of an HTML page.
fn title(page: &str) -> &str {
    page.split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map_or("(no title)", |(title, _)| title)
}
