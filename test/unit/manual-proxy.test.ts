/**
 * The pull's proxy fix for a hand-started `ollama serve` (issue 13) restarts it with the bind it
 * has now. It used to print OLLAMA_HOST=0.0.0.0:PORT, so following the fix for a proxy problem
 * widened a loopback-only Ollama to every interface (and, behind the relay, failed to bind).
 */
import { describe, expect, it } from 'vitest';
import { manualStrategy, type ManualDetection } from '../../platforms/linux/manual.ts';

const detection = (configuredHost?: string): ManualDetection => ({
  strategy: manualStrategy.id,
  description: 'a hand-started `ollama serve` (pid 4242)',
  configuredHost,
  process: { pid: 4242, argv: ['ollama', 'serve'] },
  startedByStigmer: false,
});

describe('the proxy fix for a hand-started ollama serve', () => {
  it('keeps the bind it runs with, and never widens it', () => {
    expect(manualStrategy.commands(detection('127.0.0.1:11434'), 11434).proxy).toBe("kill 4242, then: HTTPS_PROXY=http://PROXY:PORT OLLAMA_HOST=127.0.0.1:11434 ollama serve");
    expect(manualStrategy.commands(detection(undefined), 11434).proxy).toBe('kill 4242, then: HTTPS_PROXY=http://PROXY:PORT ollama serve');
  });

  it('quotes a configured value read from the process, whatever it holds', () => {
    expect(manualStrategy.commands(detection('$(touch /tmp/x):1'), 11434).proxy).toContain("OLLAMA_HOST='$(touch /tmp/x):1' ollama serve");
    expect(manualStrategy.commands(detection('127.0.0.1:1\n; rm -rf ~'), 11434).proxy).toBe('kill 4242, then: HTTPS_PROXY=http://PROXY:PORT ollama serve');
  });
});
