/** The flotilla command's process: argv, environment and standard streams in, an exit code out. */
import { main } from './main.js';

// Ctrl-C during a watch on a TTY: end the redrawn line so the shell prompt starts on its own.
process.once('SIGINT', () => {
  if (process.stdout.isTTY) process.stdout.write('\n');
  process.exit(130);
});

try {
  process.exitCode = await main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
} catch (e) {
  // A bug, not a refusal: its stack helps the report.
  console.error('flotilla: unexpected error:', e);
  process.exitCode = 1;
}
