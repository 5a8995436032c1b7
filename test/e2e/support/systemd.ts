// A Debian container with systemd as PID 1, and an "ollama.service" in it that is
// installed the way Ollama's scripts/install.sh does it, but runs the stand-in.
import { containerIp, dockerExec, dockerExecOk, removeContainers, writeFileInContainer } from './docker.ts';
import { REPO_DIR, SYSTEMD_IMAGE } from './images.ts';
import { sh, shTry, waitFor } from './shell.ts';

/** Where the repo is mounted (read-only) inside the systemd container. */
export const REPO_MOUNT = '/opt/stigmer-setup';
/** Host node binary, mounted into the container (the image has no node). */
export const CONTAINER_NODE = '/usr/local/bin/node';

export interface SystemdContainerOptions {
  /** Repo to mount at /opt/stigmer-setup (default: this checkout). */
  repoDir?: string;
  image?: string;
  /** Boot wait bound; default 60 s. */
  bootTimeoutMs?: number;
}

/**
 * Start a systemd container and wait until it has booted; returns its IP on the
 * default bridge.
 *
 * The flags are the combination known to work on this host (cgroup v1, docker
 * 20.10, --privileged refused):
 *   --cap-add SYS_ADMIN + seccomp=unconfined   systemd mounts/namespaces
 *   --cgroupns=host + /sys/fs/cgroup rw        systemd must manage its cgroups
 *   --tmpfs /run /run/lock                     systemd expects tmpfs there
 *   -e container=docker                        systemd's container detection
 * An existing container with the same name is removed first.
 */
export async function startSystemdContainer(
  name: string,
  extraArgs: string[] = [],
  opts: SystemdContainerOptions = {},
): Promise<string> {
  const repoDir = opts.repoDir ?? REPO_DIR;
  const image = opts.image ?? SYSTEMD_IMAGE;
  await removeContainers(name);
  await sh({ timeout: '60s' })`docker run -d --name ${name} --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock -e container=docker -v ${`/usr/bin/node:${CONTAINER_NODE}:ro`} -v ${`${repoDir}:${REPO_MOUNT}:ro`} ${extraArgs} ${image} /lib/systemd/systemd`;

  const timeoutMs = opts.bootTimeoutMs ?? 60_000;
  let lastState = '';
  try {
    await waitFor(
      async () => {
        const r = await dockerExec(name, ['systemctl', 'is-system-running'], { timeout: '10s' });
        lastState = r.stdout.trim() || r.stderr.trim();
        // "degraded" = booted with some failed unit; good enough, like install.sh's check.
        return lastState === 'running' || lastState === 'degraded' ? lastState : undefined;
      },
      { timeoutMs, intervalMs: 500, what: `systemd in ${name} to reach running/degraded` },
    );
  } catch (err) {
    const logs = await shTry({ timeout: '10s' })`docker logs --tail 40 ${name}`;
    const failed = await dockerExec(name, ['systemctl', '--failed', '--no-pager'], { timeout: '10s' });
    throw new Error(
      `${(err as Error).message} (last state: ${lastState})\n--- docker logs ---\n${logs.stdout}${logs.stderr}\n--- failed units ---\n${failed.stdout}`,
    );
  }
  return containerIp(name);
}

/** The PATH install.sh would capture when run as root in this container. */
const INSTALL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * /etc/systemd/system/ollama.service exactly as ollama/ollama scripts/install.sh
 * writes it (see ollama-facts.md §3), with BINDIR=/usr/local/bin.
 */
export const OLLAMA_UNIT = `[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=${INSTALL_PATH}"

[Install]
WantedBy=default.target
`;

/** /usr/local/bin/ollama: runs the stand-in with the host's node (mounted read-only). */
export const OLLAMA_WRAPPER = `#!/bin/sh
exec ${CONTAINER_NODE} ${REPO_MOUNT}/test/support/fake-ollama.mjs "$@"
`;

/** Inside the container: GET http://127.0.0.1:PORT/api/version with node (no curl/python3 in the image). */
export async function containerLocalGet(container: string, url: string): Promise<{ status: number; body: string } | { error: string }> {
  const script = `fetch(process.argv[1],{signal:AbortSignal.timeout(3000)}).then(async r=>console.log(JSON.stringify({status:r.status,body:await r.text()}))).catch(e=>console.log(JSON.stringify({error:String(e.cause?.code??e.cause?.message??e.message)})))`;
  const r = await dockerExec(container, [CONTAINER_NODE, '-e', script, url], { timeout: '15s' });
  try {
    return JSON.parse(r.stdout.trim()) as { status: number; body: string } | { error: string };
  } catch {
    return { error: `exec failed (exit ${r.exitCode}): ${r.stderr.trim()}` };
  }
}

/**
 * Mimic install.sh inside a systemd container: create the `ollama` system user,
 * install /usr/local/bin/ollama (stand-in wrapper), write ollama.service, then
 * `systemctl daemon-reload && systemctl enable --now ollama`, and wait (30 s
 * bound) until 127.0.0.1:11434 answers inside the container.
 */
export async function installOllamaUnit(container: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  // `|| true`-style tolerance: re-running on the same container must work (useradd fails if the user exists).
  const hasUser = await dockerExec(container, ['id', '-u', 'ollama']);
  if (hasUser.exitCode !== 0) {
    await dockerExecOk(container, ['useradd', '-r', '-s', '/bin/false', '-U', '-m', '-d', '/usr/share/ollama', 'ollama']);
  }
  await writeFileInContainer(container, '/usr/local/bin/ollama', OLLAMA_WRAPPER, '0755');
  await writeFileInContainer(container, '/etc/systemd/system/ollama.service', OLLAMA_UNIT, '0644');
  await dockerExecOk(container, ['sh', '-c', 'systemctl daemon-reload && systemctl enable --now ollama'], { timeout: '60s' });
  await waitForOllamaInContainer(container, { timeoutMs: opts.timeoutMs ?? 30_000 });
}

/** Bounded wait until the service answers on 127.0.0.1:PORT inside the container. */
export async function waitForOllamaInContainer(
  container: string,
  opts: { port?: number; timeoutMs?: number } = {},
): Promise<string> {
  const url = `http://127.0.0.1:${opts.port ?? 11434}/api/version`;
  let last = '';
  try {
    return await waitFor(
      async () => {
        const r = await containerLocalGet(container, url);
        last = JSON.stringify(r);
        return 'status' in r && r.status === 200 ? r.body : undefined;
      },
      { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 500, what: `${url} inside ${container}` },
    );
  } catch (err) {
    const status = await dockerExec(container, ['systemctl', 'status', 'ollama', '--no-pager', '-l']);
    const journal = await dockerExec(container, ['journalctl', '-u', 'ollama', '--no-pager', '-n', '30']);
    throw new Error(`${(err as Error).message}; last: ${last}\n${status.stdout}\n${journal.stdout}`);
  }
}

/**
 * Write a systemd drop-in for ollama.service (like `systemctl edit`), then
 * daemon-reload + restart. Convenience for tests that prepare a state by hand.
 */
export async function setOllamaDropIn(container: string, fileName: string, content: string): Promise<void> {
  await writeFileInContainer(container, `/etc/systemd/system/ollama.service.d/${fileName}`, content);
  await dockerExecOk(container, ['sh', '-c', 'systemctl daemon-reload && systemctl restart ollama'], { timeout: '60s' });
}
