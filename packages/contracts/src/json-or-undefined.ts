/**
 * Reads text that may not be JSON (an error page, a foreign message) for a schema's `safeParse`:
 * anything that is not JSON becomes `undefined`, which no schema in this project accepts.
 */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
