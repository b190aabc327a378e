// Presence documents (RFC 3863 PIDF with RFC 4480 RPID activities) and is-composing
// documents (RFC 3994), built as text and read with the browser's DOMParser.
//
// The client's four statuses map onto PIDF like this:
//   available → basic "open", no activity
//   away      → basic "open", <rpid:away/>
//   busy      → basic "open", <rpid:busy/>
//   offline   → basic "closed"
// Reading is lenient: several tuples (one per device, or an aggregate) count as open when
// any of them is open; on-the-phone, meeting and similar activities read as busy.

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

/* A PIDF document for entity (a sip: URI) in one of STATUSES, with an optional note. */
export function buildPidf(entity, status, note = '') {
    const open = status !== 'offline';
    const activity = status === 'away' || status === 'busy'
        ? `<rpid:activities><rpid:${status}/></rpid:activities>` : '';
    const tupleId = 't' + Math.random().toString(36).slice(2, 10);
    const noteXml = note ? `<note>${xmlEscape(note)}</note>` : '';
    return '<?xml version="1.0" encoding="UTF-8"?>\n'
        + '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        + ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        + ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
        + ` entity="${xmlEscape(entity)}">`
        + `<tuple id="${tupleId}"><status><basic>${open ? 'open' : 'closed'}</basic></status>`
        + `${noteXml}</tuple>`
        + `<dm:person id="p1">${activity}${noteXml ? `<dm:note>${xmlEscape(note)}</dm:note>` : ''}`
        + '</dm:person></presence>';
}

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
    const basics = byLocalName(root, 'basic').map((b) => b.textContent.trim().toLowerCase());
    const open = basics.includes('open');
    let status = open ? 'available' : 'offline';
    if (open) {
        for (const acts of byLocalName(root, 'activities')) {
            for (const a of Array.from(acts.children)) {
                if (BUSY_ACTIVITIES.has(a.localName)) status = 'busy';
                else if (status !== 'busy' && AWAY_ACTIVITIES.has(a.localName)) status = 'away';
            }
        }
    }
    const noteEl = byLocalName(root, 'note')[0];
    return { status, note: noteEl ? noteEl.textContent.trim() : '' };
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
