// The call dialog: one call at a time (a second incoming call is answered 486 Busy Here).
// It follows a JsSIP RTCSession from ringing to its end, shows both videos and offers
// answer, decline, mute, camera off and hang up.

import { $, toast } from './dom.js';

export class CallView {
    /* sip: the SipClient; nameOf(aor) → display name; onLog(aor, text) records the call in
       the chat. */
    constructor(sip, nameOf, onLog) {
        this.sip = sip;
        this.nameOf = nameOf;
        this.onLog = onLog;
        this.session = null;
        this.peer = null;
        this.video = false;
        this.startedAt = 0;
        this.tick = null;
        this.prevFocus = null;
        this.el = $('call-view');
        $('call-answer').addEventListener('click', () => this.answer(true));
        $('call-answer-audio').addEventListener('click', () => this.answer(false));
        $('call-hangup').addEventListener('click', () => this.hangup());
        $('call-mute').addEventListener('click', () => this.toggleMute('audio', 'call-mute'));
        $('call-camera').addEventListener('click', () => this.toggleMute('video', 'call-camera'));
        this.el.addEventListener('keydown', (e) => {
            if (e.key === 'Escape') this.hangup();
            if (e.key === 'Tab') this.trapFocus(e);
        });
    }

    get busy() {
        return this.session !== null;
    }

    /* Places a call to the sip: URI target. */
    start(target, aor, video) {
        if (this.busy) {
            toast('Already in a call');
            return;
        }
        let session;
        try {
            session = this.sip.call(target, video);
        } catch (e) {
            toast('The call could not start', e.message);
            return;
        }
        this.attach(session, aor, video, false);
        this.setState(`Calling ${this.nameOf(aor)}…`);
    }

    /* An incoming session from JsSIP. */
    incoming(session, aor, request) {
        if (this.busy) {
            session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
            this.onLog(aor, 'Missed call (busy)');
            return;
        }
        const video = /\bm=video\s+[1-9]/.test((request && request.body) || '');
        this.attach(session, aor, video, true);
        this.setState(`${this.nameOf(aor)} is calling${video ? ' (video)' : ''}`);
        if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
            new Notification('Incoming call', { body: this.nameOf(aor) });
        }
    }

    answer(video) {
        if (!this.session) return;
        this.video = video;
        this.show(false, video);
        this.setState('Connecting…');
        try {
            this.sip.answer(this.session, video);
        } catch (e) {
            toast('The call could not be answered', e.message);
            this.hangup();
        }
    }

    hangup() {
        if (!this.session) return;
        try {
            this.session.terminate();
        } catch {
            this.finish('Call ended');
        }
    }

    toggleMute(kind, buttonId) {
        if (!this.session) return;
        const btn = $(buttonId);
        const on = btn.getAttribute('aria-pressed') !== 'true';
        if (on) this.session.mute({ [kind]: true });
        else this.session.unmute({ [kind]: true });
        btn.setAttribute('aria-pressed', String(on));
    }

    /* The RTCPeerConnection's statistics, or null when no call is up (tests read them). */
    async stats() {
        const pc = this.session && this.session.connection;
        if (!pc) return null;
        const out = [];
        (await pc.getStats()).forEach((s) => out.push(s));
        return out;
    }

    attach(session, aor, video, incoming) {
        this.session = session;
        this.peer = aor;
        this.video = video;
        this.startedAt = 0;
        $('call-title').textContent = this.nameOf(aor);
        this.prevFocus = document.activeElement;
        this.show(incoming, video);
        const onPc = (pc) => {
            pc.addEventListener('track', (e) => {
                const stream = e.streams[0] || new MediaStream([e.track]);
                if (e.track.kind === 'video') $('remote-video').srcObject = stream;
                else $('remote-audio').srcObject = stream;
            });
        };
        if (session.connection) onPc(session.connection);
        else session.on('peerconnection', (e) => onPc(e.peerconnection));
        session.on('progress', () => {
            if (!incoming) this.setState('Ringing…');
        });
        session.on('accepted', () => this.setState('Connected'));
        session.on('confirmed', () => {
            this.startedAt = Date.now();
            this.showLocal();
            this.tick = setInterval(() => this.setState(`Connected ${this.duration()}`), 1000);
        });
        session.on('ended', (e) => this.finish(`Call ended${this.startedAt ? ` (${this.duration()})` : ''}`, e));
        session.on('failed', (e) => this.finish(failedText(e, incoming), e));
    }

    show(incoming, video) {
        this.el.hidden = false;
        $('call-answer').hidden = !incoming;
        $('call-answer-audio').hidden = !incoming || !video;
        $('call-answer').textContent = incoming && video ? 'Answer with video' : 'Answer';
        $('call-mute').hidden = incoming;
        $('call-camera').hidden = incoming || !video;
        $('call-hangup').textContent = incoming ? 'Decline' : 'Hang up';
        $('call-mute').setAttribute('aria-pressed', 'false');
        $('call-camera').setAttribute('aria-pressed', 'false');
        this.el.querySelector('.videos').hidden = !video;
        (incoming ? $('call-answer') : $('call-hangup')).focus();
    }

    showLocal() {
        const pc = this.session && this.session.connection;
        if (!pc) return;
        const tracks = pc.getSenders().map((s) => s.track).filter((t) => t && t.kind === 'video');
        if (tracks.length) $('local-video').srcObject = new MediaStream(tracks);
    }

    finish(text, e) {
        if (!this.session) return;
        const aor = this.peer;
        clearInterval(this.tick);
        this.session = null;
        this.peer = null;
        for (const id of ['remote-video', 'local-video', 'remote-audio']) $(id).srcObject = null;
        this.el.hidden = true;
        this.setState('');
        if (this.prevFocus && this.prevFocus.focus) this.prevFocus.focus();
        toast(text);
        this.onLog(aor, text);
    }

    setState(text) {
        $('call-state').textContent = text;
    }

    duration() {
        const s = Math.max(0, Math.round((Date.now() - this.startedAt) / 1000));
        return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    }

    trapFocus(e) {
        const items = Array.from(this.el.querySelectorAll('button')).filter((b) => !b.hidden);
        if (!items.length) return;
        const first = items[0];
        const last = items[items.length - 1];
        if (e.shiftKey && document.activeElement === first) {
            last.focus();
            e.preventDefault();
        } else if (!e.shiftKey && document.activeElement === last) {
            first.focus();
            e.preventDefault();
        }
    }
}

function failedText(e, incoming) {
    const c = e && e.cause;
    if (c === 'Canceled') return incoming ? 'Missed call' : 'Call cancelled';
    if (c === 'Rejected') return 'Call declined';
    if (c === 'Busy') return 'Busy';
    if (c === 'Unavailable' || c === 'Not Found') return 'Not reachable';
    if (c === 'User Denied Media Access') return 'No access to microphone or camera';
    return `Call failed${c ? ` (${c})` : ''}`;
}
