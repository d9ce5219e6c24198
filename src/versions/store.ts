// Published versions and aliases of functions (migration 0006_aws). Every
// Lamina deploy is already an immutable, numbered version; publishing marks
// one as a release (what AWS's ListVersionsByFunction lists), and an alias
// names a version, optionally sending a weight of its calls to a second one
// (a canary). Alias version 0 stands for the current version ($LATEST).
import { randomUUID } from 'node:crypto';
import { LaminaError } from '../errors.js';
import type { FunctionVersion } from '../registry/types.js';
import type { Db } from '../store/db.js';
import type { AliasesTable } from '../store/schema.js';

/** What the store needs of the registry. */
export interface VersionSource {
  current(name: string): FunctionVersion | undefined;
  getVersion(name: string, version: number): Promise<FunctionVersion | undefined>;
}

export interface PublishedVersion {
  name: string;
  version: number;
  description: string;
  createdAt: string;
}

export interface Alias {
  name: string;
  alias: string;
  /** 0 = the current version ($LATEST). */
  version: number;
  /** The canary: `extraWeight` (0 < w < 1) of the calls run `extraVersion`. */
  extraVersion: number | null;
  extraWeight: number | null;
  description: string;
  revisionId: string;
  createdAt: string;
  updatedAt: string;
}

export interface AliasInput {
  version: number;
  extraVersion?: number | null;
  extraWeight?: number | null;
  description?: string;
}

/** AWS-only settings of a function: answered back by the AWS API, ignored by Lamina. */
export interface AwsSettings {
  role: string;
  description: string;
  runtime: string;
  handler: string;
}

/** A version: LATEST_VERSION means the current one. */
export const LATEST_VERSION = 0;
const ALIAS_RE = /^(?!\d+$)[A-Za-z0-9_-]{1,128}$/;

export function validateAliasName(alias: string): void {
  if (alias === '$LATEST' || !ALIAS_RE.test(alias)) {
    throw new LaminaError('BadRequest', `invalid alias name ${JSON.stringify(alias)}: use 1 to 128 characters of A-Z, a-z, 0-9, "-" and "_", not only digits`);
  }
}

function toAlias(r: AliasesTable): Alias {
  return {
    name: r.name,
    alias: r.alias,
    version: Number(r.version),
    extraVersion: r.extra_version === null ? null : Number(r.extra_version),
    extraWeight: r.extra_weight === null ? null : Number(r.extra_weight),
    description: r.description,
    revisionId: r.revision_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The version one call of `a` runs: the canary's with probability extraWeight. `rand` is in [0, 1). */
export function pickAliasVersion(a: Pick<Alias, 'version' | 'extraVersion' | 'extraWeight'>, rand: number): number {
  if (a.extraVersion !== null && a.extraWeight !== null && rand < a.extraWeight) return a.extraVersion;
  return a.version;
}

export class VersionStore {
  constructor(
    private readonly db: Db,
    private readonly source: VersionSource,
  ) {}

  private requireFunction(name: string): FunctionVersion {
    const fv = this.source.current(name);
    if (!fv) throw new LaminaError('FunctionNotFound', `function "${name}" does not exist`);
    return fv;
  }

  private async requireVersion(name: string, version: number): Promise<void> {
    if (version === LATEST_VERSION) return;
    if (!Number.isInteger(version) || version < 1 || !(await this.source.getVersion(name, version))) {
      throw new LaminaError('NotFound', `function "${name}" has no version ${version}`);
    }
  }

  /** Publishes the current version (again publishing an unchanged current version returns the same one). */
  async publish(name: string, description = ''): Promise<PublishedVersion> {
    const fv = this.requireFunction(name);
    const now = new Date().toISOString();
    await this.db.kysely
      .insertInto('published_versions')
      .values({ name, version: fv.version, description, created_at: now })
      .onConflict((oc) => oc.columns(['name', 'version']).doNothing())
      .execute();
    const row = await this.db.kysely.selectFrom('published_versions').selectAll().where('name', '=', name).where('version', '=', fv.version).executeTakeFirstOrThrow();
    return { name, version: Number(row.version), description: row.description, createdAt: row.created_at };
  }

  async published(name: string): Promise<PublishedVersion[]> {
    const rows = await this.db.kysely.selectFrom('published_versions').selectAll().where('name', '=', name).orderBy('version').execute();
    const out: PublishedVersion[] = [];
    // A version gone with a delete and redeploy of the same name is not listed.
    for (const r of rows) if (await this.source.getVersion(name, Number(r.version))) out.push({ name, version: Number(r.version), description: r.description, createdAt: r.created_at });
    return out;
  }

  /** Takes a version off the published list (DeleteFunction with a version Qualifier); its code stays stored. */
  async unpublish(name: string, version: number): Promise<void> {
    await this.db.kysely.deleteFrom('published_versions').where('name', '=', name).where('version', '=', version).execute();
  }

  private async checkInput(name: string, input: AliasInput): Promise<void> {
    await this.requireVersion(name, input.version);
    const { extraVersion, extraWeight } = input;
    if ((extraVersion ?? null) === null && (extraWeight ?? null) === null) return;
    if (extraVersion == null || extraWeight == null) throw new LaminaError('BadRequest', 'a weighted second version needs both the version and its weight');
    if (!(extraWeight >= 0 && extraWeight <= 1)) throw new LaminaError('BadRequest', `the second version's weight must be between 0 and 1 (got ${extraWeight})`);
    if (input.version === LATEST_VERSION || extraVersion === LATEST_VERSION) throw new LaminaError('BadRequest', 'a weighted alias must name numbered versions, not $LATEST');
    if (extraVersion === input.version) throw new LaminaError('BadRequest', `the second version must differ from the alias's version ${input.version}`);
    await this.requireVersion(name, extraVersion);
  }

  async createAlias(name: string, alias: string, input: AliasInput): Promise<Alias> {
    this.requireFunction(name);
    validateAliasName(alias);
    await this.checkInput(name, input);
    if (await this.getAlias(name, alias)) throw new LaminaError('Conflict', `alias "${alias}" of function "${name}" already exists`);
    const now = new Date().toISOString();
    const row: AliasesTable = {
      name,
      alias,
      version: input.version,
      extra_version: input.extraVersion ?? null,
      extra_weight: input.extraWeight ?? null,
      description: input.description ?? '',
      revision_id: randomUUID(),
      created_at: now,
      updated_at: now,
    };
    try {
      await this.db.kysely.insertInto('aliases').values(row).execute();
    } catch {
      throw new LaminaError('Conflict', `alias "${alias}" of function "${name}" already exists`);
    }
    return toAlias(row);
  }

  /** Changes an alias; fields left undefined keep their value. With `revisionId`, refuses if the alias changed since. */
  async updateAlias(name: string, alias: string, patch: Partial<AliasInput>, revisionId?: string): Promise<Alias> {
    this.requireFunction(name);
    const cur = await this.getAlias(name, alias);
    if (!cur) throw new LaminaError('NotFound', `function "${name}" has no alias "${alias}"`);
    if (revisionId !== undefined && revisionId !== cur.revisionId) throw new LaminaError('Conflict', `alias "${alias}" changed since revision ${revisionId} (now ${cur.revisionId})`);
    const next: AliasInput = {
      version: patch.version ?? cur.version,
      extraVersion: patch.extraVersion !== undefined ? patch.extraVersion : cur.extraVersion,
      extraWeight: patch.extraWeight !== undefined ? patch.extraWeight : cur.extraWeight,
      description: patch.description ?? cur.description,
    };
    await this.checkInput(name, next);
    const now = new Date().toISOString();
    const revision = randomUUID();
    const res = await this.db.kysely
      .updateTable('aliases')
      .set({ version: next.version, extra_version: next.extraVersion ?? null, extra_weight: next.extraWeight ?? null, description: next.description ?? '', revision_id: revision, updated_at: now })
      .where('name', '=', name)
      .where('alias', '=', alias)
      .where('revision_id', '=', cur.revisionId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new LaminaError('Conflict', `alias "${alias}" changed while it was being updated; retry`);
    return { ...cur, version: next.version, extraVersion: next.extraVersion ?? null, extraWeight: next.extraWeight ?? null, description: next.description ?? '', revisionId: revision, updatedAt: now };
  }

  async getAlias(name: string, alias: string): Promise<Alias | undefined> {
    const row = await this.db.kysely.selectFrom('aliases').selectAll().where('name', '=', name).where('alias', '=', alias).executeTakeFirst();
    return row ? toAlias(row) : undefined;
  }

  async listAliases(name: string, version?: number): Promise<Alias[]> {
    let q = this.db.kysely.selectFrom('aliases').selectAll().where('name', '=', name);
    if (version !== undefined) q = q.where((eb) => eb.or([eb('version', '=', version), eb('extra_version', '=', version)]));
    return (await q.orderBy('alias').execute()).map(toAlias);
  }

  async deleteAlias(name: string, alias: string): Promise<boolean> {
    const res = await this.db.kysely.deleteFrom('aliases').where('name', '=', name).where('alias', '=', alias).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /**
   * The version a qualifier names: digits are a version number, `$LATEST` the
   * current version, anything else an alias (its canary weight drawn with `rand`).
   */
  async resolve(name: string, qualifier: string | undefined, rand: () => number = Math.random): Promise<{ version: number; current: FunctionVersion }> {
    const current = this.requireFunction(name);
    if (qualifier === undefined || qualifier === '' || qualifier === '$LATEST') return { version: current.version, current };
    if (/^\d+$/.test(qualifier)) {
      const v = Number(qualifier);
      if (v === current.version) return { version: v, current };
      await this.requireVersion(name, v);
      return { version: v, current };
    }
    const a = await this.getAlias(name, qualifier);
    if (!a) throw new LaminaError('NotFound', `function "${name}" has no alias "${qualifier}"`);
    const v = pickAliasVersion(a, rand());
    return { version: v === LATEST_VERSION ? current.version : v, current };
  }

  /** The function was deleted: its aliases, releases and AWS settings go with it. */
  async forget(name: string): Promise<void> {
    await this.db.kysely.transaction().execute(async (trx) => {
      await trx.deleteFrom('aliases').where('name', '=', name).execute();
      await trx.deleteFrom('published_versions').where('name', '=', name).execute();
      await trx.deleteFrom('aws_functions').where('name', '=', name).execute();
    });
  }

  /** AWS-only settings (Role, Description) of a function. */
  async awsSettings(name: string): Promise<AwsSettings> {
    const row = await this.db.kysely.selectFrom('aws_functions').select(['role', 'description', 'runtime', 'handler']).where('name', '=', name).executeTakeFirst();
    return row ?? { role: '', description: '', runtime: '', handler: '' };
  }

  async setAwsSettings(name: string, s: Partial<AwsSettings>): Promise<void> {
    const cur = await this.awsSettings(name);
    const next = { role: s.role ?? cur.role, description: s.description ?? cur.description, runtime: s.runtime ?? cur.runtime, handler: s.handler ?? cur.handler };
    await this.db.kysely
      .insertInto('aws_functions')
      .values({ name, ...next })
      .onConflict((oc) => oc.column('name').doUpdateSet(next))
      .execute();
  }
}

/** Splits `name:qualifier` (the qualifier is a version number, `$LATEST` or an alias). */
export function splitQualified(raw: string): { name: string; qualifier?: string } {
  const i = raw.indexOf(':');
  if (i < 0) return { name: raw };
  return { name: raw.slice(0, i), qualifier: raw.slice(i + 1) };
}
