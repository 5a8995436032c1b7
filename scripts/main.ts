// The bin entry: the real context, the real argv, and the exit code. Everything else is in cli.ts.
//
// --help and --version need none of the machinery, so they are answered before any of it is
// loaded; everything else loads cli.ts and the real context, and ora only when a spinner can
// animate (a terminal, not CI). The bundle stays one file: esbuild turns these dynamic imports
// into modules that initialise on first use.
import packageJson from '../package.json' with { type: 'json' };
import { quickAnswer } from './args.ts';

const argv = process.argv.slice(2);
const quick = quickAnswer(argv, packageJson.version);
if (quick !== undefined) {
  // A reader that went away (`--help | head -1`) is not an error.
  process.stdout.on('error', () => {});
  process.stdout.write(`${quick.replace(/\n$/, '')}\n`);
} else {
  const [{ run }, { canAnimate, createNodeContext, installSignalHandlers }, { Interrupter }] = await Promise.all([
    import('./cli.ts'),
    import('./node-context.ts'),
    import('./interrupt.ts'),
  ]);
  // Signals become an event the run observes (interrupt.ts): it reports what is in place, then returns.
  const interrupter = new Interrupter();
  installSignalHandlers(interrupter);
  const ora = canAnimate(process.env) ? (await import('ora')).default : undefined;
  const code = await run(argv, createNodeContext({ ora, interrupter }));
  process.exitCode = code;
  // After a signal, something may still hold the event loop open (a prompt that was abandoned,
  // reading the terminal): exit once what we printed has been flushed.
  if (interrupter.received) process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
