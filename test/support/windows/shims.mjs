// shims.mjs: the Windows commands of the sandbox. Each bin/<command> script calls one of these
// through runShim() (sandbox.mjs), which finds the sandbox and records the call in transcript.jsonl.
//
// Windows console programs end lines with CRLF; the Docker CLI (Go, fmt.Println) with LF, on
// Windows too. Every format below is taken from a real capture (test/fixtures/win32, SOURCES.md
// there) or a public source named next to it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  APP_IMAGE,
  CRLF,
  descendantsOf,
  firstExternalIPv4,
  liveRecords,
  listProcs,
  memKb,
  procInSandbox,
  procStat,
  readStore,
  storeGet,
  storeSet,
  writeStore,
} from './sandbox.mjs';
import { servicePowerShell, serviceSc } from './service.mjs';

const out = (text) => process.stdout.write(text);
const err = (text) => process.stderr.write(text);

// ===========================================================================
// powershell.exe -NoProfile -NonInteractive -Command <script>

const VALUE_VAR = 'STIGMER_SETUP_VALUE';
const NAME = `(['"])([A-Za-z_][A-Za-z0-9_]*)`;
const GET = new RegExp(`^\\[(?:System\\.)?Environment\\]::GetEnvironmentVariable\\(\\s*${NAME}\\1\\s*,\\s*(['"])(User|Machine)\\3\\s*\\)$`, 'i');
const SET = new RegExp(
  `^\\[(?:System\\.)?Environment\\]::SetEnvironmentVariable\\(\\s*${NAME}\\1\\s*,\\s*(\\$env:${VALUE_VAR}|\\$null)\\s*,\\s*(['"])(User|Machine)\\4\\s*\\)$`,
  'i',
);
const ADMIN =
  /^\(\s*\[(?:System\.)?Security\.Principal\.WindowsPrincipal\]\s*\[(?:System\.)?Security\.Principal\.WindowsIdentity\]::GetCurrent\(\s*\)\s*\)\.IsInRole\(\s*\[(?:System\.)?Security\.Principal\.WindowsBuiltInRole\]::Administrator\s*\)$/i;

const scopeName = (text) => (text.toLowerCase() === 'user' ? 'User' : 'Machine');

/** One statement of an allowed script, or undefined. */
export function parsePowerShellStatement(statement) {
  let m = GET.exec(statement);
  if (m) return { kind: 'get', name: m[2], scope: scopeName(m[4]) };
  m = SET.exec(statement);
  if (m) return { kind: 'set', name: m[2], scope: scopeName(m[5]), fromEnv: m[3].toLowerCase() !== '$null' };
  if (ADMIN.test(statement)) return { kind: 'admin' };
  return undefined;
}

/** A PowerShell error record as powershell.exe prints it to stderr for -Command. */
function psError(message, script, category, errorId) {
  const first = script.split(/\r?\n/)[0] ?? '';
  const shown = first.length > 75 ? `${first.slice(0, 71)} ...` : first;
  return [
    message,
    'At line:1 char:1',
    `+ ${shown}`,
    `+ ${'~'.repeat(Math.max(1, Math.min(shown.length, 75)))}`,
    `    + CategoryInfo          : ${category}`,
    `    + FullyQualifiedErrorId : ${errorId}`,
    '',
    '',
  ].join(CRLF);
}

// ---------------------------------------------------------------------------
// Whole scripts the product runs that are more than one statement. Each is matched as a whole and
// answered as Windows PowerShell 5.1 would answer it.

const ENCODED_GET = new RegExp(
  `^\\$v\\s*=\\s*\\[(?:System\\.)?Environment\\]::GetEnvironmentVariable\\(\\s*'([A-Za-z_][A-Za-z0-9_]*)'\\s*,\\s*'(User|Machine)'\\s*\\)\\s*;\\s*` +
    `if\\s*\\(\\s*\\$null\\s+-eq\\s+\\$v\\s*\\)\\s*\\{\\s*'unset'\\s*\\}\\s*else\\s*\\{\\s*'value:'\\s*\\+\\s*\\[Convert\\]::ToBase64String\\(\\s*\\[(?:System\\.)?Text\\.Encoding\\]::UTF8\\.GetBytes\\(\\s*\\$v\\s*\\)\\s*\\)\\s*\\}$`,
  'i',
);

/**
 * `$v = [Environment]::GetEnvironmentVariable('NAME','User'); if ($null -eq $v) { 'unset' } else { 'value:' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($v)) }`:
 * GetEnvironmentVariable gives $null for a missing name and the stored string otherwise (an empty
 * REG_SZ is ''); a string statement writes one line. Returns the output, or undefined if not this script.
 */
export function encodedEnvironmentRead(dir, script) {
  const m = ENCODED_GET.exec(script.trim());
  if (!m) return undefined;
  const value = storeGet(readStore(dir, scopeName(m[2])), m[1]);
  return value === undefined ? `unset${CRLF}` : `value:${Buffer.from(value, 'utf8').toString('base64')}${CRLF}`;
}

const PROCESS_QUERY =
  /^\[Console\]::OutputEncoding\s*=\s*\[(?:System\.)?Text\.UTF8Encoding\]::new\(\s*\$false\s*\)\s*;\s*ConvertTo-Json\s+-InputObject\s+@\(\s*Get-CimInstance\s+-ClassName\s+Win32_Process\s+-Filter\s+'Name=''([^']+)'''\s*\|\s*Select-Object\s+ProcessId\s*,\s*ExecutablePath\s*\)$/i;

/** ConvertTo-Json of Windows PowerShell 5.1: 4-space indents and two spaces after each colon (test/fixtures/win32/get-ciminstance-*.json). */
function psJsonArray(objects) {
  if (objects.length === 0) return `[${CRLF}${CRLF}]`;
  const value = (v) => (v === null ? 'null' : JSON.stringify(v));
  const items = objects.map((o) => [`    {`, Object.entries(o).map(([k, v]) => `        ${JSON.stringify(k)}:  ${value(v)}`).join(`,${CRLF}`), `    }`].join(CRLF));
  return `[${CRLF}${items.join(`,${CRLF}`)}${CRLF}]`;
}

/**
 * `ConvertTo-Json -InputObject @(Get-CimInstance -ClassName Win32_Process -Filter 'Name=''IMAGE''' | Select-Object ProcessId,ExecutablePath)`:
 * the sandbox's live processes of that image with the Windows path each was started from (null when
 * none was recorded, as Windows gives for a process it won't open). Output is UTF-8, as the script's
 * first statement asks. Returns the output, or undefined if not this script.
 */
export function processPathQuery(dir, script) {
  const m = PROCESS_QUERY.exec(script.trim());
  if (!m) return undefined;
  const image = m[1].toLowerCase();
  const rows = liveRecords(dir)
    .filter((r) => r.image.toLowerCase() === image)
    .map((r) => ({ ProcessId: r.pid, ExecutablePath: r.path ?? null }));
  return `${psJsonArray(rows)}${CRLF}`;
}

export async function powershell({ dir, args, config }) {
  let script;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (/^[-/](noprofile|nop|noninteractive|noni|nologo)$/i.test(a)) continue;
    if (/^[-/](executionpolicy|ep|ex)$/i.test(a)) {
      i++;
      continue;
    }
    if (/^[-/](command|c)$/i.test(a)) {
      script = args.slice(i + 1).join(' ');
      break;
    }
    err(`powershell.exe (Windows sandbox): unsupported argument ${JSON.stringify(a)}; use -NoProfile -NonInteractive -Command <script>${CRLF}`);
    return 1;
  }
  if (script === undefined || script === '-') {
    err(`powershell.exe (Windows sandbox): no -Command <script>${CRLF}`);
    return 1;
  }

  const value = process.env[VALUE_VAR];
  if (value !== undefined && value.trim() !== '' && script.includes(value)) {
    err(
      psError(
        `The Windows sandbox refused this script: it contains the value of ${VALUE_VAR} (${JSON.stringify(value)}) literally. Pass values as data in $env:${VALUE_VAR}, never inside the code.`,
        script,
        'SecurityError: (:) [], ParentContainsErrorRecordException',
        'SandboxRefusedSplicedValue',
      ),
    );
    return 1;
  }
  // The ollama service's registry scripts (service.mjs), recognised as a whole.
  const serviceCode = servicePowerShell({ dir, script, config });
  if (serviceCode !== undefined) return serviceCode;
  for (const whole of [encodedEnvironmentRead, processPathQuery]) {
    const answer = whole(dir, script);
    if (answer !== undefined) {
      out(answer);
      return 0;
    }
  }
  const statements = script
    .split(/[;\r\n]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const parsed = statements.map(parsePowerShellStatement);
  const unknown = statements.find((_, n) => parsed[n] === undefined);
  if (statements.length === 0 || unknown !== undefined) {
    err(
      psError(
        `The Windows sandbox refused this script: ${JSON.stringify(unknown ?? script)} is not one of the scripts it implements ([Environment]::GetEnvironmentVariable / SetEnvironmentVariable with $env:${VALUE_VAR} or $null, for 'User' or 'Machine'; the Administrator check).`,
        script,
        'NotImplemented: (:) [], ParentContainsErrorRecordException',
        'SandboxRefusedUnknownScript',
      ),
    );
    return 1;
  }

  let failed = false;
  for (const statement of parsed) {
    if (statement.kind === 'get') {
      // A $null result writes nothing at all (not even an empty line); a string writes one line.
      const current = storeGet(readStore(dir, statement.scope), statement.name);
      if (current !== undefined) out(`${current}${CRLF}`);
    } else if (statement.kind === 'admin') {
      out(`${config.admin ? 'True' : 'False'}${CRLF}`);
    } else {
      const newValue = statement.fromEnv ? process.env[VALUE_VAR] : undefined;
      if (statement.scope === 'Machine' && !config.admin) {
        // HKLM\...\Environment is writable by Administrators only.
        err(
          psError(
            'Exception calling "SetEnvironmentVariable" with "3" argument(s): "Requested registry access is not allowed."',
            script,
            'NotSpecified: (:) [], MethodInvocationException',
            'SecurityException',
          ),
        );
        failed = true;
        continue;
      }
      if (newValue !== undefined && newValue.length >= 32767) {
        err(
          psError(
            'Exception calling "SetEnvironmentVariable" with "3" argument(s): "Environment variable name or value is too long."',
            script,
            'NotSpecified: (:) [], MethodInvocationException',
            'ArgumentException',
          ),
        );
        failed = true;
        continue;
      }
      // .NET: an empty or null value deletes the variable.
      const store = readStore(dir, statement.scope);
      writeStore(dir, statement.scope, storeSet(store, statement.name, newValue === '' ? undefined : newValue));
    }
  }
  return failed ? 1 : 0;
}

// ===========================================================================
// netstat -ano: the real sockets of this machine in Windows' layout

const TCP_STATES = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECEIVED',
  '04': 'FIN_WAIT_1',
  '05': 'FIN_WAIT_2',
  '06': 'TIME_WAIT',
  '07': 'CLOSED',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTENING',
  '0B': 'CLOSING',
  '0C': 'SYN_RECEIVED',
};

/** /proc/net/{tcp,tcp6,udp,udp6} address: each 32-bit word is printed in host byte order. */
function procNetBytes(hex) {
  const bytes = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [];
    for (let b = 0; b < 8; b += 2) word.push(parseInt(hex.slice(w + b, w + b + 2), 16));
    if (os.endianness() === 'LE') word.reverse();
    bytes.push(...word);
  }
  return bytes;
}

function formatIPv6(bytes) {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const words = [];
  for (let n = 0; n < 16; n += 2) words.push((bytes[n] << 8) | bytes[n + 1]);
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
  const hex = (w) => w.toString(16);
  if (bestLen < 2) return words.map(hex).join(':');
  return `${words.slice(0, bestStart).map(hex).join(':')}::${words.slice(bestStart + bestLen).map(hex).join(':')}`;
}

function endpoint(field, family) {
  const [hex = '', portHex = '0'] = field.split(':');
  const bytes = procNetBytes(hex);
  const port = parseInt(portHex, 16);
  const address = family === 4 ? bytes.join('.') : formatIPv6(bytes);
  return { bytes, port, text: family === 4 ? `${address}:${port}` : `[${address}]:${port}` };
}

function readProcNet(file, proto, family) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const rows = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    rows.push({ proto, family, local: endpoint(f[1], family), remote: endpoint(f[2], family), st: f[3], inode: f[9] });
  }
  return rows;
}

/** socket inode -> owning pid, from /proc/<pid>/fd (the lowest pid when several share a socket). */
function socketOwners() {
  const owners = new Map();
  const pids = fs
    .readdirSync('/proc')
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
  for (const pid of pids) {
    let fds;
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[([0-9]+)\]$/.exec(link);
      if (m && !owners.has(m[1])) owners.set(m[1], pid);
    }
  }
  return owners;
}

function compareRows(a, b) {
  for (const [x, y] of [
    [a.local.bytes, b.local.bytes],
    [[a.local.port], [b.local.port]],
    [a.remote.bytes, b.remote.bytes],
    [[a.remote.port], [b.remote.port]],
  ]) {
    for (let n = 0; n < x.length; n++) if (x[n] !== y[n]) return x[n] - y[n];
  }
  return 0;
}

/** "  %-5s  %-21s  %-21s  %-16s%s": checked byte for byte against all 208 rows of the jc capture. */
export function netstatRow(proto, local, remote, state, pid) {
  const head = `  ${proto.padEnd(5)}  ${local.padEnd(21)}  ${remote.padEnd(21)}  `;
  return pid === undefined ? `${head}${state}` : `${head}${state.padEnd(16)}${pid}`;
}

export async function netstat({ args }) {
  const flags = new Set();
  let protoFilter;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (/^[-/][ano]+$/i.test(a)) {
      for (const c of a.slice(1).toLowerCase()) flags.add(c);
    } else if (/^[-/]p$/i.test(a) && args[i + 1] !== undefined) {
      protoFilter = args[++i].toUpperCase();
    } else {
      err(`netstat (Windows sandbox): unsupported option ${JSON.stringify(a)} (supported: -a -n -o -p PROTO)${CRLF}`);
      return 1;
    }
  }
  if (!flags.has('n')) {
    err(`netstat (Windows sandbox): only numeric output (-n) is implemented${CRLF}`);
    return 1;
  }
  const withPid = flags.has('o');
  const all = flags.has('a');
  const owners = socketOwners();
  const tcp = [...readProcNet('/proc/net/tcp', 'TCP', 4).sort(compareRows), ...readProcNet('/proc/net/tcp6', 'TCP', 6).sort(compareRows)];
  const udp = [...readProcNet('/proc/net/udp', 'UDP', 4).sort(compareRows), ...readProcNet('/proc/net/udp6', 'UDP', 6).sort(compareRows)];
  const lines = ['', 'Active Connections', '', withPid ? '  Proto  Local Address          Foreign Address        State           PID' : '  Proto  Local Address          Foreign Address        State'];
  const wanted = (proto, family) => protoFilter === undefined || protoFilter === (family === 6 ? `${proto}V6` : proto);
  for (const row of tcp) {
    const state = TCP_STATES[row.st] ?? 'UNKNOWN';
    if (!all && (state === 'LISTENING' || state === 'CLOSED')) continue;
    if (!wanted('TCP', row.family)) continue;
    const pid = row.inode === '0' ? 0 : (owners.get(row.inode) ?? 0);
    lines.push(netstatRow('TCP', row.local.text, row.remote.text, state, withPid ? pid : undefined));
  }
  if (all) {
    for (const row of udp) {
      if (!wanted('UDP', row.family)) continue;
      const pid = owners.get(row.inode) ?? 0;
      lines.push(netstatRow('UDP', row.local.text, '*:*', '', withPid ? pid : undefined));
    }
  }
  out(lines.join(CRLF) + CRLF);
  return 0;
}

// ===========================================================================
// tasklist /FO CSV /NH

const csvField = (value) => `"${String(value).replace(/"/g, '""')}"`;
/** English (en-US) Windows: "24,840 K" (a real `tasklist` of an Ollama machine shows that grouping). */
const memUsage = (kb) => `${String(kb).replace(/\B(?=(\d{3})+(?!\d))/g, ',')} K`;

function wildcardMatch(pattern, text) {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
  return re.test(text);
}

export async function tasklist({ dir, args }) {
  let format = 'TABLE';
  let header = true;
  const filters = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i].toUpperCase();
    if (a === '/FO' && args[i + 1] !== undefined) format = args[++i].toUpperCase();
    else if (a === '/NH') header = false;
    else if (a === '/FI' && args[i + 1] !== undefined) {
      const m = /^\s*(IMAGENAME|PID)\s+eq\s+(.+?)\s*$/i.exec(args[++i]);
      if (!m) {
        err(`ERROR: The search filter cannot be recognized.${CRLF}`);
        return 1;
      }
      filters.push({ field: m[1].toUpperCase(), value: m[2] });
    } else {
      err(`ERROR: Invalid argument/option - '${args[i]}'.${CRLF}Type "TASKLIST /?" for usage.${CRLF}`);
      return 1;
    }
  }
  if (format !== 'CSV') {
    err(`tasklist (Windows sandbox): only /FO CSV is implemented${CRLF}`);
    return 1;
  }
  const rows = [
    { image: 'System Idle Process', pid: 0, session: 'Services', num: 0, mem: '8 K' },
    { image: 'System', pid: 4, session: 'Services', num: 0, mem: '144 K' },
    ...liveRecords(dir).map((r) => ({ image: r.image, pid: r.pid, session: 'Console', num: 1, mem: memUsage(memKb(r.pid)) })),
    { image: 'tasklist.exe', pid: process.pid, session: 'Console', num: 1, mem: memUsage(memKb(process.pid)) },
  ].filter((row) => filters.every((f) => (f.field === 'PID' ? String(row.pid) === f.value : wildcardMatch(f.value, row.image))));
  if (rows.length === 0) {
    out(`INFO: No tasks are running which match the specified criteria.${CRLF}`);
    return 0;
  }
  const lines = rows.map((r) => [r.image, r.pid, r.session, r.num, r.mem].map(csvField).join(','));
  if (header) lines.unshift(['Image Name', 'PID', 'Session Name', 'Session#', 'Mem Usage'].map(csvField).join(','));
  out(lines.join(CRLF) + CRLF);
  return 0;
}

// ===========================================================================
// taskkill [/F] [/T] /IM <image> | /PID <pid>

export async function taskkill({ dir, args, config }) {
  let force = false;
  let tree = false;
  const images = [];
  const pids = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i].toUpperCase();
    if (a === '/F') force = true;
    else if (a === '/T') tree = true;
    else if (a === '/IM' && args[i + 1] !== undefined) images.push(args[++i]);
    else if (a === '/PID' && args[i + 1] !== undefined) pids.push(args[++i]);
    else {
      err(`ERROR: Invalid argument/option - '${args[i]}'.${CRLF}Type "TASKKILL /?" for usage.${CRLF}`);
      return 1;
    }
  }
  if (images.length === 0 && pids.length === 0) {
    err(`ERROR: Invalid syntax. Neither /FI nor /PID nor /IM were specified.${CRLF}Type "TASKKILL /?" for usage.${CRLF}`);
    return 1;
  }

  const records = liveRecords(dir);
  const roots = new Map(); // pid -> image
  let code = 0;
  for (const image of images) {
    const matches = records.filter((r) => wildcardMatch(image, r.image));
    if (matches.length === 0) {
      err(`ERROR: The process "${image}" not found.${CRLF}`);
      code = 128;
    }
    for (const r of matches) roots.set(r.pid, r.image);
  }
  for (const text of pids) {
    const pid = Number(text);
    const stat = /^[0-9]+$/.test(text) ? procStat(pid) : undefined;
    if (stat === undefined || stat.state === 'Z') {
      err(`ERROR: The process "${text}" not found.${CRLF}`);
      code = 128;
      continue;
    }
    const record = records.find((r) => r.pid === pid);
    if (record === undefined && !procInSandbox(pid, dir)) {
      // Not a process of this sandbox: behave like a process of another user.
      err(`ERROR: The process with PID ${pid} could not be terminated.${CRLF}Reason: Access is denied.${CRLF}`);
      code = code || 1;
      continue;
    }
    roots.set(pid, record?.image ?? `${stat.comm}.exe`);
  }

  const procs = listProcs();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const done = new Set();
  const kill = (pid, signal) => {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  };
  for (const [root, image] of roots) {
    const targets = tree ? [...descendantsOf(root, procs), byPid.get(root) ?? { pid: root, ppid: 0 }] : [byPid.get(root) ?? { pid: root, ppid: 0 }];
    for (const p of targets) {
      if (done.has(p.pid) || p.pid === process.pid) continue;
      done.add(p.pid);
      const isRoot = p.pid === root;
      if (force) {
        // TerminateProcess only starts the termination: a process blocked in a driver call stays
        // listed until that call returns. The sandbox's `stuckPids` are such processes.
        if (!(config.stuckPids ?? []).includes(p.pid)) kill(p.pid, 'SIGKILL');
        out(tree ? `SUCCESS: The process with PID ${p.pid} (child process of PID ${p.ppid}) has been terminated.${CRLF}` : `SUCCESS: The process "${image}" with PID ${p.pid} has been terminated.${CRLF}`);
      } else if (isRoot && image.toLowerCase() === APP_IMAGE) {
        // Without /F taskkill asks the windows of the process to close: the tray app quits gracefully.
        kill(p.pid, 'SIGTERM');
        out(pids.includes(String(p.pid)) ? `SUCCESS: Sent termination signal to the process with PID ${p.pid}.${CRLF}` : `SUCCESS: Sent termination signal to the process "${image}" with PID ${p.pid}.${CRLF}`);
      } else {
        // A console process (ollama.exe serve) has no window to close.
        err(`ERROR: The process with PID ${p.pid} could not be terminated.${CRLF}Reason: This process can only be terminated forcefully (with /F option).${CRLF}`);
        code = code || 1;
      }
    }
  }
  return code;
}

// ===========================================================================
// netsh interface ipv4 show excludedportrange protocol=tcp

export function formatExcludedPortRanges(protocol, ranges) {
  const rows = [...ranges]
    .sort((a, b) => a[0] - b[0])
    .map(([start, end, administered]) => `${String(start).padStart(10)}${String(end).padStart(12)}${administered ? '     *' : '      '}`);
  return ['', `Protocol ${protocol} Port Exclusion Ranges`, '', 'Start Port    End Port      ', '----------    --------      ', ...rows, '', '* - Administered port exclusions.', '', ''].join(CRLF);
}

export async function netsh({ args, config }) {
  const words = args.map((a) => a.toLowerCase());
  const m = words.length === 5 && words[0] === 'interface' && words[1] === 'ipv4' && words[2] === 'show' && words[3] === 'excludedportrange' ? /^protocol=(tcp|udp)$/.exec(words[4]) : null;
  if (!m) {
    out(`The following command was not found: ${args.join(' ')}.${CRLF}`);
    return 1;
  }
  out(formatExcludedPortRanges(m[1], m[1] === 'tcp' ? (config.excludedPorts ?? []) : []));
  return 0;
}

// ===========================================================================
// sc query <service>

export function formatScQuery(name, state) {
  const running = state === 'running';
  return [
    '',
    `SERVICE_NAME: ${name}`,
    '        TYPE               : 10  WIN32_OWN_PROCESS  ',
    running ? '        STATE              : 4  RUNNING ' : '        STATE              : 1  STOPPED ',
    ...(running ? ['                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)'] : []),
    '        WIN32_EXIT_CODE    : 0  (0x0)',
    '        SERVICE_EXIT_CODE  : 0  (0x0)',
    '        CHECKPOINT         : 0x0',
    '        WAIT_HINT          : 0x0',
    '',
    '',
  ].join(CRLF);
}

export async function sc({ dir, args, config }) {
  // A service installed with installService() (service.mjs) has a live state and registry key.
  if (config.serviceLive) return serviceSc({ dir, args, config });
  const rest = args[0]?.startsWith('\\\\') ? args.slice(1) : args;
  if (rest.length !== 2 || rest[0].toLowerCase() !== 'query') {
    err(`sc (Windows sandbox): only "sc query <service>" is implemented${CRLF}`);
    return 1;
  }
  const name = rest[1];
  if (!config.service || name.toLowerCase() !== 'ollama') {
    out(`[SC] EnumQueryServicesStatus:OpenService FAILED 1060:${CRLF}${CRLF}The specified service does not exist as an installed service.${CRLF}${CRLF}`);
    // sc exits with the Win32 error code (ComodoSecurity/openedr#2 logs "Service control 'edrsvc': 1060"
    // for `sc query edrsvc`). A Linux exit status keeps the low 8 bits: the caller sees 1060 & 0xff = 36.
    return 1060;
  }
  out(formatScQuery(name, config.service));
  return 0;
}

// ===========================================================================
// docker, as on Windows with Docker Desktop (WSL 2 backend)

const DOCKER_INFO = {
  OperatingSystem: 'Docker Desktop',
  Name: 'docker-desktop',
  ServerVersion: '28.3.2',
  KernelVersion: '6.6.87.2-microsoft-standard-WSL2',
  OSType: 'linux',
  Architecture: 'x86_64',
  // As Docker Desktop 28.2 on WSL 2 reports them (test/fixtures/docker/info-api-body-docker-desktop-wsl2-28.2-proxy-testcontainers-log.json).
  HttpProxy: 'http.docker.internal:3128',
  HttpsProxy: 'http.docker.internal:3128',
  NoProxy: 'hubproxy.docker.internal',
  SecurityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'],
};
const DOCKER_IMAGES = [{ Repository: 'python', Tag: '3.11-slim' }];
const PYTHON_SITE = fileURLToPath(new URL('./python', import.meta.url));

/** `{{.Field}}` templates over a flat object, with Go's error for an unknown field; `{{json .}}` is the whole object. */
function renderTemplate(template, fields, typeName) {
  if (/^\s*\{\{\s*json\s+\.\s*\}\}\s*$/.test(template)) return { text: JSON.stringify(fields), error: undefined };
  let error;
  const text = template.replace(/\{\{\s*\.([A-Za-z]+)\s*\}\}/g, (_whole, field, offset) => {
    if (!(field in fields)) error ??= `template: :1:${offset + 2}: executing "" at <.${field}>: can't evaluate field ${field} in type ${typeName}`;
    return String(fields[field] ?? '');
  });
  if (error === undefined && /\{\{/.test(text)) error = `template: unsupported by the Windows sandbox: ${template}`;
  return { text, error };
}

function formatOption(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--format' || args[i] === '-f') return args[i + 1];
    if (args[i].startsWith('--format=')) return args[i].slice('--format='.length);
  }
  return undefined;
}

const normalizeImage = (ref) => {
  let name = ref.replace(/^docker\.io\//, '').replace(/^library\//, '');
  if (!/:[^/]+$/.test(name) && !name.includes('@')) name += ':latest';
  return name;
};

function isLoopbackHost(host) {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

function urlHosts(text) {
  const hosts = [];
  for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/(\[[^\]]*\]|[^/:?#\s]*)/gi)) hosts.push(m[1]);
  return hosts;
}

async function dockerRun(args, config) {
  const addHosts = new Map();
  const envs = [];
  let pull = 'missing';
  let i = 0;
  for (; i < args.length && args[i].startsWith('-'); i++) {
    const a = args[i];
    const value = (flag) => (a === flag ? args[++i] : a.slice(flag.length + 1));
    if (['--rm', '-i', '-t', '-it', '--init', '--interactive', '--tty'].includes(a)) continue;
    if (a === '--pull' || a.startsWith('--pull=')) pull = value('--pull');
    else if (a === '--add-host' || a.startsWith('--add-host=')) {
      const [host = '', ip = ''] = value('--add-host').split(/:(.*)/s);
      addHosts.set(host.toLowerCase(), ip);
    } else if (a === '-e' || a === '--env' || a.startsWith('--env=')) envs.push(a === '-e' ? args[++i] : value('--env'));
    else {
      err(`docker (Windows sandbox): unsupported docker run option ${JSON.stringify(a)}\n`);
      return 125;
    }
  }
  const image = args[i];
  const command = args.slice(i + 1);
  if (image === undefined) {
    err(`"docker run" requires at least 1 argument.\nSee 'docker run --help'.\n`);
    return 1;
  }
  const known = DOCKER_IMAGES.some((im) => `${im.Repository}:${im.Tag}` === normalizeImage(image));
  if (!known) {
    if (pull === 'never') {
      err(`docker: Error response from daemon: No such image: ${normalizeImage(image)}\n\nRun 'docker run --help' for more information\n`);
      return 125;
    }
    err(`docker (Windows sandbox): cannot pull ${image} (no registry in the sandbox)\n`);
    return 125;
  }
  if (!['python3', 'python', '/usr/local/bin/python3', '/usr/local/bin/python'].includes(command[0] ?? '')) {
    err(`docker (Windows sandbox): the ${image} stand-in runs python3 only, not ${JSON.stringify(command[0] ?? '')}\n`);
    return 127;
  }

  // Where host.docker.internal leads from a Docker Desktop container: 'forward-loopback' = this
  // machine's 127.0.0.1 (Docker Desktop forwards to Windows' loopback), 'no-forward' = its first
  // non-internal IPv4. An --add-host entry names its own IP; "host-gateway" on Docker Desktop is the
  // same host address as the built-in name. The names are resolved inside python (see
  // python/sitecustomize.py): the URL, the Host header and the probe's output stay as in a container.
  const target = config.runtime === 'forward-loopback' ? '127.0.0.1' : firstExternalIPv4();
  if (target === undefined) {
    err('docker (Windows sandbox): this machine has no non-internal IPv4 address for runtime "no-forward"\n');
    return 125;
  }
  const hosts = new Map([['host.docker.internal', target]]);
  for (const [name, ip] of addHosts) hosts.set(name, ip === 'host-gateway' ? target : ip.replace(/^\[|\]$/g, ''));
  const scriptIndex = command.indexOf('-c') + 1;
  const pyArgs = command.slice(1);
  const containerEnv = {
    PATH: '/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: '/root',
    PYTHON_VERSION: '3.11',
    PYTHONPATH: PYTHON_SITE,
    PYTHONDONTWRITEBYTECODE: '1', // no __pycache__ next to sitecustomize.py in the repo
    STIGMER_SANDBOX_HOSTS: [...hosts].map(([name, ip]) => `${name}=${ip}`).join(','),
  };
  for (const kv of envs) {
    const [k = '', v] = kv.split(/=(.*)/s);
    if (v !== undefined) containerEnv[k] = v;
  }
  // A loopback URL inside a container means the container itself: nothing listens there.
  const originals = [...command.slice(1).filter((_, n) => n + 1 !== scriptIndex), ...envs];
  const isolate = originals.some((text) => urlHosts(text).some(isLoopbackHost));
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const argv = isolate ? ['/usr/bin/unshare', '-n', '/bin/sh', '-c', '/usr/sbin/ip link set lo up && exec "$0" "$@"', python, ...pyArgs] : [python, ...pyArgs];
  const child = spawn(argv[0], argv.slice(1), { env: containerEnv, stdio: ['ignore', 'inherit', 'inherit'] });
  const forward = (signal) => child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  return await new Promise((resolve) => {
    child.once('error', (error) => {
      err(`docker (Windows sandbox): could not run ${argv[0]}: ${error.message}\n`);
      resolve(125);
    });
    child.once('exit', (code, signal) => resolve(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1)));
  });
}

export async function docker({ args, config }) {
  const [sub, ...rest] = args;
  if (sub === 'info') {
    const format = formatOption(rest);
    if (format === undefined) {
      err('docker (Windows sandbox): only docker info --format <template> is implemented\n');
      return 1;
    }
    const { text, error } = renderTemplate(format, DOCKER_INFO, 'system.dockerInfo');
    if (error) {
      err(`${error}\n`);
      return 1;
    }
    out(`${text}\n`);
    return 0;
  }
  if (sub === 'inspect') {
    let type;
    const names = [];
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === '--type') type = rest[++i];
      else if (a.startsWith('--type=')) type = a.slice(7);
      else if (a === '--format' || a === '-f') i++;
      else if (a.startsWith('-')) continue;
      else names.push(a);
    }
    // The real CLI prints an empty JSON array, then one error per name. With --type container the
    // error is the daemon's (captured from docker CLI 28.2.2); without a type it is the CLI's own
    // "No such object" (test/fixtures/docker/inspect-no-such-object.txt).
    out('[]\n');
    for (const name of names) err(type === 'container' ? `Error response from daemon: No such container: ${name}\n` : `Error: No such object: ${name}\n`);
    return 1;
  }
  if ((sub === 'image' && rest[0] === 'ls') || sub === 'images') {
    const format = formatOption(sub === 'images' ? rest : rest.slice(1));
    if (format === undefined) {
      err('docker (Windows sandbox): only docker image ls --format <template> is implemented\n');
      return 1;
    }
    const lines = [];
    for (const im of DOCKER_IMAGES) {
      const { text, error } = renderTemplate(format, im, 'formatter.imageContext');
      if (error) {
        err(`${error}\n`);
        return 1;
      }
      lines.push(`${text}\n`);
    }
    out(lines.join(''));
    return 0;
  }
  if (sub === 'exec') {
    const name = rest.find((a) => !a.startsWith('-'));
    err(`Error response from daemon: No such container: ${name ?? ''}\n`);
    return 1;
  }
  if (sub === 'run' || (sub === 'container' && rest[0] === 'run')) return dockerRun(sub === 'run' ? rest : rest.slice(1), config);
  if (sub === 'context' && rest[0] === 'show') {
    out('desktop-linux\n');
    return 0;
  }
  err(`docker (Windows sandbox): unsupported: docker ${args.join(' ')}\n`);
  return 1;
}
