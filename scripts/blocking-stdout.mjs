// Loaded into every test process by scripts/run-tests.mjs. A test file's process sends its
// results to the runner over its stdout, a pipe, and writes to a pipe are asynchronous: with
// --test-force-exit the process exits once its tests have run, before those writes are flushed,
// and the runner silently reports fewer tests than ran (nodejs/node#64833; our core count
// wandered between runs with no failure). Blocking writes are done when write() returns.
if (process.stdout._handle && typeof process.stdout._handle.setBlocking === 'function') process.stdout._handle.setBlocking(true);
