import { bundleInspector } from "./bundle.ts" with { type: "macro" };

/**
 * The inspector page, bundled when this module is compiled into the binary (or, from
 * source, when it is first loaded: the admin routes import it on the first request).
 */
export const INSPECTOR_ASSETS = bundleInspector();

/** Changes with the page's content: asset URLs carry it, so they may be cached for good. */
export const ASSET_TAG = Bun.hash(INSPECTOR_ASSETS.js + INSPECTOR_ASSETS.css).toString(36);

/** The page's HTML: no CDN, nothing fetched from elsewhere. */
export function inspectorHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>sluice inspector</title>
<link rel="stylesheet" href="/inspector/app.css?v=${ASSET_TAG}">
</head>
<body>
<div id="app"><noscript>The inspector needs JavaScript.</noscript></div>
<script type="module" src="/inspector/app.js?v=${ASSET_TAG}"></script>
</body>
</html>`;
}
