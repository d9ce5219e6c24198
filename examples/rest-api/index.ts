// A JSON REST API as a fetch handler (Workers style), on any tier:
//   GET    /run/rest-api/todos        list
//   POST   /run/rest-api/todos        create from {"title": "..."} -> 201 with Location
//   GET    /run/rest-api/todos/:id    one, or 404
//   PATCH  /run/rest-api/todos/:id    update {"title"?, "done"?}
//   DELETE /run/rest-api/todos/:id    204
// The list lives in the instance's memory, so it is per warm instance and
// gone when the instance expires: a real API keeps it in a database.

interface Todo {
  id: number;
  title: string;
  done: boolean;
}

const todos = new Map<number, Todo>();
let nextId = 1;

const json = (data: unknown, status = 200, headers: Record<string, string> = {}) => Response.json(data, { status, headers });
const problem = (status: number, message: string) => json({ error: message }, status);

async function readTodo(request: Request): Promise<Partial<Todo> | Response> {
  if (!(request.headers.get('content-type') ?? '').startsWith('application/json')) return problem(415, 'send JSON (content-type: application/json)');
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return problem(400, 'the body is not valid JSON');
  }
  if (body === null || typeof body !== 'object') return problem(400, 'the body must be an object');
  const { title, done } = body as Record<string, unknown>;
  if (title !== undefined && (typeof title !== 'string' || !title.trim() || title.length > 200)) return problem(400, '"title" must be a non-empty string of at most 200 characters');
  if (done !== undefined && typeof done !== 'boolean') return problem(400, '"done" must be true or false');
  return { ...(title !== undefined ? { title: title.trim() } : {}), ...(done !== undefined ? { done } : {}) };
}

export default {
  async fetch(request: Request, env: Record<string, string>): Promise<Response> {
    const url = new URL(request.url);
    // The path after /run/rest-api.
    const path = url.pathname.replace(/^\/run\/[^/]+/, '') || '/';
    const m = /^\/todos(?:\/(\d+))?\/?$/.exec(path);
    if (path === '/') return json({ name: env.API_NAME ?? 'todos', routes: ['/todos', '/todos/:id'] });
    if (!m) return problem(404, `no route ${path}`);
    const id = m[1] ? Number(m[1]) : undefined;

    if (id === undefined) {
      if (request.method === 'GET') return json([...todos.values()]);
      if (request.method === 'POST') {
        const input = await readTodo(request);
        if (input instanceof Response) return input;
        if (!input.title) return problem(400, '"title" is required');
        const todo: Todo = { id: nextId++, title: input.title, done: input.done ?? false };
        todos.set(todo.id, todo);
        return json(todo, 201, { location: `${url.pathname.replace(/\/$/, '')}/${todo.id}` });
      }
      return problem(405, 'use GET or POST on /todos');
    }

    const todo = todos.get(id);
    if (!todo) return problem(404, `no todo ${id}`);
    if (request.method === 'GET') return json(todo);
    if (request.method === 'PATCH') {
      const input = await readTodo(request);
      if (input instanceof Response) return input;
      Object.assign(todo, input);
      return json(todo);
    }
    if (request.method === 'DELETE') {
      todos.delete(id);
      return new Response(null, { status: 204 });
    }
    return problem(405, 'use GET, PATCH or DELETE on /todos/:id');
  },
};
