/**
 * Parser for `sc query <service>` / `sc queryex <service>` (and the same block that `sc start`
 * prints):
 *
 *     SERVICE_NAME: GoodbyeDPI
 *             TYPE               : 10  WIN32_OWN_PROCESS
 *             STATE              : 4  RUNNING
 *                                     (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)
 *             WIN32_EXIT_CODE    : 0  (0x0)
 *             SERVICE_EXIT_CODE  : 0  (0x0)
 *             CHECKPOINT         : 0x0
 *             WAIT_HINT          : 0x0
 *             PID                : 2148        (queryex and start only)
 *             FLAGS              :
 *
 * and, for a service that does not exist, `[SC] EnumQueryServicesStatus:OpenService FAILED 1060:`
 * followed by a message.
 *
 * The labels and the error line are translated: on Russian Windows the same block reads
 * `Имя_службы: GoodbyeDPI` / `Состояние          : 4  RUNNING` / `ID_процесса        : 13688`, and
 * the error reads `[SC] OpenService: ошибка: 1060:` (Spanish `… ERROR 1060:`, Chinese `… 失败 1060:`).
 * The state words (RUNNING, STOPPED, …) and the numbers are not translated. So:
 *
 *   - the state is the first indented `label : <1-7>  <STATE_WORD>` line whose word is a known state
 *     (TYPE lines such as `1  KERNEL_DRIVER` do not match);
 *   - the PID is the seventh labelled field of a block (TYPE, STATE, WIN32_EXIT_CODE,
 *     SERVICE_EXIT_CODE, CHECKPOINT, WAIT_HINT, PID, FLAGS), read only if it is a decimal number;
 *   - the service name is the value of the block's first unindented `label: value` line;
 *   - the first `<number>:` on an `[SC]` line gives the error code; 1060 is ERROR_SERVICE_DOES_NOT_EXIST.
 *
 * Nothing here throws; work is bounded by text.ts.
 */
import { boundedLines, MAX_LINE_CHARS, parseDecimal, cleanField } from '../../../scripts/text.ts';

export type ScState = 'STOPPED' | 'START_PENDING' | 'STOP_PENDING' | 'RUNNING' | 'CONTINUE_PENDING' | 'PAUSE_PENDING' | 'PAUSED';

export interface ScServiceStatus {
  serviceName?: string;
  displayName?: string;
  state?: ScState;
  /** SERVICE_STATUS.dwCurrentState: 1 STOPPED … 4 RUNNING … 7 PAUSED. */
  stateCode?: number;
  /** Only `sc queryex` and `sc start` print it; 0 when the service is stopped. */
  pid?: number;
}

export interface ScQueryResult extends ScServiceStatus {
  /** True only when a service status was read. */
  exists: boolean;
  /**
   * The number from an `[SC] … <code>:` error line. 1060 means the service is not installed; any
   * other code (5 = access denied) means the query failed and says nothing about the service.
   */
  errorCode?: number;
}

/** ERROR_SERVICE_DOES_NOT_EXIST */
export const SC_SERVICE_DOES_NOT_EXIST = 1060;

const STATES: Record<string, number> = {
  STOPPED: 1,
  START_PENDING: 2,
  STOP_PENDING: 3,
  RUNNING: 4,
  CONTINUE_PENDING: 5,
  PAUSE_PENDING: 6,
  PAUSED: 7,
};

const HEAD = /^([^\s:][^:]{0,63}):[ \t]*(.*)$/;
const FIELD = /^[ \t]+([^\s:][^:]{0,63}?)[ \t]*:[ \t]*(.*)$/;
const STATE_VALUE = /^([1-7])[ \t]+([A-Z_]{3,20})\b/;
const SC_ERROR = /\[SC\].*?\b([0-9]{1,10})[ \t]*:/;
const MAX_BLOCKS = 5000;

interface Block extends ScServiceStatus {
  fields: number;
}

function value(raw: string, max = 256): string | undefined {
  const clean = cleanField(raw).trim();
  return clean === '' ? undefined : clean.slice(0, max);
}

function finish(block: Block): ScServiceStatus {
  const status: ScServiceStatus = {};
  if (block.serviceName !== undefined) status.serviceName = block.serviceName;
  if (block.displayName !== undefined) status.displayName = block.displayName;
  if (block.state !== undefined) status.state = block.state;
  if (block.stateCode !== undefined) status.stateCode = block.stateCode;
  if (block.pid !== undefined) status.pid = block.pid;
  return status;
}

/** Every service block in `sc query`/`sc queryex` output (one per service when enumerating). */
export function parseScQueryAll(text: string): ScServiceStatus[] {
  const blocks: Block[] = [];
  let current: Block | undefined;
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_CHARS) continue;
    if (line.trim() === '' || line.includes('[SC]')) continue;
    const field = FIELD.exec(line);
    if (field !== null) {
      if (current === undefined) current = { fields: 0 };
      const index = current.fields++;
      const raw = (field[2] ?? '').trim();
      const state = STATE_VALUE.exec(raw);
      const word = state?.[2];
      if (current.state === undefined && state !== null && word !== undefined && STATES[word] !== undefined) {
        current.state = word as ScState;
        current.stateCode = Number(state[1]);
      }
      if (index === 6) {
        const pid = parseDecimal(raw, 0xffffffff);
        if (pid !== undefined) current.pid = pid;
      }
      continue;
    }
    const head = HEAD.exec(line);
    if (head === null) continue; // `(STOPPABLE, …)` continuation lines and anything else
    if (current === undefined || current.fields > 0) {
      if (current !== undefined) blocks.push(current);
      if (blocks.length >= MAX_BLOCKS) break;
      current = { fields: 0 };
      const name = value(head[2] ?? '');
      if (name !== undefined) current.serviceName = name;
    } else if (current.displayName === undefined) {
      const display = value(head[2] ?? '');
      if (display !== undefined) current.displayName = display;
    }
  }
  if (current !== undefined && blocks.length < MAX_BLOCKS) blocks.push(current);
  // A block is a service only if it has labelled fields; a stray `label: value` line is not one.
  return blocks.filter((block) => block.fields > 0).map(finish);
}

/** The status of the one service `sc query <service>` asked about. */
export function parseScQuery(text: string): ScQueryResult {
  let errorCode: number | undefined;
  for (const line of boundedLines(text)) {
    if (line.length > MAX_LINE_CHARS) continue;
    const m = SC_ERROR.exec(line);
    if (m !== null) {
      errorCode = parseDecimal(m[1], 0xffffffff);
      break;
    }
  }
  const status = parseScQueryAll(text).find((block) => block.state !== undefined);
  if (status !== undefined) return { exists: true, ...status };
  return errorCode === undefined ? { exists: false } : { exists: false, errorCode };
}

/** True only when `sc` said the service does not exist (error 1060). */
export function scServiceMissing(result: ScQueryResult): boolean {
  return !result.exists && result.errorCode === SC_SERVICE_DOES_NOT_EXIST;
}
