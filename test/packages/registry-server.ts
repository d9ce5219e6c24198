// A minimal npm registry on loopback for tests (no network): packuments and
// tarballs of fixture packages packed with `npm pack`. Every request is logged,
// so tests can tell what the installer fetched.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { packFixtures, type FixturePackage } from './fixtures.js';

export interface FakeRegistry {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

export async function startFakeRegistry(pkgs: FixturePackage[], dir: string): Promise<FakeRegistry> {
  const files = packFixtures(pkgs, dir);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tgz = /^\/(.+)\/-\/([^/]+\.tgz)$/.exec(url);
    if (tgz) {
      const file = [...files.values()].find((f) => f === tgz[2]);
      if (!file) return void res.writeHead(404).end('{"error":"not found"}');
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(path.join(dir, file)));
    }
    const name = url.slice(1);
    const versions = pkgs.filter((p) => p.name === name);
    if (versions.length === 0) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    const doc = {
      name,
      'dist-tags': { latest: versions[versions.length - 1]!.version ?? '1.0.0' },
      versions: Object.fromEntries(
        versions.map((p) => {
          const file = files.get(p.name)!;
          const data = readFileSync(path.join(dir, file));
          return [
            p.version ?? '1.0.0',
            {
              name: p.name,
              version: p.version ?? '1.0.0',
              dependencies: p.dependencies ?? {},
              ...(p.scripts ? { scripts: p.scripts } : {}),
              dist: {
                tarball: `${base}/${p.name}/-/${file}`,
                shasum: createHash('sha1').update(data).digest('hex'),
                integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
              },
            },
          ];
        }),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
