#!/usr/bin/env node
// fake-ollama.mjs: a dependency-free stand-in for `ollama serve`.
//
// There is no real Ollama binary for this machine, so the tests run this
// instead. It reproduces the parts of Ollama that decide whether a Docker
// container can reach it:
//   * OLLAMA_HOST parsing: envconfig.Host() and envconfig.Var() in ollama/ollama.
//   * Binding: net.Listen("tcp", host:port) in cmd/cmd.go RunServer, with Go's
//     wildcard handling (one dual-stack IPv6 socket for "", 0.0.0.0 and ::).
//   * The Host-header guard: allowedHostsMiddleware in server/routes.go.
//   * The health-check endpoints /, /api/version, /api/tags (+ /api/ps, /v1/models).
//   * POST /api/generate, streamed NDJSON (a long body to carry through a relay; see handleGenerate).
//   * POST /api/pull: PullHandler + streamResponse in server/routes.go and PullModel in
//     server/images.go, fed from real captured streams in test/fixtures/ollama-pull/.
//
// This parser is written independently of the product code on purpose: it is
// the ground truth that the product's own parser is tested against. Never
// import product code from here.
//
// Usage:
//   node fake-ollama.mjs serve           run the server (reads OLLAMA_HOST)
//   node fake-ollama.mjs --print-bind    print the parsed OLLAMA_HOST and bind plan as JSON, no socket
//   node fake-ollama.mjs -v|--version    like `ollama -v`
// Environment:
//   OLLAMA_HOST            as for Ollama
//   STANDIN_VERSION        version reported by /api/version (default 0.13.5)
//   STANDIN_MODELS         comma-separated model names for /api/tags (default qwen2.5-coder:7b; "" = none)
//   STANDIN_START_DELAY_MS wait this long before binding (simulates a slow start; default 0)
//   STANDIN_PULL           how POST /api/pull goes: one scenario for every model ("slow"), or
//                          "name=scenario" pairs with an optional "*=scenario" default
//                          ("qwen2.5-coder:7b=slow,*=unknown"). Scenarios: see PULL_SCENARIOS.
//   STANDIN_PULL_INTERVAL_MS  pause between streamed lines (default 5, "slow" 150; at most 2000)
//   STANDIN_REQUEST_LOG    append one JSON line per request (method, path, pull body, pull outcome) to this file
//
// The module can also be imported (test/support/fake-ollama.d.mts has the
// types): the pure functions below are exported, and the server only starts
// when this file is the entry point.

import http from 'node:http';
import os from 'node:os';
import dns from 'node:dns/promises';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEFAULT_VERSION = '0.13.5';
export const DEFAULT_MODELS = 'qwen2.5-coder:7b';

// ---------------------------------------------------------------------------
// Go string helpers

// Go's unicode.IsSpace set, which strings.TrimSpace uses. JS trim() differs
// (it trims U+FEFF and not U+0085), so spell it out.
const GO_SPACE = new Set([
  '\t', '\n', '\v', '\f', '\r', ' ', '\u0085', '\u00a0', '\u1680',
  '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a',
  '\u2028', '\u2029', '\u202f', '\u205f', '\u3000',
]);

/** strings.Trim(s, cutset): strip any run of cutset characters from both ends. */
function goTrim(s, cutset) {
  const chars = [...s];
  let a = 0;
  let b = chars.length;
  while (a < b && cutset.has(chars[a])) a++;
  while (b > a && cutset.has(chars[b - 1])) b--;
  return chars.slice(a, b).join('');
}

const goTrimSpace = (s) => goTrim(s, GO_SPACE);

/** envconfig.Var(): strings.Trim(strings.TrimSpace(os.Getenv(key)), "\"'"). */
export function envVar(raw) {
  return goTrim(goTrimSpace(raw ?? ''), new Set(['"', "'"]));
}

/** strings.Cut */
function cut(s, sep) {
  const i = s.indexOf(sep);
  if (i < 0) return [s, '', false];
  return [s.slice(0, i), s.slice(i + sep.length), true];
}

/**
 * net.SplitHostPort, same error cases as Go. Returns {host, port} or null.
 * Notably "::1" fails (too many colons) and "[::1]" fails (missing port).
 */
export function splitHostPort(hostport) {
  const i = hostport.lastIndexOf(':');
  if (i < 0) return null; // missing port in address
  let host;
  let j = 0;
  let k = 0;
  if (hostport[0] === '[') {
    const end = hostport.indexOf(']');
    if (end < 0) return null; // missing ']' in address
    if (end + 1 === hostport.length) return null; // missing port
    if (end + 1 !== i) return null; // too many colons / missing port
    host = hostport.slice(1, end);
    j = 1;
    k = end + 1;
  } else {
    host = hostport.slice(0, i);
    if (host.includes(':')) return null; // too many colons in address
  }
  if (hostport.slice(j).includes('[')) return null; // unexpected '['
  if (hostport.slice(k).includes(']')) return null; // unexpected ']'
  return { host, port: hostport.slice(i + 1) };
}

/** net.JoinHostPort */
export function joinHostPort(host, port) {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------
// IP parsing (Go net.ParseIP / netip.ParseAddr semantics, enough for our needs)

/** Strict dotted quad like Go 1.17+: 4 fields, 0-255, no leading zeros. Returns 4 bytes or null. */
function parseIPv4(s) {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let n = 0; n < 4; n++) {
    const p = parts[n] ?? '';
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    if (p.length > 1 && p[0] === '0') return null;
    const v = Number(p);
    if (v > 255) return null;
    out[n] = v;
  }
  return out;
}

/** IPv6 text (no zone) to 16 bytes, or null. Accepts one "::" and a trailing dotted quad. */
function parseIPv6(s) {
  if (s.length === 0) return null;
  const [headStr, tailStr, hasGap] = cut(s, '::');
  if (hasGap && tailStr.includes('::')) return null;
  const parseGroups = (str, allowV4Tail) => {
    if (str === '') return [];
    const groups = str.split(':');
    const words = [];
    for (let n = 0; n < groups.length; n++) {
      const g = groups[n] ?? '';
      if (allowV4Tail && n === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return null;
        words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      words.push(parseInt(g, 16));
    }
    return words;
  };
  let words;
  if (hasGap) {
    const head = parseGroups(headStr, false);
    const tail = parseGroups(tailStr, true);
    if (!head || !tail) return null;
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    words = [...head, ...new Array(fill).fill(0), ...tail];
  } else {
    words = parseGroups(s, true);
    if (!words || words.length !== 8) return null;
  }
  const out = new Uint8Array(16);
  words.forEach((w, n) => {
    out[2 * n] = w >> 8;
    out[2 * n + 1] = w & 0xff;
  });
  return out;
}

const V4_IN_V6_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function is4in6(b) {
  return b.length === 16 && V4_IN_V6_PREFIX.every((v, n) => b[n] === v);
}

/** Unmap ::ffff:a.b.c.d to 4 bytes; other addresses unchanged. */
function unmap(b) {
  return is4in6(b) ? b.slice(12) : b;
}

function formatIPv4(b) {
  return Array.from(b).join('.');
}

/** RFC 5952 text of 16 bytes (longest zero run of >= 2 groups, first on tie). */
function formatIPv6(b) {
  const words = [];
  for (let n = 0; n < 16; n += 2) words.push(((b[n] ?? 0) << 8) | (b[n + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let n = 0; n < 8; ) {
    if (words[n] !== 0) {
      n++;
      continue;
    }
    let m = n;
    while (m < 8 && words[m] === 0) m++;
    if (m - n > bestLen) {
      bestStart = n;
      bestLen = m - n;
    }
    n = m;
  }
  if (bestLen < 2) bestStart = -1;
  const hex = (w) => w.toString(16);
  if (bestStart < 0) return words.map(hex).join(':');
  const left = words.slice(0, bestStart).map(hex).join(':');
  const right = words.slice(bestStart + bestLen).map(hex).join(':');
  return `${left}::${right}`;
}

/**
 * Go's net.ParseIP(s).String(), or null if s is not an IP literal.
 * IPv4-mapped IPv6 prints as dotted IPv4, like Go.
 */
export function canonicalIP(s) {
  const b = parseIP(s);
  if (!b) return null;
  if (b.length === 4) return formatIPv4(b);
  return is4in6(b) ? formatIPv4(b.slice(12)) : formatIPv6(b);
}

/** net.ParseIP: 4 bytes for dotted IPv4, 16 for IPv6 text, null otherwise. No zones. */
export function parseIP(s) {
  if (s.includes(':')) return parseIPv6(s);
  if (s.includes('.')) return parseIPv4(s);
  return null;
}

/** netip.ParseAddr: like parseIP but allows an IPv6 zone ("fe80::1%eth0"). */
function parseAddr(s) {
  if (s.includes(':')) {
    const [ip, zone, hasZone] = cut(s, '%');
    if (hasZone && zone === '') return null;
    const b = parseIPv6(ip);
    return b ? { bytes: b, zone: hasZone ? zone : '' } : null;
  }
  const b = parseIPv4(s);
  return b ? { bytes: b, zone: '' } : null;
}

/** netip.Addr.IsLoopback (unmaps 4-in-6 first). */
function isLoopbackBytes(raw) {
  const b = unmap(raw);
  if (b.length === 4) return b[0] === 127;
  return b.every((v, n) => (n === 15 ? v === 1 : v === 0));
}

/** netip.Addr.IsPrivate: 10/8, 172.16/12, 192.168/16, fc00::/7 (unmaps 4-in-6). */
function isPrivateBytes(raw) {
  const b = unmap(raw);
  if (b.length === 4) {
    const [a0 = 0, a1 = 0] = b;
    return a0 === 10 || (a0 === 172 && (a1 & 0xf0) === 16) || (a0 === 192 && a1 === 168);
  }
  return ((b[0] ?? 0) & 0xfe) === 0xfc;
}

/** netip.Addr.IsUnspecified: exactly 0.0.0.0 or :: (no unmapping, like Go). */
function isUnspecifiedBytes(b) {
  return b.every((v) => v === 0);
}

/** Whether an IP literal (no brackets) is a loopback address. */
export function isLoopbackIP(s) {
  const a = parseAddr(s);
  return a !== null && isLoopbackBytes(a.bytes);
}

// ---------------------------------------------------------------------------
// OLLAMA_HOST

/**
 * envconfig.Host() from ollama/ollama, reimplemented.
 * @param {string | undefined} raw the OLLAMA_HOST value (undefined = unset)
 */
export function parseOllamaHost(raw) {
  let defaultPort = '11434';
  const s = goTrimSpace(envVar(raw));
  let [scheme, hostport, ok] = cut(s, '://');
  if (!ok) {
    scheme = 'http';
    hostport = s;
    if (s === 'ollama.com') {
      scheme = 'https';
      hostport = 'ollama.com:443';
    }
  } else if (scheme === 'http') {
    defaultPort = '80';
  } else if (scheme === 'https') {
    defaultPort = '443';
  }

  const [hp, path] = cut(hostport, '/');
  let host;
  let port;
  const split = splitHostPort(hp);
  if (split) {
    ({ host, port } = split);
  } else {
    host = '127.0.0.1';
    port = defaultPort;
    const ip = canonicalIP(goTrim(hp, new Set(['[', ']'])));
    if (ip !== null) host = ip;
    else if (hp !== '') host = hp;
  }

  // strconv.ParseInt(port, 10, 32): optional sign, decimal digits only.
  let invalidPort = null;
  const n = /^[+-]?[0-9]+$/.test(port) ? Number(port) : NaN;
  if (!Number.isFinite(n) || n > 65535 || n < 0) {
    invalidPort = port;
    port = defaultPort;
  }

  const hostPort = joinHostPort(host, port);
  const url = `${scheme === '' ? '' : `${scheme}:`}//${hostPort}${path === '' ? '' : `/${path}`}`;
  return {
    scheme,
    host,
    port,
    portNumber: Math.abs(Number(port)) || 0,
    hostPort,
    path,
    url,
    invalidPort,
  };
}

/**
 * How Go's net.Listen("tcp", host:port) binds that host.
 *   wildcard: "", 0.0.0.0, ::  -> one dual-stack IPv6 socket on ::
 *   IP literal                 -> exactly that IP (4-in-6 is bound as IPv4, like Go)
 *   hostname                   -> resolved at bind time, first IPv4 preferred
 */
export function bindPlan(parsed) {
  const port = parsed.portNumber;
  if (parsed.host === '') return { kind: 'wildcard', address: '::', ipv6Only: false, port };
  const a = parseAddr(parsed.host);
  if (a) {
    if (isUnspecifiedBytes(a.bytes)) return { kind: 'wildcard', address: '::', ipv6Only: false, port };
    if (a.bytes.length === 4 || is4in6(a.bytes)) {
      return { kind: 'ip', address: formatIPv4(unmap(a.bytes)), ipv6Only: false, port };
    }
    const text = formatIPv6(a.bytes) + (a.zone ? `%${a.zone}` : '');
    return { kind: 'ip', address: text, ipv6Only: false, port };
  }
  return { kind: 'hostname', address: parsed.host, ipv6Only: false, port };
}

// ---------------------------------------------------------------------------
// Host-header guard

/** Canonical text of an interface address for isLocalIP's string comparison. */
function localAddressSet() {
  const set = new Set();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) {
      const a = parseAddr(info.address);
      if (!a) continue;
      set.add(a.bytes.length === 4 ? formatIPv4(a.bytes) : formatIPv6(a.bytes));
    }
  }
  return set;
}

/**
 * allowedHostsMiddleware's decision for one request.
 * @param {string} listenerAddress the bound IP (server.address().address)
 * @param {string | undefined} hostHeader the request's Host header
 * @returns {boolean} true = serve, false = 403
 */
export function hostAllowed(listenerAddress, hostHeader, opts = {}) {
  // Non-loopback listener (including the :: wildcard): no guard at all.
  if (!isLoopbackIP(listenerAddress)) return true;

  const reqHost = hostHeader ?? '';
  const split = splitHostPort(reqHost);
  const host = split ? split.host : reqHost;

  const a = parseAddr(host);
  if (a) {
    if (isLoopbackBytes(a.bytes) || isPrivateBytes(a.bytes) || isUnspecifiedBytes(a.bytes)) return true;
    const text = a.bytes.length === 4 ? formatIPv4(a.bytes) : formatIPv6(a.bytes) + (a.zone ? `%${a.zone}` : '');
    const locals = opts.localAddresses ?? localAddressSet();
    if (locals.has(text)) return true;
  }

  const h = host.toLowerCase();
  if (h === '' || h === 'localhost') return true;
  const hostname = (opts.hostname ?? os.hostname()).toLowerCase();
  if (h === hostname) return true;
  return ['localhost', 'local', 'internal'].some((tld) => h.endsWith(`.${tld}`));
}

// ---------------------------------------------------------------------------
// Server

/** /api/tags entries from STANDIN_MODELS. Deterministic so tests can compare. */
export function modelList(spec) {
  const names = (spec ?? DEFAULT_MODELS)
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return names.map((entry) => {
    const name = entry.includes(':') ? entry : `${entry}:latest`;
    const digest = crypto.createHash('sha256').update(name).digest('hex');
    const [family = ''] = name.split(/[.:-]/);
    const sizeTag = /:(\d+(?:\.\d+)?)b/i.exec(name);
    const billions = sizeTag ? Number(sizeTag[1]) : 1;
    return {
      name,
      model: name,
      modified_at: '2025-01-01T00:00:00Z',
      size: Math.round(billions * 0.62 * 1e9) + (parseInt(digest.slice(0, 6), 16) % 100000),
      digest,
      details: {
        parent_model: '',
        format: 'gguf',
        family,
        families: [family],
        parameter_size: sizeTag ? `${sizeTag[1]}B` : '',
        quantization_level: 'Q4_K_M',
      },
    };
  });
}

function slogLine(level, msg, attrs = {}) {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}=${/[\s"=]/.test(String(v)) || String(v) === '' ? JSON.stringify(String(v)) : v}`)
    .join('');
  return `time=${new Date().toISOString()} level=${level} source=routes.go:1 msg=${JSON.stringify(msg)}${extra}\n`;
}

/** "127.0.0.1:11434" / "[::]:11434", like Go's TCPAddr.String(). */
function formatListenAddr(addr) {
  return joinHostPort(addr.address, String(addr.port));
}

function ginLog(req, status, started) {
  const d = new Date();
  const pad = (x) => String(x).padStart(2, '0');
  const stamp = `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} - ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const us = Number(process.hrtime.bigint() - started) / 1000;
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  process.stderr.write(
    `[GIN] ${stamp} | ${status} | ${us.toFixed(1).padStart(12)}µs | ${client.padStart(15)} | ${req.method.padEnd(7)} "${req.url}"\n`,
  );
}

function createHandler(getListenerAddress, version, models) {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const send = (status, type, body) => {
      const headers = { Date: new Date().toUTCString() };
      if (type) headers['Content-Type'] = type;
      headers['Content-Length'] = Buffer.byteLength(body);
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
      ginLog(req, status, started);
    };

    if (!hostAllowed(getListenerAddress(), req.headers.host)) return send(403, null, '');
    if (req.method === 'OPTIONS') return send(204, null, '');

    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/api/generate') return handleGenerate(req, res, models, (status) => ginLog(req, status, started));
    if (req.method === 'POST' && path === '/api/pull') return handlePull(req, res, models, () => ginLog(req, res.statusCode, started));
    logRequest({ method: req.method, path });
    if (req.method === 'GET' || req.method === 'HEAD') {
      const json = (obj) => send(200, 'application/json; charset=utf-8', JSON.stringify(obj));
      switch (path) {
        case '/':
          return send(200, 'text/plain; charset=utf-8', 'Ollama is running');
        case '/api/version':
          return json({ version });
        case '/api/tags':
          return json({ models });
        case '/api/ps':
          return json({ models: [] });
        case '/v1/models':
          if (req.method === 'HEAD') break;
          return json({
            object: 'list',
            data: models.map((m) => ({ id: m.name, object: 'model', created: 1735689600, owned_by: 'library' })),
          });
        default:
          break;
      }
    }
    return send(404, 'text/plain', '404 page not found');
  };
}

// ---------------------------------------------------------------------------
// POST /api/generate (docs/api.md "Generate a completion"): enough of it to stream a long,
// checkable NDJSON body through whatever sits between a client and the server (the relay e2e).
// Request: {model, prompt, stream (default true), options: {num_predict}}. Streamed reply:
// `application/x-ndjson`, one object per token {model, created_at, response, done:false}, then a
// final {..., response:"", done:true, done_reason, context, total_duration, load_duration,
// prompt_eval_count, prompt_eval_duration, eval_count, eval_duration}. With stream:false, one
// application/json object with the whole response. The tokens are deterministic (a function of the
// prompt and the token index), so the same request gives the same text on every path.

/** Upper bound on num_predict, so a request cannot make the stand-in stream without end. */
export const GENERATE_MAX_TOKENS = 1_000_000;
/** Ollama's num_predict default is -1 ("until the model stops"); the stand-in stops after this many. */
export const GENERATE_DEFAULT_TOKENS = 16;

/** The stand-in's token number `i` for `prompt`: a word made from sha256(prompt, i). */
export function generatedToken(prompt, i) {
  const h = crypto.createHash('sha256').update(`${prompt}\0${i}`).digest('hex');
  return ` ${h.slice(0, 4 + (parseInt(h[0], 16) % 8))}`;
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handleGenerate(req, res, models, logStatus) {
  const reply = (status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Date: new Date().toUTCString() });
    res.end(body);
    logStatus(status);
  };
  let request;
  try {
    const text = await readBody(req, 1 << 20);
    if (text.trim() === '') return reply(400, { error: 'missing request body' });
    request = JSON.parse(text);
  } catch (err) {
    return reply(400, { error: err instanceof Error ? err.message : String(err) });
  }
  if (typeof request !== 'object' || request === null || typeof request.model !== 'string' || request.model === '') {
    return reply(400, { error: 'model is required' });
  }
  const wanted = request.model.includes(':') ? request.model : `${request.model}:latest`;
  if (!models.some((m) => m.name === wanted)) {
    return reply(404, { error: `model "${request.model}" not found, try pulling it first` });
  }
  const prompt = typeof request.prompt === 'string' ? request.prompt : '';
  const asked = Number(request.options?.num_predict);
  const limited = Number.isInteger(asked) && asked > 0;
  const count = limited ? Math.min(asked, GENERATE_MAX_TOKENS) : GENERATE_DEFAULT_TOKENS;
  const started = process.hrtime.bigint();
  const final = (response) => ({
    model: request.model,
    created_at: new Date().toISOString(),
    response,
    done: true,
    done_reason: limited ? 'length' : 'stop',
    context: [1, 2, 3],
    total_duration: Number(process.hrtime.bigint() - started),
    load_duration: 1000,
    prompt_eval_count: prompt.split(/\s+/).filter(Boolean).length,
    prompt_eval_duration: 1000,
    eval_count: count,
    eval_duration: Number(process.hrtime.bigint() - started),
  });
  if (request.stream === false) {
    let all = '';
    for (let i = 0; i < count; i++) all += generatedToken(prompt, i);
    return reply(200, final(all));
  }
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson', Date: new Date().toUTCString() });
  let gone = false;
  res.on('close', () => (gone = true));
  for (let i = 0; i < count && !gone; i++) {
    const line = `${JSON.stringify({ model: request.model, created_at: new Date().toISOString(), response: generatedToken(prompt, i), done: false })}\n`;
    // Respect back-pressure, as Go's http.Flusher effectively does: a slow reader slows the stream.
    if (!res.write(line)) await new Promise((r) => res.once('drain', r).once('close', r));
  }
  if (!gone) res.end(`${JSON.stringify(final(''))}\n`);
  logStatus(200);
}

/** Go's syscall error text for common bind failures. */

// ---------------------------------------------------------------------------
// POST /api/pull
//
// What Ollama does (ollama/ollama @ fb30760):
//   * PullHandler binds the JSON body first: an empty body is HTTP 400 "missing request body", a
//     decoder error is HTTP 400 with the decoder's text, a name ParseName rejects is HTTP 400
//     "invalid model name". Nothing is streamed then.
//   * Otherwise streamResponse() sets Content-Type application/x-ndjson and writes one
//     json.Marshal(ProgressResponse)+"\n" a line; HTTP 200 is committed with the first line, so a
//     later failure is a last line {"error":"…"} and the stream ends. digest/total/completed are
//     omitempty: a 0 is absent.
//   * PullModel always starts with "pulling manifest" (before any network access), so every
//     registry failure (unknown model, DNS, disk full) arrives as that in-stream error line.
//   * The pull runs in the request's context: a client that goes away stops it.
//   * "stream": false waits and answers once: the last progress object, or HTTP 500 {"error"}.
//   * On success the model is in the list /api/tags serves.
// The lines themselves come from real captures (test/fixtures/ollama-pull/, sources in
// test/fixtures/SOURCES.md). The stand-in serves the same captured lines whatever the model.

const PULL_FIXTURE_DIR = fileURLToPath(new URL('../fixtures/ollama-pull/', import.meta.url));

/** A fixture's lines: `.ndjson` as parsed objects; a `cli-*.txt` as the text of its `Error: ` line. */
function readPullFixture(file) {
  const text = fs.readFileSync(`${PULL_FIXTURE_DIR}${file}`, 'utf8');
  if (file.endsWith('.ndjson')) return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  const line = text.split('\n').find((l) => l.startsWith('Error: '));
  if (!line) throw new Error(`${file} has no "Error: " line`);
  let message = line.slice('Error: '.length);
  // The `ollama` launcher menu prefixes its own words (see SOURCES.md, 15547); the stream's text follows.
  const launcher = /^selecting model: failed to pull [^:]+: /.exec(message);
  if (launcher) message = message.slice(launcher[0].length);
  return message;
}

const MANIFEST = { status: 'pulling manifest' };
const isLayerLine = (o) => typeof o.digest === 'string';

/** Fixture stream 4417 (two layers, downloaded) without the closing status lines. */
function downloadLines() {
  return readPullFixture('success-two-layers-ollama-4417-joined.ndjson').filter((o) => o.status === 'pulling manifest' || isLayerLine(o));
}

/** The steps after the layers, as current Ollama sends them (images.go L1073-1122). */
const closing = (...middle) => [{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, ...middle, { status: 'success' }];

/** Layer lines of the first layer only: a pull cut off part-way through its first blob. */
function firstLayerLines() {
  const lines = downloadLines().filter(isLayerLine);
  const first = lines[0]?.digest;
  return lines.filter((o) => o.digest === first);
}

/**
 * Every scenario as the list of what is sent: progress objects, then optionally
 * { error: text } (the last line) or { cut: true } (the connection closes, no success).
 */
export const PULL_SCENARIOS = {
  /** A first pull: several layers downloaded, no old layers to prune (so no "removing" line). */
  success: () => [...downloadLines(), ...closing()],
  /** success, paced slowly (STANDIN_PULL_INTERVAL_MS defaults to 150 ms here). */
  slow: () => [...downloadLines(), ...closing()],
  /** The real 4417 stream as captured, with the pre-0.3.7 "removing any unused layers". */
  legacy: () => readPullFixture('success-two-layers-ollama-4417-joined.ndjson'),
  /** A re-pull that replaced an older manifest: the current "removing unused layers" step (images.go L1116). */
  replace: () => [...downloadLines(), ...closing({ status: 'removing unused layers' })],
  /** The prune step failed: a status line, not an error, and the pull still succeeds (6590). */
  'prune-failed': () => [
    ...downloadLines(),
    ...closing({ status: 'removing unused layers' }, { status: "couldn't remove unused layers: invalid character '\\x00' looking for beginning of value" }),
  ],
  /** Every layer already on disk: one line each with total == completed (the real "Deep Dive" capture). */
  cached: () => readPullFixture('cached-six-layers-llama2-deep-dive.ndjson'),
  /** The registry has no such model (real capture, 1626). */
  unknown: () => readPullFixture('unknown-model-podman-desktop-1626.ndjson'),
  /** Ollama can't resolve its registry (8065, 437, 3434) or reach it (4933, 12435). */
  dns: () => [MANIFEST, { error: readPullFixture('cli-error-dns-server-misbehaving-ollama-8065.txt') }],
  'no-such-host': () => [MANIFEST, { error: readPullFixture('cli-error-dns-no-such-host-ollama-437.txt') }],
  'dns-timeout': () => [MANIFEST, { error: readPullFixture('cli-error-dns-i-o-timeout-ollama-3434.txt') }],
  'connect-timeout': () => [MANIFEST, { error: readPullFixture('cli-error-connect-i-o-timeout-ollama-4933.txt') }],
  'connection-reset': () => [MANIFEST, { error: readPullFixture('cli-error-connection-reset-ollama-12435.txt') }],
  /** The registry answered, its blob CDN did not resolve: no "pull model manifest:" prefix (4992). */
  'blob-cdn': () => [MANIFEST, { error: readPullFixture('cli-error-blob-cdn-no-such-host-ollama-4992.txt') }],
  /** The disk filled up part-way through the first layer (current blob name form, 15547). */
  'disk-full': () => [MANIFEST, ...firstLayerLines(), { error: readPullFixture('cli-error-disk-full-mid-layer-ollama-15547.txt') }],
  /** Same, old blob name form, right after the manifest (1731). */
  'disk-full-old': () => [MANIFEST, { error: readPullFixture('cli-error-disk-full-ollama-1731.txt') }],
  /** The network kept dropping during a blob (1770). */
  'max-retries': () => [MANIFEST, ...firstLayerLines(), { error: readPullFixture('cli-error-max-retries-eof-ollama-1770.txt') }],
  /** Ollama went away mid-layer (restart, crash): the connection closes with neither success nor error. */
  cut: () => [MANIFEST, ...firstLayerLines(), { cut: true }],
  /**
   * Not a capture: what a hostile server, or anything in the middle, could send. Terminal escape
   * codes in the status of a layer line and of a status-only line, and a 1 MB status, then success.
   */
  hostile: () => {
    const [layer] = firstLayerLines();
    return [
      MANIFEST,
      { ...layer, status: 'pulling \x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eesrever', completed: 1000 },
      { status: `verifying \x1b[2J\x1b[1;1H${'x'.repeat(1 << 20)}` },
      ...closing(),
    ];
  },
};

/** Which scenario STANDIN_PULL picks for a model name (normalized with ":latest"). */
export function pullScenarioFor(spec, name) {
  const value = (spec ?? '').trim();
  if (value === '') return 'success';
  if (!value.includes('=')) return value;
  const withTag = (n) => (n.includes(':') && !n.endsWith(':') ? n : `${n}:latest`);
  let fallback = 'success';
  for (const pair of value.split(',')) {
    const [key = '', scenario = ''] = pair.split('=').map((x) => x.trim());
    if (key === '*') fallback = scenario;
    else if (withTag(key) === withTag(name)) return scenario;
  }
  return fallback;
}

const PART_HOST = 'host';
const PART_NAMESPACE = 'namespace';

/** types/model/name.go isValidPart. */
function validNamePart(kind, s) {
  const max = kind === PART_HOST ? 350 : 80;
  if (s.length < 1 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const alnum = /[A-Za-z0-9_]/.test(c);
    if (i === 0) {
      if (!alnum) return false;
      continue;
    }
    if (c === '_' || c === '-' || alnum) continue;
    if (c === '.' && kind !== PART_NAMESPACE) continue;
    if (c === ':' && kind === PART_HOST) continue;
    return false;
  }
  return true;
}

/**
 * model.ParseName(s).IsValid(), as PullHandler applies it: [host/][namespace/]model[:tag], with
 * registry.ollama.ai / library / latest filled in when absent.
 */
export function pullNameValid(raw) {
  if (typeof raw !== 'string' || raw === '') return false;
  let s = raw;
  const at = s.lastIndexOf('@');
  if (at >= 0) s = s.slice(0, at);
  let tag = 'latest';
  const colon = s.lastIndexOf(':');
  if (colon >= 0 && !s.slice(colon + 1).includes('/')) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
  }
  const parts = s.split('/');
  const model = parts.pop() ?? '';
  const namespace = parts.length > 0 ? (parts.pop() ?? '') : 'library';
  const host = parts.length > 0 ? parts.join('/') : 'registry.ollama.ai';
  return validNamePart('model', model) && validNamePart(PART_NAMESPACE, namespace) && validNamePart(PART_HOST, host) && validNamePart('tag', tag);
}

/** encoding/json's answer for a body that is not a PullRequest, or null when it is one. */
function pullBodyProblem(text) {
  if (text.trim() === '') return 'missing request body';
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    const first = text.trimStart()[0] ?? '';
    return /[{["tfn0-9-]/.test(first) ? 'unexpected EOF' : `invalid character '${first}' looking for beginning of value`;
  }
  const kind = (v) => (v === null ? null : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v);
  if (kind(value) !== 'object') return value === null ? null : `json: cannot unmarshal ${kind(value)} into Go value of type api.PullRequest`;
  for (const field of ['model', 'name']) {
    const v = value[field];
    if (v !== undefined && v !== null && typeof v !== 'string') return `json: cannot unmarshal ${kind(v)} into Go struct field PullRequest.${field} of type string`;
  }
  if (value.stream !== undefined && value.stream !== null && typeof value.stream !== 'boolean') {
    return `json: cannot unmarshal ${kind(value.stream)} into Go struct field PullRequest.stream of type bool`;
  }
  return null;
}

function logRequest(entry) {
  const file = process.env.STANDIN_REQUEST_LOG;
  if (!file) return;
  try {
    fs.appendFileSync(file, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  } catch {
    // A log that can't be written must not change how the stand-in answers.
  }
}

function pullInterval(scenario) {
  const raw = process.env.STANDIN_PULL_INTERVAL_MS;
  const n = raw === undefined || raw === '' ? (scenario === 'slow' ? 150 : 5) : Number(raw);
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), 2000) : 5;
}

/** Body reading is bounded: Ollama's limit is far higher, but a pull body is a few bytes. */
const MAX_PULL_BODY = 1 << 20;

function handlePull(req, res, models, done) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_PULL_BODY) chunks.push(c);
  });
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const sendJson = (status, obj) => {
      const body = JSON.stringify(obj);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Date: new Date().toUTCString() });
      res.end(body);
      done();
    };
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    logRequest({ method: 'POST', path: '/api/pull', body: body ?? text.slice(0, 1000) });
    const problem = pullBodyProblem(text);
    if (problem) {
      logRequest({ event: 'pull-end', outcome: 'bad-request', error: problem });
      return sendJson(400, { error: problem });
    }
    const name = (body?.model || body?.name) ?? '';
    if (!pullNameValid(name)) {
      logRequest({ event: 'pull-end', outcome: 'bad-request', error: 'invalid model name' });
      return sendJson(400, { error: 'invalid model name' });
    }
    const scenarioName = pullScenarioFor(process.env.STANDIN_PULL, name);
    const scenario = PULL_SCENARIOS[scenarioName];
    if (!scenario) {
      logRequest({ event: 'pull-end', outcome: 'bad-request', error: `unknown STANDIN_PULL scenario ${scenarioName}` });
      return sendJson(500, { error: `stand-in: unknown STANDIN_PULL scenario ${JSON.stringify(scenarioName)}` });
    }
    const steps = scenario();
    const onSuccess = () => {
      const tagged = name.includes(':') ? name : `${name}:latest`;
      if (!models.some((m) => m.name === tagged)) models.push(...modelList(tagged));
    };
    if (body?.stream === false) return waitForPull(steps, onSuccess, sendJson);
    streamPull(req, res, steps, pullInterval(scenarioName), onSuccess, done);
  });
}

/** "stream": false: one answer at the end (routes.go waitForStream). */
function waitForPull(steps, onSuccess, sendJson) {
  let last = null;
  for (const step of steps) {
    if (step.error !== undefined) {
      logRequest({ event: 'pull-end', outcome: 'error', error: step.error });
      return sendJson(500, { error: step.error });
    }
    if (step.cut) {
      logRequest({ event: 'pull-end', outcome: 'cut' });
      return sendJson(500, { error: 'unexpected EOF' });
    }
    last = step;
  }
  if (last?.status === 'success') onSuccess();
  logRequest({ event: 'pull-end', outcome: 'success' });
  return sendJson(200, last ?? {});
}

/** streamResponse(): NDJSON, 200 committed on the first line, an error as the last line. */
function streamPull(req, res, steps, interval, onSuccess, done) {
  let index = 0;
  let timer = null;
  let finished = false;
  const finish = (outcome, extra = {}) => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    logRequest({ event: 'pull-end', outcome, linesSent: index, ...extra });
    done();
  };
  // The client went away (Ctrl-C): Ollama's request context is cancelled and the pull stops.
  res.on('close', () => {
    if (!res.writableFinished) finish('client-closed');
  });
  const next = () => {
    if (finished) return;
    const step = steps[index];
    if (step === undefined) {
      finish('ended-without-success');
      res.end();
      return;
    }
    index++;
    if (step.cut) {
      // Ollama gone mid-stream: the connection drops without the chunked terminator.
      // Logged first, so a test that sees the connection drop finds the entry.
      finish('cut');
      res.socket?.destroy();
      return;
    }
    if (!res.headersSent) res.writeHead(step.error !== undefined && index === 1 ? 500 : 200, { 'Content-Type': step.error !== undefined && index === 1 ? 'application/json; charset=utf-8' : 'application/x-ndjson', Date: new Date().toUTCString() });
    if (step.error !== undefined) {
      finish('error', { error: step.error });
      res.end(`${JSON.stringify({ error: step.error })}\n`);
      return;
    }
    res.write(`${JSON.stringify(step)}\n`);
    if (step.status === 'success') {
      onSuccess();
      finish('success');
      res.end();
      return;
    }
    timer = setTimeout(next, interval);
  };
  next();
}

/** Go's syscall error text for common bind failures. */
function bindErrorText(err) {
  switch (err?.code) {
    case 'EADDRINUSE':
      return 'bind: address already in use';
    case 'EADDRNOTAVAIL':
      return 'bind: cannot assign requested address';
    case 'EACCES':
      return 'bind: permission denied';
    case 'EAFNOSUPPORT':
      return 'socket: address family not supported by protocol';
    default:
      return `${err?.syscall ?? 'bind'}: ${err?.message ?? String(err)}`;
  }
}

function fail(message) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(1);
}

async function serve() {
  const version = process.env.STANDIN_VERSION || DEFAULT_VERSION;
  const models = modelList(process.env.STANDIN_MODELS);
  const parsed = parseOllamaHost(process.env.OLLAMA_HOST);
  if (parsed.invalidPort !== null) {
    process.stderr.write(slogLine('WARN', 'invalid port, using default', { port: parsed.invalidPort, default: parsed.port }));
  }
  process.stderr.write(
    slogLine('INFO', 'server config', {
      env: `map[OLLAMA_HOST:${parsed.url} OLLAMA_MODELS:${process.env.OLLAMA_MODELS ?? `${os.homedir()}/.ollama/models`} OLLAMA_ORIGINS:[${process.env.OLLAMA_ORIGINS ?? ''}]]`,
    }),
  );

  const delay = Number(process.env.STANDIN_START_DELAY_MS ?? 0);
  if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, 60_000)));

  const plan = bindPlan(parsed);
  let address = plan.address;
  if (plan.kind === 'hostname') {
    // Go resolves the name and listens on the first IPv4 result if there is one.
    let addrs = [];
    try {
      addrs = await dns.lookup(plan.address, { all: true });
    } catch {
      fail(`listen tcp ${parsed.hostPort}: lookup ${plan.address}: no such host`);
    }
    const pick = addrs.find((x) => x.family === 4) ?? addrs[0];
    if (!pick) fail(`listen tcp ${parsed.hostPort}: lookup ${plan.address}: no such host`);
    address = pick.address;
  }

  let bound = '';
  const server = http.createServer(createHandler(() => bound, version, models));
  server.on('error', (err) => fail(`listen tcp ${parsed.hostPort}: ${bindErrorText(err)}`));
  server.listen({ host: address, port: plan.port, ipv6Only: false, exclusive: true }, () => {
    const addr = server.address();
    if (addr && typeof addr === 'object') {
      bound = addr.address;
      process.stderr.write(slogLine('INFO', `Listening on ${formatListenAddr(addr)} (version ${version})`));
    }
  });

  const stop = () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function printVersion() {
  // `ollama -v` asks the server (at 127.0.0.1 when bound to a wildcard) and falls back to the client version.
  const parsed = parseOllamaHost(process.env.OLLAMA_HOST);
  let host = parsed.host;
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  const version = process.env.STANDIN_VERSION || DEFAULT_VERSION;
  const serverVersion = await new Promise((resolve) => {
    const req = http.get(
      { host, port: parsed.portNumber, path: '/api/version', timeout: 1000 },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body).version ?? null);
          } catch {
            resolve(null);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
  if (serverVersion) {
    process.stdout.write(`ollama version is ${serverVersion}\n`);
    if (serverVersion !== version) process.stdout.write(`Warning: client version is ${version}\n`);
  } else {
    process.stdout.write(`Warning: could not connect to a running Ollama instance\nWarning: client version is ${version}\n`);
  }
}

function main(argv) {
  const cmd = argv[0];
  if (cmd === 'serve' || cmd === 'start') return serve();
  if (cmd === '--print-bind') {
    const parsed = parseOllamaHost(process.env.OLLAMA_HOST);
    process.stdout.write(`${JSON.stringify({ ...parsed, bind: bindPlan(parsed) })}\n`);
    return;
  }
  if (cmd === '-v' || cmd === '--version') return printVersion();
  process.stderr.write(`Error: unknown command "${cmd ?? ''}" for "ollama"\n(stand-in supports: serve, --print-bind, --version)\n`);
  process.exit(1);
}

// Run only when executed directly (`node fake-ollama.mjs ...` or via a wrapper), not on import.
function isEntryPoint() {
  if (!process.argv[1]) return false;
  try {
    return fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  await main(process.argv.slice(2));
}
