// rtcd's JSON API, from the page's own origin (docs/web-client.md lists the calls).
// Every call returns parsed JSON or throws an ApiError with the HTTP status and the
// server's error text.

export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

const TIMEOUT_MS = 15000;

export class Api {
    constructor(base = '') {
        this.base = base;
        this.token = null;
        this.onUnauthorized = null;
    }

    async request(method, path, body) {
        const headers = { Accept: 'application/json' };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        if (this.token) headers.Authorization = `Bearer ${this.token}`;
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
        let res;
        try {
            res = await fetch(this.base + path, {
                method, headers, signal: ctl.signal, cache: 'no-store',
                body: body === undefined ? undefined : JSON.stringify(body),
            });
        } catch (e) {
            throw new ApiError(0, e.name === 'AbortError' ? 'the server did not answer'
                : 'the server cannot be reached');
        } finally {
            clearTimeout(timer);
        }
        const text = await res.text();
        let data = null;
        if (text) {
            try {
                data = JSON.parse(text);
            } catch {
                data = null;
            }
        }
        if (!res.ok) {
            const msg = (data && (data.error || data.message)) || `${res.status} ${res.statusText}`;
            if (res.status === 401 && this.token && this.onUnauthorized) this.onUnauthorized();
            throw new ApiError(res.status, typeof msg === 'string' ? msg : JSON.stringify(msg));
        }
        return data;
    }

    /* POST /api/v1/login → the normalised session (see normaliseLogin). */
    async login(user, password) {
        const data = await this.request('POST', '/api/v1/login', { user, password });
        const s = normaliseLogin(data, user);
        this.token = s.token;
        return s;
    }

    async logout() {
        try {
            await this.request('POST', '/api/v1/logout', {});
        } catch {
            // The token expires on its own; signing out locally is what matters.
        }
        this.token = null;
    }

    /* GET /api/v1/contacts → [{uri, name, label, group}] */
    async contacts() {
        const data = await this.request('GET', '/api/v1/contacts');
        const list = Array.isArray(data) ? data : (data && data.contacts) || [];
        return list.map(normaliseContact).filter(Boolean);
    }

    /* PUT /api/v1/contacts with the whole list. */
    async setContacts(list) {
        await this.request('PUT', '/api/v1/contacts', {
            contacts: list.map((c) => ({ uri: c.uri, display: c.name || '', label: c.label || '' })),
        });
    }

    /* GET /api/v1/presence-rules → [{watcher, action}] */
    async presenceRules() {
        const data = await this.request('GET', '/api/v1/presence-rules');
        return ((data && data.rules) || []).filter((r) => r && r.watcher && r.action);
    }

    /* PUT /api/v1/presence-rules with the whole set. */
    async setPresenceRules(rules) {
        await this.request('PUT', '/api/v1/presence-rules', {
            rules: rules.map((r) => ({ watcher: r.watcher, action: r.action })),
        });
    }

    /* GET /api/v1/history?with=ADDRESS → [{from, to, body, time (ms)}], oldest first. */
    async history(withAddress, limit = 100) {
        const q = `with=${encodeURIComponent(withAddress)}&limit=${limit}`;
        const data = await this.request('GET', `/api/v1/history?${q}`);
        const list = Array.isArray(data) ? data : (data && data.messages) || [];
        return list.map(normaliseHistory).filter(Boolean).sort((a, b) => a.time - b.time);
    }
}

/* Turns "bob", "bob@example.com", "sip:bob@example.com" or "<sip:bob@example.com>" into
   "sip:bob@example.com" (domain defaulted); null when it cannot be an address. */
export function toSipUri(text, domain) {
    let s = String(text || '').trim();
    const m = /<([^>]*)>/.exec(s);
    if (m) s = m[1];
    s = s.replace(/^sips?:/i, '');
    s = s.split(/[;?]/)[0];
    if (!s) return null;
    if (!s.includes('@')) {
        if (!domain) return null;
        s = `${s}@${domain}`;
    }
    const at = s.lastIndexOf('@');
    const user = s.slice(0, at);
    const host = s.slice(at + 1).toLowerCase();
    if (!user || !host || /[\s<>"]/.test(user) || !/^[a-z0-9.\-[\]:]+$/.test(host)) return null;
    return `sip:${user}@${host}`;
}

/* Whether party (a user name, user@domain or sip: URI, as the archive keeps them) is the
   address aor (user@domain). */
export function sameParty(party, aor) {
    const p = aorOf(party);
    return p.includes('@') ? p.toLowerCase() === aor.toLowerCase() : p === aor.split('@')[0];
}

/* "sip:bob@example.com" → "bob@example.com" (the key used for conversations). */
export function aorOf(uri) {
    return String(uri || '').replace(/^sips?:/i, '').split(/[;?>]/)[0];
}

function normaliseLogin(d, user) {
    if (!d || typeof d !== 'object') throw new ApiError(500, 'the login answer is not JSON');
    const sip = d.sip || {};
    const token = d.token || d.access_token;
    const ws = sip.ws || sip.ws_uri || sip.websocket || d.ws_uri || d.sip_ws || d.ws;
    let uri = sip.uri || sip.aor || d.sip_uri || d.uri || d.aor;
    const domain = d.domain || sip.domain || (uri && aorOf(uri).split('@')[1]);
    if (!uri && domain) uri = `sip:${user}@${domain}`;
    if (!token || !ws || !uri) throw new ApiError(500, 'the login answer lacks token, WebSocket URI or SIP URI');
    const ice = [];
    const addIce = (s) => {
        if (!s) return;
        const urls = s.urls || s.uris || s.url;
        if (!urls) return;
        const e = { urls: Array.isArray(urls) ? urls : [urls] };
        if (s.username) e.username = s.username;
        if (s.credential || s.password) e.credential = s.credential || s.password;
        ice.push(e);
    };
    for (const s of d.ice_servers || d.iceServers || []) addIce(s);
    for (const s of [].concat(d.turn || [], d.stun || [])) addIce(s);
    return {
        token,
        user: d.user || user,
        uri: uri.startsWith('sip') ? uri : `sip:${uri}`,
        domain,
        displayName: d.display || d.display_name || d.displayName || '',
        ws: ws.replace(/^http/, 'ws'),
        authUser: sip.auth_user || sip.username || d.user || user,
        sipPassword: sip.password || null,
        iceServers: ice,
        system: d.system || d.broadcast_from || null,
        groups: (d.groups || []).map(normaliseContact).filter(Boolean),
        expires: d.expires || 0,
    };
}

function normaliseContact(c) {
    if (typeof c === 'string') return { uri: c, name: '', group: false };
    if (!c || typeof c !== 'object') return null;
    const uri = c.uri || c.address || c.aor || c.user;
    if (!uri) return null;
    return {
        uri,
        name: c.name || c.display || c.display_name || '',
        label: c.label || '',
        group: !!(c.group || c.kind === 'group' || c.type === 'group'),
    };
}

function normaliseHistory(m) {
    if (!m || typeof m !== 'object') return null;
    let time = m.time ?? m.ts ?? m.timestamp ?? m.at;
    if (typeof time === 'string') time = Date.parse(time);
    else if (typeof time === 'number' && time < 1e12) time *= 1000;
    return {
        from: m.from || m.sender || '',
        to: [].concat(m.to || m.recipients || m.recipient || []).join(','),
        body: m.body ?? m.text ?? '',
        contentType: m.content_type || m.type || 'text/plain',
        time: Number.isFinite(time) ? time : 0,
        id: m.id ?? null,
    };
}
