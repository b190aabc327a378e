// The SIP side of the client: one JsSIP user agent over rtcd's WebSocket (RFC 7118),
// registered with digest authentication. It sends and receives MESSAGEs (text and RFC 3994
// is-composing), keeps one presence subscription per contact (RFC 3856, JsSIP's
// Subscriber), publishes the user's own status (RFC 3903 PUBLISH, sent with JsSIP's
// request classes since JsSIP has no publisher) and carries calls (JsSIP RTCSession).
//
// Events (CustomEvent, detail in brackets):
//   state     {state: 'connecting'|'connected'|'registered'|'disconnected'|'failed', cause}
//   message   {from, fromName, to, body, contentType, time, request}
//   composing {from, to, request, state, refresh}
//   presence  {aor, status, note, subState, notPresentity}
//   call      {session, incoming, request}
//   watchers  {list: [{uri, status, event}]} (who watches the user: RFC 3857/3858)

import JsSIP, { OutgoingRequest, RequestSender } from '../vendor/jssip.js';
import { buildPidf, parsePidf, buildIsComposing, parseIsComposing, parseWatcherinfo } from './pidf.js';
import { aorOf } from './api.js';

const PRESENCE_EXPIRES = 600;
const PUBLISH_EXPIRES = 600;
const RESUBSCRIBE_MS = [2000, 5000, 15000, 30000, 60000];
const ICE_READY_MS = 2500;

function ev(name, detail) {
    return new CustomEvent(name, { detail });
}

export class SipClient extends EventTarget {
    /* cfg: {uri, ws, authUser, password, displayName, iceServers, icePolicy ('all'|'relay')} */
    constructor(cfg) {
        super();
        this.cfg = cfg;
        this.ua = null;
        this.subs = new Map();          // aor → {sub, retries, timer, wanted}
        this.pub = { etag: null, timer: null, status: null, note: '' };
        this.tupleId = `web-${Math.random().toString(36).slice(2, 10)}`;
        this.stopping = false;
        this.noComposing = new Set(); // peers that refused is-composing (415)
    }

    /* Connects and registers; resolves once registered, rejects with a message when the
       server refuses (wrong password) or cannot be reached within 15 s. */
    start() {
        const socket = new JsSIP.WebSocketInterface(this.cfg.ws);
        this.ua = new JsSIP.UA({
            sockets: [socket],
            uri: this.cfg.uri,
            authorization_user: this.cfg.authUser,
            password: this.cfg.password,
            display_name: this.cfg.displayName || undefined,
            register: true,
            register_expires: 600,
            session_timers: false,
            user_agent: 'rtcd-web/0.1 (JsSIP)',
            connection_recovery_min_interval: 2,
            connection_recovery_max_interval: 30,
            no_answer_timeout: 60,
        });
        const ua = this.ua;
        ua.on('connecting', () => this.dispatchEvent(ev('state', { state: 'connecting' })));
        ua.on('connected', () => this.dispatchEvent(ev('state', { state: 'connected' })));
        ua.on('disconnected', () => this.dispatchEvent(ev('state', { state: 'disconnected' })));
        ua.on('registered', () => {
            this.dispatchEvent(ev('state', { state: 'registered' }));
        });
        ua.on('registrationFailed', (e) => {
            this.dispatchEvent(ev('state', { state: 'failed', cause: e.cause }));
        });
        ua.on('newMessage', (e) => this.onMessage(e));
        ua.on('newRTCSession', (e) => {
            if (e.originator === 'remote') {
                this.dispatchEvent(ev('call', { session: e.session, incoming: true, request: e.request }));
            }
        });
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                cleanup();
                reject(new Error('the SIP server did not answer'));
            }, 15000);
            const onReg = () => {
                cleanup();
                resolve();
            };
            const onFail = (e) => {
                cleanup();
                const c = e.cause || '';
                reject(new Error(c === JsSIP.C.causes.AUTHENTICATION_ERROR
                    || c === JsSIP.C.causes.REJECTED
                    ? 'the SIP server refused the password' : `SIP registration failed (${c})`));
            };
            const cleanup = () => {
                clearTimeout(timer);
                ua.removeListener('registered', onReg);
                ua.removeListener('registrationFailed', onFail);
            };
            ua.on('registered', onReg);
            ua.on('registrationFailed', onFail);
            ua.start();
        });
    }

    /* Ends everything: subscriptions, the publication (Expires: 0), calls, registration.
       Waits at most ~2 s for the answers. */
    async stop() {
        this.stopping = true;
        for (const [aor] of this.subs) this.unsubscribe(aor);
        clearTimeout(this.winfoTimer);
        if (this.winfo) {
            try {
                this.winfo.terminate();
            } catch {
                // Already gone.
            }
        }
        clearTimeout(this.pub.timer);
        if (this.ua && this.pub.etag) {
            await Promise.race([this.sendPublish(null, 0), sleep(1500)]).catch(() => {});
        }
        if (this.ua) {
            this.ua.terminateSessions();
            this.ua.stop();
            await sleep(300);
        }
        this.ua = null;
    }

    // ------------------------------------------------------------------ messages

    onMessage(e) {
        if (e.originator !== 'remote') return;
        const req = e.request;
        const ct = (req.getHeader('Content-Type') || 'text/plain').toLowerCase();
        const from = aorOf(req.from.uri.toString());
        if (ct.startsWith('application/im-iscomposing+xml')) {
            const c = parseIsComposing(req.body);
            if (c) this.dispatchEvent(ev('composing', { from, to: aorOf(req.to.uri.toString()), request: req, ...c }));
            return;
        }
        const dateHdr = req.getHeader('Date');
        const t = dateHdr ? Date.parse(dateHdr) : NaN;
        this.dispatchEvent(ev('message', {
            from,
            fromName: req.from.display_name || '',
            to: aorOf(req.to.uri.toString()),
            body: req.body || '',
            contentType: ct,
            time: Number.isFinite(t) && Math.abs(t - Date.now()) < 864e5 * 30 ? t : Date.now(),
            request: req,
        }));
    }

    /* Sends a text MESSAGE to target (sip: URI); resolves with the 2xx status (202: the
       server stored it for a recipient with no device online), rejects with the server's
       reason otherwise. */
    sendText(target, body) {
        return new Promise((resolve, reject) => {
            this.ua.sendMessage(target, body, {
                contentType: 'text/plain;charset=utf-8',
                eventHandlers: {
                    succeeded: (e) => resolve((e && e.response && e.response.status_code) || 200),
                    failed: (e) => reject(new Error(failText(e))),
                },
            });
        });
    }

    /* Sends an is-composing state (RFC 3994) to target; failures are ignored, and a peer
       that answered 415 gets no more of them (RFC 3994 §4: it does not support them). */
    sendComposing(target, state, refresh = 0) {
        if (!this.ua) return;
        const aor = aorOf(target);
        if (this.noComposing.has(aor)) return;
        try {
            this.ua.sendMessage(target, buildIsComposing(state, refresh), {
                contentType: 'application/im-iscomposing+xml',
                eventHandlers: {
                    failed: (e) => {
                        if (e && e.response && e.response.status_code === 415) this.noComposing.add(aor);
                    },
                },
            });
        } catch {
            // Best effort: a lost indicator only hides "typing...".
        }
    }

    // ------------------------------------------------------------------ presence

    /* Watches the presence of target (sip: URI); emits 'presence' on each NOTIFY.
       A terminated subscription is renewed after a back-off, unless rejected. */
    subscribe(target) {
        const aor = aorOf(target);
        let s = this.subs.get(aor);
        if (s && s.sub) return;
        if (!s) {
            s = { sub: null, retries: 0, timer: null, target };
            this.subs.set(aor, s);
        }
        const sub = this.ua.subscribe(target, 'presence', 'application/pidf+xml', {
            expires: PRESENCE_EXPIRES,
            contentType: 'application/pidf+xml',
        });
        s.sub = sub;
        // JsSIP does not hand the final response to 'terminated': keep its status to
        // tell a refusal (no retry) from a failure (retry later).
        const onResponse = sub._receiveSubscribeResponse;
        if (typeof onResponse === 'function') {
            sub._receiveSubscribeResponse = (res) => {
                s.lastStatus = res.status_code;
                onResponse.call(sub, res);
            };
        }
        sub.on('notify', (isFinal, request, body) => {
            s.retries = 0;
            const stateHdr = (request.getHeader('Subscription-State') || '').toLowerCase();
            const subState = stateHdr.split(';')[0].trim();
            let p = { status: 'offline', note: '' };
            if (body) p = parsePidf(body);
            if (subState === 'pending') p = { status: 'unknown', note: 'waiting for approval' };
            this.dispatchEvent(ev('presence', { aor, ...p, subState }));
        });
        sub.on('terminated', () => {
            if (s.sub !== sub) return;
            s.sub = null;
            if (this.stopping || !this.subs.has(aor)) return;
            const st = s.lastStatus || 0;
            s.lastStatus = 0;
            // 405/489: the address is no presentity (a group); 403/404/603: refused.
            const notPresentity = st === 405 || st === 489;
            const refused = notPresentity || st === 403 || st === 404 || st === 603;
            this.dispatchEvent(ev('presence', {
                aor, status: 'unknown', note: refused && !notPresentity ? 'not allowed' : '',
                subState: 'terminated', notPresentity,
            }));
            if (refused) return;
            const delay = RESUBSCRIBE_MS[Math.min(s.retries, RESUBSCRIBE_MS.length - 1)];
            s.retries++;
            clearTimeout(s.timer);
            s.timer = setTimeout(() => {
                if (!this.stopping && this.subs.get(aor) === s && this.ua) this.subscribe(target);
            }, delay);
        });
        sub.subscribe();
    }

    /* Watches the user's own watcher list (presence.winfo): emits 'watchers' with the full
       list on each NOTIFY, so pending requests can be decided. Renewed like subscribe(). */
    watchWatchers() {
        if (!this.ua || this.stopping) return;
        const sub = this.ua.subscribe(this.cfg.uri, 'presence.winfo', 'application/watcherinfo+xml', {
            expires: PRESENCE_EXPIRES,
            contentType: 'application/watcherinfo+xml',
        });
        // JsSIP 3.13's grammar reads the event type "presence.winfo" as "presence.,winfo"
        // and writes that into the Event header; its NOTIFY check compares the same way,
        // so only the outgoing header is put right.
        if (Array.isArray(sub._headers)) {
            sub._headers = sub._headers.map((h) => (/^Event:/i.test(h) ? 'Event: presence.winfo' : h));
        }
        this.winfo = sub;
        sub.on('notify', (isFinal, request, body) => {
            const list = parseWatcherinfo(body);
            if (list) this.dispatchEvent(ev('watchers', { list }));
        });
        sub.on('terminated', () => {
            if (this.winfo !== sub || this.stopping) return;
            this.winfo = null;
            clearTimeout(this.winfoTimer);
            this.winfoTimer = setTimeout(() => this.watchWatchers(), RESUBSCRIBE_MS[2]);
        });
        sub.subscribe();
    }

    /* Stops watching target (unSUBSCRIBE, Expires: 0). */
    unsubscribe(target) {
        const aor = aorOf(target);
        const s = this.subs.get(aor);
        if (!s) return;
        this.subs.delete(aor);
        clearTimeout(s.timer);
        if (s.sub) {
            try {
                s.sub.terminate();
            } catch {
                // Already gone.
            }
        }
    }

    /* Publishes the user's status (one of pidf.js STATUSES) with an optional note and
       keeps the publication refreshed. Resolves on 2xx. */
    async publish(status, note = '') {
        this.pub.status = status;
        this.pub.note = note;
        await this.sendPublish(this.pidf(), PUBLISH_EXPIRES);
    }

    /* This device's document for the status last set. */
    pidf() {
        let contact = '';
        try {
            contact = this.ua.contact.uri.toString();
        } catch {
            // No contact yet: the agent then keeps its own tuple for the registration.
        }
        return buildPidf(this.cfg.uri, this.pub.status, { tupleId: this.tupleId, contact, note: this.pub.note });
    }

    /* One PUBLISH (RFC 3903 §4): body null = refresh (or remove when expires is 0), with
       SIP-If-Match when an entity tag is held. A 412 (unknown tag) retries once as a new
       publication. */
    sendPublish(body, expires, retried = false) {
        if (!this.ua) return Promise.reject(new Error('not signed in'));
        const headers = ['Event: presence', `Expires: ${expires}`];
        if (this.pub.etag) headers.push(`SIP-If-Match: ${this.pub.etag}`);
        if (body) headers.push('Content-Type: application/pidf+xml');
        const req = new OutgoingRequest('PUBLISH', this.ua.normalizeTarget(this.cfg.uri), this.ua, null,
            headers, body || undefined);
        return new Promise((resolve, reject) => {
            const sender = new RequestSender(this.ua, req, {
                onRequestTimeout: () => reject(new Error('PUBLISH timed out')),
                onTransportError: () => reject(new Error('PUBLISH could not be sent')),
                onReceiveResponse: (res) => {
                    const code = res.status_code;
                    if (code < 200) return;
                    if (code < 300) {
                        this.pub.etag = expires > 0 ? res.getHeader('SIP-ETag') || this.pub.etag : null;
                        const granted = parseInt(res.getHeader('Expires') || `${expires}`, 10);
                        clearTimeout(this.pub.timer);
                        if (expires > 0) {
                            const secs = Math.max(30, (Number.isFinite(granted) ? granted : expires) - 30);
                            this.pub.timer = setTimeout(() => this.refreshPublish(), secs * 1000);
                        }
                        resolve();
                    } else if (code === 412 && !retried && this.pub.status) {
                        this.pub.etag = null;
                        const full = body || this.pidf();
                        this.sendPublish(full, expires || PUBLISH_EXPIRES, true).then(resolve, reject);
                    } else {
                        reject(new Error(`PUBLISH refused: ${code} ${res.reason_phrase || ''}`.trim()));
                    }
                },
            });
            sender.send();
        });
    }

    refreshPublish() {
        if (!this.ua || this.stopping || !this.pub.status) return;
        this.sendPublish(null, PUBLISH_EXPIRES).catch(() => {
            // Re-publish in full after a failed refresh.
            this.pub.etag = null;
            this.sendPublish(this.pidf(), PUBLISH_EXPIRES).catch(() => {});
        });
    }

    // ------------------------------------------------------------------ calls

    /* Options for JsSIP's call()/answer() with the login's STUN/TURN servers. */
    mediaOptions(video) {
        return {
            mediaConstraints: { audio: true, video: !!video },
            pcConfig: {
                iceServers: this.cfg.iceServers || [],
                iceTransportPolicy: this.cfg.icePolicy || 'all',
            },
            rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: !!video },
        };
    }

    /* Calls target; returns JsSIP's RTCSession (events: progress, accepted, confirmed,
       ended, failed). Throws when media cannot be opened. */
    call(target, video) {
        const session = this.ua.call(target, this.mediaOptions(video));
        hurryIce(session);
        this.dispatchEvent(ev('call', { session, incoming: false }));
        return session;
    }

    /* Answers an incoming session. */
    answer(session, video) {
        hurryIce(session);
        session.answer(this.mediaOptions(video));
    }
}

/* JsSIP waits for the end of ICE gathering before it sends an offer or answer; an
   unreachable STUN/TURN server can make that last many seconds. Go on ICE_READY_MS after
   the first candidate: host and relay candidates on a LAN come well within that. */
function hurryIce(session) {
    let timer = null;
    session.on('icecandidate', (e) => {
        if (!timer) timer = setTimeout(() => e.ready(), ICE_READY_MS);
    });
    const clear = () => clearTimeout(timer);
    session.on('ended', clear);
    session.on('failed', clear);
    session.on('confirmed', clear);
}

function failText(e) {
    if (e && e.response) return `${e.response.status_code} ${e.response.reason_phrase}`;
    return (e && e.cause) || 'not delivered';
}

function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}
