// crypto.getRandomValues and crypto.randomUUID, from the host's CSPRNG.
import { DOMExceptionPolyfill } from './dom-exception.js';

export function makeCrypto(random: (n: number) => string) {
  const getRandomValues = <T>(array: T): T => {
    const ok = ArrayBuffer.isView(array) && !(array instanceof DataView) && !(array instanceof Float32Array) && !(array instanceof Float64Array);
    if (!ok) throw new DOMExceptionPolyfill('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
    const view = array as unknown as ArrayBufferView;
    if (view.byteLength > 65536) throw new DOMExceptionPolyfill(`The ArrayBufferView's byte length (${view.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
    const s = random(view.byteLength);
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = s.charCodeAt(i);
    return array;
  };
  const randomUUID = (): string => {
    const b = getRandomValues(new Uint8Array(16));
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  return { getRandomValues, randomUUID };
}
