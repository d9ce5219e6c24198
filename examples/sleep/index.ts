// Waits `ms` milliseconds without using the CPU (like a call waiting on I/O).
export default async function (event: { ms?: number }) {
  const ms = Number(event.ms ?? 200);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { slept: ms };
}
