// Keeps a CPU busy for `ms` milliseconds.
export async function handler(event: { ms?: number }) {
  const ms = Number(event.ms ?? 200);
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) n++;
  return { spun: ms, iterations: n };
}
