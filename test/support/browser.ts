/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core,
 * which never downloads a browser of its own. CHROMIUM_PATH names another binary.
 */
import fs from "node:fs";
import { chromium, type Browser } from "playwright-core";

const EXECUTABLE = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
	if (!fs.existsSync(EXECUTABLE))
		throw new Error(
			`${EXECUTABLE} not found: install Debian's chromium (apt-get install -y chromium; ` +
				`.ci/run does) or set CHROMIUM_PATH`
		);
	return chromium.launch({
		executablePath: EXECUTABLE,
		headless: true,
		chromiumSandbox: false,
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			"--no-first-run"
		]
	});
}
