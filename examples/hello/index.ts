// The quickstart function: greets whoever the event names.
interface Event {
  name?: string;
}

export async function handler(event: Event) {
  const name = typeof event.name === 'string' ? event.name : 'world';
  return { message: `Hello, ${name}!` };
}
