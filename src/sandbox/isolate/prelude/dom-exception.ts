// A minimal DOMException (bare V8 has none): name, message and the legacy code.
const CODES: Record<string, number> = {
  IndexSizeError: 1, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
  InvalidCharacterError: 5, TypeMismatchError: 17, AbortError: 20, QuotaExceededError: 22, DataCloneError: 25,
};

export class DOMExceptionPolyfill extends Error {
  readonly code: number;
  constructor(message = '', name = 'Error') {
    super(message);
    Object.defineProperty(this, 'name', { value: name, configurable: true, writable: true });
    this.code = CODES[name] ?? 0;
  }
}
