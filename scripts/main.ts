// The bin entry: the real context, the real argv, and the exit code. Everything else is in cli.ts.
import { run } from './cli.ts';
import { createNodeContext, installSignalHandlers } from './node-context.ts';

installSignalHandlers();
process.exitCode = await run(process.argv.slice(2), createNodeContext());
