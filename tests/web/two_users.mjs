// Two users in two browser contexts against build/rtcd (started by browser_test.sh):
// sign in, see each other online, chat both ways with typing indicator and unread counts,
// a status change seen by the other, contacts added and removed, history after a reload,
// a video call whose both sides receive media (getStats inbound-rtp bytesReceived > 0),
// hang up; a phone-sized screen and keyboard-only use; a wrong password refused.
import { execFileSync } from 'node:child_process';
import * as t from './lib.mjs';

const PW = process.env.USER_PASSWORD || 'secret';
const DOMAIN = process.env.DOMAIN || 'localhost';
const A = `alice@${DOMAIN}`;
const B = `bob@${DOMAIN}`;
const C = `carol@${DOMAIN}`;
const TEAM = `team@${DOMAIN}`;

/* rtcctl on the running server's data folder (as an administrator would). */
function rtcctl(...args) {
    return execFileSync(process.env.RTCCTL, ['--set', `server.data_dir=${process.env.DATA_DIR}`, ...args],
        { encoding: 'utf8', timeout: 10000 });
}

const browser = await t.launch();
const alice = await t.newUserPage(browser);
const bob = await t.newUserPage(browser);
let carol = null;

async function lastMessage(page) {
    return page.locator('#messages li:not(.sys)').last().locator('.text').textContent();
}

async function callBytes(page) {
    return page.evaluate(async () => {
        const stats = await window.rtcd.callStats();
        if (!stats) return null;
        const r = { audio: 0, video: 0, pair: '' };
        const cands = new Map(stats.filter((s) => s.type.endsWith('candidate')).map((s) => [s.id, s]));
        for (const s of stats) {
            if (s.type === 'inbound-rtp') r[s.kind] += s.bytesReceived || 0;
            if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
                const l = cands.get(s.localCandidateId);
                const rm = cands.get(s.remoteCandidateId);
                r.pair = `${l && l.candidateType} ${l && l.address} → ${rm && rm.candidateType} ${rm && rm.address}`;
            }
        }
        return r;
    });
}

async function main() {
    // --- sign-in
    await t.check('a wrong password is refused with a message', async () => {
        await alice.fill('#signin-user', 'alice');
        await alice.fill('#signin-password', 'wrong-password');
        await alice.click('#signin-submit');
        await alice.locator('#signin-error').filter({ hasText: /wrong|refused/i }).waitFor({ timeout: 10000 });
        t.assert(await alice.isHidden('#app-view'), 'the application opened');
    });
    const signedIn = await t.check('alice and bob sign in (login API, SIP over WebSocket, REGISTER)', async () => {
        await Promise.all([t.signIn(alice, 'alice', PW), t.signIn(bob, 'bob', PW)]);
    }, 20000);
    await t.shot(alice, 'alice-signed-in');
    if (!signedIn) return;

    // --- contacts and presence: bob's list was made with rtcctl; alice adds bob here.
    await t.check('bob\'s contact list (made with rtcctl) shows alice', async () => {
        await t.entry(bob, A).waitFor({ timeout: 5000 });
    });
    await t.check('alice adds bob with the form (PUT /api/v1/contacts)', async () => {
        await alice.fill('#add-contact-input', 'bob');
        await alice.press('#add-contact-input', 'Enter');
        await t.entry(alice, B).waitFor({ timeout: 5000 });
        t.assert(await alice.locator('#add-contact-error').textContent() === '', 'an error was shown');
    });
    await t.check('alice sees bob online', () => t.waitStatus(alice, B, 'available', 15000), 16000);
    await t.check('bob sees alice online', () => t.waitStatus(bob, A, 'available', 15000), 16000);
    await t.shot(alice, 'alice-sees-bob-online');

    // --- chat both ways, typing, unread
    await t.entry(alice, B).click();
    await t.entry(bob, A).click();
    await t.check('bob sees "alice is typing…" while alice types', async () => {
        await alice.type('#compose-input', 'Hello Bob', { delay: 20 });
        await bob.locator('#typing').filter({ hasText: /alice is typing/ }).waitFor({ timeout: 5000 });
    });
    await t.check('alice → bob: the message arrives in bob\'s open chat, typing cleared', async () => {
        await alice.press('#compose-input', 'Enter');
        await bob.locator('#messages li.in .text').filter({ hasText: 'Hello Bob' }).waitFor({ timeout: 5000 });
        await alice.locator('#messages li.out:not(.pending)').last().waitFor({ timeout: 5000 });
        t.assert(await alice.locator('#messages li.failed').count() === 0, 'marked as not delivered');
        const txt = await bob.locator('#typing').textContent();
        t.assert(!/typing/.test(txt), `still "${txt}"`);
    });
    await t.check('bob → alice: the reply arrives in alice\'s open chat', async () => {
        await bob.fill('#compose-input', 'Hi Alice, ça va? <b>not bold</b>');
        await bob.click('#compose-send');
        await alice.locator('#messages li.in .text').filter({ hasText: 'Hi Alice, ça va? <b>not bold</b>' })
            .waitFor({ timeout: 5000 });
        t.assert(await alice.locator('#messages li.in b').count() === 0, 'markup was interpreted');
    });
    // Bob leaves the chat: the next message counts as unread.
    await bob.evaluate(() => document.querySelector('#chat-back').click());
    await t.check('alice writes again: bob sees 1 unread on alice', async () => {
        await alice.fill('#compose-input', 'Are you there?');
        await alice.press('#compose-input', 'Enter');
        await t.entry(bob, A).locator('.badge.unread').filter({ hasText: '1' }).waitFor({ timeout: 5000 });
    });
    await t.check('bob opens the chat: the text is there, unread cleared', async () => {
        await t.entry(bob, A).click();
        await bob.locator('#messages li.in .text').filter({ hasText: 'Are you there?' }).waitFor({ timeout: 5000 });
        t.assert(await t.entry(bob, A).locator('.badge.unread').count() === 0, 'badge still shown');
    });
    await t.shot(bob, 'bob-chat');

    // --- a group chat (group "team" made with rtcctl: alice, bob, carol)
    await t.check('alice adds the group address: it shows under Groups', async () => {
        await alice.fill('#add-contact-input', 'team');
        await alice.press('#add-contact-input', 'Enter');
        await alice.locator(`#group-list button.entry[data-aor="${TEAM}"]`).waitFor({ timeout: 10000 });
        await alice.locator('#chat-title').filter({ hasText: 'team' }).waitFor({ timeout: 5000 });
        await alice.locator('#call-video').waitFor({ state: 'hidden', timeout: 5000 });
    });
    await t.check('alice writes to the group: bob gets a "team" conversation with her message', async () => {
        await alice.fill('#compose-input', 'Hello team');
        await alice.press('#compose-input', 'Enter');
        const e = bob.locator(`#group-list button.entry[data-aor="${TEAM}"]`);
        await e.locator('.badge.unread').filter({ hasText: '1' }).waitFor({ timeout: 5000 });
        await e.click();
        const li = bob.locator('#messages li.in').filter({ hasText: 'Hello team' });
        await li.waitFor({ timeout: 5000 });
        t.assert((await li.locator('.sender').textContent()) === 'alice', 'author not shown as alice');
    });
    await t.check('bob answers in the group: alice sees it with bob as author', async () => {
        await bob.fill('#compose-input', 'Hi all');
        await bob.press('#compose-input', 'Enter');
        const li = alice.locator('#messages li.in').filter({ hasText: 'Hi all' });
        await li.waitFor({ timeout: 5000 });
        t.assert((await li.locator('.sender').textContent()) === 'bob', 'author not shown as bob');
    });
    await t.shot(bob, 'bob-group-chat');

    // --- a broadcast from the administrator
    await t.check('rtcctl broadcast: both see it as a notification', async () => {
        rtcctl('broadcast', 'Fire drill at 15:00');
        for (const p of [alice, bob]) {
            await p.locator('.toast').filter({ hasText: 'Fire drill at 15:00' }).waitFor({ timeout: 5000 });
            await p.locator('#notif-count').filter({ hasText: '1' }).waitFor({ timeout: 2000 });
        }
        await bob.click('#notif-toggle');
        await bob.locator('#notif-list li').filter({ hasText: 'Fire drill at 15:00' }).waitFor({ timeout: 2000 });
        t.assert(await bob.isHidden('#notif-count'), 'badge still shown once the list is open');
    });
    await t.shot(bob, 'bob-broadcast');
    await bob.click('#notif-toggle');
    await t.entry(alice, B).click();
    await t.entry(bob, A).click();

    // --- status changes
    await t.check('bob sets "away": alice sees Away', async () => {
        await bob.selectOption('#my-status', 'away');
        await t.waitStatus(alice, B, 'away', 10000);
    });
    await t.check('bob sets "busy": alice sees Busy in the chat header', async () => {
        await bob.selectOption('#my-status', 'busy');
        await t.waitStatus(alice, B, 'busy', 10000);
        await alice.locator('#chat-presence').filter({ hasText: 'Busy' }).waitFor({ timeout: 3000 });
    });
    await t.check('bob appears offline, then available again', async () => {
        await bob.selectOption('#my-status', 'offline');
        await t.waitStatus(alice, B, 'offline', 10000);
        await bob.selectOption('#my-status', 'available');
        await t.waitStatus(alice, B, 'available', 10000);
    });
    await t.shot(alice, 'alice-sees-bob-status');

    // --- video call
    let callUp = false;
    await t.check('alice video-calls bob: bob is offered the call', async () => {
        await alice.click('#call-video');
        await bob.locator('#call-view:not([hidden]) #call-answer:not([hidden])').waitFor({ timeout: 10000 });
        await t.shot(bob, 'bob-incoming-call');
    });
    await t.check('bob answers: both sides connected', async () => {
        await bob.click('#call-answer');
        await alice.locator('#call-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 15000 });
        await bob.locator('#call-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 5000 });
        callUp = true;
    }, 20000);
    if (callUp) {
        await t.check('media flows both ways (inbound-rtp bytesReceived > 0, audio and video)', async () => {
            let a;
            let b;
            for (let i = 0; i < 40; i++) {
                [a, b] = await Promise.all([callBytes(alice), callBytes(bob)]);
                if (a && b && a.video > 0 && b.video > 0 && a.audio > 0 && b.audio > 0) break;
                await t.sleep(250);
            }
            console.log(`# alice received ${JSON.stringify(a)}; bob received ${JSON.stringify(b)}`);
            t.assert(a && a.video > 0 && a.audio > 0, `alice received ${JSON.stringify(a)}`);
            t.assert(b && b.video > 0 && b.audio > 0, `bob received ${JSON.stringify(b)}`);
        }, 15000);
        await t.check('the remote video plays at bob', async () => {
            await bob.waitForFunction(() => {
                const v = document.getElementById('remote-video');
                return v.srcObject && v.videoWidth > 0;
            }, null, { timeout: 5000 });
        });
        await t.shot(alice, 'alice-in-video-call');
        await t.shot(bob, 'bob-in-video-call');
        await t.check('alice hangs up: the call ends at both sides', async () => {
            await alice.click('#call-hangup');
            await alice.locator('#call-view').waitFor({ state: 'hidden', timeout: 5000 });
            await bob.locator('#call-view').waitFor({ state: 'hidden', timeout: 5000 });
            t.assert(await callBytes(bob) === null, 'bob still has a peer connection');
        });
    }

    // --- history after reload; both reload with ?ice=relay for the next call
    await t.check('after a reload alice signs in again and sees the history with bob', async () => {
        await alice.goto(`${t.BASE_URL}/?ice=relay`);
        await t.signIn(alice, 'alice', PW);
        await t.entry(alice, B).click();
        await alice.locator('#messages li.out .text').filter({ hasText: 'Hello Bob' }).waitFor({ timeout: 5000 });
        await alice.locator('#messages li.in .text').filter({ hasText: 'ça va?' }).waitFor({ timeout: 5000 });
    });
    await t.shot(alice, 'alice-history-after-reload');

    // --- a call relayed by rtcd's TURN server (credentials from the login answer)
    await t.check('a call with ICE restricted to relays: media through rtcd\'s TURN both ways', async () => {
        await bob.goto(`${t.BASE_URL}/?ice=relay`);
        await t.signIn(bob, 'bob', PW);
        await t.waitStatus(alice, B, 'available', 10000);
        await alice.click('#call-audio');
        await bob.locator('#call-view:not([hidden]) #call-answer:not([hidden])').waitFor({ timeout: 10000 });
        await bob.click('#call-answer');
        await alice.locator('#call-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 15000 });
        let a;
        let b;
        for (let i = 0; i < 40; i++) {
            [a, b] = await Promise.all([callBytes(alice), callBytes(bob)]);
            if (a && b && a.audio > 0 && b.audio > 0 && a.pair && b.pair) break;
            await t.sleep(250);
        }
        console.log(`# relayed: alice ${JSON.stringify(a)}; bob ${JSON.stringify(b)}`);
        t.assert(a && a.audio > 0 && /^relay /.test(a.pair), `alice ${JSON.stringify(a)}`);
        t.assert(b && b.audio > 0 && /^relay /.test(b.pair), `bob ${JSON.stringify(b)}`);
        await bob.click('#call-hangup');
        await alice.locator('#call-view').waitFor({ state: 'hidden', timeout: 5000 });
    }, 40000);

    // --- a message to a user with no device online: stored (202), delivered at sign-in
    await t.check('alice writes to carol, who is not signed in: shown as stored for later', async () => {
        await alice.fill('#add-contact-input', 'carol');
        await alice.press('#add-contact-input', 'Enter');
        await alice.locator('#chat-title').filter({ hasText: 'carol' }).waitFor({ timeout: 5000 });
        await alice.fill('#compose-input', 'See you tomorrow');
        await alice.press('#compose-input', 'Enter');
        await alice.locator('#messages li.out .meta').filter({ hasText: 'when they are online' })
            .waitFor({ timeout: 5000 });
        await t.entry(alice, B).click();
    });

    // --- a phone-sized screen, keyboard only
    carol = await t.newUserPage(browser, { width: 390, height: 844 });
    await t.check('carol signs in with the keyboard only on a phone-sized screen', async () => {
        await carol.focus('#signin-user');
        await carol.keyboard.type('carol');
        await carol.keyboard.press('Tab');
        await carol.keyboard.type(PW);
        await carol.keyboard.press('Enter');
        await carol.waitForSelector('#app-view:not([hidden])', { timeout: 15000 });
        t.assert(await carol.isVisible('#sidebar'), 'contact list hidden');
        t.assert(!(await carol.isVisible('#chat')), 'chat pane shown beside the list');
    }, 20000);
    await t.check('carol gets the message stored while she was offline (1 unread)', async () => {
        await t.entry(carol, A).locator('.badge.unread').filter({ hasText: '1' }).waitFor({ timeout: 10000 });
    });
    await t.check('carol adds alice with the keyboard; the chat replaces the list; Back returns', async () => {
        await carol.focus('#add-contact-input');
        await carol.keyboard.type('alice');
        await carol.keyboard.press('Enter');
        await carol.locator('#chat-title').filter({ hasText: 'alice' }).waitFor({ timeout: 5000 });
        await carol.locator('#messages li.in .text').filter({ hasText: 'See you tomorrow' }).waitFor({ timeout: 5000 });
        t.assert(!(await carol.isVisible('#sidebar')), 'list still shown beside the chat');
        await carol.keyboard.type('from my phone');
        await carol.keyboard.press('Enter');
        await t.shot(carol, 'carol-phone-chat');
        await carol.click('#chat-back');
        t.assert(await carol.isVisible('#sidebar'), 'back did not return to the list');
    });
    await t.check('alice sees carol\'s message as a new conversation with 1 unread', async () => {
        await t.entry(alice, C).locator('.badge.unread').filter({ hasText: '1' }).waitFor({ timeout: 5000 });
    });
    await t.check('carol adds bob: bob is asked (watcher info) and allows; carol sees him online', async () => {
        await carol.fill('#add-contact-input', 'bob');
        await carol.press('#add-contact-input', 'Enter');
        await carol.locator('#chat-title').filter({ hasText: 'bob' }).waitFor({ timeout: 5000 });
        await carol.click('#chat-back');
        await carol.locator(`button.entry[data-aor="${B}"] .status`).filter({ hasText: 'Unknown' })
            .waitFor({ timeout: 5000 });
        const allow = bob.locator(`#request-list button[data-aor="${C}"][data-action="allow"]`);
        await allow.waitFor({ timeout: 10000 });
        await t.shot(bob, 'bob-presence-request');
        await allow.click();
        await t.waitStatus(carol, B, 'available', 10000);
        t.assert(await bob.isHidden('#requests'), 'the request is still shown');
    }, 30000);
    await t.check('carol removes alice (PUT /api/v1/contacts); gone after a reload', async () => {
        await t.entry(carol, A).click();
        await carol.click('#remove-contact');
        await carol.locator('#sidebar').waitFor({ timeout: 5000 });
        await carol.reload();
        await t.signIn(carol, 'carol', PW);
        await t.sleep(500);
        t.assert(await t.entry(carol, A).count() === 0, 'alice still listed');
    }, 20000);
    await t.shot(carol, 'carol-phone-list');

    await t.check('no script errors in the pages', async () => {
        const errs = [alice, bob, carol].flatMap((p) => p.errors)
            .filter((e) => !/favicon|ERR_CONNECTION|WebSocket connection|status of 401/.test(e));
        t.assert(errs.length === 0, errs.slice(0, 3).join(' | '));
    });
}

try {
    await main();
} catch (e) {
    t.notOk('the test script', e.stack || String(e));
} finally {
    await browser.close().catch(() => {});
}
t.finish();
