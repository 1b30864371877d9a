// The nginx image: this machine's nginx (Debian's /usr/sbin/nginx) with the pod's configuration —
// `etc/nginx/nginx.conf` under the pod's directory when a ConfigMap is mounted there (the Linkerd
// survey's error injector mounts one with subPath), else a default site on port 80. Every pod
// shares this machine's addresses, so each `listen PORT` is bound to the pod's own address, and the
// pid file and temporary paths are the pod's.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exitWithError, podName } from './common.js';

const NGINX = process.env.STRAIT_NGINX ?? '/usr/sbin/nginx';
const DEFAULT_CONF = `events {}
http {
    server {
        listen 80;
        location / { return 200 "Welcome to nginx! (${podName()})\\n"; }
    }
}
`;

/** `listen 8080;` / `listen [::]:80;` / `listen *:80 default_server;` → `listen POD_IP:PORT …;` */
function bindListens(conf: string, podIp: string): string {
  return conf.replace(/(\blisten\s+)(?:(?:\*|\[::\]|0\.0\.0\.0):)?(\d+)(\b[^;]*;)/g, (_m, head: string, port: string, tail: string) => `${head}${podIp}:${port}${tail}`);
}

const podIp = process.env.POD_IP;
if (!podIp) exitWithError('nginx', 'env POD_IP is not set: the runtime gives every pod its address');
if (!existsSync(NGINX)) exitWithError('nginx', `${NGINX} is missing: install Debian's nginx (apt-get install nginx)`);
const mounted = resolve('etc/nginx/nginx.conf');
const conf = existsSync(mounted) ? readFileSync(mounted, 'utf8') : DEFAULT_CONF;
const work = resolve('.nginx');
mkdirSync(join(work, 'tmp'), { recursive: true });
const paths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((p) => `${p}_temp_path ${join(work, 'tmp', p)};`).join(' ');
const rewritten = bindListens(conf, podIp).replace(/\bhttp\s*\{/, (open) => `${open}\n    ${paths} access_log /dev/stdout;`);
writeFileSync(join(work, 'nginx.conf'), rewritten);
const child = spawn(NGINX, ['-p', work, '-c', join(work, 'nginx.conf'), '-e', 'stderr', '-g', `daemon off; pid ${join(work, 'nginx.pid')};`], { stdio: 'inherit' });
for (const signal of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
