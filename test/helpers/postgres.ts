// PostgreSQL for tests: a fresh database per test file, on the local cluster.
//
// Starts the local cluster when `pg_lsclusters` shows it down (Debian's
// postgresql-common), makes sure a password role exists for TCP logins (local
// socket logins are `peer`), and creates a database owned by it. Admin work
// runs as the postgres OS user through `runuser` (or `su`), so the tests need
// root, as the rest of the suite does.
//
// LAMINA_TEST_PG_ADMIN_URL (e.g. postgres://postgres:pw@db:5432/postgres), if
// set, is used instead of the local cluster: a superuser URL to create and drop
// databases with; the test databases are then reached as that user.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_ROLE = 'lamina_test';
export const TEST_PASSWORD = 'lamina_test_pw';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

function run(cmd: string, args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 60_000 });
  if (r.error) return { code: -1, out: r.error.message };
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function have(cmd: string): boolean {
  return run('sh', ['-c', `command -v ${cmd}`]).code === 0;
}

/** psql as the postgres OS user over the local socket. */
function psql(sqlText: string, db = 'postgres'): string {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', db];
  const r = have('runuser') ? run('runuser', ['-u', 'postgres', '--', 'psql', ...args], sqlText) : run('su', ['postgres', '-c', `psql ${args.join(' ')}`], sqlText);
  if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.out.trim()}`);
  return r.out;
}

let localReady: { port: number } | undefined;

/** Starts the first local cluster if it is down; returns its port. */
function ensureLocalCluster(): { port: number } {
  if (localReady) return localReady;
  if (!have('pg_lsclusters')) throw new Error('PostgreSQL is not installed (no pg_lsclusters): apt-get install postgresql, or set LAMINA_TEST_PG_ADMIN_URL');
  const list = run('pg_lsclusters', ['--no-header']);
  const line = list.out.split('\n').find((l) => l.trim());
  if (!line) throw new Error(`no PostgreSQL cluster found:\n${list.out}`);
  const [ver, name, port, status] = line.trim().split(/\s+/);
  if (status !== 'online') {
    const r = run('pg_ctlcluster', ['--skip-systemctl-redirect', ver!, name!, 'start']);
    if (r.code !== 0 && !/already running/.test(r.out)) throw new Error(`cannot start PostgreSQL ${ver}/${name}: ${r.out.trim()}`);
  }
  // Wait until it takes connections.
  for (let i = 0; ; i++) {
    try {
      psql('select 1');
      break;
    } catch (err) {
      if (i > 50) throw err;
      spawnSync('sleep', ['0.2']);
    }
  }
  psql(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${TEST_ROLE}') THEN
    CREATE ROLE ${TEST_ROLE} LOGIN PASSWORD '${TEST_PASSWORD}';
  ELSE
    ALTER ROLE ${TEST_ROLE} LOGIN PASSWORD '${TEST_PASSWORD}';
  END IF;
END $$;`);
  localReady = { port: Number(port) };
  return localReady;
}

/** A fresh, empty database; `drop()` removes it (closing any connection left). */
export async function createTestDatabase(prefix = 'lamina'): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const adminUrl = process.env.LAMINA_TEST_PG_ADMIN_URL;
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    return {
      url: u.toString(),
      name,
      async drop() {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } finally {
          await c.end();
        }
      },
    };
  }
  const { port } = ensureLocalCluster();
  psql(`CREATE DATABASE ${name} OWNER ${TEST_ROLE}`);
  return {
    url: `postgres://${TEST_ROLE}:${TEST_PASSWORD}@127.0.0.1:${port}/${name}`,
    name,
    async drop() {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
