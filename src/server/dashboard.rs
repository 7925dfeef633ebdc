//! The dashboard `sluice start` serves at `/`: the files of `web/dist` (built by
//! `npm run build` in `web/`, and committed, so building the server needs no npm), embedded
//! in the binary. `GET /` is the page; `/assets/…` its script and stylesheet. The page talks
//! to the same server over the HTTP API and the WebSocket protocol.

use axum::extract::Path as UrlPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The embedded files: URL path under `/assets/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../web/dist/assets/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../web/dist/assets/style.css")),
];

const INDEX: &[u8] = include_bytes!("../../web/dist/index.html");

/// The dashboard's routes, to merge into the server's router.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/assets/{file}", get(asset))
}

/// The files change with the binary, not with time: a browser asks again each load.
fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => file(content_type, body),
        None => (StatusCode::NOT_FOUND, format!("no asset {name}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, INDEX};

    /// Every file the page asks for under `/assets/` is embedded, and nothing else is.
    #[test]
    fn the_page_names_exactly_the_embedded_assets() {
        let page = std::str::from_utf8(INDEX).expect("index.html is UTF-8");
        let asked: Vec<&str> =
            page.split("\"/assets/").skip(1).map(|rest| &rest[..rest.find('"').expect("a quoted path")]).collect();
        let mut embedded: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
        let mut asked_sorted = asked.clone();
        asked_sorted.sort();
        embedded.sort();
        assert_eq!(asked_sorted, embedded);
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name} is empty");
        }
    }
}
