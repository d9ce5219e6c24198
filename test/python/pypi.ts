// A PEP 503 package index on loopback for tests (the real index is unreachable
// here): wheels built from sources the tests carry, laid out as simple/NAME/
// with an index.html of links, served by `python3 -m http.server`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface WheelSource {
  name: string;
  version: string;
  /** Files inside the wheel by path (e.g. "greetlib/__init__.py"). */
  files: Record<string, string>;
  /** Requires-Dist lines (e.g. "greetlib>=1"). */
  requires?: string[];
}

/** Builds pure-Python wheels (zip archives with .dist-info metadata and a hashed RECORD). */
const BUILD_WHEELS = `
import base64, hashlib, json, os, sys, zipfile
out, specs = sys.argv[1], json.loads(sys.stdin.read())
for w in specs:
    dist = w["name"].replace("-", "_")
    info = f"{dist}-{w['version']}.dist-info"
    tops = sorted({p.split("/")[0].removesuffix(".py") for p in w["files"]})
    meta = f"Metadata-Version: 2.1\\nName: {w['name']}\\nVersion: {w['version']}\\n" + "".join(f"Requires-Dist: {r}\\n" for r in w.get("requires", []))
    files = dict(w["files"])
    files[f"{info}/METADATA"] = meta
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: lamina-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/top_level.txt"] = "\\n".join(tops) + "\\n"
    record = []
    for p, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{p},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\\n".join(record) + "\\n"
    project = w["name"].lower().replace("_", "-").replace(".", "-")
    d = os.path.join(out, "simple", project)
    os.makedirs(d, exist_ok=True)
    fname = f"{dist}-{w['version']}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(d, fname), "w", zipfile.ZIP_DEFLATED) as z:
        for p, text in files.items():
            z.writestr(p, text)
for project in sorted(os.listdir(os.path.join(out, "simple"))):
    d = os.path.join(out, "simple", project)
    links = "".join(f'<a href="{f}">{f}</a><br>' for f in sorted(os.listdir(d)) if f.endswith(".whl"))
    with open(os.path.join(d, "index.html"), "w") as fh:
        fh.write(f"<!DOCTYPE html><html><body>{links}</body></html>")
projects = "".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(os.listdir(os.path.join(out, "simple"))) if p != "index.html")
with open(os.path.join(out, "simple", "index.html"), "w") as fh:
    fh.write(f"<!DOCTYPE html><html><body>{projects}</body></html>")
`;

export function buildIndex(dir: string, wheels: WheelSource[]): void {
  mkdirSync(path.join(dir, 'simple'), { recursive: true });
  writeFileSync(path.join(dir, 'build_wheels.py'), BUILD_WHEELS);
  const r = spawnSync('/usr/bin/python3', ['-I', path.join(dir, 'build_wheels.py'), dir], { input: JSON.stringify(wheels), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building wheels failed: ${r.stderr}`);
}

export interface Index {
  /** e.g. http://127.0.0.1:PORT/simple/ */
  url: string;
  close(): Promise<void>;
}

/** Serves `dir` (holding simple/) on a free loopback port. */
export async function serveIndex(dir: string): Promise<Index> {
  const proc: ChildProcess = spawn('/usr/bin/python3', ['-I', '-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the index did not start: ${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    proc.once('exit', (code) => reject(new Error(`the index exited with ${code}: ${out}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/simple/`,
    close: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
