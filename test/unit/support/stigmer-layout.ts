import { mkdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * The Go CLI's native runtime folder, `~/.stigmer/runtimes/agent-runner/<cli-version>/<GOOS-GOARCH>/`
 * (stigmer/stigmer, 2026-03-01: agent_runner_native.go BaseDir, and the layout design in
 * _changelog/2026-03/2026-03-01-171443-native-agent-runner-filesystem-layout-design.md). Detection
 * looks at the folder only, never at what is in it, so the folder is all a test needs.
 */
export async function goNativeRuntime(home: string): Promise<void> {
  await mkdir(path.join(home, '.stigmer', 'runtimes', 'agent-runner', '0.1.0', 'linux-amd64'), { recursive: true });
}
