// A fixed amount of CPU work: `iters` rounds of an integer hash. The benchmark
// calibrates `iters` to ~200 ms of CPU time on the machine. Unlike a loop that
// spins until the wall clock says 200 ms (examples/spin), the work stays the
// same when 100 calls share 2 cores, so the cores' limit is a real limit.
// Uses no Node built-ins, so every sandbox tier can run it.
export async function handler(event) {
  const n = Number(event?.iters ?? 0);
  let x = 1;
  for (let i = 0; i < n; i++) x = (Math.imul(x ^ i, 0x9e3779b1) + 1) | 0;
  return { iters: n, x };
}
