// Returns the event it was given: the cheapest possible call (warm and cold benchmarks).
export async function handler(event) {
  return event;
}
