// stopTree, the graceful-then-forced kill loop, on a fake tree (see
// helpers/fake-tree.ts): the stop signal reaches every member, the loop waits
// for the tree to be gone, SIGKILLs at the deadline, keeps killing while new
// members appear, treats ESRCH as "gone" and lets EPERM and other failures
// surface. The real containments are tested with real processes elsewhere.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { isTendError } from '../../src/core/errors.js';
import { stopTree, type KillPasses, type StopPlan } from '../../src/terminate/stop-tree.js';
import { FakeTree, type FakeProcess } from '../helpers/fake-tree.js';

/** Short passes: a fake tree needs no second per pass, and a stuck one must fail fast. */
const FAST: KillPasses = { passMs: 20, passes: 5 };
const plan = (over: Partial<StopPlan> = {}): StopPlan => ({ signal: 'SIGTERM', timeoutMs: 10_000, handle: 'fake-handle', ...over });

/** Whether a promise has settled, after letting pending callbacks run. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await turn();
  await turn();
  return settled;
}

describe('stopTree', () => {
  test('an empty tree is already gone: no signal is sent', async () => {
    const tree = new FakeTree();
    tree.exit(tree.spawn());
    assert.deepEqual(await stopTree(tree, plan(), FAST), { alreadyGone: true, forced: false });
    assert.deepEqual(tree.passes, [], 'nothing was signalled');
  });

  test('the stop signal reaches every member, and the stop waits until the last is gone', async () => {
    const tree = new FakeTree();
    // They take their time over SIGTERM: each exits when the test says so.
    const members = [tree.spawn({ ignores: ['SIGTERM'] }), tree.spawn({ ignores: ['SIGTERM'] })];
    const stopping = stopTree(tree, plan(), FAST);
    assert.deepEqual(tree.deliveries.map((d) => [d.pid, d.signal]), members.map((p) => [p.pid, 'SIGTERM']));

    tree.exit(members[0] as FakeProcess);
    assert.equal(await hasSettled(stopping), false, 'one member still runs: the stop must not have returned');
    tree.exit(members[1] as FakeProcess);
    assert.deepEqual(await stopping, { alreadyGone: false, forced: false });
    assert.deepEqual(tree.passes, ['SIGTERM'], 'a tree that obeyed is not SIGKILLed');
  });

  test('a member that ignores the stop signal is SIGKILLed at the deadline, not before', async () => {
    const tree = new FakeTree();
    const stubborn = tree.spawn({ ignores: ['SIGTERM'] });
    const polite = tree.spawn();
    const outcome = await stopTree(tree, plan({ timeoutMs: 60 }), FAST);
    assert.deepEqual(outcome, { alreadyGone: false, forced: true });
    assert.deepEqual(tree.receivedBy(stubborn.pid), ['SIGTERM', 'SIGKILL']);
    assert.deepEqual(tree.receivedBy(polite.pid), ['SIGTERM'], 'the one that obeyed was gone before the SIGKILL');
    const [term, kill] = tree.deliveries.filter((d) => d.pid === stubborn.pid);
    // Timers fire no earlier than asked; a millisecond of slack for rounding.
    assert.ok((kill?.at ?? 0) - (term?.at ?? 0) >= 59, `SIGKILL came ${(kill?.at ?? 0) - (term?.at ?? 0)} ms after SIGTERM, before the 60 ms deadline`);
  });

  test('SIGKILL as the stop signal, or a zero timeout, skips the graceful step', async () => {
    for (const p of [plan({ signal: 'SIGKILL' }), plan({ timeoutMs: 0 })]) {
      const tree = new FakeTree();
      const member = tree.spawn();
      assert.deepEqual(await stopTree(tree, p, FAST), { alreadyGone: false, forced: true });
      assert.deepEqual(tree.receivedBy(member.pid), ['SIGKILL'], `${p.signal}/${p.timeoutMs}`);
    }
  });

  test('members forked during the kill are killed by later passes, until a pass finds no new pid', async () => {
    const tree = new FakeTree();
    // Each generation forks the next as SIGKILL reaches it: the new one was not in that pass's listing.
    const born: FakeProcess[] = [];
    const forker = (generations: number) => (signal: string): void => {
      if (signal === 'SIGKILL' && generations > 0) born.push(tree.spawn({ onSignal: forker(generations - 1) }));
    };
    const first = tree.spawn({ onSignal: forker(2) });
    const outcome = await stopTree(tree, plan({ signal: 'SIGKILL' }), FAST);
    assert.deepEqual(outcome, { alreadyGone: false, forced: true });
    assert.equal(born.length, 2, 'two members were forked during the kill');
    assert.deepEqual(tree.members(), [], 'nothing is left');
    assert.deepEqual(tree.passes, ['SIGKILL', 'SIGKILL', 'SIGKILL'], 'one pass per generation, and none after the tree was empty');
    for (const p of [first, ...born]) assert.deepEqual(tree.receivedBy(p.pid), ['SIGKILL'], `pid ${p.pid} was killed once`);
  });

  test('a member forked while the stop signal went out is SIGKILLed at the deadline', async () => {
    const tree = new FakeTree();
    let child: FakeProcess | undefined;
    tree.spawn({ onSignal: (signal) => void (signal === 'SIGTERM' && (child = tree.spawn({ ignores: ['SIGTERM'] }))) });
    assert.deepEqual(await stopTree(tree, plan({ timeoutMs: 30 }), FAST), { alreadyGone: false, forced: true });
    assert.ok(child, 'the fork happened');
    assert.deepEqual(tree.receivedBy(child.pid), ['SIGKILL'], 'the unseen child got no SIGTERM, and SIGKILL at the deadline');
  });

  test('a member that exits between the listing and the signal (ESRCH) is not an error', async () => {
    const tree = new FakeTree();
    const quitter = tree.spawn();
    const other = tree.spawn();
    tree.afterListing = () => {
      tree.afterListing = undefined;
      tree.exit(quitter);
    };
    assert.deepEqual(await stopTree(tree, plan(), FAST), { alreadyGone: false, forced: false });
    assert.deepEqual(tree.receivedBy(quitter.pid), [], 'the gone member received nothing');
    assert.deepEqual(tree.receivedBy(other.pid), ['SIGTERM'], 'the others still got the stop signal');
  });

  test('EPERM on the stop signal does not spare the rest; SIGKILL (as cgroup.kill would) ends it', async () => {
    const tree = new FakeTree();
    const foreign = tree.spawn({ denies: ['SIGTERM'] });
    const ours = tree.spawn({ ignores: ['SIGTERM'] });
    assert.deepEqual(await stopTree(tree, plan(), FAST), { alreadyGone: false, forced: true }, 'no waiting out the timeout after a refusal');
    assert.deepEqual(tree.receivedBy(ours.pid), ['SIGTERM', 'SIGKILL']);
    assert.deepEqual(tree.receivedBy(foreign.pid), ['SIGKILL']);
  });

  test('a member the kernel never lets us signal (EPERM) surfaces as STOP_FAILED naming it and the refusal', async () => {
    const tree = new FakeTree();
    const foreign = tree.spawn({ denies: ['SIGTERM', 'SIGKILL'] });
    await assert.rejects(stopTree(tree, plan(), FAST), (error: unknown) => {
      assert.ok(isTendError(error, 'STOP_FAILED'), String(error));
      assert.ok(isTendError(error.cause, 'SIGNAL_DENIED'), 'the EPERM is the cause');
      assert.match(error.message, new RegExp(`\\(${foreign.pid}\\)`));
      assert.match(error.message, /refused the signal/);
      return true;
    });
    assert.equal(tree.passes.filter((s) => s === 'SIGKILL').length, FAST.passes, 'every pass was tried');
  });

  test('a member that survives SIGKILL (state D) fails the stop after the last pass', async () => {
    const tree = new FakeTree();
    const stuck = tree.spawn({ ignores: ['SIGTERM', 'SIGKILL'] });
    await assert.rejects(stopTree(tree, plan({ timeoutMs: 10 }), FAST), (error: unknown) => {
      assert.ok(isTendError(error, 'STOP_FAILED'), String(error));
      assert.match(error.message, new RegExp(`\\(${stuck.pid}\\)`));
      assert.match(error.message, /state D/);
      return true;
    });
    assert.deepEqual(tree.receivedBy(stuck.pid), ['SIGTERM', ...Array<string>(FAST.passes).fill('SIGKILL')]);
  });

  test('any other failure to signal surfaces at once', async () => {
    const tree = new FakeTree();
    tree.spawn();
    const broken = new Error('EIO writing cgroup.kill');
    tree.failWith = broken;
    await assert.rejects(stopTree(tree, plan(), FAST), (error: unknown) => error === broken);
    assert.deepEqual(tree.passes, ['SIGTERM'], 'no further pass after an unexpected error');
  });
});
