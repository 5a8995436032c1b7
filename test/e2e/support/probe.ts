// "Can a container reach it?" — the question stigmer-setup exists to answer.
// The probe runs in a *sibling* container on the default bridge, like Stigmer's
// agent-runner would, and does a plain HTTP GET with python3 urllib.
import type { Duration } from 'zx';
import { HOSTUSR_IMAGE } from './images.ts';
import { shTry, sleep } from './shell.ts';

export type ProbeErrorKind = 'refused' | 'timeout' | 'http' | 'dns' | 'unreachable' | 'other' | 'probe-failed';

export interface ProbeResult {
  /** true for a 2xx response. */
  ok: boolean;
  /** HTTP status when a response arrived (also for 403/404). */
  status?: number;
  /** Python's error text, e.g. "<urlopen error [Errno 111] Connection refused>". */
  error?: string;
  kind?: ProbeErrorKind;
  /** First 4 KiB of the body. */
  body?: string;
}

export interface ProbeOptions {
  /** Add --add-host=host.docker.internal:host-gateway (what Stigmer's compose does on Linux). Default true. */
  addHostGateway?: boolean;
  /** Docker network for the probe container; default "bridge". */
  network?: string;
  /** Override the Host header (to exercise Ollama's Host guard). */
  hostHeader?: string;
  /** urllib timeout in seconds; default 3. */
  timeoutS?: number;
  /**
   * Retry (bounded by `attempts`) until the outcome matches: 'ok' = 2xx,
   * 'fail' = anything else. Default 'any': retry only if the probe itself could
   * not run (docker error).
   */
  expect?: 'ok' | 'fail' | 'any';
  /** Max attempts; default 3. */
  attempts?: number;
  /** Pause between attempts; default 1000 ms. */
  delayMs?: number;
  /** More `docker run` args for the probe container. */
  extraArgs?: string[];
}

// Prints one JSON line; classifies the failure so tests need not parse errno text.
const PROBE_PY = `
import json, socket, sys, urllib.error, urllib.request
url, host, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
req = urllib.request.Request(url)
if host:
    req.add_header('Host', host)
def kind_of(reason):
    if isinstance(reason, ConnectionRefusedError): return 'refused'
    if isinstance(reason, (TimeoutError, socket.timeout)): return 'timeout'
    if isinstance(reason, socket.gaierror): return 'dns'
    if isinstance(reason, OSError) and reason.errno in (101, 113): return 'unreachable'
    return 'other'
try:
    with opener.open(req, timeout=timeout) as r:
        body = r.read(4096).decode('utf-8', 'replace')
        print(json.dumps({'ok': 200 <= r.status < 300, 'status': r.status, 'body': body}))
except urllib.error.HTTPError as e:
    print(json.dumps({'ok': False, 'status': e.code, 'error': str(e), 'kind': 'http', 'body': e.read(4096).decode('utf-8', 'replace')}))
except urllib.error.URLError as e:
    print(json.dumps({'ok': False, 'error': str(e), 'kind': kind_of(e.reason)}))
except Exception as e:
    print(json.dumps({'ok': False, 'error': '%s: %s' % (type(e).__name__, e), 'kind': kind_of(e)}))
`;

async function isRunningContainer(name: string): Promise<boolean> {
  const r = await shTry({ timeout: '20s' })`docker container inspect -f ${'{{.State.Running}}'} ${name}`;
  return r.exitCode === 0 && r.stdout.trim() === 'true';
}

async function probeOnce(from: string, url: string, opts: ProbeOptions): Promise<ProbeResult> {
  const timeoutS = opts.timeoutS ?? 3;
  const args = [url, opts.hostHeader ?? '', String(timeoutS)];
  // The docker call itself is bounded too: urllib timeout + container start slack.
  const bound: Duration = `${timeoutS + 30}s`;
  let r;
  if (await isRunningContainer(from)) {
    // An existing container (must have python3, e.g. one made from the hostusr image).
    r = await shTry({ timeout: bound })`docker exec ${from} python3 -c ${PROBE_PY} ${args}`;
  } else {
    const usr = from === HOSTUSR_IMAGE ? ['-v', '/usr:/usr:ro'] : [];
    const gw = opts.addHostGateway === false ? [] : ['--add-host=host.docker.internal:host-gateway'];
    r = await shTry({ timeout: bound })`docker run --rm --network ${opts.network ?? 'bridge'} ${usr} ${gw} ${opts.extraArgs ?? []} ${from} python3 -c ${PROBE_PY} ${args}`;
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    return { ok: false, kind: 'probe-failed', error: `probe did not run (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}` };
  }
}

/**
 * GET `url` from a sibling container. `from` is an image (a fresh `--rm`
 * container on the default bridge; the hostusr image gets `-v /usr:/usr:ro`) or
 * the name of a running container with python3 (`docker exec`).
 * Bounded: at most `attempts` tries, each limited by the urllib timeout.
 */
export async function probeFrom(from: string, url: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const expect = opts.expect ?? 'any';
  let result: ProbeResult = { ok: false, kind: 'probe-failed', error: 'not run' };
  for (let i = 1; i <= attempts; i++) {
    result = await probeOnce(from, url, opts);
    const done =
      result.kind !== 'probe-failed' &&
      (expect === 'any' || (expect === 'ok' && result.ok) || (expect === 'fail' && !result.ok));
    if (done) return result;
    if (i < attempts) await sleep(opts.delayMs ?? 1000);
  }
  return result;
}
