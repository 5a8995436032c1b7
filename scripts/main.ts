// The bin entry: the real context, the real argv, and the exit code. Everything else is in cli.ts.
import { run } from './cli.ts';
import { createNodeContext } from './node-context.ts';

process.exitCode = await run(process.argv.slice(2), createNodeContext());
