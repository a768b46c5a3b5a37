#!/usr/bin/env node
import { TendError } from '../core/errors.js';

const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  exec: { summary: 'run one command in the foreground, contained; nothing it starts outlives it', load: () => import('./commands/exec.js') },
  detect: { summary: 'show which containment strategies this machine offers, and why not', load: () => import('./commands/detect.js') },
  recover: { summary: 'clean up process trees whose manager died (crash, SIGKILL, OOM)', load: () => import('./commands/recover.js') },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'tend: a process manager that never leaks a process',
    '',
    'Usage: tend <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `tend <command> --help` for a command\'s options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const [fs, path, root] = await Promise.all([import('node:fs'), import('node:path'), import('../platform/package-root.js')]);
    const pkg = JSON.parse(fs.readFileSync(path.join(root.packageRoot(), 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) throw new TendError('CLI_USAGE', { message: `tend: unknown command ${JSON.stringify(name)}`, hint: mainHelp() });
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof TendError) {
      process.stderr.write(`${error.code === 'CLI_USAGE' ? '' : `tend: ${error.code}: `}${error.message}\n`);
      process.exitCode = error.isUsageError ? 2 : 1;
    } else {
      process.stderr.write(`tend: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
