import { runMain } from '#shared/service.js';
import { transformationService } from './service.js';

await runMain(transformationService);
