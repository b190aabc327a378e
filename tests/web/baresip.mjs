// The browser half of baresip_test.sh: alice in Chromium, bob is baresip (controlled
// through the bsctl FIFO and event log of tests/sip/baresip.sh in BS_DIR).
import { readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import * as t from './lib.mjs';

const DOMAIN = process.env.DOMAIN || 'localhost';
const BS = process.env.BS_DIR;
const B = `bob@${DOMAIN}`;
let eventMark = 0;

function bsCommand(command, params = '') {
    const fd = openSync(join(BS, 'cmd'), 'w');
    writeSync(fd, JSON.stringify({ command, params, token: `web-${Date.now()}` }) + '\n');
    closeSync(fd);
}

function bsEvents() {
    return readFileSync(join(BS, 'events'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/* Waits for a baresip event of type after the last mark. */
async function bsWait(type, ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        const ev = bsEvents().slice(eventMark);
        if (ev.some((e) => e.type === type)) return;
        await t.sleep(100);
    }
    throw new Error(`baresip reported no ${type}`);
}

function bsMark() {
    eventMark = bsEvents().length;
}

/* Waits until baresip's SIP trace shows a MESSAGE with text (it has no event for it). */
async function bsWaitMessage(text, ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        const out = readFileSync(join(BS, 'out'), 'utf8');
        const i = out.lastIndexOf('MESSAGE sip:');
        if (i >= 0 && out.indexOf(text, i) > 0) return;
        await t.sleep(100);
    }
    throw new Error(`baresip did not receive "${text}"`);
}

async function audioIn(page) {
    return page.evaluate(async () => {
        const stats = await window.rtcd.callStats();
        if (!stats) return null;
        let n = 0;
        for (const s of stats) if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.bytesReceived || 0;
        return n;
    });
}

// baresip 1.0's ICE answers on the first candidate pair it checks; with Chromium's loopback
// candidates as well it ends up on another pair than Chromium (DTLS never meets).
const browser = await t.launch({ loopbackIce: false });
const alice = await t.newUserPage(browser);

async function main() {
    if (!await t.check('alice signs in in the browser', () => t.signIn(alice, 'alice', 'secret'), 20000)) return;
    await t.check('alice opens a chat with bob and writes: baresip receives it', async () => {
        await alice.fill('#add-contact-input', 'bob');
        await alice.press('#add-contact-input', 'Enter');
        await alice.locator('#chat-title').filter({ hasText: 'bob' }).waitFor({ timeout: 5000 });
        await alice.fill('#compose-input', 'hello from the browser');
        await alice.press('#compose-input', 'Enter');
        await bsWaitMessage('hello from the browser');
    });
    await t.check('bob (baresip) writes: the browser shows it', async () => {
        bsCommand('message', 'hello from baresip');
        await alice.locator('#messages li.in .text').filter({ hasText: 'hello from baresip' }).waitFor({ timeout: 10000 });
    });
    await t.check('browser → baresip call: bob is offered it and accepts', async () => {
        bsMark();
        await alice.click('#call-audio');
        await bsWait('CALL_INCOMING');
        bsCommand('accept');
        await bsWait('CALL_ESTABLISHED');
        await alice.locator('#call-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 10000 });
    }, 25000);
    await t.check('browser → baresip call: audio reaches the browser (bytesReceived > 0)', async () => {
        let n = 0;
        for (let i = 0; i < 40 && !(n > 0); i++) {
            n = await audioIn(alice);
            await t.sleep(250);
        }
        t.assert(n > 0, `bytesReceived ${n}`);
    }, 15000);
    await t.shot(alice, 'browser-calls-baresip');
    await t.check('the browser hangs up: baresip sees the call closed', async () => {
        bsMark();
        await alice.click('#call-hangup');
        await bsWait('CALL_CLOSED');
        await alice.locator('#call-view').waitFor({ state: 'hidden', timeout: 5000 });
    });
    await t.check('baresip → browser call: the browser answers, audio flows, baresip hangs up', async () => {
        bsMark();
        bsCommand('dial', `sip:alice@${DOMAIN}`);
        await alice.locator('#call-view:not([hidden]) #call-answer:not([hidden])').waitFor({ timeout: 10000 });
        await alice.click('#call-answer');
        await bsWait('CALL_ESTABLISHED');
        let n = 0;
        for (let i = 0; i < 40 && !(n > 0); i++) {
            n = await audioIn(alice);
            await t.sleep(250);
        }
        t.assert(n > 0, `bytesReceived ${n}`);
        bsCommand('hangup');
        await alice.locator('#call-view').waitFor({ state: 'hidden', timeout: 10000 });
    }, 30000);
}

try {
    await main();
} catch (e) {
    t.notOk('the test script', e.stack || String(e));
} finally {
    await browser.close().catch(() => {});
}
t.finish();
