// Preload (`--import`) for the pipeline benchmark's PIPELINE_BENCH_CPU_PROF. Node 20 refuses
// --cpu-prof in NODE_OPTIONS, and a whole-life profile would be mostly start-up and idling,
// so the V8 profiler runs between two SIGUSR2s (the benchmark sends them around the timed
// phase) and writes <dir>/<service>-<pid>.cpuprofile. An in-thread inspector session answers
// synchronously, so the file is written inside the signal handler.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const name = /services\/([^/]+)\//.exec(process.argv[1] ?? '')?.[1] ?? 'node';
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      session.post('Profiler.start');
      running = true;
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${dir}/${name}-${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
