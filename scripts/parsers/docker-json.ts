/**
 * Pure parsers for what `doctor` reads from Docker and Podman as JSON (and `podman info`'s default
 * YAML). Every input is another program's output, so it is
 * untrusted: nothing here throws, oversized input is refused, strings are stripped of control
 * characters and capped, and values of an unexpected type are ignored rather than coerced.
 *
 * The shapes follow real captured output; test/fixtures/SOURCES.md says where each sample came from.
 */
import { MAX_INPUT_CHARS, boundedLines, cleanField, ipFamily } from '../text.ts';

/** No field doctor reads is legitimately longer; a longer one is capped, not trusted in full. */
const MAX_FIELD_CHARS = 500;
/** Bounds on lists a hostile daemon could make arbitrarily long. */
const MAX_SECURITY_OPTIONS = 32;
const MAX_NETWORKS = 256;
const MAX_IPAM_CONFIGS = 64;

export interface DockerInfo {
  operatingSystem: string;
  name: string;
  serverVersion: string;
  kernelVersion: string;
  /**
   * The engine runs rootless: one SecurityOptions entry has the field `name=rootless`. Rootless
   * dockerd reports it (`["name=seccomp,profile=default","name=rootless"]`), and so does Podman's
   * Docker-compatible API when Podman runs rootless (podman pkg/api/handlers/compat/info.go,
   * getSecOpts), which covers the docker CLI pointed at a Podman socket too.
   */
  rootless: boolean;
  /** As the engine lists them, e.g. "name=seccomp,profile=default". */
  securityOptions: string[];
  /**
   * The daemon's own proxy (HttpProxy/HttpsProxy/NoProxy in the JSON), only when set. dockerd masks
   * credentials itself: `http://user:pass@host:3128` comes back as `http://xxxxx:xxxxx@host:3128`.
   */
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

/** The docker CLI answered, but only to say it could not reach the daemon. */
export interface DockerInfoServerErrors {
  /** The CLI's messages joined into one line, e.g. "Cannot connect to the Docker daemon at …". */
  serverErrors: string;
}

export interface PodmanInfo {
  /** host.security.rootless (Podman 3+), host.rootless (Podman 2). */
  rootless: boolean;
  /** host.rootlessNetworkCmd: "pasta" or "slirp4netns". Podman 4 and older don't report it. */
  networkCmd?: string;
  /** version.Version */
  version?: string;
}

export interface DockerNetwork {
  name: string;
  driver: string;
  /** IPAM.Config[].Subnet, CIDRs only. */
  subnets: string[];
  /**
   * IPAM.Config[].Gateway, addresses only. May be empty: the default bridge of Docker 20.10 lists
   * its Subnet without a Gateway (captured here), although docker0 does have 172.17.0.1.
   */
  gateways: string[];
  /** The host interface of a bridge network: docker0, docker_gwbridge, br-<first 12 of Id>. */
  bridgeInterface?: string;
}

export interface DockerClientProxies {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

/**
 * `docker info --format '{{json .}}'` (or the `GET /info` body it is built from).
 *
 * Returns undefined when the text is not such an object, or when it carries no server at all: the
 * docker CLI 28 here, pointed at no daemon, still prints the whole object with every server field
 * empty (ServerVersion "") and says why on stderr only. Older CLIs (20.10 era) instead printed
 * `{"ServerErrors":["Cannot connect …"],"ClientInfo":{…}}`, possibly with exit code 0; that comes
 * back as { serverErrors } so the caller can show the reason.
 */
export function parseDockerInfoJson(text: string): DockerInfo | DockerInfoServerErrors | undefined {
  const info = parseJsonObject(text);
  if (!info) return undefined;
  const serverVersion = field(info.ServerVersion);
  if (!serverVersion) {
    const errors = stringList(info.ServerErrors, 8);
    return errors.length > 0 ? { serverErrors: capped(errors.join('; ')) } : undefined;
  }
  const securityOptions = stringList(info.SecurityOptions, MAX_SECURITY_OPTIONS);
  const result: DockerInfo = {
    operatingSystem: field(info.OperatingSystem),
    name: field(info.Name),
    serverVersion,
    kernelVersion: field(info.KernelVersion),
    rootless: securityOptions.some(isRootlessOption),
    securityOptions,
  };
  // Docker's JSON spells them HttpProxy/HttpsProxy/NoProxy.
  return { ...result, ...proxyFields(info.HttpProxy, info.HttpsProxy, info.NoProxy) };
}

/** The three proxy settings, each kept only when it is a non-empty string (empty means "not set"). */
function proxyFields(httpProxy: unknown, httpsProxy: unknown, noProxy: unknown): DockerClientProxies {
  const result: DockerClientProxies = {};
  const [http, https, none] = [field(httpProxy), field(httpsProxy), field(noProxy)];
  if (http) result.httpProxy = http;
  if (https) result.httpsProxy = https;
  if (none) result.noProxy = none;
  return result;
}

/**
 * `podman info --format json`, or plain `podman info` (YAML). Undefined when the text has no
 * `host` section, i.e. is not podman info output.
 */
export function parsePodmanInfo(text: string): PodmanInfo | undefined {
  if (typeof text !== 'string' || text.length > MAX_INPUT_CHARS) return undefined;
  if (text.trimStart().startsWith('{')) {
    const info = parseJsonObject(text);
    const host = info?.host;
    if (!isRecord(host)) return undefined;
    // Podman 3.0 moved the flag from host.rootless (Podman 2.x) to host.security.rootless.
    const security = host.security;
    const result: PodmanInfo = { rootless: (isRecord(security) && security.rootless === true) || host.rootless === true };
    const networkCmd = field(host.rootlessNetworkCmd);
    const version = isRecord(info?.version) ? field(info.version.Version) : '';
    if (networkCmd) result.networkCmd = networkCmd;
    if (version) result.version = version;
    return result;
  }
  return podmanInfoFromYaml(text);
}

/**
 * `docker network inspect NAME…`: a JSON array with one object per network. Anything else (an
 * object, non-JSON, an error message) gives [].
 */
export function parseNetworkInspect(text: string): DockerNetwork[] {
  const parsed = parseJson(text);
  if (!Array.isArray(parsed)) return [];
  const networks: DockerNetwork[] = [];
  for (const entry of parsed.slice(0, MAX_NETWORKS)) {
    if (!isRecord(entry)) continue;
    const name = field(entry.Name);
    if (!name) continue;
    const driver = field(entry.Driver);
    const subnets: string[] = [];
    const gateways: string[] = [];
    const configs = isRecord(entry.IPAM) && Array.isArray(entry.IPAM.Config) ? entry.IPAM.Config.slice(0, MAX_IPAM_CONFIGS) : [];
    for (const config of configs) {
      if (!isRecord(config)) continue;
      if (typeof config.Subnet === 'string' && isCidr(config.Subnet)) subnets.push(config.Subnet);
      if (typeof config.Gateway === 'string' && ipFamily(config.Gateway) !== undefined) gateways.push(config.Gateway);
    }
    const network: DockerNetwork = { name, driver, subnets, gateways };
    const bridgeInterface = driver === 'bridge' ? bridgeInterfaceOf(entry) : undefined;
    if (bridgeInterface) network.bridgeInterface = bridgeInterface;
    networks.push(network);
  }
  return networks;
}

/**
 * `proxies.default` of the docker CLI's ~/.docker/config.json: what docker injects as
 * HTTP_PROXY/HTTPS_PROXY/NO_PROXY into every container it creates. Per-daemon entries (keyed by
 * the daemon's address) are not read. Undefined when none of the three is set.
 */
export function parseDockerClientProxies(text: string): DockerClientProxies | undefined {
  const config = parseJsonObject(text);
  const proxies = config?.proxies;
  const defaults = isRecord(proxies) ? proxies.default : undefined;
  if (!isRecord(defaults)) return undefined;
  const result = proxyFields(defaults.httpProxy, defaults.httpsProxy, defaults.noProxy);
  return Object.keys(result).length > 0 ? result : undefined;
}

function parseJson(text: unknown): unknown {
  // Oversized input is refused outright: cutting JSON short would only make it invalid anyway.
  if (typeof text !== 'string' || text.length > MAX_INPUT_CHARS) return undefined;
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch {
    return undefined;
  }
}

function parseJsonObject(text: unknown): Record<string, unknown> | undefined {
  const parsed = parseJson(text);
  return isRecord(parsed) ? parsed : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function capped(value: string): string {
  return cleanField(value.slice(0, MAX_FIELD_CHARS * 2)).trim().slice(0, MAX_FIELD_CHARS);
}

/** A string field, cleaned and capped; '' for anything that is not a string. */
function field(value: unknown): string {
  return typeof value === 'string' ? capped(value) : '';
}

function stringList(value: unknown, max: number): string[] {
  if (!Array.isArray(value)) return [];
  return value.slice(0, max).filter((entry): entry is string => typeof entry === 'string').map(capped).filter(Boolean);
}

/** "name=seccomp,profile=default" is one option with two fields; rootless is its own field. */
function isRootlessOption(option: string): boolean {
  return option.split(',').some((part) => part.trim() === 'name=rootless');
}

function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash <= 0) return false;
  const family = ipFamily(value.slice(0, slash));
  const bits = value.slice(slash + 1);
  if (family === undefined || !/^[0-9]{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** Linux interface names are at most 15 bytes (IFNAMSIZ - 1); anything else is not one. */
const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

function bridgeInterfaceOf(network: Record<string, unknown>): string | undefined {
  // An explicit name wins: the default bridge's "docker0", swarm's "docker_gwbridge", or any
  // network created with -o com.docker.network.bridge.name=….
  const named = isRecord(network.Options) ? network.Options['com.docker.network.bridge.name'] : undefined;
  if (typeof named === 'string' && named !== '') return INTERFACE_NAME.test(named) ? named : undefined;
  // Otherwise libnetwork names the bridge "br-" + the first 12 characters of the network ID.
  const id = typeof network.Id === 'string' ? network.Id : '';
  return /^[0-9a-f]{12,64}$/.test(id) ? `br-${id.slice(0, 12)}` : undefined;
}

/**
 * The three podman info fields from its default YAML output, without a YAML library: the output
 * is a fixed two-space-indented mapping, so a path of keys by indentation is enough. Block scalars
 * (`version: |-` followed by crun's or pasta's own multi-line text) are skipped, because their
 * lines can look like keys ("commit: …").
 */
function podmanInfoFromYaml(text: string): PodmanInfo | undefined {
  const path: { indent: number; key: string }[] = [];
  let blockIndent: number | undefined;
  let sawHost = false;
  let rootless = false;
  let networkCmd: string | undefined;
  let version: string | undefined;
  for (const line of boundedLines(text)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const indent = line.length - line.trimStart().length;
    if (blockIndent !== undefined) {
      if (indent > blockIndent) continue;
      blockIndent = undefined;
    }
    const entry = /^([A-Za-z0-9_][A-Za-z0-9_. -]*?):(?:\s+(.*))?$/.exec(line.trim());
    if (!entry) continue;
    const key = entry[1] ?? '';
    const value = (entry[2] ?? '').trim();
    while (path.length > 0 && (path.at(-1)?.indent ?? 0) >= indent) path.pop();
    const at = [...path.map((step) => step.key), key].join('.');
    if (at === 'host') sawHost = true;
    if (value === '') path.push({ indent, key });
    else if (/^[|>][-+]?$/.test(value)) blockIndent = indent;
    else if (at === 'host.security.rootless' || at === 'host.rootless') rootless = value === 'true';
    else if (at === 'host.rootlessNetworkCmd') networkCmd = capped(unquote(value));
    else if (at === 'version.Version') version = capped(unquote(value));
  }
  if (!sawHost) return undefined;
  const result: PodmanInfo = { rootless };
  if (networkCmd) result.networkCmd = networkCmd;
  if (version) result.version = version;
  return result;
}

function unquote(value: string): string {
  return /^(['"]).*\1$/.test(value) ? value.slice(1, -1) : value;
}
