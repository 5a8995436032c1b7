// Thin docker CLI wrappers used by the e2e suites.
import type { Duration } from 'zx';
import { sh, shTry } from './shell.ts';

/**
 * Fail fast with an actionable message when dockerd is not reachable, instead of
 * letting the first `docker run` fail with a confusing error deep in a test.
 */
export async function requireDocker(): Promise<void> {
  const r = await shTry({ timeout: '20s' })`docker info --format ${'{{.ServerVersion}}'}`;
  if (r.exitCode !== 0) {
    throw new Error(
      'e2e needs a running dockerd; run `sudo bash .ci/run` or start dockerd ' +
        `(docker info failed: ${r.stderr.trim() || `exit ${r.exitCode}`})`,
    );
  }
}

/** Remove containers by name, ignoring ones that do not exist. */
export async function removeContainers(...names: string[]): Promise<void> {
  if (names.length === 0) return;
  // `docker rm -f` exits 1 if any name is missing but still removes the others.
  await shTry({ timeout: '60s' })`docker rm -f ${names}`;
}

export async function imageExists(image: string): Promise<boolean> {
  const r = await shTry({ timeout: '20s' })`docker image inspect ${image}`;
  return r.exitCode === 0;
}

/**
 * IP of a container on the default `bridge` network, falling back to the first
 * network it is attached to (for containers started with --network X).
 */
export async function containerIp(name: string): Promise<string> {
  const fmt = '{{with index .NetworkSettings.Networks "bridge"}}{{.IPAddress}}{{end}}';
  const ip = (await sh`docker inspect -f ${fmt} ${name}`).stdout.trim();
  if (ip) return ip;
  const any = (await sh`docker inspect -f ${'{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'} ${name}`).stdout
    .trim()
    .split(/\s+/)[0];
  if (!any) throw new Error(`container ${name} has no IP address`);
  return any;
}

/** Gateway of the default bridge as seen from containers (what host-gateway resolves to). */
export async function bridgeGateway(): Promise<string> {
  const gw = (await sh`docker network inspect bridge -f ${'{{range .IPAM.Config}}{{.Gateway}} {{end}}'}`).stdout
    .trim()
    .split(/\s+/)[0];
  return gw || '172.17.0.1';
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** `docker exec NAME cmd...` without throwing; bounded by `timeout` (default 60 s). */
export async function dockerExec(name: string, cmd: string[], opts: { input?: string; timeout?: Duration } = {}): Promise<ExecResult> {
  const interactive = opts.input !== undefined ? ['-i'] : [];
  const r = await shTry({ timeout: opts.timeout ?? '60s', ...(opts.input !== undefined ? { input: opts.input } : {}) })`docker exec ${interactive} ${name} ${cmd}`;
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** Like dockerExec, but throws with the output on non-zero exit. */
export async function dockerExecOk(name: string, cmd: string[], opts: { input?: string; timeout?: Duration } = {}): Promise<string> {
  const r = await dockerExec(name, cmd, opts);
  if (r.exitCode !== 0) {
    throw new Error(`docker exec ${name} ${cmd.join(' ')} exited ${r.exitCode}:\n${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

/** Write a file inside a running container (parent directories created), via stdin so no quoting issues. */
export async function writeFileInContainer(name: string, path: string, content: string, mode = '0644'): Promise<void> {
  // $1/$2 are positional args to sh -c, so the path is never re-parsed by the shell.
  await dockerExecOk(name, ['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode], {
    input: content,
  });
}
