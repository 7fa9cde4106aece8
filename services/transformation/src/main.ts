import { runMain } from '../../../shared/src/service.js';
import { transformationService } from './service.js';

await runMain(transformationService);
