/**
 * An Ollama model name, checked against Ollama's own grammar (ollama/ollama types/model/name.go,
 * ParseName + IsValid) before it goes into a command someone pastes (`ollama pull NAME`), or into
 * a request (`/api/pull`). The name is machine-supplied (~/.stigmer/config.yaml, a container's
 * STIGMER_LLM_MODEL): `qwen; curl … | sh` is not a model, and must not become a command.
 *
 *   [host/][namespace/]model[:tag]      defaults: registry.ollama.ai / library / latest
 *   host       { alnum | _ } { alnum | - | _ | . | : }*   1–350 bytes (may start with scheme://)
 *   namespace  { alnum | _ } { alnum | - | _ }*           1–80
 *   model      { alnum | _ } { alnum | - | _ | . }*       1–80
 *   tag        { alnum | _ } { alnum | - | _ | . }*       1–80
 * ("alnum" is ASCII only.) A separator with nothing on one side of it makes a part missing, which
 * Ollama rejects too.
 */

type Part = 'host' | 'namespace' | 'model' | 'tag';

const MAX_LENGTH: Record<Part, number> = { host: 350, namespace: 80, model: 80, tag: 80 };
/** The characters each part may hold after its first, which is always a letter, digit or '_'. */
const REST: Record<Part, RegExp> = {
  host: /^[A-Za-z0-9_.:-]*$/,
  namespace: /^[A-Za-z0-9_-]*$/,
  model: /^[A-Za-z0-9_.-]*$/,
  tag: /^[A-Za-z0-9_.-]*$/,
};

function partProblem(kind: Part, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return `its ${kind} is empty`;
  if (value.length > MAX_LENGTH[kind]) return `its ${kind} is longer than ${MAX_LENGTH[kind]} characters`;
  if (!/^[A-Za-z0-9_]/.test(value)) return `its ${kind} must start with a letter, a digit or '_'`;
  if (!REST[kind].test(value.slice(1))) return `its ${kind} ${JSON.stringify(value)} holds a character Ollama does not allow there`;
  return undefined;
}

/** Cut at the last `sep`: a side that is empty is missing (undefined), as in Ollama's cutPromised. */
function cutLast(text: string, sep: string): { before: string | undefined; after: string | undefined } | undefined {
  const index = text.lastIndexOf(sep);
  if (index < 0) return undefined;
  return { before: text.slice(0, index) || undefined, after: text.slice(index + sep.length) || undefined };
}

/** Why `name` is not a model name Ollama accepts, or undefined when it is one. */
export function modelNameProblem(name: string): string | undefined {
  if (name.length > 600) return 'it is too long to be a model name';
  let rest: string | undefined = name;
  let tag: string | undefined = 'latest';
  let namespace: string | undefined = 'library';
  let host: string | undefined = 'registry.ollama.ai';
  // "/" is not allowed in a tag, so a ':' after the last '/' starts the tag (else it is a host's port).
  if (name.lastIndexOf(':') > name.lastIndexOf('/')) {
    const cut = cutLast(name, ':') as { before: string | undefined; after: string | undefined };
    rest = cut.before;
    tag = cut.after;
  }
  let model: string | undefined;
  const modelCut = cutLast(rest ?? '', '/');
  if (!modelCut) {
    model = rest;
  } else {
    model = modelCut.after;
    const namespaceCut = cutLast(modelCut.before ?? '', '/');
    if (!namespaceCut) {
      namespace = modelCut.before;
    } else {
      namespace = namespaceCut.after;
      const hostPart = namespaceCut.before;
      const scheme = hostPart?.indexOf('://') ?? -1;
      host = hostPart === undefined ? undefined : scheme >= 0 ? hostPart.slice(scheme + 3) : hostPart;
    }
  }
  return partProblem('host', host) ?? partProblem('namespace', namespace) ?? partProblem('model', model) ?? partProblem('tag', tag);
}

export function isValidModelName(name: string): boolean {
  return modelNameProblem(name) === undefined;
}
