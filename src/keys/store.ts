// Invoke keys: bearer secrets that may call chosen functions (or all, "*") and
// nothing else. A key is `lk_<id>_<secret>`; only its sha256 is stored, so a
// stolen database holds no usable key. The key itself is shown once, at creation.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';

export interface InvokeKeyView {
  id: string;
  functions: string[];
  createdAt: string;
}

const KEY_RE = /^lk_([a-z0-9]{12})_[A-Za-z0-9_-]{43}$/;

function hashOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function view(row: { id: string; functions: string; created_at: string }): InvokeKeyView {
  return { id: row.id, functions: JSON.parse(row.functions) as string[], createdAt: row.created_at };
}

export class KeyStore {
  constructor(private readonly db: Db) {}

  /** A new key for `functions` (names, or ["*"]); the only time the key is returned. */
  async create(functions: string[]): Promise<InvokeKeyView & { key: string }> {
    const id = randomBytes(6).toString('hex');
    const key = `lk_${id}_${randomBytes(32).toString('base64url')}`;
    const createdAt = new Date().toISOString();
    const list = [...new Set(functions)];
    await this.db.kysely.insertInto('invoke_keys').values({ id, key_hash: hashOf(key), functions: JSON.stringify(list), created_at: createdAt }).execute();
    return { id, key, functions: list, createdAt };
  }

  async list(): Promise<InvokeKeyView[]> {
    const rows = await this.db.kysely.selectFrom('invoke_keys').select(['id', 'functions', 'created_at']).orderBy('created_at').orderBy('id').execute();
    return rows.map(view);
  }

  /** False when there was no such key. */
  async remove(id: string): Promise<boolean> {
    const r = await this.db.kysely.deleteFrom('invoke_keys').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Whether `key` may call function `name`. Read from the database on every
   * call, so a revoked key stops working at once on every gateway of a cluster.
   */
  async allows(key: string, name: string): Promise<boolean> {
    if (!KEY_RE.test(key)) return false;
    const row = await this.db.kysely.selectFrom('invoke_keys').select(['functions']).where('key_hash', '=', hashOf(key)).executeTakeFirst();
    if (!row) return false;
    const fns = JSON.parse(row.functions) as string[];
    return fns.includes('*') || fns.includes(name);
  }
}
