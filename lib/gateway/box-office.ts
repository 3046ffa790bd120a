/**
 * The box-office page's static files (public/box-office/), served by moleculer-web's `assets`
 * under /box-office/. Only they get a Content-Security-Policy that lets a page run: scripts,
 * styles, images and requests from this origin only, never inline, never framed. They may be
 * cached as assets are; every other answer of the gateway stays `no-store`.
 */
import fs from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";

const PAGE_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"connect-src 'self'",
	"img-src 'self'",
	"base-uri 'none'",
	"form-action 'self'",
	"frame-ancestors 'none'"
].join("; ");

/** Seconds a browser may reuse the script and style sheet before asking again (ETag then). */
const ASSET_MAX_AGE_S = 300;

/**
 * The folder that holds box-office/: public/ of the project, found from here both when run from
 * the sources (lib/) and from the build (dist/lib/).
 */
export function publicFolder(from = __dirname): string {
	for (let dir = from; ; dir = path.dirname(dir)) {
		const candidate = path.join(dir, "public");
		if (fs.existsSync(path.join(candidate, "box-office", "index.html"))) return candidate;
		if (path.dirname(dir) === dir)
			throw new Error(`public/box-office/index.html not found above ${from}`);
	}
}

/**
 * serve-static options: the page's CSP; HTML revalidated every time, the rest for a while. Never a
 * redirect: serve-static's would echo the path (`/\evil.example/..` to an off-site Location); the
 * front door sends `/box-office` on to `/box-office/` itself.
 */
export const assetOptions = {
	index: ["index.html"],
	dotfiles: "ignore",
	fallthrough: true,
	redirect: false,
	etag: true,
	lastModified: true,
	setHeaders(res: ServerResponse, file: string) {
		res.setHeader("Content-Security-Policy", PAGE_CSP);
		res.setHeader(
			"Cache-Control",
			file.endsWith(".html") ? "no-cache" : `public, max-age=${ASSET_MAX_AGE_S}`
		);
	}
};
