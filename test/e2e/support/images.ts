// Locally built test images. Nothing can be pulled from a registry here, so both
// images are made from scratch with `docker import` and cached by name: a second
// run finds the image and returns at once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageExists } from './docker.ts';
import { sh, shTry } from './shell.ts';

/** Bump the tag when the image recipe changes, so stale caches are not reused. */
export const HOSTUSR_IMAGE = 'stigmer-e2e/hostusr:1';
// Bump the tag when the package list changes, so cached images are rebuilt.
export const SYSTEMD_IMAGE = 'stigmer-e2e/systemd:3';

/** Repo root (this file is test/e2e/support/images.ts). */
export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Gitignored cache for the debootstrap rootfs. */
export const CACHE_DIR = path.join(REPO_DIR, '.cache', 'e2e');

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function log(msg: string): void {
  process.stderr.write(`[e2e] ${msg}\n`);
}

/**
 * Containers from this image must run with `-v /usr:/usr:ro`: the image itself is
 * only an empty skeleton, and the host's /usr supplies python3, curl, node and
 * coreutils. On this machine /bin, /lib, /lib64 and /sbin are symlinks into /usr,
 * so the same symlinks in the image make the dynamic loader and libc resolve.
 * Used as a cheap "another container on the bridge" client (the probe).
 */
export async function buildHostUsrImage(): Promise<string> {
  if (await imageExists(HOSTUSR_IMAGE)) return HOSTUSR_IMAGE;
  const started = Date.now();
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'stigmer-hostusr-'));
  try {
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'run', 'root', 'var', 'usr']) {
      fs.mkdirSync(path.join(stage, d), { recursive: true });
    }
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    fs.chmodSync(path.join(stage, 'root'), 0o700);
    for (const [link, target] of [
      ['bin', 'usr/bin'],
      ['lib', 'usr/lib'],
      ['lib64', 'usr/lib64'],
      ['sbin', 'usr/sbin'],
    ] as const) {
      fs.symlinkSync(target, path.join(stage, link));
    }
    // Without nsswitch.conf glibc still works, but "files dns" makes /etc/hosts
    // entries (e.g. host.docker.internal from --add-host) resolve before DNS.
    fs.writeFileSync(path.join(stage, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
    fs.writeFileSync(
      path.join(stage, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    );
    fs.writeFileSync(path.join(stage, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    // --numeric-owner/--owner: the image must be root-owned whoever runs the build.
    await sh({ timeout: '120s' })`tar -C ${stage} --owner=0 --group=0 --numeric-owner -c . | docker import --change ${`ENV ${PATH_ENV}`} - ${HOSTUSR_IMAGE}`;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  const check = await shTry({ timeout: '60s' })`docker run --rm -v /usr:/usr:ro ${HOSTUSR_IMAGE} python3 -c ${'print(1)'}`;
  if (check.exitCode !== 0 || check.stdout.trim() !== '1') {
    throw new Error(`${HOSTUSR_IMAGE} is broken: python3 -c 'print(1)' gave exit ${check.exitCode}: ${check.stdout}${check.stderr}`);
  }
  log(`built ${HOSTUSR_IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return HOSTUSR_IMAGE;
}

/**
 * A self-contained image with python3 and nothing else, named like the official python image so
 * stigmer-setup's fallback probe (no agent-runner container: `docker run --pull=never` from a
 * local python image) finds it. Unlike the hostusr image it needs no mounts, because
 * stigmer-setup runs it as is. Built from the host's own python3.11 and the libraries it links.
 */
export const PYTHON_IMAGE = 'python:3.11-stigmer-e2e';

export async function buildPythonImage(): Promise<string> {
  if (await imageExists(PYTHON_IMAGE)) return PYTHON_IMAGE;
  const started = Date.now();
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'stigmer-python-'));
  try {
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'usr/bin', 'usr/lib/x86_64-linux-gnu', 'usr/lib64']) {
      fs.mkdirSync(path.join(stage, d), { recursive: true });
    }
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']] as const) {
      fs.symlinkSync(target, path.join(stage, link));
    }
    fs.writeFileSync(path.join(stage, 'etc/nsswitch.conf'), 'hosts: files dns\n');
    fs.writeFileSync(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    // The interpreter, its standard library, and the shared libraries `ldd python3.11` lists.
    const binary = fs.realpathSync('/usr/bin/python3');
    fs.copyFileSync(binary, path.join(stage, 'usr/bin', path.basename(binary)));
    fs.symlinkSync(path.basename(binary), path.join(stage, 'usr/bin/python3'));
    fs.cpSync(`/usr/lib/${path.basename(binary)}`, path.join(stage, 'usr/lib', path.basename(binary)), { recursive: true, verbatimSymlinks: true });
    const ldd = await sh({ timeout: '30s' })`ldd ${binary}`;
    for (const library of ldd.stdout.matchAll(/(\/\S+\.so[.\d]*)/g)) {
      const real = fs.realpathSync(library[1] as string);
      const target = path.join(stage, (library[1] as string).replace(/^\/lib(64)?\//, 'usr/lib$1/'));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(real, target);
    }
    await sh({ timeout: '120s' })`tar -C ${stage} --owner=0 --group=0 --numeric-owner -c . | docker import --change ${`ENV ${PATH_ENV}`} - ${PYTHON_IMAGE}`;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  const check = await shTry({ timeout: '60s' })`docker run --rm ${PYTHON_IMAGE} python3 -c ${'import urllib.request, json; print(1)'}`;
  if (check.exitCode !== 0 || check.stdout.trim() !== '1') {
    throw new Error(`${PYTHON_IMAGE} is broken: exit ${check.exitCode}: ${check.stdout}${check.stderr}`);
  }
  log(`built ${PYTHON_IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return PYTHON_IMAGE;
}

/**
 * The Debian mirror apt on this machine already uses (the only one reachable
 * offline-ish). Reads deb822 .sources and one-line sources.list entries and
 * picks the first that serves the plain `bookworm` suite.
 */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of fs.readdirSync('/etc/apt/sources.list.d')) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', f));
    }
  } catch {
    // no sources.list.d
  }
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] =>
          new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (field('Enabled')[0] === 'no') continue;
        if (!field('Types').includes('deb') || !field('Suites').includes('bookworm')) continue;
        const uri = field('URIs').find((u) => /^https?:\/\//.test(u));
        if (uri) return uri;
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+bookworm\s/.exec(line);
        if (m?.[1]) return m[1];
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

/**
 * Debian bookworm with systemd as PID 1, for the Linux "ollama.service" suites.
 * debootstrap needs network to the apt mirror, so it is retried (3 attempts).
 * The finished rootfs stays in .cache/e2e so re-importing (e.g. after a docker
 * prune) does not need the network again.
 */
export async function buildSystemdImage(): Promise<string> {
  if (await imageExists(SYSTEMD_IMAGE)) return SYSTEMD_IMAGE;
  const started = Date.now();
  const rootfs = path.join(CACHE_DIR, `systemd-rootfs-${SYSTEMD_IMAGE.split(':')[1]}`);
  const marker = `${rootfs}.ok`;
  fs.mkdirSync(CACHE_DIR, { recursive: true });

  if (!fs.existsSync(marker)) {
    const mirror = debianMirror();
    let lastErr = '';
    let ok = false;
    for (let attempt = 1; attempt <= 3 && !ok; attempt++) {
      fs.rmSync(rootfs, { recursive: true, force: true });
      log(`debootstrap bookworm from ${mirror} (attempt ${attempt}/3)`);
      const r = await shTry({ timeout: '20m' })`debootstrap --variant=minbase --include=systemd,systemd-sysv,iproute2,passwd,sudo,dbus bookworm ${rootfs} ${mirror}`;
      if (r.exitCode === 0) ok = true;
      else lastErr = `${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`;
    }
    if (!ok) throw new Error(`debootstrap failed 3 times:\n${lastErr}`);
    prepareSystemdRootfs(rootfs);
    fs.writeFileSync(marker, new Date().toISOString());
  }

  await sh({ timeout: '10m' })`tar -C ${rootfs} --numeric-owner -c . | docker import --change ${`ENV ${PATH_ENV}`} --change ${'ENV container=docker'} - ${SYSTEMD_IMAGE}`;
  log(`built ${SYSTEMD_IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return SYSTEMD_IMAGE;
}

/**
 * Container-friendly tweaks: drop the apt cache (smaller image), and mask units
 * that only make sense on real hardware so boot ends "running" rather than
 * "degraded" where possible.
 */
export function prepareSystemdRootfs(rootfs: string): void {
  fs.rmSync(path.join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
  fs.mkdirSync(path.join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
  for (const f of fs.readdirSync(path.join(rootfs, 'var/lib/apt/lists'), { withFileTypes: true })) {
    if (f.isFile()) fs.rmSync(path.join(rootfs, 'var/lib/apt/lists', f.name), { force: true });
  }
  const unitDir = path.join(rootfs, 'etc/systemd/system');
  fs.mkdirSync(unitDir, { recursive: true });
  for (const unit of [
    'getty@tty1.service',
    'console-getty.service',
    'systemd-udevd.service',
    'systemd-udev-trigger.service',
    'systemd-remount-fs.service',
    'systemd-firstboot.service',
    'sys-kernel-debug.mount',
    'sys-kernel-tracing.mount',
    'sys-kernel-config.mount',
    'dev-hugepages.mount',
    'dev-mqueue.mount',
  ]) {
    const link = path.join(unitDir, unit);
    fs.rmSync(link, { force: true });
    fs.symlinkSync('/dev/null', link);
  }
  fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'stigmer-e2e\n');
}
