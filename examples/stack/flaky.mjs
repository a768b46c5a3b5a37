// Crashes a few seconds after each start, to show restarts with backoff:
// `tend ps` (in another terminal: tend up -d) shows its restarts climbing and
// the delay between them doubling up to the cap.
const lifetime = Number(process.env.CRASH_AFTER_MS ?? 3000);
console.log(`started; crashing in ${lifetime} ms`);
setTimeout(() => {
  console.error('crash: exiting with code 1');
  process.exit(1);
}, lifetime);
