// TLS between gateways and workers (docs/cluster.md). The cluster secret and
// every event travel on these connections, so on a network other than one
// trusted host they should be encrypted: a worker given a certificate and key
// serves its internal API over HTTPS (so does a gateway, on its one port), and
// both trust the CA file named in the configuration when they call each other.
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';

/** File paths, from --tls-cert/--tls-key/--tls-ca or LAMINA_CLUSTER_TLS_CERT/_KEY/_CA. */
export interface ClusterTlsConfig {
  cert?: string;
  key?: string;
  ca?: string;
}

export interface ClusterTls {
  /** What this node serves with, when it has a certificate. */
  server?: { cert: Buffer; key: Buffer };
  /** The certificates this node trusts when it calls another node (default: the system's). */
  ca?: Buffer;
  /** undici connect options carrying the trust (for Pools). */
  connect: { ca?: Buffer };
  /** A dispatcher for one-off requests that trusts `ca`; undefined means undici's default. */
  dispatcher?: Dispatcher;
}

function readPem(file: string, what: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN ')) throw new Error(`the TLS ${what} ${file} is not a PEM file`);
  return pem;
}

export function clusterTlsFromEnv(flags: ClusterTlsConfig = {}): ClusterTlsConfig {
  return {
    cert: flags.cert || process.env.LAMINA_CLUSTER_TLS_CERT || undefined,
    key: flags.key || process.env.LAMINA_CLUSTER_TLS_KEY || undefined,
    ca: flags.ca || process.env.LAMINA_CLUSTER_TLS_CA || undefined,
  };
}

/** Reads the files once at start; a missing or half configuration is an error, never a silent fallback to plain HTTP. */
export function loadClusterTls(cfg: ClusterTlsConfig = {}): ClusterTls {
  if (!!cfg.cert !== !!cfg.key) throw new Error('TLS needs both a certificate and its key (--tls-cert and --tls-key)');
  const server = cfg.cert && cfg.key ? { cert: readPem(cfg.cert, 'certificate'), key: readPem(cfg.key, 'key') } : undefined;
  const ca = cfg.ca ? readPem(cfg.ca, 'CA file') : undefined;
  return { server, ca, connect: ca ? { ca } : {}, dispatcher: ca ? new Agent({ connect: { ca } }) : undefined };
}
