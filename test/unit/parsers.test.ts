import { describe, expect, it } from 'vitest';
import { classifyRuntime, parseDockerInspect } from '../../scripts/parsers/docker.ts';
import { decodeAddress, parseProcNetTcp, TCP_LISTEN } from '../../platforms/linux/proc-net-tcp.ts';
import { environmentAssignmentsInUnitFile, parseEnvironmentFiles, parseEnvironmentList, parseSystemctlShow, parseSystemctlShowAll } from '../../platforms/linux/systemctl-show.ts';
import { readProbeOutput } from '../../scripts/container-probe.ts';
import { failed } from './support/context.ts';
import { describeFailure } from '../../scripts/system-files.ts';
import { fixture } from './support/fixtures.ts';

const listening = (text: string, family: 4 | 6) =>
  parseProcNetTcp(text, family)
    .filter((row) => row.state === TCP_LISTEN)
    .map((row) => `${row.address}:${row.port}`);

describe('/proc/net/tcp', () => {
  it('decodes loopback and wildcard listeners from a real capture', () => {
    expect(listening(fixture('proc-net/tcp-mediamtx-3226-loopback-and-wildcard-listen.txt'), 4)).toEqual([
      '127.0.0.1:25',
      '0.0.0.0:10250',
      '127.0.0.1:3306',
      '0.0.0.0:10251',
      '127.0.0.1:5038',
      '0.0.0.0:10350',
      '0.0.0.0:10255',
      '0.0.0.0:111',
      '0.0.0.0:8080',
    ]);
  });

  it('reads lines the kernel pads with trailing spaces, and skips non-LISTEN rows', () => {
    const rows = parseProcNetTcp(fixture('proc-net/tcp-jc-loopback-listen-padded.txt'), 4);
    expect(rows.filter((row) => row.state === TCP_LISTEN).map((row) => `${row.address}:${row.port}`)).toEqual(['127.0.0.53:53', '127.0.0.1:35303', '127.0.0.1:631']);
    expect(rows.some((row) => row.state === 0x08)).toBe(true);
    expect(rows.find((row) => row.port === 35303)?.uid).toBe(1000);
  });

  it('decodes IPv6 wildcard and ::1 listeners from real tcp6 captures', () => {
    expect(listening(fixture('proc-net/tcp6-serverfault-592574-wildcard-and-ipv6-loopback-listen.txt'), 6)).toEqual([':::111', ':::80', ':::22', '::1:631']);
    expect(listening(fixture('proc-net/tcp6-netdata-5322-ipv6-loopback-listen.txt'), 6)).toEqual(['::1:631', '::1:8125']);
    expect(listening(fixture('proc-net/tcp6-jc-wildcard-listen-timewait.txt'), 6)).toEqual([':::22']);
  });

  it("reads Ollama's default bind as the issue spells it: 0100007F:2CAA is 127.0.0.1:11434", () => {
    expect(decodeAddress('0100007F')).toBe('127.0.0.1');
    expect(Number.parseInt('2CAA', 16)).toBe(11434);
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
  });
});

describe('systemctl show', () => {
  it('reads LoadState for a missing and a loaded unit', () => {
    expect(parseSystemctlShow(fixture('systemctl/show-loadstate-activestate-not-found.txt')).get('LoadState')).toBe('not-found');
    expect(parseSystemctlShow(fixture('systemctl/show-loadstate-loaded-filebeat.txt')).get('LoadState')).toBe('loaded');
  });

  it("finds OLLAMA_HOST in a real ollama unit's Environment", () => {
    const environment = parseSystemctlShow(fixture('systemctl/show-ollama-environment-elided-ops-record.txt')).get('Environment') ?? '';
    const assignments = parseEnvironmentList(environment);
    expect(assignments.get('OLLAMA_HOST')).toBe('0.0.0.0');
    expect(assignments.get('OLLAMA_NUM_PARALLEL')).toBe('1');
  });

  it('keeps URL values with colons and commas intact', () => {
    const environment = parseSystemctlShow(fixture('systemctl/show-property-environment-docker-proxy-docs.txt')).get('Environment') ?? '';
    const assignments = parseEnvironmentList(environment);
    expect(assignments.get('HTTPS_PROXY')).toBe('https://proxy.example.com:3129');
    expect(assignments.get('NO_PROXY')).toBe('localhost,127.0.0.1,docker-registry.example.com,.corp');
  });

  it('undoes the quoting systemd applies to values with spaces', () => {
    // systemd.exec(5): Environment="VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"
    const assignments = parseEnvironmentList('"VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"');
    expect([...assignments]).toEqual([
      ['VAR1', 'word1 word2'],
      ['VAR2', 'word3'],
      ['VAR3', '$word 5 6'],
    ]);
  });

  it('only counts Environment= lines inside [Service] in a drop-in', () => {
    const text = '# comment\nEnvironment="OLLAMA_HOST=1.1.1.1:1"\n[Service]\nEnvironment="OLLAMA_MODELS=/data" "OLLAMA_HOST=0.0.0.0:11434"\n';
    expect(environmentAssignmentsInUnitFile(text, 'OLLAMA_HOST')).toEqual(['0.0.0.0:11434']);
    expect(environmentAssignmentsInUnitFile('[Service]\nEnvironment="OLLAMA_MODELS=/data"\n', 'OLLAMA_HOST')).toEqual([]);
  });
});

describe('docker inspect', () => {
  it('reads a bridge container from a real Docker Desktop capture', () => {
    const info = parseDockerInspect(fixture('docker/inspect-bridge-running-docker-desktop-mac.json'));
    expect(info?.networkMode).toBe('bridge');
    expect(info?.running).toBe(true);
    expect(info?.extraHosts).toEqual([]);
    expect(info?.env.has('PATH')).toBe(true);
  });

  it('reads NetworkMode "default" from older engines', () => {
    expect(parseDockerInspect(fixture('docker/inspect-bridge-default-networkmode-2019.json'))?.networkMode).toBe('default');
  });

  it('reads a host-network container', () => {
    // This capture is the single object; `docker inspect` prints it inside an array.
    const info = parseDockerInspect(`[${fixture('docker/inspect-host-networkmode-object-python-on-whales.json')}]`);
    expect(info?.networkMode).toBe('host');
  });

  it('returns nothing for the error docker prints for a missing object', () => {
    expect(parseDockerInspect(fixture('docker/inspect-no-such-object.txt'))).toBeUndefined();
  });
});

describe('docker info runtime', () => {
  const field = (text: string, name: string) => new RegExp(`^\\s*${name}:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  const runtimeOf = (file: string) => {
    const text = fixture(`docker/${file}`);
    return classifyRuntime(field(text, 'Operating System'), field(text, 'Name'), field(text, 'Kernel Version'));
  };

  it('tells the runtimes apart from real `docker info` output', () => {
    expect(runtimeOf('info-docker-desktop-mac-linuxkit.txt')).toBe('docker-desktop');
    expect(runtimeOf('info-orbstack.txt')).toBe('orbstack');
    expect(runtimeOf('info-colima-ubuntu-vm-server-excerpt.txt')).toBe('colima');
    expect(runtimeOf('info-colima-alpine-vm-server-excerpt.txt')).toBe('colima');
    expect(runtimeOf('info-native-linux-ubuntu-22.04.txt')).toBe('native');
  });

  it('recognises the releases that did not name themselves: Docker for Mac 17.x (a -moby kernel) and OrbStack 0.7 (an -orbstack kernel)', () => {
    expect(runtimeOf('info-docker-for-mac-17.03-moby.txt')).toBe('docker-desktop');
    expect(runtimeOf('info-orbstack-2023-alpine-containerized-excerpt.txt')).toBe('orbstack');
    // The same "Alpine Linux" on a plain Alpine host, or inside Colima, is not Docker's own VM.
    expect(runtimeOf('info-colima-alpine-vm-server-excerpt.txt')).toBe('colima');
    expect(classifyRuntime('Alpine Linux v3.18', 'buildhost', '6.1.29-0-lts')).toBe('native');
  });
});

describe('sudo -n', () => {
  it('turns "a password is required" into the --yes advice', () => {
    const argv = ['sudo', '-n', 'systemctl', 'daemon-reload'];
    const failed = (stderr: string) => ({ exitCode: 1, stdout: '', stderr });
    expect(describeFailure(argv, failed(fixture('sudo/sudo-n-password-required.txt')))).toMatch(/sudo needs a password, and --yes never prompts\. Run `sudo -v` first/);
    expect(describeFailure(argv, failed(fixture('sudo/sudo-no-tty-terminal-required-and-password-required.txt')))).toMatch(/Run `sudo -v` first/);
  });

  it('a sudo that asks for a fingerprint instead (sudo-rs with PAM) is named with what it printed, not taken for a password refusal', () => {
    const argv = ['sudo', '-n', 'systemctl', 'daemon-reload'];
    expect(describeFailure(argv, { exitCode: 1, stdout: '', stderr: fixture('sudo/sudo-rs-n-fingerprint-prompt.txt') })).toBe(
      '`sudo -n systemctl daemon-reload` failed (exit 1): [sudo] Place your right index finger on the fingerprint reader',
    );
  });

  it('names the command that failed, and never says sudo when no sudo ran', () => {
    const message = describeFailure(['systemctl', 'restart', 'ollama'], { exitCode: 1, stdout: '', stderr: 'Job for ollama.service failed because the control process exited with error code.\n' });
    expect(message).toBe('`systemctl restart ollama` failed (exit 1): Job for ollama.service failed because the control process exited with error code.');
    expect(describeFailure(['systemctl', 'restart', 'ollama'], { exitCode: 1, stdout: '', stderr: '' })).toBe('`systemctl restart ollama` failed (exit 1): no output');
    expect(describeFailure(['snap', 'set', 'ollama', 'host=x'], { exitCode: null, stdout: '', stderr: '', failure: 'not-found' })).toContain('`snap` was not found on PATH');
    expect(describeFailure(['systemctl', 'restart', 'ollama'], { exitCode: null, stdout: '', stderr: '', failure: 'timeout' }, 120_000)).toBe('`systemctl restart ollama` did not finish within 120 s, so it was stopped.');
  });
});

describe('systemctl show: MainPID and EnvironmentFiles of a running unit (a real diagnostic report)', () => {
  it('reads the main pid, and the env file path without its ignore_errors flag', () => {
    const all = parseSystemctlShowAll(fixture('systemctl/show-environmentfiles-mainpid-diagnostic-report.txt'));
    expect(all.get('MainPID')).toEqual(['2497959']);
    expect(all.get('LoadState')).toEqual(['loaded']);
    expect(parseEnvironmentFiles(all.get('EnvironmentFiles') ?? [])).toEqual([{ path: '/etc/ndsp/business-ops.env', optional: false }]);
  });
});

describe('a probe that could not run: the reason docker gave', () => {
  const unavailable = (name: string) => readProbeOutput(failed(fixture(`docker/${name}`), 1), 'http://host.docker.internal:11434', 'docker run python:3.11-slim', 8000);

  it('names the missing or stopped container, as docker exec says it', () => {
    expect(unavailable('exec-no-such-container.txt')).toEqual({ unavailable: 'Error response from daemon: No such container: dmarc-parser-1' });
    expect(unavailable('exec-container-not-running.txt')).toEqual({ unavailable: 'Error response from daemon: Container fdb9fa1319d0daaabc278b3ff8c5c85abac854e18eda5e8ea218b0faeb055158 is not running' });
  });

  it("names the missing image, not docker's closing \"See 'docker run --help'\" line", () => {
    expect(unavailable('run-pull-never-missing-image-docs.txt')).toEqual({ unavailable: 'docker: Error response from daemon: No such image: hello-world:latest.' });
    expect(unavailable('run-missing-image-no-such-image-balena.txt')).toEqual({
      unavailable: 'docker: Error response from daemon: No such image: balenalib/amd64-debian-balenacli:1021344afddd361752852d5b4475a6042c767b66.',
    });
  });
});
