#!/usr/bin/env node
// Fetches and builds the test peers (issue 13): every peers/<name>/pom.xml is a Maven project
// (Apache Kafka, Apache Iceberg's Java library, Spark, ...) that resolves its jars from Maven
// Central into ~/.m2, compiles what it has, and writes target/classpath.txt next to each pom
// that builds something (an aggregator's modules each write their own). The interop tests run
// `java -cp <those>`. Nothing downloaded is committed, so a fresh clone runs this first.
//
//   npm run peers                 build every peer that is out of date
//   npm run peers -- kafka        only the named peers
//   npm run peers -- --force      rebuild even if up to date
//
// A peer is up to date when each of its classpath files is newer than every file of the peer
// (poms, sources, resources) and every jar it names is still in ~/.m2; then it costs nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const peersDir = join(root, 'peers');

/** Every file of a project tree except build output. */
function inputs(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'target') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) inputs(path, out);
    else out.push(path);
  }
  return out;
}

/** The classpath files a build writes: one per pom that is not an aggregator (<modules>). */
function classpathFiles(files) {
  return files
    .filter((f) => f.endsWith('/pom.xml') && !/<modules>/.test(readFileSync(f, 'utf8')))
    .map((pom) => join(pom, '..', 'target', 'classpath.txt'));
}

const jarsOf = (classpathFile) => readFileSync(classpathFile, 'utf8').trim().split(':').filter(Boolean);
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const sizeOf = (paths) => paths.reduce((sum, p) => sum + (existsSync(p) ? statSync(p).size : 0), 0);

/** Why a peer must be built, or undefined when it is up to date. Pure apart from stat calls. */
function staleness(files, outputs) {
  const missing = outputs.find((o) => !existsSync(o));
  if (missing) return `${relative(root, missing)} is missing`;
  const newestInput = Math.max(...files.map((f) => statSync(f).mtimeMs));
  const older = outputs.find((o) => statSync(o).mtimeMs < newestInput);
  if (older) return `${relative(root, older)} is older than the sources`;
  for (const o of outputs) {
    const gone = jarsOf(o).find((jar) => !existsSync(jar));
    if (gone) return `${gone} is no longer in the local repository`;
  }
  return undefined;
}

function build(name, force) {
  const dir = join(peersDir, name);
  const pom = join(dir, 'pom.xml');
  const files = inputs(dir);
  const outputs = classpathFiles(files);
  const why = force ? 'forced' : staleness(files, outputs);
  if (!why) {
    const jars = [...new Set(outputs.flatMap(jarsOf))];
    console.log(`peers/${name}: up to date (${jars.length} jars, ${mb(sizeOf(jars))})`);
    return true;
  }
  console.log(`peers/${name}: building (${why})`);
  const started = Date.now();
  const mvn = spawnSync('mvn', ['-q', '-B', '-f', pom, 'package'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (mvn.error) {
    console.error(`peers/${name}: cannot run Maven (${mvn.error.message}); install it (apt-get install maven) and a JDK 17`);
    return false;
  }
  if (mvn.status !== 0) {
    console.error(
      `peers/${name}: mvn package failed (exit ${mvn.status}):\n${`${mvn.stdout}${mvn.stderr}`.trim().split('\n').slice(-40).join('\n')}`,
    );
    return false;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  for (const o of outputs) {
    if (!existsSync(o)) {
      console.error(`peers/${name}: the build wrote no ${relative(root, o)}`);
      return false;
    }
    // The dependency plugin leaves an unchanged classpath file alone: mark it as built now.
    const now = new Date();
    utimesSync(o, now, now);
    const jars = jarsOf(o);
    // Maven stamps a jar it downloads with the time of the download.
    const fetched = jars.filter((jar) => statSync(jar).mtimeMs >= started - 1000);
    console.log(
      `  ${relative(root, o)}: ${jars.length} jars, ${mb(sizeOf(jars))}; fetched now ${fetched.length} jars, ${mb(sizeOf(fetched))}`,
    );
  }
  console.log(`peers/${name}: built in ${seconds} s`);
  return true;
}

const args = process.argv.slice(2);
const force = args.includes('--force');
const wanted = args.filter((a) => a !== '--force');
const all = readdirSync(peersDir)
  .filter((name) => existsSync(join(peersDir, name, 'pom.xml')))
  .sort();
const unknown = wanted.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(`no peer named ${unknown.join(', ')}; the peers are ${all.join(', ')}`);
  process.exit(2);
}
const started = Date.now();
let ok = true;
for (const name of wanted.length > 0 ? wanted : all) ok = build(name, force) && ok;
console.log(`peers: ${ok ? 'done' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(ok ? 0 : 1);
