// Entry of the JsSIP bundle (build/web/vendor/jssip.js, made by esbuild at build time).
// JsSIP 3.13 ships CommonJS only and no PUBLISH API: besides the library this exports
// the two request classes the client uses to send PUBLISH (js/sip.js).
import JsSIP from 'jssip';
import SIPMessage from 'jssip/lib/SIPMessage';
import RequestSender from 'jssip/lib/RequestSender';
import Subscriber from 'jssip/lib/Subscriber';

export default JsSIP;
export const OutgoingRequest = SIPMessage.OutgoingRequest;
export { RequestSender, Subscriber };
