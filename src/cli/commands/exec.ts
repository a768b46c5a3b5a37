import { signalNumber } from '../../core/signals.js';
import type { FinalStatus, ProcessSpec, StrategyChoice } from '../../core/types.js';
import type { ProcessHandle } from '../../manager/process-handle.js';
import { ProcessManager } from '../../manager/process-manager.js';
import { parseEnvPairs } from '../args.js';
import { defineCommand, type CommandInput } from '../command-kit.js';

const flags = {
  cwd: { kind: 'string', short: 'C' },
  env: { kind: 'list', short: 'e' },
  'inherit-env': { kind: 'optional' },
  log: { kind: 'string' },
  'stop-timeout': { kind: 'duration' },
  strategy: { kind: 'string' },
} as const;

export const help = `Usage: tend exec [options] -- CMD [ARGS...]

Runs CMD in the foreground inside its own contained process tree. SIGINT,
SIGTERM and SIGHUP are forwarded to the whole tree (SIGTERM and SIGHUP stop it:
SIGKILL follows after the stop timeout; a second SIGINT kills it at once).
When CMD exits, whatever it left running is stopped. tend exits with CMD's
exit code, or 128+N when CMD was killed by signal N.

The command gets exactly the environment you give it (plus TEND_ID); nothing
is inherited unless asked. CMD is looked up in that environment's PATH, or in
the system directories when it sets none.

Options:
  -C, --cwd DIR              working directory (default: the current one)
  -e, --env NAME=VALUE       set a variable (repeatable)
      --inherit-env[=NAMES]  inherit the whole environment, or the comma-separated NAMES
      --log FILE             append stdout and stderr to FILE (created 0600) instead of the terminal
      --stop-timeout DUR     grace period before SIGKILL, e.g. 500ms, 5s (default 5s)
      --strategy NAME        auto (default), cgroup, pidns or pgroup
  -h, --help                 show this help

Examples:
  tend exec -- sh -c 'sleep 100 & sleep 100'
  tend exec --inherit-env=PATH,HOME -- npm test
  tend exec --strategy pgroup --log out.log -- ./server.sh`;

export const { run } = defineCommand({
  name: 'exec',
  help,
  flags,
  positionals: [],
  command: 'required',
  run: (input) => execute(specOf(input)),
});

function specOf({ flags: f, command: argv }: CommandInput<typeof flags, []>): ProcessSpec {
  const [command = '', ...args] = argv ?? [];
  const inherit = f['inherit-env'];
  return {
    command,
    args,
    cwd: f.cwd,
    env: parseEnvPairs(f.env, 'env'),
    inheritEnv: typeof inherit === 'string' ? inherit.split(',').filter(Boolean) : inherit === true,
    logFile: f.log,
    stdio: f.log === undefined ? 'inherit' : undefined,
    stopTimeoutMs: f['stop-timeout'],
    strategy: (f.strategy as StrategyChoice | undefined) ?? 'auto',
  };
}

async function execute(spec: ProcessSpec): Promise<number> {

  // tend forwards signals itself, so the manager's own handlers stay off.
  const manager = await ProcessManager.create({ handleSignals: false });
  // Listening before the start: the command may print (and be signalled) before start() resolves.
  // A signal that arrives before the handle exists is forwarded once it does.
  let handle: ProcessHandle | undefined;
  const early: ('SIGINT' | 'SIGTERM' | 'SIGHUP')[] = [];
  let interrupts = 0;
  const forward = (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): void => {
    if (!handle) {
      early.push(signal);
      return;
    }
    const tree = handle;
    if (signal === 'SIGINT' && ++interrupts === 1) {
      try {
        tree.signal(signal);
      } catch (error) {
        // A member of another user refused it: say so; a second Ctrl-C still kills what it can.
        process.stderr.write(`tend: ${(error as Error).message}\n`);
      }
      return;
    }
    if (signal === 'SIGINT') {
      process.stderr.write('tend: second interrupt: killing the process tree\n');
      void tree.stop({ signal: 'SIGKILL' }).catch(() => undefined);
      return;
    }
    void tree.stop({ signal }).catch(() => undefined);
  };
  const listeners = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, () => forward(s)] as const);
  for (const [s, l] of listeners) process.on(s, l);
  try {
    handle = await manager.start(spec);
    // The command is done but left members behind: tend exec leaves nothing, so stop them.
    manager.on('detached', (h) => void h.stop().catch(() => undefined));
    for (const signal of early.splice(0)) forward(signal);
    return exitCodeOf(await handle.wait());
  } finally {
    for (const [s, l] of listeners) process.removeListener(s, l);
    await manager.shutdown();
  }
}

export function exitCodeOf(status: FinalStatus): number {
  switch (status.state) {
    case 'exited':
      return status.exitCode;
    case 'terminated':
      return 128 + signalNumber(status.signal);
    case 'failed':
      return 1;
  }
}
