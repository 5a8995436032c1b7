/**
 * /proc/net/tcp and /proc/net/tcp6, read in-process: no `ss`, `netstat` or `lsof` needed, and it
 * works in minimal containers. Format: Documentation/networking/proc_net_tcp.rst in the kernel.
 * Addresses are hex words in host byte order (little-endian on x86 and arm64), so 127.0.0.1:11434
 * reads `0100007F:2CAA`.
 */
export interface SocketRow {
  family: 4 | 6;
  address: string;
  port: number;
  /** Kernel TCP state; 0x0A is LISTEN. */
  state: number;
  uid: number;
  inode: number;
}

export const TCP_LISTEN = 0x0a;

function wordToBytes(hexWord: string): number[] {
  // One 32-bit word printed as %08X of a little-endian value: its bytes come out reversed.
  const bytes: number[] = [];
  for (let i = 6; i >= 0; i -= 2) bytes.push(Number.parseInt(hexWord.slice(i, i + 2), 16));
  return bytes;
}

function decodeIPv6(bytes: number[]): string {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

export function decodeAddress(hex: string): string {
  if (hex.length === 8) return wordToBytes(hex).join('.');
  if (hex.length === 32) {
    const bytes: number[] = [];
    for (let word = 0; word < 4; word++) bytes.push(...wordToBytes(hex.slice(word * 8, word * 8 + 8)));
    return decodeIPv6(bytes);
  }
  throw new Error(`unexpected address "${hex}" in /proc/net/tcp`);
}

export function parseProcNetTcp(text: string, family: 4 | 6): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
    if (fields.length < 10 || !/^\d+:$/.test(fields[0] ?? '')) continue;
    const [addressHex, portHex] = (fields[1] ?? '').split(':');
    if (!addressHex || !portHex) continue;
    rows.push({
      family,
      address: decodeAddress(addressHex),
      port: Number.parseInt(portHex, 16),
      state: Number.parseInt(fields[3] ?? '', 16),
      uid: Number(fields[7]),
      inode: Number(fields[9]),
    });
  }
  return rows;
}
