// rtcd web client: sign-in, contacts with live presence, own status, chats with history,
// typing indicators and unread counts, group chats, broadcast notifications and calls.
// The page talks to rtcd only: the JSON API (api.js) and SIP over WebSocket (sip.js).

import { Api, ApiError, toSipUri, aorOf, sameParty } from './api.js';
import { SipClient } from './sip.js';
import { CallView } from './calls.js';
import { $, h, STATUS_TEXT, formatTime, toast } from './dom.js';

const COMPOSING_REFRESH_S = 60;   // active state lasts this long at the receiver (RFC 3994)
const COMPOSING_IDLE_MS = 10000;  // no keystroke for this long → idle
const MAX_MESSAGE_CHARS = 10000;
const MAX_NOTIFICATIONS = 100;

const api = new Api('');
const state = {
    session: null,       // the login answer (api.js normaliseLogin)
    sip: null,
    calls: null,
    contacts: [],        // saved list: {uri, aor, name, group}
    presence: new Map(), // aor → {status, note}
    convs: new Map(),    // aor → conversation
    current: null,       // aor of the open chat
    myStatus: 'available',
    notifications: [],
    unseenNotifications: 0,
    requests: [],        // watchers waiting for a decision: [{uri, aor}]
    signingOut: false,
};

// ---------------------------------------------------------------- sign-in

async function signIn(e) {
    e.preventDefault();
    const user = $('signin-user').value.trim();
    const password = $('signin-password').value;
    const err = $('signin-error');
    err.textContent = '';
    if (!user || !password) {
        err.textContent = 'Enter your user name and password.';
        (user ? $('signin-password') : $('signin-user')).focus();
        return;
    }
    const btn = $('signin-submit');
    btn.disabled = true;
    btn.textContent = 'Signing in…';
    try {
        const session = await api.login(user, password);
        state.session = session;
        const sip = new SipClient({
            uri: session.uri,
            ws: session.ws,
            authUser: session.authUser,
            password: session.sipPassword || password,
            displayName: session.displayName,
            iceServers: session.iceServers,
            // ?ice=relay sends all media through the TURN relay: a diagnostic for TURN.
            icePolicy: new URLSearchParams(location.search).get('ice') === 'relay' ? 'relay' : 'all',
        });
        wireSip(sip);
        state.sip = sip;
        await sip.start();
        try {
            localStorage.setItem('rtcd.user', user);
        } catch {
            // Private mode: nothing remembered.
        }
        $('signin-password').value = '';
        await enterApp();
    } catch (ex) {
        if (state.sip) await state.sip.stop().catch(() => {});
        state.sip = null;
        state.session = null;
        api.token = null;
        err.textContent = signInError(ex);
        $('signin-password').focus();
    } finally {
        btn.disabled = false;
        btn.textContent = 'Sign in';
    }
    if ('Notification' in window && Notification.permission === 'default') {
        Notification.requestPermission().catch(() => {});
    }
}

function signInError(ex) {
    if (ex instanceof ApiError) {
        if (ex.status === 401 || ex.status === 403) return 'Wrong user name or password.';
        if (ex.status === 429) return 'Too many attempts: wait a minute and try again.';
        return `Sign-in failed: ${ex.message}.`;
    }
    return `Sign-in failed: ${ex.message}.`;
}

async function enterApp() {
    const s = state.session;
    $('me-name').textContent = s.displayName || aorOf(s.uri);
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    state.calls = new CallView(state.sip, nameOf, (aor, text) => addSystemLine(aor, text));
    await setMyStatus(state.myStatus);
    await loadContacts();
    state.sip.watchWatchers();
    for (const g of s.groups || []) ensureGroup(g.uri, g.name);
    renderRoster();
    const first = document.querySelector('#contact-list button.entry, #group-list button.entry');
    (first || $('add-contact-input')).focus();
}

async function signOut() {
    state.signingOut = true;
    if (state.calls) state.calls.hangup();
    if (state.sip) await state.sip.stop().catch(() => {});
    await api.logout();
    location.reload();
}

// ---------------------------------------------------------------- SIP events

function wireSip(sip) {
    let wasRegistered = false;
    let lostAt = 0;
    sip.addEventListener('state', (e) => {
        const st = e.detail.state;
        const el = $('conn-state');
        if (st === 'registered') {
            el.textContent = '';
            if (wasRegistered && lostAt) {
                // The WebSocket came back: a new flow, so renew what the old one carried.
                lostAt = 0;
                resubscribeAll();
                setMyStatus(state.myStatus).catch(() => {});
            }
            wasRegistered = true;
        } else if (st === 'disconnected' && wasRegistered && !state.signingOut) {
            lostAt = Date.now();
            el.textContent = 'Connection lost, reconnecting…';
        } else if (st === 'failed' && wasRegistered) {
            el.textContent = 'Registration failed';
        }
    });
    sip.addEventListener('message', (e) => onMessage(e.detail));
    sip.addEventListener('composing', (e) => onComposing(e.detail));
    sip.addEventListener('presence', (e) => {
        const { aor, status, note, notPresentity } = e.detail;
        if (notPresentity) {
            // A group address answers SUBSCRIBE 405: show it as a group from now on.
            const c = state.contacts.find((x) => x.aor === aor);
            if (c) c.group = true;
            ensureGroup(`sip:${aor}`, '');
            state.presence.delete(aor);
            renderRoster();
            if (state.current === aor) renderChatHeader();
            return;
        }
        state.presence.set(aor, { status, note });
        renderRoster();
        if (state.current === aor) renderChatHeader();
    });
    sip.addEventListener('watchers', (e) => {
        const me = myAor();
        state.requests = e.detail.list
            .filter((w) => w.status === 'pending' || w.status === 'waiting')
            .map((w) => ({ uri: w.uri, aor: aorOf(toSipUri(w.uri, state.session.domain) || w.uri) }))
            .filter((w, i, all) => w.aor !== me && all.findIndex((x) => x.aor === w.aor) === i);
        renderRequests();
    });
    sip.addEventListener('call', (e) => {
        const { session, incoming, request } = e.detail;
        if (!incoming) return;
        const aor = aorOf(session.remote_identity.uri.toString());
        conv(aor, session.remote_identity.display_name);
        state.calls.incoming(session, aor, request);
        renderRoster();
    });
}

// ---------------------------------------------------------------- contacts

async function loadContacts() {
    let list = [];
    try {
        list = await api.contacts();
    } catch (ex) {
        toast('Contacts could not be loaded', ex.message);
    }
    state.contacts = [];
    for (const c of list) {
        const uri = toSipUri(c.uri, state.session.domain);
        if (uri) addContactLocal(uri, c.name, c.group, c.label);
    }
}

function addContactLocal(uri, name, group, label = '') {
    const aor = aorOf(uri);
    if (state.contacts.some((c) => c.aor === aor)) return false;
    const isGroup = group || isGroupAddress(aor);
    state.contacts.push({ uri: `sip:${aor}`, aor, name: name || '', group: isGroup, label });
    const c = conv(aor, name);
    c.group = isGroup;
    c.saved = true;
    if (!isGroup && state.sip) state.sip.subscribe(`sip:${aor}`);
    return true;
}

function isGroupAddress(aor) {
    const s = state.session;
    return !!(s && (s.groups || []).some((g) => aorOf(g.uri) === aor));
}

function ensureGroup(uri, name) {
    const aor = aorOf(uri);
    const c = conv(aor, name);
    c.group = true;
    c.member = true;
}

async function addContact(e) {
    e.preventDefault();
    const input = $('add-contact-input');
    const err = $('add-contact-error');
    err.textContent = '';
    const uri = toSipUri(input.value, state.session.domain);
    if (!uri) {
        err.textContent = 'That is not a user name or a user@domain address.';
        input.focus();
        return;
    }
    const aor = aorOf(uri);
    if (aor === aorOf(state.session.uri)) {
        err.textContent = 'That is you.';
        return;
    }
    if (state.contacts.some((c) => c.aor === aor)) {
        err.textContent = 'Already in your contacts.';
        return;
    }
    const before = state.contacts.slice();
    addContactLocal(uri, '', false);
    try {
        await api.setContacts(state.contacts);
    } catch (ex) {
        state.contacts = before;
        state.sip.unsubscribe(uri);
        const c = state.convs.get(aor);
        if (c) c.saved = false;
        err.textContent = `Not saved: ${ex.message}`;
        renderRoster();
        return;
    }
    input.value = '';
    renderRoster();
    openChat(aor);
}

async function removeContact(aor) {
    const c = state.contacts.find((x) => x.aor === aor);
    if (!c) return;
    if (!window.confirm(`Remove ${nameOf(aor)} from your contacts?`)) return;
    const before = state.contacts.slice();
    state.contacts = state.contacts.filter((x) => x.aor !== aor);
    try {
        await api.setContacts(state.contacts);
    } catch (ex) {
        state.contacts = before;
        toast('Not removed', ex.message);
        return;
    }
    state.sip.unsubscribe(`sip:${aor}`);
    state.presence.delete(aor);
    const cv = state.convs.get(aor);
    if (cv) cv.saved = false;
    if (cv && !cv.messages.length) state.convs.delete(aor);
    if (state.current === aor) closeChat();
    renderRoster();
}

function resubscribeAll() {
    for (const c of state.contacts) {
        if (c.group) continue;
        state.sip.unsubscribe(c.uri);
        state.sip.subscribe(c.uri);
    }
}

// ---------------------------------------------------------------- who may see my status

/* Allows or declines (polite-block: the watcher sees "offline") a pending watcher by
   adding a presence rule; the agent applies it to the live subscription. */
async function decideWatcher(aor, action) {
    const dom = state.session.domain;
    const watcher = aor.endsWith(`@${dom}`) ? aor.split('@')[0] : aor;
    try {
        const rules = (await api.presenceRules()).filter((r) => !sameParty(r.watcher, aor));
        rules.push({ watcher, action });
        await api.setPresenceRules(rules);
    } catch (ex) {
        toast('Not saved', ex.message);
        return;
    }
    state.requests = state.requests.filter((r) => r.aor !== aor);
    renderRequests();
    toast(action === 'allow' ? `${nameOf(aor)} can now see your status`
        : `${nameOf(aor)} will see you as offline`);
}

function renderRequests() {
    const items = state.requests.map((r) => h('li', {},
        h('span', {}, h('strong', {}, nameOf(r.aor)), ' wants to see your status'),
        h('div', { class: 'row' },
            h('button', { type: 'button', class: 'primary', 'data-aor': r.aor, 'data-action': 'allow',
                'aria-label': `Allow ${nameOf(r.aor)} to see your status`,
                onclick: () => decideWatcher(r.aor, 'allow') }, 'Allow'),
            h('button', { type: 'button', 'data-aor': r.aor, 'data-action': 'decline',
                'aria-label': `Decline ${nameOf(r.aor)}`,
                onclick: () => decideWatcher(r.aor, 'polite-block') }, 'Decline'))));
    $('request-list').replaceChildren(...items);
    $('requests').hidden = items.length === 0;
}

// ---------------------------------------------------------------- own status

async function setMyStatus(status) {
    state.myStatus = status;
    $('my-status').value = status;
    $('me-dot').dataset.status = status;
    try {
        await state.sip.publish(status);
    } catch (ex) {
        toast('Status not published', ex.message);
    }
}

// ---------------------------------------------------------------- conversations

function conv(aor, name) {
    let c = state.convs.get(aor);
    if (!c) {
        c = {
            aor, name: name || '', group: false, saved: false, member: false,
            messages: [], unread: 0, loaded: false, loading: null,
            typingFrom: new Map(),        // aor → timer (several in a group)
            composing: { active: false, lastSent: 0, idleTimer: null },
        };
        state.convs.set(aor, c);
    } else if (name && !c.name) {
        c.name = name;
    }
    return c;
}

/* "Alice (team)" → "team": rtcd names a group copy's author beside the group. */
function groupName(display) {
    const m = /\(([^()]+)\)\s*$/.exec(display || '');
    return m ? m[1] : '';
}

function nameOf(aor) {
    const ct = state.contacts.find((x) => x.aor === aor);
    const c = state.convs.get(aor);
    return (ct && ct.name) || (c && c.name) || aor.split('@')[0];
}

function myAor() {
    return aorOf(state.session.uri);
}

/* Broadcasts come from the server's system address: the login answer's, else rtcd's
   default "system@DOMAIN". */
function isBroadcast(d) {
    const s = state.session;
    const system = s.system ? aorOf(toSipUri(s.system, s.domain) || s.system) : `system@${s.domain}`;
    return d.from === system;
}

/* Which conversation an incoming MESSAGE belongs to and who wrote it. rtcd sends a group
   message From the group address (so a reply goes to the group) with the author in
   P-Asserted-Identity; a message whose asserted author differs from its From is
   therefore a group's. */
function routeIncoming(d) {
    const req = d.request;
    const dom = state.session.domain;
    const pai = req && req.getHeader('P-Asserted-Identity');
    const author = pai ? aorOf(toSipUri(pai, dom) || '') : '';
    if (author && author !== d.from) {
        ensureGroup(`sip:${d.from}`, '');
        return { aor: d.from, author, group: true };
    }
    const fromConv = state.convs.get(d.from);
    if (fromConv && fromConv.group) return { aor: d.from, author: author || d.from, group: true };
    return { aor: d.from, author: d.from, group: false };
}

function onMessage(d) {
    if (!d.contentType.startsWith('text/')) return;
    if (isBroadcast(d)) {
        addNotification(d.fromName || nameOf(d.from), d.body, d.time);
        return;
    }
    const r = routeIncoming(d);
    const c = conv(r.aor, r.group ? groupName(d.fromName) : d.fromName);
    if (r.group) c.group = true;
    stopTyping(c, r.author);
    const msg = { dir: 'in', from: r.author, body: d.body, time: d.time };
    c.messages.push(msg);
    const visible = state.current === r.aor && !document.hidden && isChatVisible();
    if (!visible) {
        c.unread++;
        if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
            new Notification(nameOf(r.author), { body: d.body.slice(0, 200) });
        }
    }
    renderRoster();
    if (state.current === r.aor) appendMessage(c, msg);
    updateTitle();
}

function onComposing(d) {
    // A group's is-composing arrives like its messages; route it the same way.
    const r = routeIncoming(d);
    const c = state.convs.get(r.aor) || conv(r.aor, '');
    const who = r.author || d.from;
    if (d.state !== 'active') {
        stopTyping(c, who);
        return;
    }
    clearTimeout(c.typingFrom.get(who));
    const ms = (d.refresh || 120) * 1000;
    c.typingFrom.set(who, setTimeout(() => stopTyping(c, who), ms));
    if (state.current === c.aor) renderTyping(c);
}

function stopTyping(c, from) {
    if (!c.typingFrom.has(from)) return;
    clearTimeout(c.typingFrom.get(from));
    c.typingFrom.delete(from);
    if (state.current === c.aor) renderTyping(c);
}

async function loadHistory(c) {
    if (c.loaded || c.loading) return c.loading;
    c.loading = (async () => {
        let hist = [];
        try {
            // Local users by name (as the archive keeps them), others by address.
            const local = c.aor.endsWith(`@${state.session.domain}`);
            hist = await api.history(local ? c.aor.split('@')[0] : c.aor);
        } catch (ex) {
            if (!(ex instanceof ApiError && ex.status === 404)) toast('History could not be loaded', ex.message);
        }
        const me = myAor();
        const dom = state.session.domain;
        const old = hist
            .filter((m) => m.contentType.startsWith('text/'))
            .map((m) => ({
                dir: sameParty(m.from, me) ? 'out' : 'in',
                from: aorOf(toSipUri(m.from, dom) || m.from),
                body: m.body,
                time: m.time,
                history: true,
            }));
        // Messages that arrived while the history was on its way may already be in it.
        const live = c.messages.filter((m) => !old.some((o) => o.dir === m.dir && o.body === m.body
            && Math.abs(o.time - m.time) < 120000));
        c.messages = old.concat(live);
        c.loaded = true;
        c.loading = null;
    })();
    return c.loading;
}

function openChat(aor) {
    const prev = state.current ? state.convs.get(state.current) : null;
    if (prev && prev.aor !== aor) composingStop(prev);
    const c = conv(aor);
    state.current = aor;
    c.unread = 0;
    document.body.classList.add('chat-open');
    $('chat-placeholder').hidden = true;
    $('chat-body').hidden = false;
    $('compose-input').value = c.draft || '';
    renderChatHeader();
    renderMessages(c);
    renderTyping(c);
    renderRoster();
    updateTitle();
    $('compose-input').focus();
    loadHistory(c).then(() => {
        if (state.current === aor) renderMessages(c);
    });
}

function closeChat() {
    const c = state.current ? state.convs.get(state.current) : null;
    if (c) composingStop(c);
    state.current = null;
    document.body.classList.remove('chat-open');
    $('chat-placeholder').hidden = false;
    $('chat-body').hidden = true;
    renderRoster();
    const entry = c && document.querySelector(`button.entry[data-aor="${CSS.escape(c.aor)}"]`);
    if (entry) entry.focus();
}

function isChatVisible() {
    return getComputedStyle($('chat')).display !== 'none';
}

async function sendCurrent(e) {
    if (e) e.preventDefault();
    const c = state.current && state.convs.get(state.current);
    const input = $('compose-input');
    const text = input.value.replace(/\s+$/, '');
    if (!c || !text.trim()) return;
    if (text.length > MAX_MESSAGE_CHARS) {
        toast('Message too long', `At most ${MAX_MESSAGE_CHARS} characters.`);
        return;
    }
    input.value = '';
    c.draft = '';
    clearTimeout(c.composing.idleTimer);
    c.composing.active = false;     // a message ends the composing state (RFC 3994 §4)
    const msg = { dir: 'out', from: myAor(), body: text, time: Date.now(), pending: true };
    c.messages.push(msg);
    const li = appendMessage(c, msg);
    try {
        const status = await state.sip.sendText(`sip:${c.aor}`, text);
        msg.pending = false;
        // 202 from a person's address: stored until a device of theirs is online.
        msg.queued = status === 202 && !c.group;
    } catch (ex) {
        msg.pending = false;
        msg.failed = ex.message;
    }
    if (li) updateMessageItem(li, c, msg);
}

function onComposeInput() {
    const c = state.current && state.convs.get(state.current);
    if (!c) return;
    const input = $('compose-input');
    c.draft = input.value;
    if (!input.value.trim()) {
        composingStop(c);
        return;
    }
    const now = Date.now();
    const cs = c.composing;
    if (!cs.active || now - cs.lastSent > (COMPOSING_REFRESH_S - 10) * 1000) {
        cs.active = true;
        cs.lastSent = now;
        state.sip.sendComposing(`sip:${c.aor}`, 'active', COMPOSING_REFRESH_S);
    }
    clearTimeout(cs.idleTimer);
    cs.idleTimer = setTimeout(() => composingStop(c), COMPOSING_IDLE_MS);
}

function composingStop(c) {
    const cs = c.composing;
    clearTimeout(cs.idleTimer);
    if (!cs.active) return;
    cs.active = false;
    state.sip.sendComposing(`sip:${c.aor}`, 'idle');
}

function addSystemLine(aor, text) {
    if (!aor) return;
    const c = conv(aor);
    const msg = { dir: 'sys', from: '', body: text, time: Date.now() };
    c.messages.push(msg);
    if (state.current === aor) appendMessage(c, msg);
}

// ---------------------------------------------------------------- notifications

function addNotification(from, body, time) {
    state.notifications.unshift({ from, body, time });
    state.notifications.length = Math.min(state.notifications.length, MAX_NOTIFICATIONS);
    if ($('notif-panel').hidden) state.unseenNotifications++;
    renderNotifications();
    toast(`Broadcast from ${from}`, body, 10000);
    if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
        new Notification(`Broadcast from ${from}`, { body: body.slice(0, 200) });
    }
}

function toggleNotifications() {
    const panel = $('notif-panel');
    panel.hidden = !panel.hidden;
    $('notif-toggle').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) state.unseenNotifications = 0;
    renderNotifications();
}

// ---------------------------------------------------------------- rendering

function presenceOf(aor) {
    return state.presence.get(aor) || { status: 'unknown', note: '' };
}

function rosterEntry(c, isGroup) {
    const p = isGroup ? { status: 'group', note: '' } : presenceOf(c.aor);
    const statusText = isGroup ? 'Group' : (STATUS_TEXT[p.status] || p.status) + (p.note ? ` — ${p.note}` : '');
    const cv = state.convs.get(c.aor);
    const unread = cv ? cv.unread : 0;
    const label = `${nameOf(c.aor)}, ${statusText}${unread ? `, ${unread} unread` : ''}`;
    return h('li', {},
        h('button', {
            type: 'button', class: 'entry', 'data-aor': c.aor, 'aria-label': label,
            'aria-current': state.current === c.aor ? 'true' : null,
            onclick: () => openChat(c.aor),
        },
        h('span', { class: 'dot', 'data-status': p.status, 'aria-hidden': 'true' }),
        h('span', { class: 'who' },
            h('span', { class: 'name' }, nameOf(c.aor)),
            h('span', { class: 'status', 'data-status': p.status }, statusText)),
        unread ? h('span', { class: 'badge unread', 'aria-hidden': 'true' }, String(unread)) : null));
}

function renderRoster() {
    if (!state.session) return;
    const people = [];
    const groups = [];
    for (const c of state.contacts) (c.group ? groups : people).push(c);
    // Conversations with people or groups not in the saved list (a stranger wrote).
    for (const c of state.convs.values()) {
        if (state.contacts.some((x) => x.aor === c.aor)) continue;
        if (!c.group && !c.messages.length && state.current !== c.aor) continue;
        (c.group ? groups : people).push({ aor: c.aor, name: c.name, group: c.group });
    }
    $('contact-list').replaceChildren(...people.map((c) => rosterEntry(c, false)));
    $('group-list').replaceChildren(...groups.map((c) => rosterEntry(c, true)));
    $('contacts-empty').hidden = people.length > 0;
    $('groups-empty').hidden = groups.length > 0;
}

function renderChatHeader() {
    const c = state.convs.get(state.current);
    if (!c) return;
    $('chat-title').textContent = nameOf(c.aor);
    const p = c.group ? { status: 'group', note: '' } : presenceOf(c.aor);
    $('chat-dot').dataset.status = p.status;
    const saved = state.contacts.some((x) => x.aor === c.aor);
    $('chat-presence').textContent = c.group ? `Group · ${c.aor}`
        : `${STATUS_TEXT[p.status] || p.status}${p.note ? ` — ${p.note}` : ''} · ${c.aor}`;
    $('call-audio').hidden = c.group;
    $('call-video').hidden = c.group;
    $('remove-contact').hidden = !saved;
    $('call-audio').setAttribute('aria-label', `Call ${nameOf(c.aor)}`);
    $('call-video').setAttribute('aria-label', `Video call ${nameOf(c.aor)}`);
    $('remove-contact').setAttribute('aria-label', `Remove ${nameOf(c.aor)} from contacts`);
}

function messageItem(c, m) {
    const li = h('li', { class: m.dir, 'data-dir': m.dir });
    updateMessageItem(li, c, m);
    return li;
}

function updateMessageItem(li, c, m) {
    const parts = [];
    if (c.group && m.dir === 'in') parts.push(h('span', { class: 'sender' }, nameOf(m.from)));
    parts.push(h('span', { class: 'text' }, m.body));
    let meta = formatTime(m.time);
    if (m.pending) meta += ' · sending…';
    if (m.queued) meta += ' · will be delivered when they are online';
    if (m.failed) meta += ` · not delivered (${m.failed})`;
    parts.push(h('span', { class: 'meta' }, meta));
    li.replaceChildren(...parts);
    li.classList.toggle('failed', !!m.failed);
    li.classList.toggle('pending', !!m.pending);
}

function renderMessages(c) {
    const list = $('messages');
    list.replaceChildren(...c.messages.map((m) => messageItem(c, m)));
    list.scrollTop = list.scrollHeight;
}

function appendMessage(c, m) {
    if (state.current !== c.aor) return null;
    const list = $('messages');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const li = messageItem(c, m);
    list.append(li);
    if (atBottom || m.dir === 'out') list.scrollTop = list.scrollHeight;
    return li;
}

function renderTyping(c) {
    const who = Array.from(c.typingFrom.keys()).map(nameOf);
    $('typing').textContent = who.length === 0 ? ''
        : who.length === 1 ? `${who[0]} is typing…` : `${who.join(', ')} are typing…`;
}

function renderNotifications() {
    const items = state.notifications.map((n) => h('li', {},
        h('strong', {}, n.from), ` · ${formatTime(n.time)}`, h('br'), n.body));
    $('notif-list').replaceChildren(...items);
    $('notif-empty').hidden = items.length > 0;
    const badge = $('notif-count');
    badge.hidden = state.unseenNotifications === 0;
    badge.textContent = String(state.unseenNotifications);
    $('notif-toggle').setAttribute('aria-label',
        `Notifications${state.unseenNotifications ? `, ${state.unseenNotifications} new` : ''}`);
}

function updateTitle() {
    let n = 0;
    for (const c of state.convs.values()) n += c.unread;
    document.title = n ? `(${n}) rtcd` : 'rtcd';
}

// ---------------------------------------------------------------- start

function init() {
    $('signin-form').addEventListener('submit', signIn);
    try {
        const u = localStorage.getItem('rtcd.user');
        if (u) $('signin-user').value = u;
    } catch {
        // No storage.
    }
    ($('signin-user').value ? $('signin-password') : $('signin-user')).focus();
    $('signout').addEventListener('click', signOut);
    $('my-status').addEventListener('change', (e) => setMyStatus(e.target.value));
    $('add-contact-form').addEventListener('submit', addContact);
    $('compose').addEventListener('submit', sendCurrent);
    $('compose-input').addEventListener('input', onComposeInput);
    $('compose-input').addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) sendCurrent(e);
    });
    $('chat-back').addEventListener('click', closeChat);
    $('chat').addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && document.body.classList.contains('chat-open')) closeChat();
    });
    $('call-audio').addEventListener('click', () => state.calls.start(`sip:${state.current}`, state.current, false));
    $('call-video').addEventListener('click', () => state.calls.start(`sip:${state.current}`, state.current, true));
    $('remove-contact').addEventListener('click', () => removeContact(state.current));
    $('notif-toggle').addEventListener('click', toggleNotifications);
    document.addEventListener('visibilitychange', () => {
        if (document.hidden || !state.current) return;
        const c = state.convs.get(state.current);
        if (c && c.unread && isChatVisible()) {
            c.unread = 0;
            renderRoster();
            updateTitle();
        }
    });
    window.addEventListener('pagehide', () => {
        if (state.sip && state.sip.ua) state.sip.ua.stop();
    });
    api.onUnauthorized = () => toast('Your session has expired', 'Sign in again to go on.');
}

// For the browser tests and for debugging from the console.
window.rtcd = {
    state,
    callStats: () => (state.calls ? state.calls.stats() : null),
};

init();
