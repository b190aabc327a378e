// Helpers for the browser tests (tests/web/*.mjs): Debian's Chromium driven by
// playwright-core (from build/web-npm, installed by the build), checks that print
// "ok - ..." / "FAIL - ..." and end with "N passed, N failed", screenshots per step.
//
// Environment (set by tests/web/*_test.sh):
//   WEB_NPM    folder whose node_modules holds playwright-core
//   BASE_URL   where rtcd serves the web client, e.g. http://127.0.0.1:18100
//   ARTIFACTS  folder for screenshots (build/tests/web/artifacts/)
//   CHROMIUM   the browser (default /usr/bin/chromium)
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const require = createRequire(resolve(process.env.WEB_NPM || '.', 'package.json'));
const { chromium } = require('playwright-core');

export const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:18100';
export const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';

let passed = 0;
let failed = 0;
let shotNo = 0;

export function ok(name) {
    passed++;
    console.log(`ok   - ${name}`);
}

export function notOk(name, detail) {
    failed++;
    console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`);
}

/* Runs fn (async); passes when it returns without throwing within ms. Returns whether
   it passed, so a dependent step can be skipped. */
export async function check(name, fn, ms = 15000) {
    let timer;
    try {
        await Promise.race([
            fn(),
            new Promise((_, rej) => {
                timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
            }),
        ]);
        ok(name);
        return true;
    } catch (e) {
        notOk(name, String(e && e.message ? e.message : e).split('\n')[0]);
        return false;
    } finally {
        clearTimeout(timer);
    }
}

export function assert(cond, msg) {
    if (!cond) throw new Error(msg);
}

/* Prints the summary and exits: 0 only when something ran and nothing failed. With
   COUNTS_FILE set (a shell test that adds its own checks) the counts go there instead of
   a second summary line. */
export function finish() {
    if (process.env.COUNTS_FILE) writeFileSync(process.env.COUNTS_FILE, `${passed} ${failed}\n`);
    else console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

/* Chromium headless with fake camera and microphone, no name resolution, host ICE
   candidates as IP addresses (no mDNS names) and, unless loopbackIce is false, on the
   loopback interface too (media still flows where lo is the only interface). */
export async function launch({ loopbackIce = true } = {}) {
    const args = [
        '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--disable-features=WebRtcHideLocalIpsWithMdns',
        '--autoplay-policy=no-user-gesture-required',
    ];
    if (loopbackIce) args.push('--allow-loopback-in-peer-connection');
    if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
    return chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        args,
        timeout: 30000,
    });
}

/* A new browser context (its own cookies and storage: one user) with a page on the
   client. Console errors and page errors are collected in page.errors. */
export async function newUserPage(browser, { width = 1100, height = 760 } = {}) {
    const ctx = await browser.newContext({
        viewport: { width, height },
        permissions: ['camera', 'microphone', 'notifications'],
    });
    const page = await ctx.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e)));
    page.on('console', (m) => {
        if (m.type() === 'error') page.errors.push(m.text());
    });
    page.on('dialog', (d) => d.accept());
    await page.goto(BASE_URL + '/', { waitUntil: 'load' });
    return page;
}

/* Saves a screenshot as ARTIFACTS/NN-name.png. Never throws. */
export async function shot(page, name) {
    try {
        mkdirSync(ARTIFACTS, { recursive: true });
        shotNo++;
        await page.screenshot({ path: join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`) });
    } catch (e) {
        console.log(`# screenshot ${name} failed: ${e.message}`);
    }
}

/* Fills the sign-in form and waits for the application view. */
export async function signIn(page, user, password) {
    await page.fill('#signin-user', user);
    await page.fill('#signin-password', password);
    await page.click('#signin-submit');
    await page.waitForSelector('#app-view:not([hidden])', { timeout: 15000 });
}

/* The roster entry (contact or group) for aor. */
export function entry(page, aor) {
    return page.locator(`button.entry[data-aor="${aor}"]`);
}

/* Waits until the roster shows aor with the given status text (Available, Away, ...). */
export async function waitStatus(page, aor, status, ms = 10000) {
    await entry(page, aor).locator(`.status[data-status="${status}"]`).waitFor({ timeout: ms });
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}
