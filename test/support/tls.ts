/**
 * Certificates and tokens of a test's own, made with the system's openssl (Debian's
 * /usr/bin/openssl unless OPENSSL says otherwise) into a temporary directory: a CA, a
 * certificate the services present (for 127.0.0.1 and localhost, usable as server and as
 * client certificate), a client certificate for the CLI, a second CA that signed none of them,
 * and a tokens file with one token per role. `serviceEnv` and `clientEnv` are the variables
 * that configure a mesh and its clients with them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '#shared/config.js';
import { CLIENT_SECURITY_KEYS, type ClientSecurity, clientSecurity } from '#shared/grpc/client.js';
import type { Role } from '#shared/grpc/auth.js';
import { tempDir } from './temp.js';

const OPENSSL = process.env.OPENSSL ?? '/usr/bin/openssl';

export interface TestPki {
  readonly dir: string;
  /** CA certificate that signed every certificate below. */
  readonly ca: string;
  /** The services' certificate and key: SAN IP:127.0.0.1 and DNS:localhost, serverAuth and clientAuth. */
  readonly serviceCert: string;
  readonly serviceKey: string;
  /** A client-only certificate (the CLI's under mutual TLS). */
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA certificate that signed none of the above. */
  readonly otherCa: string;
  /** A certificate for 127.0.0.1 signed by otherCa: what an impostor would present. */
  readonly otherCert: string;
  readonly otherKey: string;
  /** One token per role, all listed in tokensFile. */
  readonly tokens: Readonly<Record<Role, string>>;
  readonly tokensFile: string;
  /** The variables of a service of a secured mesh: TLS (mutual unless said), the tokens file and the service token. */
  serviceEnv(mode?: 'on' | 'mutual'): Record<string, string>;
  /** The variables of a client (the CLI) of that mesh with a role's token; the client certificate under mutual TLS. */
  clientEnv(role: Role, mode?: 'on' | 'mutual'): Record<string, string>;
  /** A client's TLS and token from clientEnv, to hand to createClient as ClientOptions.security. */
  clientSecurity(env: Record<string, string>): ClientSecurity;
  remove(): void;
}

function openssl(cwd: string, ...args: string[]): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA: <name>.pem and <name>.key. */
function makeCa(dir: string, name: string): void {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
  );
}

/** A leaf certificate <name>.pem/<name>.key signed by the CA <ca>, with these extensions. */
function makeLeaf(dir: string, name: string, ca: string, extensions: string[]): void {
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
}

const SERVER_NAMES = 'subjectAltName=IP:127.0.0.1,DNS:localhost';

export function createTestPki(): TestPki {
  const temp = tempDir('pki');
  const dir = temp.path;
  try {
    makeCa(dir, 'ca');
    makeCa(dir, 'other-ca');
    makeLeaf(dir, 'service', 'ca', [SERVER_NAMES, 'basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth,clientAuth']);
    makeLeaf(dir, 'client', 'ca', ['basicConstraints=CA:FALSE', 'extendedKeyUsage=clientAuth']);
    makeLeaf(dir, 'other', 'other-ca', [SERVER_NAMES, 'basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth,clientAuth']);
  } catch (err) {
    temp.remove();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`making test certificates with ${OPENSSL} failed: ${stderr || (err as Error).message}`);
  }
  const token = (role: Role) => `${role}-${randomBytes(18).toString('base64url')}`;
  const tokens: Record<Role, string> = { admin: token('admin'), operator: token('operator'), service: token('service') };
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `# role token\nadmin ${tokens.admin}\noperator ${tokens.operator}\nservice ${tokens.service}\n`, {
    mode: 0o600,
  });
  const file = (name: string) => join(dir, name);
  const pki: TestPki = {
    dir,
    ca: file('ca.pem'),
    serviceCert: file('service.pem'),
    serviceKey: file('service.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
    otherCa: file('other-ca.pem'),
    otherCert: file('other.pem'),
    otherKey: file('other.key'),
    tokens,
    tokensFile,
    serviceEnv: (mode = 'mutual') => ({
      SLUICE_TLS: mode,
      SLUICE_TLS_CERT: pki.serviceCert,
      SLUICE_TLS_KEY: pki.serviceKey,
      SLUICE_TLS_CA: pki.ca,
      SLUICE_TOKENS_FILE: tokensFile,
      SLUICE_TOKEN: tokens.service,
    }),
    clientEnv: (role, mode = 'mutual') => ({
      SLUICE_TLS: mode,
      SLUICE_TLS_CA: pki.ca,
      SLUICE_TOKEN: tokens[role],
      ...(mode === 'mutual' ? { SLUICE_TLS_CERT: pki.clientCert, SLUICE_TLS_KEY: pki.clientKey } : {}),
    }),
    clientSecurity: (env) => clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, env)),
    remove: temp.remove,
  };
  return pki;
}
