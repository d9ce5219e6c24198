// Waits `ms` milliseconds without using the CPU (a call waiting on I/O).
export async function handler(event) {
  const ms = Number(event?.ms ?? 200);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { slept: ms };
}
