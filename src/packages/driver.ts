// The program the installer sandbox runs (as a file of its own, node: imports
// only): it opens a loopback TCP proxy that forwards to the server's registry
// proxy on a Unix socket (the sandbox has no other network), points npm at it,
// runs npm and exits with npm's status.
//   node driver.mjs <proxy socket | -> <npm-cli.js> <npm args...>
export const DRIVER_SOURCE = `
import net from 'node:net';
import { spawn } from 'node:child_process';
const [sock, npmCli, ...npmArgs] = process.argv.slice(2);
const env = { ...process.env };
if (sock !== '-') {
  const server = net.createServer((c) => {
    const u = net.connect(sock);
    c.pipe(u);
    u.pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const url = 'http://127.0.0.1:' + server.address().port;
  env.npm_config_proxy = url;
  env.npm_config_https_proxy = url;
  env.npm_config_noproxy = '';
}
const child = spawn(process.execPath, [npmCli, ...npmArgs], { stdio: 'inherit', env });
const forward = (sig) => process.on(sig, () => child.kill(sig));
forward('SIGTERM');
forward('SIGINT');
child.on('error', (err) => { console.error('lamina-install: cannot start npm: ' + err.message); process.exit(127); });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 9 : 1)));
`;
