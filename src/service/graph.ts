/**
 * The dependency graph of services, as pure functions over `dependsOn`:
 * what a service needs (closure), the order to start a set in, the waves to
 * stop it in, and the cycle that would leave its members waiting forever.
 * The supervisor and the config file reader share these, so both name the
 * same cycle in the same words.
 */

/** The services `name` depends on directly; undefined when `name` is not defined. */
export type DependsOn = (name: string) => readonly string[] | undefined;

/** A lookup over a list of definitions (later ones win on duplicate names). */
export function dependsOnOf(services: Iterable<{ readonly name: string; readonly dependsOn: readonly string[] }>): DependsOn {
  const byName = new Map<string, readonly string[]>();
  for (const service of services) byName.set(service.name, service.dependsOn);
  return (name) => byName.get(name);
}

/**
 * The first cycle reachable from `roots`, depth-first in their order (so the
 * same graph always names the same cycle), as a path that starts and ends
 * with the same name: `['a', 'b', 'a']`. Undefined when there is none.
 */
export function findCycle(roots: Iterable<string>, dependsOn: DependsOn): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const at = path.indexOf(name);
    if (at !== -1) return [...path.slice(at), name];
    if (done.has(name)) return undefined;
    path.push(name);
    for (const next of dependsOn(name) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    done.add(name);
    return undefined;
  };
  for (const root of roots) {
    const cycle = visit(root);
    if (cycle) return cycle;
  }
  return undefined;
}

/** A cycle in words: `a -> b -> a`. */
export function describeCycle(cycle: readonly string[]): string {
  return cycle.join(' -> ');
}

/** `name` and every defined service it depends on, directly or not: `name` first, then depth-first. */
export function dependencyClosure(name: string, dependsOn: DependsOn): string[] {
  const seen = new Set<string>();
  const visit = (current: string): void => {
    if (seen.has(current)) return;
    seen.add(current);
    for (const next of dependsOn(current) ?? []) {
      if (dependsOn(next) !== undefined) visit(next);
    }
  };
  if (dependsOn(name) !== undefined) visit(name);
  return [...seen];
}

/**
 * `names` ordered so that each comes after those of `names` it depends on
 * (directly or through services outside `names`), otherwise in the given
 * order. A cycle does not loop: its members come in the order they are met.
 */
export function startOrder(names: readonly string[], dependsOn: DependsOn): string[] {
  const wanted = new Set(names);
  const visited = new Set<string>();
  const ordered: string[] = [];
  const visit = (name: string): void => {
    if (visited.has(name)) return;
    visited.add(name);
    for (const next of dependsOn(name) ?? []) visit(next);
    if (wanted.has(name)) ordered.push(name);
  };
  for (const name of names) visit(name);
  return ordered;
}

/**
 * Groups of `names` to stop one after another: a service comes only after
 * every service of `names` that depends on it directly. A cycle (which a
 * checked definition cannot have) does not loop: its members stop together.
 */
export function stopWaves(names: readonly string[], dependsOn: DependsOn): string[][] {
  const remaining = new Set(names);
  const waves: string[][] = [];
  while (remaining.size > 0) {
    const members = [...remaining];
    const wave = members.filter((name) => !members.some((other) => other !== name && (dependsOn(other) ?? []).includes(name)));
    const next = wave.length > 0 ? wave : members;
    for (const name of next) remaining.delete(name);
    waves.push(next);
  }
  return waves;
}
