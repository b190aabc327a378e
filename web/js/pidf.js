// Presence documents (RFC 3863 PIDF with RFC 4480 RPID activities) and is-composing
// documents (RFC 3994), built as text and read with the browser's DOMParser.
//
// The client's four statuses map onto PIDF like this:
//   available → basic "open", no activity
//   away      → basic "open", <rpid:away/>, tuple note "Away"
//   busy      → basic "open", <rpid:busy/>, tuple note "Busy"
//   offline   → basic "closed"
// The tuple names the device's registered contact, so a presence agent that adds an open
// tuple per registered device (rtcd does) knows this device has spoken for itself. The
// status is also the tuple's note because agents that keep only the tuples of a document
// (rtcd, many SIMPLE servers) drop the RPID person element.
// Reading is lenient: several tuples (one per device, or an aggregate) count as open when
// any of them is open; on-the-phone, meeting and similar activities read as busy; without
// activities an open tuple's note "Away" / "Busy" (and a few synonyms) gives the status.

export const STATUSES = ['available', 'away', 'busy', 'offline'];

const BUSY_ACTIVITIES = new Set(['busy', 'on-the-phone', 'meeting', 'performance',
    'presentation', 'playing', 'worship', 'in-transit']);
const AWAY_ACTIVITIES = new Set(['away', 'appointment', 'breakfast', 'dinner', 'lunch',
    'meal', 'holiday', 'vacation', 'sleeping', 'travel', 'steering', 'shopping']);

/* Escapes text for an XML element or attribute. */
export function xmlEscape(s) {
    return String(s).replace(/[<>&"']/g, (c) => ({
        '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;',
    })[c]);
}

const STATUS_NOTE = { away: 'Away', busy: 'Busy' };

/* A PIDF document for entity (a sip: URI) in one of STATUSES: tupleId names this
   device's tuple (keep it across publications), contact is its registered contact URI
   (may be empty), note an optional free text. */
export function buildPidf(entity, status, { tupleId = 'web', contact = '', note = '' } = {}) {
    const open = status !== 'offline';
    const activity = STATUS_NOTE[status]
        ? `<rpid:activities><rpid:${status}/></rpid:activities>` : '';
    const tupleNote = note || STATUS_NOTE[status] || '';
    return '<?xml version="1.0" encoding="UTF-8"?>\n'
        + '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        + ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        + ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
        + ` entity="${xmlEscape(entity)}">`
        + `<tuple id="${xmlEscape(tupleId)}"><status><basic>${open ? 'open' : 'closed'}</basic></status>`
        + (contact ? `<contact>${xmlEscape(contact)}</contact>` : '')
        + (tupleNote ? `<note>${xmlEscape(tupleNote)}</note>` : '')
        + `<timestamp>${new Date().toISOString()}</timestamp></tuple>`
        + `<dm:person id="p-${xmlEscape(tupleId)}">${activity}`
        + (note ? `<dm:note>${xmlEscape(note)}</dm:note>` : '')
        + '</dm:person></presence>';
}

const NOTE_BUSY = /^(busy|do not disturb|dnd|on the phone|in a meeting|in a call)\b/i;
const NOTE_AWAY = /^(away|be right back|brb|out to lunch|idle|extended away|not available)\b/i;

function byLocalName(root, name) {
    return Array.from(root.getElementsByTagNameNS('*', name));
}

/* Reads a PIDF document: {status, note}; status is one of STATUSES, or 'unknown' when the
   text is not a presence document. Never throws. */
export function parsePidf(text) {
    let doc;
    try {
        doc = new DOMParser().parseFromString(text || '', 'application/xml');
    } catch {
        return { status: 'unknown', note: '' };
    }
    const root = doc.documentElement;
    if (!root || root.localName !== 'presence' || doc.getElementsByTagName('parsererror').length) {
        return { status: 'unknown', note: '' };
    }
    const tuples = byLocalName(root, 'tuple');
    const isOpen = (t) => byLocalName(t, 'basic').some((b) => b.textContent.trim().toLowerCase() === 'open');
    const openTuples = tuples.filter(isOpen);
    let status = openTuples.length ? 'available' : 'offline';
    let activities = false;
    if (openTuples.length) {
        for (const acts of byLocalName(root, 'activities')) {
            for (const a of Array.from(acts.children)) {
                activities = true;
                if (BUSY_ACTIVITIES.has(a.localName)) status = 'busy';
                else if (status !== 'busy' && AWAY_ACTIVITIES.has(a.localName)) status = 'away';
            }
        }
    }
    const tupleNotes = openTuples.map((t) => {
        const n = Array.from(t.children).find((c) => c.localName === 'note');
        return n ? n.textContent.trim() : '';
    });
    if (openTuples.length && !activities) {
        if (tupleNotes.some((n) => NOTE_BUSY.test(n))) status = 'busy';
        else if (tupleNotes.some((n) => NOTE_AWAY.test(n))) status = 'away';
    }
    // The note shown beside the status: a free text, not the status word itself.
    const notes = byLocalName(root, 'note').map((n) => n.textContent.trim())
        .filter((n) => n && !NOTE_BUSY.test(n) && !NOTE_AWAY.test(n) && !/^(available|online|offline)$/i.test(n));
    return { status, note: notes[0] || '' };
}

/* An is-composing document (RFC 3994 §3): state 'active' or 'idle'; refresh in seconds
   (only with active). */
export function buildIsComposing(state, refresh = 0) {
    return '<?xml version="1.0" encoding="UTF-8"?>\n'
        + '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
        + `<state>${state === 'active' ? 'active' : 'idle'}</state>`
        + '<contenttype>text/plain</contenttype>'
        + (state === 'active' && refresh > 0 ? `<refresh>${refresh | 0}</refresh>` : '')
        + '</isComposing>';
}

/* Reads an is-composing document: {state: 'active'|'idle', refresh (seconds, 0 = none)},
   or null when it is not one. */
export function parseIsComposing(text) {
    let doc;
    try {
        doc = new DOMParser().parseFromString(text || '', 'application/xml');
    } catch {
        return null;
    }
    const root = doc.documentElement;
    if (!root || root.localName !== 'isComposing') return null;
    const st = byLocalName(root, 'state')[0];
    const rf = byLocalName(root, 'refresh')[0];
    const refresh = rf ? parseInt(rf.textContent, 10) : 0;
    return {
        state: st && st.textContent.trim() === 'active' ? 'active' : 'idle',
        refresh: Number.isFinite(refresh) && refresh > 0 ? refresh : 0,
    };
}

/* Reads a watcher information document (RFC 3858) for the presence package:
   [{uri, status ('pending'|'active'|'waiting'|'terminated'), event}], or null when it is
   not one. */
export function parseWatcherinfo(text) {
    let doc;
    try {
        doc = new DOMParser().parseFromString(text || '', 'application/xml');
    } catch {
        return null;
    }
    const root = doc.documentElement;
    if (!root || root.localName !== 'watcherinfo') return null;
    const out = [];
    for (const list of byLocalName(root, 'watcher-list')) {
        if ((list.getAttribute('package') || 'presence') !== 'presence') continue;
        for (const w of byLocalName(list, 'watcher')) {
            const uri = w.textContent.trim();
            if (uri) out.push({ uri, status: w.getAttribute('status') || '', event: w.getAttribute('event') || '' });
        }
    }
    return out;
}
