import { runMain } from '../../../shared/src/service.js';
import { transformationService } from './service.js';

// Registered before runMain's own handler, so open streams start ending (at a batch
// boundary, unreported files deleted) before the server waits for in-flight calls.
const drain = () => void transformationService.drain();
process.once('SIGTERM', drain);
process.once('SIGINT', drain);

await runMain(transformationService);
