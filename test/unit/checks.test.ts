/**
 * Every outcome of every check in the catalogue, from hand-made facts. The checks are pure, so each
 * case is one machine state and the finding a user would read for it: the status (fail only when the
 * agent-runner can't use Ollama now, warn for risks), the words that say why, and the fix to run.
 */
import { describe, expect, it } from 'vitest';
import { fixture } from './support/fixtures.ts';
import { DROP_IN_PATH } from '../../platforms/linux/systemd.ts';
import { notInstalledStrategy } from '../../platforms/linux/index.ts';
import { containerProbeCheck } from '../../scripts/checks/container-probe.ts';
import { containerRuntimeCheck } from '../../scripts/checks/container-runtime.ts';
import { exposureCheck } from '../../scripts/checks/exposure.ts';
import { hostProbeCheck } from '../../scripts/checks/host-probe.ts';
import { anyFailed, CHECKS, runChecks, summarize } from '../../scripts/checks/index.ts';
import { listenerCheck } from '../../scripts/checks/listener.ts';
import { modelCheck } from '../../scripts/checks/model.ts';
import { persistenceCheck } from '../../scripts/checks/persistence.ts';
import { serviceConfigCheck } from '../../scripts/checks/service-config.ts';
import type { Finding } from '../../scripts/checks/types.ts';
import type { ContainerRuntime } from '../../scripts/parsers/docker.ts';
import { facts, listener, manualFacts, probe, runnerContainer, snapDetection, snapFacts, systemdDetection } from './support/facts.ts';

const SKIPPED = { skipped: 'there is no stigmer-agent-runner container and no local image with python3 to probe from' };
const LOOPBACK = [listener('127.0.0.1')];

describe('the catalogue', () => {
  it('runs the checks in the order a person debugs: the server, its configuration, the route from the container, then Stigmer and exposure', () => {
    expect(CHECKS.map((check) => check.id)).toEqual([
      'ollama.listener',
      'ollama.conflict',
      'ollama.ipv6',
      'ollama.host-probe',
      'ollama.version',
      'ollama.service-config',
      'ollama.persistence',
      'container.runtime',
      'container.rootless',
      'container.alias',
      'container.proxy',
      'ollama.relay',
      'host.firewall',
      'container.probe',
      'ollama.model',
      'stigmer.config',
      'ollama.exposure',
    ]);
  });
});

describe('ollama.listener', () => {
  it('fails when nothing listens, with the command that starts the systemd service', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: [] }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('Nothing listens on port 11434');
    expect(finding.fix).toContain('sudo systemctl start ollama');
  });

  it('names the start command of the installation it found: snap, or install.sh when there is none', () => {
    expect(listenerCheck.diagnose(snapFacts(undefined, { listeners: [] })).fix).toBe('sudo snap start ollama');
    const none = facts({ strategy: notInstalledStrategy, detection: { strategy: 'linux-none', description: 'no Ollama service, snap or process found' }, listeners: [] });
    expect(listenerCheck.diagnose(none).fix).toContain('curl -fsSL https://ollama.com/install.sh | sh');
  });

  it('is ok with a loopback listener when the agent-runner shares the host network', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: LOOPBACK, container: runnerContainer({ networkMode: 'host' }), containerProbe: SKIPPED }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('127.0.0.1:11434');
    expect(finding.message).toContain('--network host');
  });

  it('only warns about a loopback listener when a container probe ran (the probe decides)', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: LOOPBACK, containerProbe: probe('refused') }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('127.0.0.1:11434 only: loopback');
    expect(finding.fix).toBe('npx stigmer-setup --yes');
  });

  it('fails on a loopback listener when there is no container to probe from', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: LOOPBACK, container: undefined, containerProbe: SKIPPED }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('loopback');
    expect(finding.why).toContain('Docker bridge');
    expect(finding.fix).toBe('npx stigmer-setup --yes');
  });

  it('for a hand-started Ollama, tells to kill that pid and start it again bound for containers', () => {
    const finding = listenerCheck.diagnose(manualFacts({ containerProbe: SKIPPED, container: undefined }, { process: { pid: 4242, argv: ['ollama', 'serve'] } }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('pid 4242: ollama serve');
    expect(finding.fix).toContain('kill 4242');
    expect(finding.fix).toContain('OLLAMA_HOST=0.0.0.0:11434 ollama serve');
    expect(finding.fix).not.toContain('stigmer-setup');
  });

  it('uses the configured port in the manual fix', () => {
    const finding = listenerCheck.diagnose(manualFacts({ port: 11500, listeners: [listener('127.0.0.1', { port: 11500 })], containerProbe: probe('refused') }));
    expect(finding.fix).toContain('OLLAMA_HOST=0.0.0.0:11500 ollama serve');
  });

  it('is ok on an IPv6 wildcard (:: on tcp6) and says it reaches all interfaces', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: [listener('::')], containerProbe: SKIPPED }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('[::]:11434');
    expect(finding.message).toContain('all interfaces');
  });

  it('counts one wildcard socket next to a loopback one as wildcard', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: [listener('127.0.0.1'), listener('0.0.0.0')], containerProbe: SKIPPED }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('all interfaces');
  });

  it('is ok on a specific non-loopback address', () => {
    const finding = listenerCheck.diagnose(facts({ listeners: [listener('192.168.1.10')], containerProbe: SKIPPED }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain('192.168.1.10:11434');
    expect(finding.message).not.toContain('all interfaces');
  });

  it('is skipped where listeners are not read (not Linux)', () => {
    const finding = listenerCheck.diagnose(facts({ platform: 'darwin', listeners: undefined, strategy: undefined, detection: undefined }));
    expect(finding.status).toBe('skip');
    expect(finding.message).toContain('darwin');
  });
});

describe('ollama.host-probe', () => {
  it('is ok with the version and the number of models', () => {
    const finding = hostProbeCheck.diagnose(facts({ hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.5.7', models: ['qwen2.5-coder:7b', 'llama3:latest'] } }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toBe('Ollama 0.5.7 answers on http://127.0.0.1:11434 with 2 models.');
    expect(hostProbeCheck.diagnose(facts({ hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.6.0', models: ['a'] } })).message).toContain('with 1 model.');
  });

  it('fails on a refused connection, with the start command', () => {
    const finding = hostProbeCheck.diagnose(facts({ listeners: [], hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'connect ECONNREFUSED 127.0.0.1:11434' } }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('connection refused');
    expect(finding.fix).toContain('systemctl start ollama');
  });

  it('fails on a timeout and says so', () => {
    const finding = hostProbeCheck.diagnose(facts({ hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'timeout', error: 'timed out after 3000 ms' } }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('timed out');
  });

  it('fails when another program answers on the port, and says how to find it', () => {
    const finding = hostProbeCheck.diagnose(facts({ hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'not-ollama', error: "HTTP 404 from http://127.0.0.1:11434/api/version is not Ollama's answer" } }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('Something other than Ollama');
    expect(finding.message).toContain('HTTP 404');
    expect(finding.fix).toContain("ss -ltnp 'sport = :11434'");
  });

  it('probes the address Ollama is bound to, and warns that tools on 127.0.0.1 are refused, with a --host 0.0.0.0 fix on its port', () => {
    const finding = hostProbeCheck.diagnose(
      facts({
        port: 8080,
        listeners: [listener('172.17.0.1', { port: 8080 })],
        hostProbe: { ok: true, url: 'http://172.17.0.1:8080', version: '0.17.1', models: ['qwen2.5-coder:7b'] },
        loopbackProbe: { ok: false, url: 'http://127.0.0.1:8080', kind: 'refused', error: 'ECONNREFUSED' },
      }),
    );
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('answers on http://172.17.0.1:8080');
    expect(finding.message).toContain('but not on http://127.0.0.1:8080 (connection refused)');
    expect(finding.why).toContain('second Ollama');
    expect(finding.fix).toBe('npx stigmer-setup --yes --host 0.0.0.0:8080');
  });

  it('is ok on a specific address when loopback answers too', () => {
    const finding = hostProbeCheck.diagnose(
      facts({
        listeners: [listener('172.17.0.1')],
        hostProbe: { ok: true, url: 'http://172.17.0.1:11434', version: '0.17.1', models: [] },
        loopbackProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.17.1', models: [] },
      }),
    );
    expect(finding).toMatchObject({ status: 'ok', message: 'Ollama 0.17.1 answers on http://172.17.0.1:11434 with 0 models.' });
  });
});

describe('container.probe', () => {
  it('is ok when the agent-runner gets Ollama\'s model list', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('ok', { models: 3 }) }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toBe('From stigmer-agent-runner, http://host.docker.internal:11434 answers: Ollama with 3 models.');
  });

  it('fails on refused with "listens on loopback only" when the listener is loopback (scenario A)', () => {
    const finding = containerProbeCheck.diagnose(facts({ listeners: LOOPBACK, detection: systemdDetection({ effectiveHost: undefined }), containerProbe: probe('refused') }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('refused: Ollama listens on loopback only (127.0.0.1:11434)');
    expect(finding.fix).toBe('npx stigmer-setup --yes');
  });

  it('for a hand-started loopback Ollama, the refused fix is to restart that process bound wider', () => {
    const finding = containerProbeCheck.diagnose(manualFacts({ containerProbe: probe('refused') }));
    expect(finding.message).toContain('refused: Ollama listens on loopback only');
    expect(finding.fix).toContain('kill 4242');
    expect(finding.fix).toContain('OLLAMA_HOST=0.0.0.0:11434 ollama serve');
  });

  it.each(['http://localhost:11434', 'http://127.0.0.1:11434', 'http://[::1]:11434'])(
    'fails on refused at %s from a bridge container: the URL points at the container itself',
    (url) => {
      const finding = containerProbeCheck.diagnose(
        facts({ listeners: LOOPBACK, container: runnerContainer({ env: new Map([['OLLAMA_BASE_URL', url]]) }), containerProbe: probe('refused', { url, address: '127.0.0.1' }) }),
      );
      expect(finding.status).toBe('fail');
      expect(finding.message).toContain('points at the container itself');
      expect(finding.fix).toContain('OLLAMA_BASE_URL=http://host.docker.internal:11434');
      expect(finding.fix).toContain('--add-host=host.docker.internal:host-gateway');
    },
  );

  it('fails on refused while Ollama listens wide with "nothing listens at" the resolved address', () => {
    const finding = containerProbeCheck.diagnose(facts({ listeners: [listener('0.0.0.0')], containerProbe: probe('refused', { url: 'http://host.docker.internal:11500' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('refused: nothing listens at 172.17.0.1:11500');
    expect(finding.fix).toContain('OLLAMA_BASE_URL uses port 11434');
  });

  it('fails on a name that does not resolve, with the --add-host fix', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('dns', { address: undefined, detail: '[Errno -2] Name or service not known' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('name did not resolve: host.docker.internal');
    expect(finding.fix).toContain('--add-host=host.docker.internal:host-gateway');
    expect(finding.fix).toContain('extra_hosts');
  });

  it('fails on a timeout, blaming the firewall, with a ufw rule for the bridge', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('timeout') }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('timed out connecting to 172.17.0.1:11434');
    expect(finding.why).toContain('firewall');
    expect(finding.fix).toContain('sudo ufw allow in on docker0 to any port 11434 proto tcp');
  });

  it('fails on HTTP 403 and names the Host header Ollama rejected', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('http-error', { url: 'http://172.17.0.1:11434', status: 403, detail: 'HTTP Error 403: Forbidden' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('HTTP 403');
    expect(finding.message).toContain('"172.17.0.1"');
    expect(finding.fix).toContain('OLLAMA_BASE_URL=http://host.docker.internal:11434');
  });

  it('fails on another HTTP error status with that status', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('http-error', { status: 500, detail: 'HTTP Error 500: Internal Server Error' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('HTTP 500: HTTP Error 500: Internal Server Error');
    expect(finding.message).not.toContain('Host header');
    expect(finding.fix).toContain('journalctl -u ollama');
  });

  it('fails on a non-Ollama answer (a proxy), with a NO_PROXY fix', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('not-ollama', { status: 200, detail: '<html>Squid proxy</html>' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('non-Ollama answer (HTTP 200: <html>Squid proxy</html>)');
    expect(finding.fix).toContain('NO_PROXY=host.docker.internal');
    expect(finding.fix).toContain("stigmer-agent-runner's environment");
  });

  it('fails on any other probe error, with its detail', () => {
    const finding = containerProbeCheck.diagnose(facts({ containerProbe: probe('error', { detail: 'OSError(101, Network is unreachable)' }) }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain('probe error: OSError(101, Network is unreachable)');
  });

  it('is skipped with the reason when there is nothing to probe from, and carries the fix when there is one', () => {
    const withFix = containerProbeCheck.diagnose(facts({ containerProbe: { skipped: 'stigmer-agent-runner exists but is not running', fix: 'docker start stigmer-agent-runner' } }));
    expect(withFix).toEqual({ status: 'skip', message: 'No container probe: stigmer-agent-runner exists but is not running.', fix: 'docker start stigmer-agent-runner' });
    const without = containerProbeCheck.diagnose(facts({ docker: { state: 'missing' }, container: undefined, containerProbe: { skipped: 'no container runtime: `docker` is not on PATH' } }));
    expect(without.status).toBe('skip');
    expect(without.message).toContain('`docker` is not on PATH');
    expect(without.fix).toBeUndefined();
  });
});

describe('container.runtime', () => {
  it('tells a user without access to the Docker socket how to get it, not to start Docker', () => {
    // The text the docker CLI prints for a user outside the docker group (moby/moby#30762).
    const detail = fixture('docker/info-permission-denied.txt').trim();
    const finding = containerRuntimeCheck.diagnose(facts({ docker: { state: 'unreachable', detail } }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toContain('usermod -aG docker');
  });

  it('is skipped without docker', () => {
    const finding = containerRuntimeCheck.diagnose(facts({ docker: { state: 'missing' }, container: undefined }));
    expect(finding.status).toBe('skip');
    expect(finding.message).toContain('`docker` is not on PATH');
  });

  it('warns when the engine does not answer, with the reason and how to start it', () => {
    const finding = containerRuntimeCheck.diagnose(facts({ docker: { state: 'unreachable', detail: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' }, container: undefined }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('Cannot connect to the Docker daemon');
    expect(finding.fix).toContain('sudo systemctl start docker');
  });

  const runtimes: [ContainerRuntime, string][] = [
    ['docker-desktop', 'Docker Desktop'],
    ['orbstack', 'OrbStack'],
    ['colima', 'Colima'],
    ['rancher-desktop', 'Rancher Desktop'],
    ['podman', 'Podman'],
    ['native', 'native Docker Engine'],
  ];
  it.each(runtimes)('is ok on %s and names it "%s"', (runtime, name) => {
    const finding = containerRuntimeCheck.diagnose(facts({ docker: { state: 'ok', runtime, operatingSystem: 'Some OS', serverVersion: '27.1.1' } }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toMatch(new RegExp(`^${name} 27\\.1\\.1 \\(Some OS\\)`));
    expect(finding.message).toContain('stigmer-agent-runner uses network "bridge"');
  });

  it('says when the runner is stopped, missing, or on the host network, and when it runs inside WSL', () => {
    expect(containerRuntimeCheck.diagnose(facts({ container: runnerContainer({ running: false }) })).message).toContain('uses network "bridge" (stopped)');
    expect(containerRuntimeCheck.diagnose(facts({ container: undefined })).message).toContain('no stigmer-agent-runner container');
    expect(containerRuntimeCheck.diagnose(facts({ container: runnerContainer({ networkMode: 'host' }) })).message).toContain('uses network "host"');
    expect(containerRuntimeCheck.diagnose(facts({ wsl: true })).message).toContain(', inside WSL');
  });
});

describe('ollama.service-config', () => {
  it('is skipped where no detection ran (not Linux) and when Ollama is not installed', () => {
    expect(serviceConfigCheck.diagnose(facts({ platform: 'darwin', strategy: undefined, detection: undefined, listeners: undefined })).status).toBe('skip');
    const none = serviceConfigCheck.diagnose(facts({ strategy: notInstalledStrategy, detection: { strategy: 'linux-none', description: 'no Ollama service, snap or process found' }, listeners: [] }));
    expect(none.status).toBe('skip');
  });

  it('leaves a hand-started Ollama\'s "does not last" to ollama.persistence', () => {
    const facts = manualFacts({ listeners: [listener('0.0.0.0')] });
    expect(serviceConfigCheck.diagnose(facts).status).toBe('ok');
    const finding = persistenceCheck.diagnose(facts);
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('a hand-started `ollama serve` (pid 4242)');
    expect(finding.message).toContain('lasts only until that process stops');
    expect(finding.fix).toContain('install.sh');
  });

  it('warns with the error, not "no systemd", when systemctl show failed', () => {
    const finding = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ systemctlError: 'Failed to connect to bus: No such file or directory' }) }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('Failed to connect to bus');
    expect(finding.fix).toBe('sudo npx stigmer-setup doctor');
  });

  it('warns when the unit is installed but systemd is not running', () => {
    const finding = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ systemdRunning: false, effectiveHost: undefined }) }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('/etc/systemd/system/ollama.service is installed, but systemd is not running');
    expect(finding.fix).toContain('systemd=true');
  });

  it('fails naming the later drop-in that overrides ours', () => {
    const zz = '/etc/systemd/system/ollama.service.d/zz-local.conf';
    const detection = systemdDetection({
      effectiveHost: '127.0.0.1:11434',
      dropIns: [
        { path: DROP_IN_PATH, ollamaHost: ['0.0.0.0:11434'] },
        { path: zz, ollamaHost: ['127.0.0.1:11434'] },
      ],
    });
    const finding = serviceConfigCheck.diagnose(facts({ detection, listeners: LOOPBACK }));
    expect(finding.status).toBe('fail');
    expect(finding.message).toContain(`${zz} sets OLLAMA_HOST=127.0.0.1:11434`);
    expect(finding.message).toContain('overrides stigmer-setup.conf');
    expect(finding.fix).toContain(`Remove the OLLAMA_HOST line from ${zz}`);
    expect(finding.fix).toContain('systemctl restart ollama');
  });

  it("does not blame a user's override.conf, which systemd reads before stigmer-setup.conf", () => {
    const detection = systemdDetection({
      effectiveHost: '0.0.0.0:11434',
      dropIns: [
        { path: '/etc/systemd/system/ollama.service.d/override.conf', ollamaHost: ['127.0.0.1:11434'] },
        { path: DROP_IN_PATH, ollamaHost: ['0.0.0.0:11434'] },
      ],
    });
    expect(serviceConfigCheck.diagnose(facts({ detection })).status).toBe('ok');
  });

  it('leaves "a wide listener will not survive a restart" to ollama.persistence', () => {
    const wide = facts({ detection: systemdDetection({ effectiveHost: undefined }), listeners: [listener('0.0.0.0')], containerProbe: probe('ok') });
    const config = serviceConfigCheck.diagnose(wide);
    expect(config.status).toBe('ok');
    expect(config.message).toContain('no OLLAMA_HOST');
    expect(config.message).toContain('ollama.persistence says whether that lasts');
    const finding = persistenceCheck.diagnose(wide);
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain("starts it with Ollama's default, 127.0.0.1");
    expect(finding.why).toContain('restart, upgrade or reboot');
    expect(finding.fix).toBe('npx stigmer-setup --yes');
  });

  it('warns that the running Ollama has not picked up a wide configuration, with the restart command', () => {
    const finding = serviceConfigCheck.diagnose(facts({ listeners: LOOPBACK }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('OLLAMA_HOST=0.0.0.0:11434');
    expect(finding.message).toContain('has not picked it up');
    expect(finding.fix).toBe('sudo systemctl daemon-reload && sudo systemctl restart ollama');
  });

  it('gives the snap restart command for a snap that has not picked up its host option', () => {
    const finding = serviceConfigCheck.diagnose(snapFacts('0.0.0.0:11434', { listeners: LOOPBACK }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toBe('sudo snap restart ollama');
  });

  it('is ok when configuration and listener agree, and shows where Ollama binds', () => {
    const finding = serviceConfigCheck.diagnose(facts());
    expect(finding.status).toBe('ok');
    expect(finding.message).toContain(`OLLAMA_HOST=0.0.0.0:11434 (from ${DROP_IN_PATH}).`);
    // An unusual spelling gets its meaning spelled out.
    const colon = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ effectiveHost: ':11434' }) }));
    expect(colon.message).toContain('OLLAMA_HOST=:11434');
    expect(colon.message).toContain('which binds every interface, port 11434');
    const explicit = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ effectiveHost: 'http://0.0.0.0:11434' }) }));
    expect(explicit.message).toContain('which binds every interface, port 11434');
  });

  it('warns that a URL without a port means port 80 to Ollama', () => {
    const finding = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ effectiveHost: 'http://0.0.0.0' }), listeners: [listener('::', { port: 80 })], port: 80 }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('OLLAMA_HOST=http://0.0.0.0, which Ollama reads as port 80, not 11434');
    expect(finding.fix).toBe('npx stigmer-setup --yes --host 0.0.0.0:11434');
    const loopback = serviceConfigCheck.diagnose(facts({ detection: systemdDetection({ effectiveHost: undefined }), listeners: LOOPBACK }));
    expect(loopback.status).toBe('ok');
    expect(loopback.message).toContain("no OLLAMA_HOST (Ollama's default, 127.0.0.1:11434)");
    expect(serviceConfigCheck.diagnose(snapFacts('0.0.0.0:11434')).status).toBe('ok');
    expect(snapDetection('0.0.0.0:11434').configuredIn).toBe('snap get ollama host');
  });
});

describe('ollama.model', () => {
  it('is skipped when the host probe failed', () => {
    expect(modelCheck.diagnose(facts({ hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'ECONNREFUSED' } })).status).toBe('skip');
  });

  it('is skipped when the runner does not use Ollama', () => {
    const finding = modelCheck.diagnose(facts({ expectedModel: undefined }));
    expect(finding.status).toBe('skip');
    expect(finding.message).toContain('STIGMER_LLM_PROVIDER');
  });

  it('is ok when the model is pulled', () => {
    const finding = modelCheck.diagnose(facts({ hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.5.7', models: ['llama3:latest', 'qwen2.5-coder:7b'] } }));
    expect(finding.status).toBe('ok');
    expect(finding.message).toBe("Stigmer's model qwen2.5-coder:7b (from the runner's default) is pulled.");
  });

  it('counts "name:latest" as the model "name"', () => {
    expect(modelCheck.diagnose(facts({ expectedModel: 'llama3', hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.5.7', models: ['llama3:latest'] } })).status).toBe('ok');
  });

  it('warns about a missing model (another tag does not count), with the pull command', () => {
    const finding = modelCheck.diagnose(facts({ hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.5.7', models: ['qwen2.5-coder:14b'] } }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toContain('qwen2.5-coder:7b (from the runner\'s default) is not pulled (Ollama has qwen2.5-coder:14b)');
    expect(finding.fix).toBe('ollama pull qwen2.5-coder:7b');
    expect(modelCheck.diagnose(facts({ hostProbe: { ok: true, url: 'http://127.0.0.1:11434', version: '0.5.7', models: [] } })).message).toContain('no models');
  });
});

describe('ollama.exposure', () => {
  it('warns, listing where it answered, when Ollama on every interface answers on a LAN address; with a firewall fix on its port', () => {
    const exposure = [{ address: '192.168.1.10', interfaceName: 'eth0', family: 4 as const, answered: true }];
    const finding = exposureCheck.diagnose(facts({ listeners: [listener('::')], exposure }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe('Ollama answers without authentication on 192.168.1.10:11434 (eth0): addresses other machines on your network can reach, unless a firewall stops them.');
    expect(finding.why).toContain('no authentication');
    expect(finding.fix).toContain('sudo ufw deny 11434/tcp');
    expect(finding.fix).toContain('--host 172.17.0.1:11434');
  });

  it('is ok on every interface when no LAN or public address answered, and says which were asked', () => {
    const silent = exposureCheck.diagnose(facts({ listeners: [listener('::')], exposure: [{ address: '192.168.1.10', interfaceName: 'eth0', family: 4, answered: false }] }));
    expect(silent).toMatchObject({ status: 'ok', message: 'Ollama listens on every interface, but did not answer on 192.168.1.10 when asked from this machine.' });
    expect(exposureCheck.diagnose(facts({ listeners: [listener('::')], exposure: [] })).message).toContain('no LAN or public address');
  });

  it('is ok on loopback and on the Docker bridge address, which only containers reach', () => {
    expect(exposureCheck.diagnose(facts({ listeners: LOOPBACK })).status).toBe('ok');
    const bridge = exposureCheck.diagnose(facts({ listeners: [listener('172.17.0.1')] }));
    expect(bridge.status).toBe('ok');
    expect(bridge.message).toContain('Docker bridge');
  });

  it('warns about a bind to a LAN address, naming the interface, and offers the bridge address instead', () => {
    const finding = exposureCheck.diagnose(facts({ listeners: [listener('192.168.1.10')] }));
    expect(finding.status).toBe('warn');
    expect(finding.message).toBe('Ollama answers without authentication on 192.168.1.10:11434: addresses other machines on your network can reach, unless a firewall stops them.');
    expect(finding.why).toContain('no authentication');
    expect(finding.fix).toContain('Or bind only the Docker bridge, which only containers reach: npx stigmer-setup --yes --host 172.17.0.1:11434');
  });

  it('warns about an address that is not one of this machine\'s (it may be anything), with the firewall fix when there is no bridge', () => {
    const finding = exposureCheck.diagnose(facts({ listeners: [listener('10.9.8.7')], addresses: [{ name: 'lo', address: '127.0.0.1', family: 4, internal: true }] }));
    expect(finding.status).toBe('warn');
    expect(finding.fix).toContain('sudo ufw allow in on docker0');
  });

  it('is skipped when nothing listens, or listeners are unknown', () => {
    expect(exposureCheck.diagnose(facts({ listeners: [] })).status).toBe('skip');
    expect(exposureCheck.diagnose(facts({ listeners: undefined })).status).toBe('skip');
  });
});

describe('summary', () => {
  const finding = (status: Finding['status']): Finding => ({ id: 'x', status, message: '' });
  const statuses = (...list: Finding['status'][]) => list.map(finding);

  it('counts passed among the checks that ran, then warnings, failures and skips', () => {
    expect(summarize(statuses('ok', 'ok', 'ok', 'ok', 'warn', 'fail', 'skip'))).toBe('4/6 checks passed (1 warning, 1 failed); 1 skipped');
    expect(summarize(statuses('ok', 'warn', 'warn', 'skip', 'skip'))).toBe('1/3 checks passed (2 warnings); 2 skipped');
    expect(summarize(statuses('ok', 'ok', 'skip'))).toBe('2/2 checks passed; 1 skipped');
    // All passed: the summary is a ✓ line too, so a healthy run prints nothing else.
    expect(summarize(statuses('ok', 'ok'))).toBe('✓ All 2 checks passed');
  });

  it('anyFailed is true exactly when a check failed, not for warnings', () => {
    expect(anyFailed([finding('ok'), finding('warn'), finding('skip')])).toBe(false);
    expect(anyFailed([finding('ok'), finding('fail')])).toBe(true);
  });

  it('a machine that works after setup passes, with only the exposure warning when it answers on the LAN', () => {
    const findings = runChecks(facts({ exposure: [{ address: '192.168.1.10', interfaceName: 'eth0', family: 4, answered: true }] }));
    // No relay is installed on this machine: ollama.relay has nothing to look at.
    expect(findings.filter((f) => f.status !== 'ok').map((f) => [f.id, f.status])).toEqual([['ollama.relay', 'skip'], ['ollama.exposure', 'warn']]);
    expect(summarize(findings)).toBe('15/16 checks passed (1 warning); 1 skipped');
    expect(anyFailed(findings)).toBe(false);
  });

  it("the seed's machine (loopback Ollama, bridge runner) fails on the container probe", () => {
    const findings = runChecks(facts({ detection: systemdDetection({ effectiveHost: undefined }), listeners: LOOPBACK, containerProbe: probe('refused') }));
    expect(findings.filter((f) => f.status !== 'ok').map((f) => [f.id, f.status])).toEqual([
      ['ollama.listener', 'warn'],
      ['ollama.relay', 'skip'],
      ['host.firewall', 'skip'],
      ['container.probe', 'fail'],
    ]);
    expect(summarize(findings)).toBe('13/15 checks passed (1 warning, 1 failed); 2 skipped');
    expect(anyFailed(findings)).toBe(true);
  });

  it('without a container runtime, the container checks are skipped and a loopback Ollama fails', () => {
    const findings = runChecks(
      facts({
        detection: systemdDetection({ effectiveHost: undefined }),
        listeners: LOOPBACK,
        docker: { state: 'missing' },
        container: undefined,
        containerProbe: { skipped: 'no container runtime: `docker` is not on PATH' },
      }),
    );
    expect(Object.fromEntries(findings.map((f) => [f.id, f.status]))).toMatchObject({
      'ollama.listener': 'fail',
      'container.runtime': 'skip',
      'container.rootless': 'skip',
      'container.alias': 'skip',
      'ollama.relay': 'skip',
      'host.firewall': 'skip',
      'container.probe': 'skip',
    });
    expect(summarize(findings)).toBe('10/11 checks passed (1 failed); 6 skipped');
  });
});
