#!/usr/bin/env node
import { TendError } from '../core/errors.js';
import { inCliTerms } from './format.js';

/**
 * Every command, by name, with the line the main help shows. A command's module
 * (its help, flags and body) is loaded only when that command runs.
 */
const commands: Readonly<Record<string, { summary: string; load: () => Promise<{ run(argv: readonly string[]): Promise<number> }> }>> = {
  exec: { summary: 'run one command in the foreground, contained; nothing it starts outlives it', load: () => import('./commands/exec.js') },
  detect: { summary: 'show which containment strategies this machine offers, and why not', load: () => import('./commands/detect.js') },
  recover: { summary: 'clean up process trees whose manager died (crash, SIGKILL, OOM)', load: () => import('./commands/recover.js') },
  start: { summary: 'start a named service under the daemon', load: () => import('./commands/start.js') },
  stop: { summary: 'stop services (their whole trees); they stay defined', load: () => import('./commands/stop.js') },
  restart: { summary: 'stop a service and start it again', load: () => import('./commands/restart.js') },
  delete: { summary: 'stop a service and forget it', load: () => import('./commands/delete.js') },
  ps: { summary: 'list services: state, pid, uptime, restarts, CPU, memory, ports', load: () => import('./commands/ps.js') },
  status: { summary: 'everything about one service', load: () => import('./commands/status.js') },
  logs: { summary: 'print (and follow) a service\'s output', load: () => import('./commands/logs.js') },
  up: { summary: 'run a tend.yaml stack, in the foreground or (-d) under the daemon', load: () => import('./commands/up.js') },
  limit: { summary: 'show or change how many services may run at once', load: () => import('./commands/limit.js') },
  'kill-all': { summary: 'kill every service now and report what was killed', load: () => import('./commands/kill-all.js') },
  daemon: { summary: 'start, stop or inspect the daemon that keeps services running', load: () => import('./commands/daemon.js') },
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

/** The command named `name`; a usage error with "did you mean" when there is none. */
async function findCommand(name: string): Promise<{ run(argv: readonly string[]): Promise<number> }> {
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command) return command.load();
  const { closest } = await import('../spawn/normalize-spec.js');
  const suggestion = closest(name, Object.keys(commands));
  const hint = suggestion === undefined ? mainHelp() : `Did you mean \`${suggestion}\`? Run \`tend --help\` for the commands.`;
  throw new TendError('CLI_USAGE', { message: `tend: unknown command ${JSON.stringify(name)}`, hint });
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const [fs, path, root] = await Promise.all([import('node:fs'), import('node:path'), import('../platform/package-root.js')]);
    const pkg = JSON.parse(fs.readFileSync(path.join(root.packageRoot(), 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (name === 'help') {
    const [topic, extra] = rest as [string, ...string[]];
    if (extra !== undefined) throw new TendError('CLI_USAGE', { message: `tend help: one command at a time; unexpected ${JSON.stringify(extra)}`, hint: 'Usage: tend help COMMAND' });
    // Exactly what `tend COMMAND --help` prints.
    return (await findCommand(topic)).run(['--help']);
  }
  return (await findCommand(name)).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof TendError) {
      process.stderr.write(`${error.code === 'CLI_USAGE' ? '' : `tend: ${error.code}: `}${inCliTerms(error.message)}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`tend: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
