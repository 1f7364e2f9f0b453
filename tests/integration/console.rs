//! The admin console's files as the server serves them: the page on every
//! console URL, the embedded assets with ETags, and the security headers on
//! every answer. What the console does in a browser is tested in a real one
//! (tests/console).

use crate::common::{Backend, Resp, TestApp};

/// The headers every console answer carries, a 404 included.
fn assert_locked_down(r: &Resp, path: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"));
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ] {
        assert!(csp.contains(directive), "{path}: {directive} not in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{path}: {csp}");
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(r.header("set-cookie").is_none(), "{path} sets a cookie");
}

#[actix_web::test]
async fn every_console_url_serves_the_page_locked_down() {
    let app = TestApp::start(Backend::Sqlite).await;
    let id = "6f1c1f5e-8a7b-4c55-9d0e-1b2a3c4d5e6f";
    for path in [
        "/console".to_owned(),
        "/console/".to_owned(),
        "/console/new".to_owned(),
        format!("/console/keys/{id}"),
    ] {
        let r = app.get(&path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_locked_down(&r, &path);
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let html = r.text();
        assert!(html.contains(r#"<script type="module" src="/console/assets/app.js">"#));
        assert!(!html.contains("<script>"), "no inline script");
    }
    let missing = app.get("/console/assets/nope.js", None).await;
    assert_eq!(missing.status, 404);
    assert_locked_down(&missing, "/console/assets/nope.js");
    // Names are looked up in the embedded list, never on disk.
    let traversal = app.get("/console/assets/..%2Fsrc%2Flib.rs", None).await;
    assert_eq!(traversal.status, 404);
    assert_locked_down(&traversal, "traversal");
}

#[actix_web::test]
async fn assets_are_embedded_typed_and_revalidated_by_etag() {
    let app = TestApp::start(Backend::Sqlite).await;
    for (name, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let path = format!("/console/assets/{name}");
        let r = app.get(&path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type").as_deref(), Some(content_type));
        assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
        assert_locked_down(&r, &path);
        assert!(!r.body.is_empty());
        let etag = r.header("etag").unwrap();
        let again = app
            .send("GET", &path, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.clone()));
        let stale = app
            .send("GET", &path, &[("if-none-match", "\"other\"")], None)
            .await;
        assert_eq!(stale.status, 200);
    }
}

#[actix_web::test]
async fn the_console_is_read_only_to_the_server_and_other_paths_keep_their_headers() {
    let app = TestApp::start(Backend::Sqlite).await;
    // Only GET: the console changes nothing by itself; writes go through
    // the admin API with a bearer token.
    let post = app.send("POST", "/console", &[], Some(b"x".to_vec())).await;
    assert!(
        [404, 405].contains(&post.status),
        "POST /console: {}",
        post.status
    );
    // The console's CSP is its own; the API's answers are unchanged.
    let api = app.get("/.well-known/jwks.json", None).await;
    assert!(api.header("content-security-policy").is_none());
}
