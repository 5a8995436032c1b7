/**
 * Parser for `sw_vers`. The output is `Key:<TAB>Value` lines:
 *
 *   ProductName:	macOS            (10.15 and earlier print `Mac OS X`)
 *   ProductVersion:	11.1
 *   BuildVersion:	20C69
 *
 * Pasted captures turn the tab into spaces, so the value is whatever follows the first colon,
 * trimmed. Unknown keys (newer systems add ProductVersionExtra) are ignored. Never throws.
 */
import { boundedLines, hasControl } from '../../../scripts/text.ts';

export interface SwVers {
  productName?: string;
  productVersion?: string;
  buildVersion?: string;
}

const FIELDS: Readonly<Record<string, keyof SwVers>> = {
  ProductName: 'productName',
  ProductVersion: 'productVersion',
  BuildVersion: 'buildVersion',
};

export function parseSwVers(text: string): SwVers {
  const result: SwVers = {};
  for (const line of boundedLines(text).slice(0, 100)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line.length > 512) continue;
    const name = line.slice(0, colon).trim();
    const field = Object.hasOwn(FIELDS, name) ? FIELDS[name] : undefined;
    const value = line.slice(colon + 1).trim();
    if (field === undefined || value === '' || hasControl(value) || result[field] !== undefined) continue;
    result[field] = value;
  }
  return result;
}
