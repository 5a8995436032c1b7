/**
 * stigmer.config: what Stigmer itself will ask for, and whether the runner can use it
 * (stigmer.md §2). Stigmer's CLI resolves llm.* as environment > ~/.stigmer/config.yaml > default.
 * Its supervisor starts the runner with --network host on Linux and rewrites only "localhost" (not
 * 127.0.0.1) to host.docker.internal elsewhere; the runner reads OLLAMA_BASE_URL, which Stigmer
 * passes since v0.0.12. An Ollama that Stigmer started itself has only the CLI's environment.
 */
import type { Check, Finding } from './types.ts';
import { bindScope, formatBindAddress, urlEndpoint } from '../ollama-host.ts';
import { modelNameProblem } from '../model-name.ts';
import { cleanField } from '../text.ts';
import { describeFlavour } from '../stigmer-flavour.ts';
import type { Facts } from '../facts.ts';

/** Every finding names the Stigmer found (scripts/stigmer-flavour.ts), whatever else it says. */
export const stigmerConfigCheck: Check = {
  id: 'stigmer.config',
  diagnose(facts): Omit<Finding, 'id'> {
    const finding = diagnoseConfig(facts);
    if (!facts.flavour) return finding;
    const found = `Stigmer found: ${describeFlavour(facts.flavour)}.`;
    return { ...finding, message: `${finding.message} ${found}` };
  },
};

function diagnoseConfig(facts: Facts): Omit<Finding, 'id'> {
  {
    const config = facts.stigmer;
    const file = config.path;
    if (config.state === 'malformed' || config.state === 'unreadable') {
      const where = config.problem?.line ? `${file}:${config.problem.line}` : file;
      // A read error already names the file.
      const message = config.state === 'unreadable' ? (config.problem?.message ?? `${file} can't be read`) : `${where}: ${config.problem?.message}.`;
      return {
        status: 'warn',
        message,
        why: "Stigmer's CLI can't use its own configuration: its llm.* settings (model, base URL) are not what you wrote.",
        fix: config.problem?.line ? `Fix line ${config.problem.line} of ${file} (YAML), then check with: stigmer config list` : `Check ${file}, then: stigmer config list`,
      };
    }
    const manual = facts.installations.find((installation) => (installation.detection as { startedByStigmer?: boolean }).startedByStigmer);
    if (manual) {
      return {
        status: 'warn',
        message: `Ollama runs as ${manual.detection.description} (~/.stigmer/llm.pid); no service setting (launchd, systemd, the app) reaches it.`,
        why: 'Stigmer started it with the environment of whatever shell ran `stigmer`, so OLLAMA_HOST set for the service does not apply to it.',
        fix: `${manual.strategy.commands(manual.detection, facts.port).stop}, then start Ollama as a service and run: npx stigmer-setup`,
      };
    }
    const provider = config.provider.value;
    const summary = `Stigmer uses ${provider}${provider === 'ollama' ? ` model ${config.model.value} (${config.model.from}) at ${config.baseUrl.value} (${config.baseUrl.from})` : ''}`;
    const container = facts.container;
    const runner = container
      ? `; ${facts.containerName} runs on network "${container.networkMode}" with OLLAMA_BASE_URL=${container.env.get('OLLAMA_BASE_URL') ?? '(unset)'}`
      : '';
    if (provider !== 'ollama') return { status: 'ok', message: `${summary}${runner}.` };
    const invalidModel = modelNameProblem(config.model.value);
    if (invalidModel) {
      const where = config.model.from === 'config.yaml' ? `${file}${config.model.line ? ` line ${config.model.line}` : ''}` : config.model.from;
      return {
        status: 'warn',
        message: `${where}: ${JSON.stringify(cleanField(config.model.value))} is not a valid model name (${invalidModel}).`,
        why: 'Ollama refuses a name outside its grammar ([host/][namespace/]model[:tag]), so Stigmer\'s requests fail.',
        fix: config.model.from === 'config.yaml' ? `stigmer config set llm.model qwen2.5-coder:7b   # or correct line ${config.model.line ?? '?'} of ${file}` : `Set ${config.model.from} to a valid model name, such as qwen2.5-coder:7b`,
      };
    }

    if (container && container.networkMode !== 'host' && !container.env.has('OLLAMA_BASE_URL')) {
      return {
        status: 'warn',
        message: `${facts.containerName} has no OLLAMA_BASE_URL, so the runner uses its default http://localhost:11434: the container itself.`,
        why: 'Stigmer passes OLLAMA_BASE_URL to the runner only from v0.0.12 on; without it the runner never reaches the host (F8).',
        fix: `Update Stigmer (v0.0.12 or later) and restart it, or recreate ${facts.containerName} with -e OLLAMA_BASE_URL=http://host.docker.internal:${facts.port}`,
      };
    }
    // A runner Stigmer started carries the configured URL (rewritten where Stigmer rewrites it); a
    // runner started another way has its own, which container.probe judges. Only the first is this
    // check's business.
    const stigmerNetwork = facts.support.stigmerRunnerNetwork;
    const passed = stigmerNetwork === 'bridge' ? config.baseUrl.value.replace('localhost', 'host.docker.internal') : config.baseUrl.value;
    if (container && container.env.get('OLLAMA_BASE_URL') !== passed) {
      return { status: 'ok', message: `${summary}${runner} (not the configured URL: started by other means than Stigmer's, or before the configuration changed).` };
    }
    const url = urlEndpoint(config.baseUrl.value);
    if (!url || !/^https?:$/.test(url.protocol)) {
      return { status: 'warn', message: `${summary}: that base URL is not an http(s) URL.`, why: 'The runner can\'t connect to it.', fix: `stigmer config set llm.base_url http://localhost:${facts.port}` };
    }
    const { host, port } = url;
    if (port !== facts.port) {
      return {
        status: 'warn',
        message: `${summary}: port ${port}${url.explicitPort ? '' : ' (a URL without a port)'}, but Ollama listens on ${facts.port}.`,
        why: 'The runner asks a port where Ollama is not.',
        fix: `stigmer config set llm.base_url http://${formatBindAddress({ host: host === '127.0.0.1' ? 'localhost' : host, port: facts.port })}`,
      };
    }
    const loopbackName = host === 'localhost' || bindScope(host) === 'loopback';
    // Where Stigmer shares the host's network, loopback is right, unless this runner doesn't share
    // it; a native runner is a process on the host, where loopback is right everywhere.
    const bridged = container ? container.networkMode !== 'host' : facts.flavour?.kind !== 'native' && stigmerNetwork === 'bridge';
    const rewritten = stigmerNetwork === 'bridge' && host === 'localhost';
    if (loopbackName && bridged && !rewritten) {
      const why =
        stigmerNetwork === 'host'
          ? `${facts.containerName} does not share the host's network, so ${host} is the container itself (F8).`
          : `Stigmer rewrites only "localhost" to host.docker.internal for the runner, not ${host}, which inside the container is the container itself (F8).`;
      return {
        status: 'warn',
        message: `${summary}: ${host} can't be used from the runner's container.`,
        why,
        fix:
          stigmerNetwork === 'host'
            ? `stigmer config set llm.base_url http://host.docker.internal:${facts.port}   # and start the runner with --add-host=host.docker.internal:host-gateway`
            : `stigmer config set llm.base_url http://localhost:${facts.port}`,
      };
    }
    return { status: 'ok', message: `${summary}${runner}.` };
  }
}
