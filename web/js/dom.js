// Small DOM helpers shared by the views.

/* The element with this id (throws when the page lacks it: a programming error). */
export function $(id) {
    const el = document.getElementById(id);
    if (!el) throw new Error(`#${id} missing from the page`);
    return el;
}

/* Creates an element: h('li', {class: 'x', 'aria-label': 'y'}, child, 'text', ...). */
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
        if (c === undefined || c === null || c === false) continue;
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
}

export const STATUS_TEXT = {
    available: 'Available',
    away: 'Away',
    busy: 'Busy',
    offline: 'Offline',
    unknown: 'Unknown',
};

/* "14:05" today, "Mon 14:05" this week, else the date. */
export function formatTime(ms) {
    const d = new Date(ms);
    const now = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return time;
    if (now - d < 6 * 864e5) return `${d.toLocaleDateString([], { weekday: 'short' })} ${time}`;
    return `${d.toLocaleDateString()} ${time}`;
}

/* Shows a short message in the corner for ms milliseconds. */
export function toast(title, text = '', ms = 6000) {
    const box = document.getElementById('toasts');
    if (!box) return;
    const el = h('div', { class: 'toast' }, h('strong', {}, title), text);
    box.append(el);
    setTimeout(() => el.remove(), ms);
}
