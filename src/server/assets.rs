//! The dashboard's static files, embedded in the binary so that
//! `cargo run --release` serves them with no extra step and no request ever
//! leaves the host.

/// One embedded file: URL path, content type, bytes.
pub(crate) struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every file served as-is. Add a line here for each new file under `web/`
/// (or a browser-facing file from `clients/js/`).
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/index.html"),
    },
    Asset {
        path: "/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/dashboard.js"),
    },
    Asset {
        path: "/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/dashboard.css"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../web/favicon.svg"),
    },
    // The JS client library the dashboard imports (also usable by any page).
    Asset {
        path: "/tickwire.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../clients/js/tickwire.js"),
    },
];

/// The embedded file served at `path`, if any.
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
