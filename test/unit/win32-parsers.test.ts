import { describe, expect, it } from 'vitest';
import { parseGetNetTcpConnectionListeners, parseGetNetTcpConnectionTable } from '../../platforms/win32/parsers/get-nettcpconnection.ts';
import { excludedRangeFor, isPortExcluded, parseExcludedPortRanges } from '../../platforms/win32/parsers/netsh.ts';
import { parseNetstatListening, parseNetstatTcpRows, type WindowsListener } from '../../platforms/win32/parsers/netstat.ts';
import { parseScQuery, parseScQueryAll, scServiceMissing } from '../../platforms/win32/parsers/sc-query.ts';
import { parseProcessPathsJson } from '../../platforms/win32/parsers/process-paths.ts';
import { parseCsvLine, parseTasklistCsv } from '../../platforms/win32/parsers/tasklist.ts';
import { parseEnvironmentRead } from '../../platforms/win32/powershell.ts';
import { isWsl, parseDefaultGateway, parseWslConfig, wslConfigNetworkingMode, wslVersion } from '../../platforms/win32/parsers/wsl.ts';
import { fixture } from './support/fixtures.ts';

const win32 = (name: string) => fixture(`win32/${name}`);
/** Windows tools end lines with CRLF; pastes in issues usually lost the CRs. */
const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');
const brief = (rows: WindowsListener[]) => rows.map((r) => `${r.family}|${r.address}|${r.port}|${r.pid}`);
// Any C0/C1 control character, or a bidi control: none may survive a parser.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe('netstat -ano', () => {
  const jc = win32('netstat-aon-jc-windows10-crlf.txt');

  it('reads every LISTENING row of a full Windows 10 capture (CRLF, IPv4 and IPv6, UDP rows ignored)', () => {
    expect(jc).toContain('\r\n');
    const rows = parseNetstatListening(jc);
    expect(rows).toHaveLength(39);
    expect(rows[0]).toEqual({ address: '0.0.0.0', port: 135, family: 4, pid: 1712 });
    expect(brief(rows.filter((r) => r.port === 443))).toEqual(['4|0.0.0.0|443|9396', '6|::|443|9396']);
    expect(brief(rows.filter((r) => r.address === '127.0.0.1' && r.port < 10000))).toEqual([
      '4|127.0.0.1|1310|9328',
      '4|127.0.0.1|5939|7340',
      '4|127.0.0.1|8307|9396',
      '4|127.0.0.1|8884|4',
    ]);
    expect(brief(rows.slice(-2))).toEqual(['6|::1|1025|6088', '6|::1|8307|9396']);
    // ESTABLISHED rows and the UDP 0.0.0.0:53 row are not listeners.
    expect(rows.some((r) => r.port === 1031 || r.port === 53)).toBe(false);
    expect(parseNetstatListening(jc.replace(/\r\n/g, '\n'))).toEqual(rows);
  });

  it('does not need the English state word: the same capture with LISTENING as a UTF-8 decode of cp850 ABHÖREN', () => {
    const garbled = jc.replaceAll('LISTENING', 'ABH\uFFFDREN');
    expect(parseNetstatListening(garbled)).toEqual(parseNetstatListening(jc));
  });

  it('reads output that was UTF-16LE decoded as Latin-1 (NULs between characters)', () => {
    const mangled = Buffer.from(jc, 'utf16le').toString('latin1');
    expect(mangled).toContain('\u0000');
    expect(parseNetstatListening(mangled)).toEqual(parseNetstatListening(jc));
  });

  it('finds Ollama on 127.0.0.1:11434 in `netstat -aon | findstr :11434` lines (ollama#5816), CRLF or not', () => {
    const a = win32('netstat-aon-findstr-11434-ollama-5816-a.txt');
    expect(parseNetstatListening(a)).toEqual([{ address: '127.0.0.1', port: 11434, family: 4, pid: 4184 }]);
    expect(parseNetstatListening(crlf(a))).toEqual(parseNetstatListening(a));
    // The client side of a connection *to* 11434 (pid 2628) and a TIME_WAIT row (pid 0) are not listeners.
    const b = win32('netstat-aon-findstr-11434-ollama-5816-b.txt');
    expect(parseNetstatListening(b)).toEqual([{ address: '127.0.0.1', port: 11434, family: 4, pid: 8812 }]);
    expect(parseNetstatTcpRows(b).map((r) => [r.state, r.pid, r.listening])).toEqual([
      ['LISTENING', 8812, true],
      ['TIME_WAIT', 0, false],
    ]);
  });

  it('reads German `netstat -an` (ABH™REN as published, no PID column) by the foreign address', () => {
    const rows = parseNetstatTcpRows(win32('netstat-an-german-cp850-abhoeren-htl-report.txt'));
    expect(rows).toHaveLength(92); // the `...` lines the author left in, and the UDP rows, are skipped
    const listening = rows.filter((r) => r.listening);
    expect(listening.map((r) => r.state)).toEqual(Array(20).fill('ABH™REN'));
    expect(listening.map((r) => `${r.local.address}|${r.local.port}`).slice(-6)).toEqual([
      '::|135',
      '::|445',
      '::|3389',
      '::|4840',
      '::|4843',
      '::|22350',
    ]);
    expect(new Set(rows.filter((r) => !r.listening).map((r) => r.state))).toEqual(
      new Set(['HERGESTELLT', 'FIN_WARTEN_2', 'SCHLIESSEN_WARTEN', 'WARTEND']),
    );
    expect(rows.every((r) => r.pid === undefined)).toBe(true);
    // Without -o there is no PID, so nothing qualifies as a WindowsListener.
    expect(parseNetstatListening(win32('netstat-an-german-cp850-abhoeren-htl-report.txt'))).toEqual([]);
  });

  it('reads German `netstat -ano` with a PID, whether the state arrives as ABH™REN or as U+FFFD', () => {
    const german = win32('netstat-ano-german-cp850-flair-readme.txt');
    expect(parseNetstatListening(german)).toEqual([{ address: '0.0.0.0', port: 25, family: 4, pid: 4552 }]);
    expect(parseNetstatListening(german.replace('™', '\uFFFD'))).toEqual(parseNetstatListening(german));
  });

  it('reads French rows, whose header has no PID title while the rows carry one', () => {
    expect(parseNetstatListening(win32('netstat-ano-french-flair-readme.txt'))).toEqual([
      { address: '0.0.0.0', port: 25, family: 4, pid: 5788 },
    ]);
  });

  it('ignores a Chinese header and finds no listener among TIME_WAIT rows', () => {
    const rows = parseNetstatTcpRows(win32('netstat-ano-chinese-header-billfeller-174.txt'));
    expect(rows.map((r) => [r.local.port, r.foreign?.port, r.state, r.pid, r.listening])).toEqual([
      [8411, 58296, 'TIME_WAIT', 0, false],
      [8411, 58298, 'TIME_WAIT', 0, false],
    ]);
  });

  it('does not take a BOUND socket (netstat -q) for a listener although its foreign address is 0.0.0.0:0', () => {
    const rows = parseNetstatTcpRows(win32('netstat-aqn-findstr-22-bound-then-listening.txt'));
    expect(rows.map((r) => [r.foreign?.address, r.foreign?.port, r.state, r.listening])).toEqual([
      ['0.0.0.0', 0, 'BOUND', false],
      ['0.0.0.0', 0, 'LISTENING', true],
    ]);
  });
});

describe('Get-NetTCPConnection (default table)', () => {
  it('reads Ollama listening on 127.0.0.1:11434 (pastdev/askai README)', () => {
    const text = win32('get-nettcpconnection-localport-11434-ollama-askai.txt');
    expect(parseGetNetTcpConnectionTable(text)).toEqual([
      { localAddress: '127.0.0.1', localPort: 11434, family: 4, remoteAddress: '0.0.0.0', remotePort: 0, state: 'Listen', owningProcess: 10276 },
    ]);
    expect(parseGetNetTcpConnectionListeners(text)).toEqual([{ address: '127.0.0.1', port: 11434, family: 4, pid: 10276 }]);
    expect(parseGetNetTcpConnectionListeners(crlf(text))).toEqual(parseGetNetTcpConnectionListeners(text));
  });

  it('reads `::` and IPv4 listeners from a PowerShell 7 capture', () => {
    const rows = parseGetNetTcpConnectionListeners(win32('get-nettcpconnection-listen-ps7-ipv6-ipv4.txt'));
    expect(rows).toHaveLength(18);
    expect(rows[0]).toEqual({ address: '::', port: 49669, family: 6, pid: 844 });
    expect(brief(rows.filter((r) => r.port === 135 || r.port === 139))).toEqual(['6|::|135|632', '4|192.168.122.183|139|4', '4|0.0.0.0|135|632']);
  });

  it('keeps only Listen rows: Bound, SynSent and Established rows are dropped; trailing spaces are harmless', () => {
    const text = win32('get-nettcpconnection-all-states-trailing-spaces-thm.txt');
    const table = parseGetNetTcpConnectionTable(text);
    expect(table).toHaveLength(23);
    expect(table.filter((r) => r.state !== 'Listen').map((r) => `${r.state}|${r.localAddress}|${r.localPort}|${r.owningProcess}`)).toEqual([
      'Bound|0.0.0.0|49829|3672',
      'SynSent|10.10.159.242|49829|3672',
      'Established|10.10.159.242|22|1420',
    ]);
    const listeners = parseGetNetTcpConnectionListeners(text);
    expect(listeners).toHaveLength(20);
    expect(brief(listeners.filter((r) => r.pid === 660))).toEqual(['6|::|49668|660', '4|0.0.0.0|49668|660']);
  });

  it('finds the columns from the dashes, whatever their width', () => {
    const text = win32('get-nettcpconnection-narrow-columns-port-22.txt');
    expect(parseGetNetTcpConnectionTable(text)[0]).toEqual({
      localAddress: '::1',
      localPort: 22,
      family: 6,
      remoteAddress: '::1',
      remotePort: 12699,
      state: 'Established',
      owningProcess: 5584,
    });
    expect(parseGetNetTcpConnectionListeners(text)).toEqual([
      { address: '::', port: 22, family: 6, pid: 5584 },
      { address: '0.0.0.0', port: 22, family: 4, pid: 5584 },
    ]);
    expect(parseGetNetTcpConnectionListeners(win32('get-nettcpconnection-localport-5987-established-and-listen.txt'))).toEqual([
      { address: '0.0.0.0', port: 5987, family: 4, pid: 7916 },
    ]);
  });

  it('yields no listener when the table has no OwningProcess column (as on Windows Server 2012 R2)', () => {
    const text = win32('get-nettcpconnection-localport-11434-ollama-askai.txt');
    const start = text.indexOf('OwningProcess') - text.indexOf('LocalAddress');
    const cut = text
      .split('\n')
      .map((line) => line.slice(0, start).trimEnd())
      .join('\n');
    expect(parseGetNetTcpConnectionTable(cut)).toEqual([
      { localAddress: '127.0.0.1', localPort: 11434, family: 4, remoteAddress: '0.0.0.0', remotePort: 0, state: 'Listen' },
    ]);
    expect(parseGetNetTcpConnectionListeners(cut)).toEqual([]);
  });
});

describe('tasklist /FO CSV', () => {
  const csv = win32('tasklist-csv-header-nbsp-thousands-net-process.csv');

  it('reads every process, skipping the header and reading NBSP-grouped Mem Usage', () => {
    const rows = parseTasklistCsv(csv);
    expect(rows).toHaveLength(230);
    expect(rows[0]).toEqual({ imageName: 'System Idle Process', pid: 0, sessionName: 'Services', sessionNumber: 0, memUsage: '8 K', memKb: 8 });
    expect(rows.find((r) => r.pid === 172)).toEqual({
      imageName: 'Registry',
      pid: 172,
      sessionName: 'Services',
      sessionNumber: 0,
      memUsage: '84\u00a0496 K',
      memKb: 84496,
    });
    expect(rows.find((r) => r.imageName === 'Memory Compression')?.memKb).toBe(554360);
    expect(rows.find((r) => r.imageName === 'net-process.exe')).toMatchObject({ pid: 7336, sessionName: 'Console', sessionNumber: 1 });
    expect(rows.at(-1)).toMatchObject({ imageName: 'tasklist.exe', pid: 1468 });
    expect(rows.filter((r) => r.imageName === 'svchost.exe').length).toBeGreaterThan(50);
  });

  it('reads the same rows without the header (/NH) and with CRLF line ends', () => {
    const withoutHeader = csv.split('\n').slice(1).join('\n');
    expect(parseTasklistCsv(withoutHeader)).toEqual(parseTasklistCsv(csv));
    expect(parseTasklistCsv(crlf(csv))).toEqual(parseTasklistCsv(csv));
  });

  it('splits quoted CSV fields, keeping spaces and doubled quotes', () => {
    const line = csv.split('\n').find((l) => l.includes('"Memory Compression"'))?.trim() ?? '';
    expect(parseCsvLine(line)).toEqual(['Memory Compression', '2836', 'Services', '0', '554\u00a0360 K']);
    expect(parseCsvLine(line.replace('Memory Compression', 'a ""b"", c'))?.[0]).toBe('a "b", c');
    expect(parseCsvLine('"unterminated,"1"')).toBeUndefined();
  });

  it('removes control characters from an image name', () => {
    const hostile = csv.replace('"tasklist.exe"', '"task\u001b[31mlist\u202e.exe"');
    const last = parseTasklistCsv(hostile).at(-1);
    expect(last?.imageName).toBe('tasklist.exe');
    expect(UNSAFE.test(last?.imageName ?? '')).toBe(false);
  });
});

describe('netsh interface ipv4 show excludedportrange protocol=tcp', () => {
  it('marks administered exclusions (`*`) and ignores the title, header and footnote', () => {
    const text = win32('netsh-excludedportrange-administered-otel-collector-10839.txt');
    const ranges = parseExcludedPortRanges(text);
    expect(ranges).toEqual([
      { start: 80, end: 80, administered: false },
      { start: 5986, end: 5986, administered: false },
      { start: 47001, end: 47001, administered: false },
      { start: 55679, end: 55679, administered: true },
    ]);
    expect(isPortExcluded(ranges, 55679)).toBe(true);
    expect(isPortExcluded(ranges, 11434)).toBe(false);
    expect(parseExcludedPortRanges(crlf(text))).toEqual(ranges);
  });

  it('reads ranges reserved by the system (Docker Desktop published 8080)', () => {
    const ranges = parseExcludedPortRanges(win32('netsh-excludedportrange-docker-for-win-1707.txt'));
    expect(ranges).toHaveLength(9);
    expect(ranges.every((r) => !r.administered)).toBe(true);
    expect(isPortExcluded(ranges, 8080)).toBe(true);
    expect(excludedRangeFor(ranges, 58700)).toEqual({ start: 58699, end: 58708, administered: false });
    expect(isPortExcluded(ranges, 58719)).toBe(false);
    expect(isPortExcluded(ranges, 11434)).toBe(false);
  });

  it('reads a Spanish capture (translated header) and finds the port its author could not bind', () => {
    const ranges = parseExcludedPortRanges(win32('netsh-excludedportrange-spanish-wsl-5306.txt'));
    expect(ranges).toHaveLength(24);
    expect(excludedRangeFor(ranges, 25340)).toEqual({ start: 25313, end: 25412, administered: false });
    expect(ranges.at(-1)).toEqual({ start: 50000, end: 50059, administered: false });
  });

  it('reads the Hyper-V blocks from the Ollama bind-error report (truncated before the range with 11434)', () => {
    const ranges = parseExcludedPortRanges(win32('netsh-excludedportrange-ollama-2727-truncated.txt'));
    expect(ranges).toHaveLength(11);
    expect(ranges.every((r) => r.end - r.start === 99)).toBe(true);
    expect(excludedRangeFor(ranges, 11300)).toEqual({ start: 11298, end: 11397, administered: false });
  });
});

describe('sc query / sc queryex', () => {
  it('reads a stopped service', () => {
    const text = win32('sc-query-stopped-osquery-2851.txt');
    expect(parseScQuery(text)).toEqual({ exists: true, serviceName: 'osqueryd', state: 'STOPPED', stateCode: 1 });
    expect(parseScQuery(crlf(text))).toEqual(parseScQuery(text));
  });

  it('reads a running service and its PID (the block `sc start` prints)', () => {
    expect(parseScQuery(win32('sc-running-with-pid-goodbyedpi-440.txt'))).toEqual({
      exists: true,
      serviceName: 'GoodbyeDPI',
      state: 'RUNNING',
      stateCode: 4,
      pid: 2148,
    });
  });

  it('reads the same block with Russian labels', () => {
    expect(parseScQuery(crlf(win32('sc-russian-running-with-pid-goodbyedpi-544.txt')))).toEqual({
      exists: true,
      serviceName: 'GoodbyeDPI',
      state: 'RUNNING',
      stateCode: 4,
      pid: 13688,
    });
  });

  it('reads a stop stuck in STOP_PENDING (sc queryex)', () => {
    expect(parseScQuery(win32('sc-queryex-stop-pending-lxssmanager-wsl-4360.txt'))).toEqual({
      exists: true,
      serviceName: 'LxssManager',
      state: 'STOP_PENDING',
      stateCode: 3,
      pid: 14872,
    });
  });

  it.each([
    'sc-openservice-failed-1060-goodbyedpi-440.txt',
    'sc-russian-openservice-1060-goodbyedpi-544.txt',
    'sc-chinese-openservice-1060-pcap-dnsproxy-133.txt',
    'sc-query-spanish-1060-openedr-2-msi-log.txt',
  ])('reports a missing service (error 1060) in any language: %s', (name) => {
    const result = parseScQuery(crlf(win32(name)));
    expect(result).toEqual({ exists: false, errorCode: 1060 });
    expect(scServiceMissing(result)).toBe(true);
    expect(parseScQueryAll(win32(name))).toEqual([]);
  });

  it('reads every block of an enumeration, without taking `TYPE : 1  KERNEL_DRIVER` for a state', () => {
    const text = win32('sc-query-enumeration-vboxhardenedloader-48.txt');
    expect(parseScQueryAll(text).map((s) => `${s.serviceName}|${s.displayName}|${s.state}|${s.stateCode}`)).toEqual([
      'WPCSvc|Parental Controls|STOPPED|1',
      'WPDBusEnum|Portable Device Enumerator Service|STOPPED|1',
      'ws2ifsl|Winsock IFS Driver|STOPPED|1',
      'wscsvc|Security Center|RUNNING|4',
    ]);
    expect(parseScQuery(text)).toMatchObject({ exists: true, serviceName: 'WPCSvc', state: 'STOPPED' });
  });
});

describe('WSL', () => {
  it.each([
    ['proc-version-wsl1-3.4.0-microsoft-wsl-1090.txt', true, 1],
    ['proc-version-wsl1-4.4.0-18985-microsoft-wsl-4555.txt', true, 1],
    ['proc-version-wsl2-4.19.67-microsoft-standard-wsl-4555.txt', true, 2],
    ['proc-version-wsl2-5.4.72-microsoft-standard-WSL2-kiri-28.txt', true, 2],
    ['proc-version-wsl2-custom-built-kernel-wsl-8361.txt', true, 2],
    ['proc-version-native-ubuntu-jc.txt', false, undefined],
  ])('/proc/version %s: WSL %s, version %s', (name, wsl, version) => {
    expect(isWsl(win32(name))).toBe(wsl);
    expect(wslVersion(win32(name))).toBe(version);
  });

  it('reads the Windows host address (NAT gateway) from `ip route` in WSL 2', () => {
    expect(parseDefaultGateway(win32('ip-route-wsl2-nat-default-and-link.txt'))).toEqual({ gateway: '172.17.16.1', family: 4, device: 'eth0' });
  });

  it('reads networkingMode from [experimental], the older header WSL still accepts', () => {
    expect(wslConfigNetworkingMode(win32('wslconfig-wsl2-memory-experimental-mirrored-wsl-11090.ini'))).toEqual({
      section: 'experimental',
      key: 'networkingMode',
      value: 'mirrored',
      line: 6,
    });
    const commented = win32('wslconfig-comments-experimental-mirrored-wsl-11228.ini');
    expect(wslConfigNetworkingMode(crlf(commented))).toEqual({ section: 'experimental', key: 'networkingMode', value: 'mirrored', line: 13 });
    expect(parseWslConfig(commented).map((e) => `${e.section}.${e.key}=${e.value}`)).toEqual([
      'wsl2.memory=4GB',
      'wsl2.processors=2',
      'experimental.networkingMode=mirrored',
    ]);
  });

  it('reads a value with a trailing comment, and not a commented-out key', () => {
    const text = win32('wslconfig-wsl2-inline-comments-wsl-12161.ini');
    expect(wslConfigNetworkingMode(text)).toEqual({ section: 'wsl2', key: 'networkingMode', value: 'mirrored', line: 13 });
    const entries = parseWslConfig(text);
    expect(entries).toHaveLength(9);
    expect(entries.every((e) => e.section === 'wsl2')).toBe(true);
    expect(entries.some((e) => e.key === 'pageReporting')).toBe(false);
  });

  it('ignores networkingMode before any section header, as WSL did (microsoft/WSL#11540)', () => {
    const text = win32('wslconfig-no-section-header-wsl-11540.ini');
    expect(parseWslConfig(text).map((e) => [e.section, e.key])).toEqual([
      ['', 'networkingMode'],
      ['', 'dnsTunneling'],
    ]);
    expect(wslConfigNetworkingMode(text)).toBeUndefined();
  });
});

describe('hostile input', () => {
  const parsers: Array<[string, (text: string) => unknown]> = [
    ['netstat', parseNetstatTcpRows],
    ['Get-NetTCPConnection', parseGetNetTcpConnectionTable],
    ['tasklist', parseTasklistCsv],
    ['netsh', parseExcludedPortRanges],
    ['sc', parseScQueryAll],
    ['sc query', parseScQuery],
    ['ip route', parseDefaultGateway],
    ['.wslconfig', parseWslConfig],
    ['wslVersion', wslVersion],
  ];
  const inputs = [
    '',
    '\u0000'.repeat(10_000),
    'x'.repeat(3_000_000),
    `${'  TCP    0.0.0.0:135  '.repeat(50_000)}\n`,
    '\r\n'.repeat(200_000),
    'LocalAddress LocalPort State\n------------ --------- -----\n' + '::1 22 Listen\n'.repeat(100_000),
    '"'.repeat(100_000),
    '[SC] OpenService FAILED 99999999999999999999:\n',
    '  TCP    [::ffff:999.1.1.1]:70000   0.0.0.0:0   LISTENING   99999999999\n',
    '\u001b[2J\u009b31m\u202e',
  ];

  it.each(parsers)('%s never throws and stays bounded', (_name, parse) => {
    for (const input of inputs) {
      const started = Date.now();
      expect(() => parse(input)).not.toThrow();
      expect(Date.now() - started).toBeLessThan(2000);
    }
    expect(() => parse(undefined as unknown as string)).not.toThrow();
  });

  it('rejects out-of-range ports and PIDs instead of returning them', () => {
    expect(parseNetstatTcpRows(inputs[8] ?? '')).toEqual([]);
    expect(parseScQuery(inputs[7] ?? '')).toEqual({ exists: false });
  });

  it('returns no string with a control character from any fixture', () => {
    const strings: string[] = [];
    const collect = (value: unknown): void => {
      if (typeof value === 'string') strings.push(value);
      else if (Array.isArray(value)) value.forEach(collect);
      else if (value !== null && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect(parseNetstatTcpRows(win32('netstat-an-german-cp850-abhoeren-htl-report.txt')));
    collect(parseTasklistCsv(win32('tasklist-csv-header-nbsp-thousands-net-process.csv')));
    collect(parseScQueryAll(win32('sc-query-enumeration-vboxhardenedloader-48.txt')));
    collect(parseWslConfig(win32('wslconfig-wsl2-inline-comments-wsl-12161.ini')));
    expect(strings.length).toBeGreaterThan(100);
    expect(strings.filter((s) => UNSAFE.test(s))).toEqual([]);
  });
});

describe('Win32_Process through ConvertTo-Json (Windows PowerShell 5.1)', () => {
  it('reads an array of processes with their executables (a real capture, 9 processes)', () => {
    const rows = parseProcessPathsJson(crlf(win32('get-ciminstance-win32-process-json-array-terminal64.json')));
    expect(rows).toHaveLength(9);
    expect(rows?.[0]).toEqual({ pid: 21248, path: 'C:\\MT5PortableGoldMission\\terminal64.exe' });
    expect(rows?.find((row) => row.pid === 17676)).toEqual({ pid: 17676, path: 'C:\\Program Files\\MetaTrader 5\\terminal64.exe' });
  });

  it('reads one object, which is what ConvertTo-Json prints for a pipeline of one (a real capture)', () => {
    expect(parseProcessPathsJson(win32('get-ciminstance-win32-process-json-one-object-notepad.json'))).toEqual([
      { pid: 16828, path: 'C:\\Program Files\\WindowsApps\\Microsoft.WindowsNotepad_11.2607.14.0_x64__8wekyb3d8bbwe\\Notepad\\Notepad.exe' },
    ]);
  });

  it('reads nothing (an empty pipeline prints nothing) and an empty array as no processes; a null path as unknown', () => {
    expect(parseProcessPathsJson('')).toEqual([]);
    expect(parseProcessPathsJson('[\r\n\r\n]\r\n')).toEqual([]);
    expect(parseProcessPathsJson('{"ProcessId":  4100, "ExecutablePath":  null}')).toEqual([{ pid: 4100 }]);
    // Get-Process | Select-Object Id,Path names them Id and Path.
    expect(parseProcessPathsJson('{"Id":  4100, "Path":  "C:\\\\x\\\\ollama app.exe"}')).toEqual([{ pid: 4100, path: 'C:\\x\\ollama app.exe' }]);
  });
});

describe('one environment variable, read losslessly', () => {
  it('tells unset from empty from a value, and keeps every character (newline, CR, spaces, non-ASCII)', () => {
    expect(parseEnvironmentRead('unset\r\n')).toEqual({ value: undefined });
    expect(parseEnvironmentRead('value:\r\n')).toEqual({ value: '' });
    for (const value of ['0.0.0.0:11434', ' 127.0.0.1:11434 \r', 'a\nb\r\n', 'C:\\Users\\Jürgen', '\u{1F600}']) {
      expect(parseEnvironmentRead(`value:${Buffer.from(value, 'utf8').toString('base64')}\r\n`)).toEqual({ value });
    }
  });

  it('anything else is an error, never "unset": PowerShell\'s raw output, an error text, broken base64', () => {
    for (const text of ['', '\r\n', '0.0.0.0:11434\r\n', 'value:not base64!\r\n', 'value:abc\r\n', 'unset\r\nunset\r\n']) {
      expect(parseEnvironmentRead(text)).toHaveProperty('error');
    }
  });
});
