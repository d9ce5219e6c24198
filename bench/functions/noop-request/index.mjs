// The request-mode twin of noop: answers the body it was given as a response object.
export async function handler(event) {
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: event.body ?? '', isBase64Encoded: event.isBase64Encoded };
}
