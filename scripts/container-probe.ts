/**
 * The probe a person runs by hand: `docker exec stigmer-agent-runner python3 -c "...urlopen..."`.
 * Stigmer's runner image (python:3.11-slim) has python3 and no curl, so the probe is Python's
 * urllib, run inside the real container, against the URL the runner itself uses. It prints one JSON
 * line that says which way it failed, so the host never has to guess from a traceback.
 */
import type { Context, ExecResult } from './context.ts';
import { boundedLines } from './text.ts';

const DOCKER_HELP_HINT = /^(See|Run) 'docker [a-z ]+--help'/;

/**
 * 'reset': something accepted the connection and then reset it (ECONNRESET), before or during the
 * answer. That is what a relay (systemd-socket-proxyd) does when nothing answers behind it: it
 * accepts, fails to connect upstream and closes (relay-and-pull.md A1). Python's RemoteDisconnected
 * (closed without an answer) is a ConnectionResetError too, and lands here.
 */
export type ProbeOutcome = 'ok' | 'dns' | 'refused' | 'reset' | 'timeout' | 'http-error' | 'not-ollama' | 'error' | 'incomplete';

export interface ContainerProbeResult {
  outcome: ProbeOutcome;
  url: string;
  /** How it was probed, for the report: the container's name, or "docker run IMAGE". */
  via: string;
  /** The address the container resolved the name to, when it got that far. */
  address?: string;
  status?: number;
  models?: number;
  detail?: string;
  /**
   * What a second request with a foreign Host header got (NVIDIA NemoClaw's proof): 403 means the
   * route ends at a loopback-bound Ollama (its Host guard is on only there), 200 that Ollama
   * listens beyond loopback.
   */
  foreignHostStatus?: number;
}

/** A Host header Ollama's guard rejects on loopback: not localhost, not *.local/.internal/.localhost, not an IP. */
export const FOREIGN_HOST = 'stigmer-setup-probe.example.com';

/** Seconds Python waits for the connect and the answer; the docker client gets a little more. */
const PYTHON_TIMEOUT_SECONDS = 2.5;
/** The foreign-Host request only asks "403 or not" of a server that just answered: it gets less. */
const FOREIGN_TIMEOUT_SECONDS = 1;
export const EXEC_PROBE_TIMEOUT_MS = 4000;
/** `docker run` must first create and start a container, which is not part of the network probe. */
export const RUN_PROBE_TIMEOUT_MS = 8000;

export const PROBE_SCRIPT = `
import json, os, socket, sys, urllib.error, urllib.parse, urllib.request
base = (sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else os.environ.get("OLLAMA_BASE_URL") or "http://host.docker.internal:11434").rstrip("/")
result = {"url": base}
def done(outcome, **fields):
    result.update(fields, outcome=outcome)
    print(json.dumps(result))
    sys.exit(0)
parts = urllib.parse.urlsplit(base)
try:
    result["address"] = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)[0][4][0]
except socket.gaierror as error:
    done("dns", detail=str(error))
try:
    with urllib.request.urlopen(base + "/api/tags", timeout=${PYTHON_TIMEOUT_SECONDS}) as response:
        body = response.read(1048576)
        try:
            models = json.loads(body)["models"]
        except (ValueError, KeyError, TypeError):
            done("not-ollama", status=response.status, detail=body[:160].decode("utf-8", "replace"))
    foreign = urllib.request.Request(base + "/api/tags", headers={"Host": "${FOREIGN_HOST}"})
    try:
        with urllib.request.urlopen(foreign, timeout=${FOREIGN_TIMEOUT_SECONDS}) as answer:
            result["foreignHostStatus"] = answer.status
    except urllib.error.HTTPError as error:
        result["foreignHostStatus"] = error.code
    except Exception:
        pass
    done("ok", status=response.status, models=len(models))
except urllib.error.HTTPError as error:
    done("http-error", status=error.code, detail=str(error))
except urllib.error.URLError as error:
    reason = error.reason
    if isinstance(reason, socket.gaierror):
        done("dns", detail=str(reason))
    if isinstance(reason, ConnectionRefusedError):
        done("refused", detail=str(reason))
    if isinstance(reason, ConnectionResetError):
        done("reset", detail=str(reason))
    if isinstance(reason, (socket.timeout, TimeoutError)):
        done("timeout", detail=str(reason))
    done("error", detail=str(reason))
except (socket.timeout, TimeoutError) as error:
    done("timeout", detail=str(error))
except ConnectionRefusedError as error:
    done("refused", detail=str(error))
except ConnectionResetError as error:
    done("reset", detail=str(error) or repr(error))
except Exception as error:
    done("error", detail=repr(error))
`;

const OUTCOMES: readonly ProbeOutcome[] = ['ok', 'dns', 'refused', 'reset', 'timeout', 'http-error', 'not-ollama', 'error'];
const PROBE_FIELDS = ['url', 'address', 'status', 'models', 'detail', 'foreignHostStatus'] as const;

/** Turn what `docker exec|run ... python3 -c PROBE_SCRIPT` printed into a result. */
export function readProbeOutput(result: ExecResult, url: string, via: string, timeoutMs: number): ContainerProbeResult | { unavailable: string } {
  // The docker client was killed at our timeout: Docker itself or a name lookup inside the
  // container hung (Python's own timeout covers the connection). That is not a network timeout,
  // so it must not be blamed on a firewall.
  if (result.failure === 'timeout') return { outcome: 'incomplete', url, via, detail: `the docker client did not finish within ${timeoutMs / 1000} s` };
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed && OUTCOMES.includes(parsed.outcome as ProbeOutcome)) {
      // Only the fields we know, each of its type: the line came from inside a container.
      const probe: ContainerProbeResult = { outcome: parsed.outcome as ProbeOutcome, url, via };
      for (const field of PROBE_FIELDS) {
        const value = parsed[field];
        if (field === 'status' || field === 'models' || field === 'foreignHostStatus') {
          if (typeof value === 'number' && Number.isInteger(value)) probe[field] = value;
        } else if (typeof value === 'string') {
          probe[field] = value.slice(0, 500);
        }
      }
      return probe;
    }
  } catch {
    // fall through: the probe itself could not run (no python3 in the image, container stopped…)
  }
  // docker ends its errors with a usage hint ("See 'docker run --help'.", "Run 'docker run --help'
  // for more information"); the reason is the line before it.
  const lines = boundedLines(result.stderr || result.stdout).map((line) => line.trim()).filter((line) => line && !DOCKER_HELP_HINT.test(line));
  return { unavailable: lines.at(-1) || `exit code ${result.exitCode}` };
}

export async function probeFromContainer(ctx: Context, container: string): Promise<ContainerProbeResult | { unavailable: string }> {
  const url = '(its OLLAMA_BASE_URL)';
  const result = await ctx.exec('docker', ['exec', container, 'python3', '-c', PROBE_SCRIPT], { timeoutMs: EXEC_PROBE_TIMEOUT_MS });
  return readProbeOutput(result, url, container, EXEC_PROBE_TIMEOUT_MS);
}

export async function probeFromImage(ctx: Context, image: string, url: string, addHostGateway: boolean): Promise<ContainerProbeResult | { unavailable: string }> {
  const args = ['run', '--rm', '--pull=never'];
  // Native Linux engines need the alias mapped; Docker Desktop and friends provide it, and adding
  // it there points it at the wrong place (rancher-desktop#7611).
  if (addHostGateway) args.push('--add-host=host.docker.internal:host-gateway');
  args.push(image, 'python3', '-c', PROBE_SCRIPT, url);
  const result = await ctx.exec('docker', args, { timeoutMs: RUN_PROBE_TIMEOUT_MS });
  return readProbeOutput(result, url, `docker run ${image}`, RUN_PROBE_TIMEOUT_MS);
}
