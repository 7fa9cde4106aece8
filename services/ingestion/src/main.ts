import { runMain } from '../../../shared/src/service.js';
import { ingestionService } from './service.js';

await runMain(ingestionService);
