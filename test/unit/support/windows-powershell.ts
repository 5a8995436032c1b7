/**
 * What Windows PowerShell prints for the product's read scripts, for unit tests that answer
 * powershell.exe themselves. environmentReadScript's own statements: `unset` for $null, else
 * 'value:' + base64 of the string's UTF-8 bytes, then CRLF (a string statement writes one line).
 */
export function environmentReadOutput(value: string | undefined): string {
  return value === undefined ? 'unset\r\n' : `value:${Buffer.from(value, 'utf8').toString('base64')}\r\n`;
}

/** ConvertTo-Json -InputObject @(…) in Windows PowerShell 5.1 (4-space indents, two spaces after ':'), as in test/fixtures/win32/get-ciminstance-*.json. */
export function processPathsOutput(processes: { pid: number; path: string | null }[]): string {
  if (processes.length === 0) return '[\r\n\r\n]\r\n';
  const items = processes.map(({ pid, path }) => `    {\r\n        "ProcessId":  ${pid},\r\n        "ExecutablePath":  ${path === null ? 'null' : JSON.stringify(path)}\r\n    }`);
  return `[\r\n${items.join(',\r\n')}\r\n]\r\n`;
}
