// The fetch-handler twin of noop: answers the body it was given.
export default {
  async fetch(request) {
    return new Response(await request.text(), { headers: { 'content-type': 'application/json' } });
  },
};
