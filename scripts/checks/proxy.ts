/**
 * container.proxy: proxy variables that send the runner's requests for Ollama to a proxy (F12).
 * The symptom is an answer that is not Ollama's (a 503, an HTML page: "invalid character '<'")
 * with nothing in Ollama's log. Looked at: the runner's own environment (what it uses), the docker
 * CLI's config.json proxies (docker adds them to every container it creates), this shell, and the
 * daemon's settings (which only route the engine's own pulls, so they are reported, not blamed).
 */
import { containerBaseUrl } from '../facts.ts';
import { urlEndpoint } from '../ollama-host.ts';
import { concludedProbe } from '../plan.ts';
import { capturingProxy, noProxyWith, proxyFromEnvironment, type ProxySettings } from '../proxy.ts';
import { shellWord } from './fixes.ts';
import type { Check } from './types.ts';

export const proxyCheck: Check = {
  id: 'container.proxy',
  diagnose(facts) {
    // The runner's own URL; without a runner, the alias a runner would use, on Ollama's port.
    const alias = { host: 'host.docker.internal', port: facts.port };
    const { host, port } = (facts.container && urlEndpoint(containerBaseUrl(facts.container))) || alias;
    // What the fix adds: the alias, and the bridge address, which some set-ups use instead.
    // docker0's own address; older engines list no Gateway for the default bridge in `network inspect`.
    const bridge =
      facts.addresses.find((entry) => entry.name === 'docker0' && entry.family === 4)?.address ??
      facts.networks.find((network) => network.bridgeInterface === 'docker0')?.gateways[0] ??
      '172.17.0.1';
    const additions = [...new Set([host, bridge])];
    const runner: ProxySettings | undefined = facts.container ? proxyFromEnvironment(`${facts.containerName}'s environment`, (name) => facts.container?.env.get(name)) : undefined;
    const captured = [runner, ...facts.proxies].flatMap((settings) => {
      const proxy = settings && capturingProxy(settings, host, port);
      return proxy && settings ? [{ settings, proxy }] : [];
    });
    const inRunner = captured.find((entry) => entry.settings === runner);
    if (inRunner) {
      const probe = concludedProbe(facts);
      const broken = probe !== undefined && probe.outcome !== 'ok';
      return {
        status: broken ? 'fail' : 'warn',
        message: `${inRunner.settings.source} has HTTP_PROXY=${inRunner.proxy}${inRunner.settings.noProxy ? ` and NO_PROXY=${inRunner.settings.noProxy}` : ' and no NO_PROXY'}: requests to ${host}:${port} go to the proxy, not to Ollama${broken ? ` (the probe got: ${probe?.outcome}${probe?.status ? ` ${probe.status}` : ''})` : ''}.`,
        why: 'The proxy answers instead of Ollama (a 503 or an HTML page) and Ollama never sees the request (F12).',
        fix: `Recreate ${facts.containerName} with -e ${shellWord(facts, `NO_PROXY=${noProxyWith(inRunner.settings.noProxy, additions)}`)} -e ${shellWord(facts, `no_proxy=${noProxyWith(inRunner.settings.noProxy, additions)}`)}`,
      };
    }
    const elsewhere = captured[0];
    if (elsewhere) {
      const isClientConfig = elsewhere.settings.source.includes('config.json');
      return {
        status: 'warn',
        message: `${elsewhere.settings.source} has HTTP_PROXY=${elsewhere.proxy}, which captures ${host}:${port}.`,
        why: isClientConfig
          ? 'Every container docker creates from now on, the agent-runner included, gets that proxy and sends its Ollama requests to it (F12).'
          : 'Containers and tools started from here with the proxy passed on send their Ollama requests to it (F12).',
        fix: isClientConfig
          ? `Set "noProxy": "${noProxyWith(elsewhere.settings.noProxy, additions)}" under proxies.default in that file`
          : `export ${shellWord(facts, `NO_PROXY=${noProxyWith(elsewhere.settings.noProxy, additions)}`)} ${shellWord(facts, `no_proxy=${noProxyWith(elsewhere.settings.noProxy, additions)}`)}   # and in your shell profile`,
      };
    }
    const daemon = facts.docker.state === 'ok' ? facts.docker.daemonProxy : undefined;
    const daemonNote = daemon?.httpProxy ? ` The Docker daemon's own proxy (${daemon.httpProxy}) only carries its image pulls.` : '';
    const checked = [runner?.source, ...facts.proxies.map((settings) => settings.source)].filter(Boolean).join(', ');
    return { status: 'ok', message: `No proxy captures ${host}:${port} (looked at ${checked}).${daemonNote}` };
  },
};
