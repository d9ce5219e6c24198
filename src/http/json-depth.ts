// The nesting depth of a JSON text, measured by one linear scan before any
// parse: events nested deeper than MAX_EVENT_DEPTH are refused with 400, since
// serializing one for the sandbox (or parsing it in a runtime) recurses per level.

/** Deepest nesting of arrays and objects an event may have (docs/api.md). */
export const MAX_EVENT_DEPTH = 128;

/** The deepest nesting of `[`/`{` outside strings; stops counting once past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}
