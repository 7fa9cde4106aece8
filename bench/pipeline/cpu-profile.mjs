// Preload (`--import`) for the pipeline benchmark's PIPELINE_BENCH_CPU_PROF: Node 20 refuses
// --cpu-prof in NODE_OPTIONS, so this starts the V8 profiler through node:inspector and
// writes <dir>/<service>-<pid>.cpuprofile when the process exits. An in-thread inspector
// session answers synchronously, so the exit handler can still write the file.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  const name = /services\/([^/]+)\//.exec(process.argv[1] ?? '')?.[1] ?? 'node';
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${dir}/${name}-${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
