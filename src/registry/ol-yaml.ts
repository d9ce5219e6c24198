// OpenLambda's per-function ol.yaml, read when a function has no lamina.json:
// turned into a raw lamina.json-shaped object that parseManifest then validates
// like any other (so both files obey one set of rules and messages).
//   environment: {K: V}            -> env
//   triggers.http: [{method: M}]   -> http.methods
//   triggers.cron: [{schedule: C}] -> schedules [{cron: C}]
//   limits: {mem_mb, runtime_sec, procs} -> memoryMb, timeoutMs, processes
import { parse, YAMLParseError } from 'yaml';
import { LaminaError } from '../errors.js';

export const OL_YAML_FILE = 'ol.yaml';

const TOP_KEYS = ['triggers', 'environment', 'limits'] as const;
const TRIGGER_KEYS = ['http', 'cron'] as const;
const LIMIT_KEYS = ['mem_mb', 'runtime_sec', 'procs'] as const;

function invalid(message: string): LaminaError {
  return new LaminaError('InvalidFunction', `${OL_YAML_FILE}: ${message}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Refuses keys of `obj` outside `known`, naming them (as lamina.json does). */
function onlyKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  const unknown = Object.keys(obj).filter((k) => !known.includes(k));
  if (unknown.length === 0) return;
  const names = unknown.map((k) => `"${where}${k}"`).join(', ');
  throw invalid(`unknown key${unknown.length > 1 ? 's' : ''} ${names} (known: ${known.join(', ')})`);
}

function list(v: unknown, where: string, item: string): Record<string, unknown>[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw invalid(`"${where}" must be a list such as [{${item}: ...}]`);
  return v.map((x, i) => {
    if (!isObject(x)) throw invalid(`"${where}[${i}]" must be a mapping such as {${item}: ...}`);
    onlyKeys(x, [item], `${where}[${i}].`);
    return x;
  });
}

function number(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`"${where}" must be a number (got ${JSON.stringify(v)})`);
  return v;
}

/** Parses ol.yaml text into a raw manifest object (validated later by parseManifest). */
export function olYamlToManifest(text: string): Record<string, unknown> {
  let doc: unknown;
  try {
    // A small config file: no aliases bombs, no custom tags.
    doc = parse(text, { maxAliasCount: 0, uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : (err as Error).message;
    throw invalid(`invalid YAML (${msg})`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw invalid('must hold a mapping (keys triggers, environment, limits)');
  onlyKeys(doc, TOP_KEYS, '');
  const out: Record<string, unknown> = {};

  if (doc.environment !== undefined && doc.environment !== null) {
    if (!isObject(doc.environment)) throw invalid('"environment" must be a mapping of names to values');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.environment)) {
      // YAML reads `DEBUG: 1` as a number; OpenLambda (Go, map[string]string) takes it as the text.
      if (typeof v === 'string') env[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') env[k] = String(v);
      else throw invalid(`"environment.${k}" must be a string, number or boolean (got ${v === null ? 'nothing' : Array.isArray(v) ? 'a list' : 'a mapping'})`);
    }
    out.env = env;
  }

  if (doc.triggers !== undefined && doc.triggers !== null) {
    if (!isObject(doc.triggers)) throw invalid('"triggers" must be a mapping (keys http, cron)');
    onlyKeys(doc.triggers, TRIGGER_KEYS, 'triggers.');
    const http = list(doc.triggers.http, 'triggers.http', 'method');
    if (http.length > 0) {
      out.http = {
        methods: http.map((t, i) => {
          if (typeof t.method !== 'string') throw invalid(`"triggers.http[${i}].method" must be an HTTP method such as GET`);
          return t.method;
        }),
      };
    }
    const cron = list(doc.triggers.cron, 'triggers.cron', 'schedule');
    if (cron.length > 0) {
      out.schedules = cron.map((t, i) => {
        if (typeof t.schedule !== 'string' || !t.schedule.trim()) throw invalid(`"triggers.cron[${i}].schedule" must be a cron expression such as "*/5 * * * *"`);
        return { cron: t.schedule.trim() };
      });
    }
  }

  if (doc.limits !== undefined && doc.limits !== null) {
    if (!isObject(doc.limits)) throw invalid('"limits" must be a mapping (keys mem_mb, runtime_sec, procs)');
    onlyKeys(doc.limits, LIMIT_KEYS, 'limits.');
    const l = doc.limits;
    if (l.mem_mb !== undefined) out.memoryMb = number(l.mem_mb, 'limits.mem_mb');
    // Seconds to ms; parseManifest checks the range and that it is whole.
    if (l.runtime_sec !== undefined) out.timeoutMs = Math.round(number(l.runtime_sec, 'limits.runtime_sec') * 1000);
    if (l.procs !== undefined) out.processes = number(l.procs, 'limits.procs');
  }
  return out;
}
