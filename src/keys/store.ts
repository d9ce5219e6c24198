// Invoke keys: bearer secrets that may call chosen functions (or all, "*") and
// nothing else. A key is `lk_<id>_<secret>`; only its sha256 is stored, so a
// stolen database holds no usable key. The key itself is shown once, at creation.
//
// The secret part is HMAC(pepper, id), the pepper being a server secret kept
// outside the database (DATA_DIR/keys.secret, or derived from a cluster's
// shared secret): so the server, and only with its pepper, can recompute a key
// from its id, which AWS Signature V4 needs (the signature is an HMAC keyed by
// the secret; a hash of it is not enough to check one).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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
  /** `pepper`: at least 32 bytes, the same on every gateway of a cluster. */
  constructor(
    private readonly db: Db,
    private readonly pepper: Buffer,
  ) {
    if (pepper.length < 32) throw new Error('the invoke-key pepper must be at least 32 bytes');
  }

  private keyFor(id: string): string {
    return `lk_${id}_${createHmac('sha256', this.pepper).update(`lamina invoke key ${id}`).digest('base64url')}`;
  }

  /** A new key for `functions` (names, or ["*"]); the only time the key is returned. */
  async create(functions: string[]): Promise<InvokeKeyView & { key: string }> {
    const id = randomBytes(6).toString('hex');
    const key = this.keyFor(id);
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

  /**
   * The whole key of id `id` and what it may call, for checking an AWS
   * Signature V4 made with it (access key id = the key's id, secret = the key);
   * undefined for an unknown or revoked id, or a key made with another pepper.
   */
  async secretFor(id: string): Promise<{ secret: string; functions: string[] } | undefined> {
    if (!/^[a-z0-9]{12}$/.test(id)) return undefined;
    const row = await this.db.kysely.selectFrom('invoke_keys').select(['key_hash', 'functions']).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const key = this.keyFor(id);
    const a = Buffer.from(hashOf(key), 'hex');
    const b = Buffer.from(row.key_hash, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    return { secret: key, functions: JSON.parse(row.functions) as string[] };
  }
}

/** The pepper of a single node: DATA_DIR/keys.secret, made once (mode 0600). */
export function loadOrCreatePepper(dataDir: string): Buffer {
  const file = path.join(dataDir, 'keys.secret');
  if (existsSync(file)) {
    const b = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    if (b.length >= 32) return b;
  }
  const b = randomBytes(32);
  writeFileSync(file, b.toString('base64url') + '\n', { mode: 0o600 });
  return b;
}

/** A cluster's pepper, the same on every gateway: derived from the shared cluster secret. */
export function pepperFromSecret(secret: string): Buffer {
  return createHmac('sha256', secret).update('lamina invoke-key pepper').digest();
}
