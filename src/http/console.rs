//! The admin console (SPEC §11.2): a small single-page app over the admin
//! API, its files embedded in the binary at build time. The server only
//! serves files; everything the console does goes through `/auth/token` and
//! `/v1/…` with a bearer token, like any other client, so it has no powers
//! of its own and no cookies to forge (docs/DECISIONS.md).

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::cached::{client_has, etag_of};

/// Scripts, styles, images and `fetch` from this origin only; nothing
/// inline, no plugins, no framing, no `<base>` tricks, forms post nowhere;
/// and no HTML sink (`innerHTML`, `document.write`, …) accepts a string at
/// all (Trusted Types with no policy), so text can only ever be text.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("api.js", JS),
    asset!("app.js", JS),
    asset!("chart.js", JS),
    asset!("dom.js", JS),
    asset!("fields.js", JS),
    asset!("key.js", JS),
    asset!("list.js", JS),
];

/// Each asset's `ETag`, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|a| etag_of(a.body)).collect())
}

fn serve(req: &HttpRequest, name: &str, cache: &str) -> HttpResponse {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = client_has(req, etag);
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache));
    if fresh {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}

/// The app's one page, for every console URL (the script routes). Never
/// stored: a page that showed a new secret must not come back from a cache.
async fn shell(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html", "no-store")
}

/// A script, style sheet or image. Revalidated on every load (`no-cache`
/// with an `ETag`): a new binary's console is picked up at once, at the
/// price of one 304 per file.
async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    serve(&req, &name, "no-cache")
}

/// `/console`, `/console/new`, `/console/keys/{id}` and `/console/assets/…`,
/// every answer with the console's security headers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add(("cross-origin-opener-policy", "same-origin")),
            )
            .route("", web::get().to(shell))
            .route("/", web::get().to(shell))
            .route("/new", web::get().to(shell))
            .route("/keys/{id}", web::get().to(shell))
            .route("/assets/{name}", web::get().to(asset)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded_and_nothing_is_remote() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            if a.name.ends_with(".js") && a.name != "app.js" {
                continue; // imported by app.js, not named in the page
            }
            assert!(
                index.contains(&format!("/console/assets/{}", a.name)),
                "{} is not used by index.html",
                a.name
            );
        }
        for a in ASSETS {
            // The SVG namespace is a name, not a request.
            let text = String::from_utf8_lossy(a.body).replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://"), "{} names a remote URL", a.name);
            assert!(!text.contains("https://"), "{} names a remote URL", a.name);
            assert!(!text.contains("innerHTML"), "{} writes HTML", a.name);
        }
        assert!(!index.contains("<script>"), "an inline script");
        assert!(!index.contains(" style="), "an inline style");
    }

    #[test]
    fn every_module_app_js_imports_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let file = line.split('"').nth(1).unwrap().trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|b| b.name == file),
                    "{} imports {file}, which is not embedded",
                    a.name
                );
            }
        }
    }
}
