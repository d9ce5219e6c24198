// The program the installer sandbox runs (as a file of its own, node: imports
// only): it opens a loopback TCP proxy that forwards to the server's registry
// proxy on a Unix socket (the sandbox has no other network), points the
// installer at it (npm's and pip's proxy settings), runs it and exits with its
// status. A program ending in .js (npm's CLI) runs on this node; any other
// (python3 -m pip) is executed as is.
//   node driver.mjs <proxy socket | -> <npm-cli.js | program> <args...>
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
  env.PIP_PROXY = url;
  env.http_proxy = env.https_proxy = env.HTTP_PROXY = env.HTTPS_PROXY = url;
}
const child = npmCli.endsWith('.js')
  ? spawn(process.execPath, [npmCli, ...npmArgs], { stdio: 'inherit', env })
  : spawn(npmCli, npmArgs, { stdio: 'inherit', env });
const forward = (sig) => process.on(sig, () => child.kill(sig));
forward('SIGTERM');
forward('SIGINT');
child.on('error', (err) => { console.error('lamina-install: cannot start ' + npmCli + ': ' + err.message); process.exit(127); });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 9 : 1)));
`;
